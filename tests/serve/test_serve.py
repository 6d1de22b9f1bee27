"""``npconv serve``: the API through Starlette's ``TestClient`` (no server), and the page in a real
headless Chromium against a real uvicorn server.

The model is a tiny one trained in seconds on the built-in synthetic faces (16 x 16 RGB, classes
"not smiling" and "smiling"); the photos are Happy House pictures from ``test_happy.h5``, written
to temporary files (data never enters the repository).
"""

from __future__ import annotations

import io
import json
import struct
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import phone_photo, require
from PIL import Image

import npconv
from npconv.cli import main
from npconv.data.images import decode_image

from .running import chromium, npconv_server

try:
    from starlette.testclient import TestClient

    from npconv.serve import create_app, uploads
    from npconv.serve.inference import Predictor
    from npconv.serve.uploads import MAX_PHOTO_BYTES, MAX_PIXELS
except ImportError:  # the serve extra is missing: every test below fails under CI, skips elsewhere
    TestClient = None


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    """A tiny smile model trained on the built-in synthetic faces."""
    require(TestClient is not None, "the serve extra is not installed (pip install 'npconv[serve]')")
    path = tmp_path_factory.mktemp("serve") / "smiles.npz"
    assert (
        main(
            [
                "train",
                "--out",
                str(path),
                "--epochs",
                "1",
                "--arch",
                "tiny",
                "--image-size",
                "16",
                "--quiet",
                "--no-report",
            ]
        )
        == 0
    )
    return path


@pytest.fixture(scope="module")
def client(model_path):
    with TestClient(create_app(npconv.load_model(model_path), model_path.name)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def happy(data_dir):
    """Happy House test pictures and labels, uint8 (150, 64, 64, 3) and (150,) (1 = smiling)."""
    with h5py.File(data_dir / "happy" / "test_happy.h5", "r") as f:
        return f["test_set_x"][:], f["test_set_y"][:]


@pytest.fixture(scope="module")
def phone_jpeg(tmp_path_factory) -> Path:
    """A built-in synthetic face as a phone's 48-megapixel JPEG (8000 x 6000, 10-15 MB)."""
    from npconv.data.synthetic import make_smiley_faces

    face = make_smiley_faces(n=1, image_size=64, seed=4).x[0]
    return phone_photo(face, tmp_path_factory.mktemp("phone") / "IMG_0001.jpg")


def encode(image: np.ndarray, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def post(client, data: bytes, name: str = "photo.png", field: str = "image"):
    return client.post("/api/predict", files={field: (name, data, "application/octet-stream")})


def png_bomb(width: int, height: int) -> bytes:
    """A real, valid 1-bit PNG of ``width x height`` white pixels: a few hundred KB on disk,
    ``width * height`` pixels (30000 x 30000: 900 megapixels, 2.7 GB as RGB) once decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + b"\xff" * ((width + 7) // 8)  # filter byte "none", then the packed pixels
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1 bit, grayscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def multipart_around(name: str, field: str = "image", boundary: str = "npconv-test") -> tuple[bytes, bytes]:
    """What goes before and after a file's bytes in a multipart/form-data body with one file field."""
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head, f"\r\n--{boundary}--\r\n".encode()


def multipart(data: bytes, name: str) -> bytes:
    """A multipart/form-data body with the file field ``image``, as a browser's form posts it."""
    head, tail = multipart_around(name)
    return head + data + tail


MB = 1024 * 1024
MULTIPART = {"content-type": "multipart/form-data; boundary=npconv-test"}


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small valid JPEG whose header (SOF0) says ``width x height`` pixels."""
    data = bytearray(encode(np.zeros((8, 8, 3), np.uint8), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def assert_refused(response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    message = response.json()["error"]
    for word in words:
        assert word in message, message


# ----------------------------------------------------------------------------- the page and the card


def test_the_page_has_a_file_picker_and_reads_the_api(client):
    response = client.get("/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    page = response.text
    assert '<input id="file" type="file"' in page and "getUserMedia" in page
    assert "/api/predict" in page and "/api/model" in page
    assert response.headers["x-content-type-options"] == "nosniff"


def test_model_card_comes_from_the_metadata(client, model_path):
    card = client.get("/api/model").json()
    assert card["file"] == model_path.name and card["arch"] == "tiny"
    assert card["classes"] == ["not smiling", "smiling"] and card["smile_model"] is True
    assert card["input"] == {"height": 16, "width": 16, "channels": 3, "color_mode": "rgb"}
    assert card["dataset"] == "builtin:smiles" and card["epochs"] == 1
    assert 0 <= card["held_out_accuracy"] <= 1
    model = npconv.load_model(model_path)
    assert card["parameters"] == model.count_params() and card["conv_layers"]
    assert card["initialised_from"] is None


def test_model_card_says_what_a_fine_tuned_model_started_from(client, model_path):  # client: the serve extra is there
    model = npconv.load_model(model_path)
    model.metadata["initialised_from"] = {"path": "runs/smiles.npz", "dataset": "smiles"}
    with TestClient(create_app(model, "happy.npz")) as fine_tuned:
        card = fine_tuned.get("/api/model").json()
    assert card["initialised_from"] == {"dataset": "smiles", "file": "smiles.npz"}
    assert "started from" in fine_tuned.get("/").text


def test_an_averaged_model_is_served_like_any_other(client, happy, model_path):  # client: the serve extra
    from npconv.apps.ensemble import average_models

    single = npconv.load_model(model_path)
    model = average_models([single, npconv.load_model(model_path)])
    model.metadata = {**single.metadata, "ensemble": {"members": 2, "seeds": [0, 1]}}
    with TestClient(create_app(model, "avg.npz")) as averaged:
        card = averaged.get("/api/model").json()
        answer = post(averaged, encode(happy[0][0], "PNG"), "face.png").json()
    alone = post(client, encode(happy[0][0], "PNG"), "face.png").json()
    assert card["members"] == 2 and client.get("/api/model").json()["members"] == 1
    assert len(card["conv_layers"]) == 2 * len(alone["feature_maps"])  # each member's convolutions
    # two copies of one model average to that model
    assert answer["probabilities"]["smiling"] == pytest.approx(alone["probabilities"]["smiling"], abs=1e-6)
    assert "models averaged" in averaged.get("/").text


# ----------------------------------------------------------------------------- good photos


def test_a_happy_house_photo_gets_what_npconv_predict_says(client, happy, tmp_path, capsys, model_path):
    """The page's preprocessing is ``npconv predict``'s: same photo, same probabilities."""
    x, _ = happy
    photo = tmp_path / "face.jpg"
    photo.write_bytes(encode(x[0], "JPEG", quality=95))
    answer = post(client, photo.read_bytes(), "face.jpg").json()

    assert main(["predict", str(model_path), str(photo), "--json"]) == 0
    expected = json.loads(capsys.readouterr().out)
    assert answer["label"] == expected["class"]
    assert answer["door_opens"] == expected["door_opens"] == (answer["label"] == "smiling")
    assert answer["probabilities"].keys() == expected["probabilities"].keys()
    for name, p in expected["probabilities"].items():
        assert answer["probabilities"][name] == pytest.approx(p, abs=1e-6)
    assert sum(answer["probabilities"].values()) == pytest.approx(1.0)


def test_a_photo_gets_what_the_model_says_of_the_picture_as_training_prepares_it(client, happy, model_path):
    # A Happy House picture (64 px, as test_happy.h5 stores it) posted as a PNG must be resized as
    # training and npconv evaluate resize the .h5 set (fit_to_input), not by another filter.
    from npconv.apps.datasets import fit_to_input, to_float

    x, _ = happy
    model = npconv.load_model(model_path)
    for picture in x[:4]:
        answer = post(client, encode(picture)).json()
        p_smiling = float(model.predict(to_float(fit_to_input(picture[None], (16, 16, 3))))[0, 0])
        assert answer["probabilities"]["smiling"] == p_smiling


def _decode_data_url(url: str) -> np.ndarray:
    import base64

    assert url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def test_the_answer_shows_the_model_input_and_every_convolution(client, happy):
    x, _ = happy
    answer = post(client, encode(x[1])).json()
    seen = _decode_data_url(answer["model_input"])
    assert seen.shape == (16, 16, 3)  # resized to the model's input, RGB as the model takes it
    card = client.get("/api/model").json()
    assert [m["layer"] for m in answer["feature_maps"]] == card["conv_layers"]
    for fmap in answer["feature_maps"]:
        n_H, n_W, channels = fmap["shape"]
        grid = _decode_data_url(fmap["png"])
        assert fmap["channels_shown"] == min(channels, 32)
        cols = min(8, fmap["channels_shown"])
        rows = -(-fmap["channels_shown"] // cols)
        assert grid.shape == (rows * (n_H + 1) - 1, cols * (n_W + 1) - 1, 3)


def test_the_answer_shows_where_the_model_looked(client, happy, model_path):
    """Grad-CAM of the predicted class over the picture the model sees, at the model's input size."""
    from npconv import explain
    from npconv.apps.datasets import to_float
    from npconv.explain_plots import heatmap_overlay

    x, _ = happy
    answer = post(client, encode(x[1])).json()
    assert {"label", "probabilities", "door_opens", "model_input", "feature_maps"} <= answer.keys()
    heatmap = _decode_data_url(answer["heatmap"])
    assert heatmap.shape == (16, 16, 3) and heatmap.dtype == np.uint8
    seen = _decode_data_url(answer["model_input"])
    model = npconv.load_model(model_path)
    cam = explain.grad_cam(model, to_float(seen[None]))[0]
    np.testing.assert_array_equal(heatmap, heatmap_overlay(seen, cam))


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(
            lambda face: np.dstack(
                [face, np.where(np.arange(64) < 32, 255, 0)[None, :].repeat(64, 0).astype(np.uint8)]
            ),
            id="rgba-png",
        ),
        pytest.param(lambda face: face.mean(axis=2).astype(np.uint8), id="grayscale-png"),
        pytest.param(lambda face: np.asarray(Image.fromarray(face).resize((1200, 900))), id="large-photo"),
    ],
)
def test_other_kinds_of_photo_are_answered(client, happy, make):
    x, _ = happy
    answer = post(client, encode(make(x[2]))).json()
    assert answer["label"] in ("not smiling", "smiling")
    assert _decode_data_url(answer["model_input"]).shape == (16, 16, 3)


def test_a_48_megapixel_phone_photo_gets_a_verdict_and_npconv_predict_agrees(client, phone_jpeg, model_path, capsys):
    """Over MAX_PIXELS in full (48 MP) and over the old 10 MB limit: decoded at 1/8, it is a normal upload."""
    data = phone_jpeg.read_bytes()
    assert len(data) > 10 * MB and 8000 * 6000 > MAX_PIXELS
    response = post(client, data, phone_jpeg.name)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert main(["predict", str(model_path), str(phone_jpeg), "--json"]) == 0
    expected = json.loads(capsys.readouterr().out)
    assert answer["label"] == expected["class"]
    for name, p in expected["probabilities"].items():
        assert answer["probabilities"][name] == pytest.approx(p, abs=1e-6)


def test_an_oversized_body_is_read_up_to_a_bound_then_refused(client, monkeypatch):
    """Past MAX_BODY_BYTES the server stops reading: a bounded cost for any request."""
    monkeypatch.setattr(uploads, "MAX_BODY_BYTES", 3 * MB)
    head, tail = multipart_around("big.jpg")
    chunked = client.post("/api/predict", headers=MULTIPART, content=iter([head, *[b"\0" * MB] * 8, tail]))
    assert_refused(chunked, 413, "upload too large: more than 3.0 MB", "25 MB")
    declared = post(client, b"\0" * (4 * MB))  # Content-Length says so: refused before reading
    assert_refused(declared, 413, "upload too large: 4.0 MB,")


def test_a_palette_gif_and_a_webp_are_answered(client, happy):
    x, _ = happy
    gif = Image.fromarray(x[3]).convert("P")
    buffer = io.BytesIO()
    gif.save(buffer, format="GIF")
    assert post(client, buffer.getvalue(), "face.gif").status_code == 200
    assert post(client, encode(x[3], "WEBP"), "face.webp").status_code == 200


def _untrained(input_shape, class_names):
    """A small untrained model with ``npconv train``'s metadata (no training needed to test the page)."""
    from npconv import layers as L
    from npconv.apps.heads import output_layer

    model = npconv.Sequential(
        [
            L.Conv2D(4, 3, strides=2, input_shape=input_shape, name="conv_a"),
            L.ReLU(),
            L.Conv2D(6, 3, name="conv_b"),
            L.Flatten(),
            output_layer(len(class_names)),
        ]
    )
    model.build(input_shape)
    model.metadata = {"input_shape": list(input_shape), "class_names": class_names, "value_scale": 255}
    return model


def test_a_grayscale_model_sees_a_colour_photo_in_grayscale(happy):
    with TestClient(create_app(_untrained((24, 24, 1), ["not smiling", "smiling"]))) as gray_client:
        assert gray_client.get("/api/model").json()["input"]["color_mode"] == "grayscale"
        answer = post(gray_client, encode(happy[0][6])).json()
    assert _decode_data_url(answer["model_input"]).shape == (24, 24)  # one channel, as the model takes it
    assert _decode_data_url(answer["heatmap"]).shape == (24, 24, 3)  # over it, in colour
    assert [m["shape"] for m in answer["feature_maps"]] == [[11, 11, 4], [9, 9, 6]]
    assert "door_opens" in answer


def test_a_model_without_feature_maps_is_answered_without_a_heatmap(happy):
    from npconv import layers as L
    from npconv.apps.heads import output_layer

    model = npconv.Sequential([L.Flatten(input_shape=(8, 8, 3)), output_layer(2)])
    model.build((8, 8, 3))
    model.metadata = {"input_shape": [8, 8, 3], "class_names": ["not smiling", "smiling"], "value_scale": 255}
    with TestClient(create_app(model)) as flat_client:
        answer = post(flat_client, encode(happy[0][8])).json()
    assert answer["label"] in ("not smiling", "smiling") and "heatmap" not in answer
    assert answer["feature_maps"] == []


def test_a_model_with_more_classes_gets_a_bar_each_and_no_door(happy):
    names = ["zero", "one", "two", "three", "four", "five"]
    with TestClient(create_app(_untrained((20, 20, 3), names))) as signs_client:
        assert signs_client.get("/api/model").json()["smile_model"] is False
        answer = post(signs_client, encode(happy[0][7])).json()
    assert list(answer["probabilities"]) == names and "door_opens" not in answer
    assert answer["label"] == max(answer["probabilities"], key=answer["probabilities"].get)
    assert sum(answer["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)


# ----------------------------------------------------------------------------- bad requests

BAD_REQUESTS = {
    "junk": (lambda c: post(c, b"this is not a photo, just text" * 10, "notes.txt"), 400, "not an image"),
    "empty file": (lambda c: post(c, b"", "empty.png"), 400, "empty"),
    "truncated png": (lambda c: post(c, encode(np.zeros((64, 64, 3), np.uint8))[:60]), 400, "decoded"),
    "wrong field": (lambda c: post(c, b"...", field="photo"), 400, "'image'"),
    "text field": (lambda c: c.post("/api/predict", data={"image": "smile.png"}), 400, "'image'"),
    "json body": (lambda c: c.post("/api/predict", json={"image": "..."}), 400, "multipart"),
    "broken multipart": (
        lambda c: c.post(
            "/api/predict", content=b"--x\r\nno headers", headers={"content-type": "multipart/form-data; boundary=x"}
        ),
        400,
        "multipart",
    ),
    # the message gives the photo's size, not the multipart body's
    "huge upload": (
        lambda c: post(c, b"\0" * (MAX_PHOTO_BYTES + 1)),
        413,
        f"{MAX_PHOTO_BYTES + 1:,} bytes",
        "limit is 25 MB",
    ),
    "huge upload, chunked": (
        lambda c: c.post(
            "/api/predict",
            headers=MULTIPART,
            content=iter([multipart_around("big.jpg")[0], *[b"\0" * MB] * 30, multipart_around("big.jpg")[1]]),
        ),
        413,
        "30.0 MB",
        f"{30 * MB:,} bytes",
    ),
    "bomb": (lambda c: post(c, png_bomb(30000, 30000), "bomb.png"), 413, "image too large"),
    "a JPEG declaring 60000 x 60000 pixels": (
        lambda c: post(c, jpeg_declaring(60000, 60000), "bomb.jpg"),
        413,
        "image too large",
    ),
    "just over the pixel limit": (lambda c: post(c, png_bomb(5001, 5000), "big.png"), 413, "5001x5000"),
    "eps (a format Pillow reads with Ghostscript)": (
        lambda c: post(c, b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "x.eps"),
        400,
        "not an image",
    ),
}


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=list(BAD_REQUESTS))
def test_bad_requests_are_refused_and_the_server_keeps_serving(client, happy, case):
    send, status, *words = BAD_REQUESTS[case]
    assert_refused(send(client), status, *words)
    good = post(client, encode(happy[0][4]))
    assert good.status_code == 200 and good.json()["label"] in ("not smiling", "smiling")


def test_the_bomb_is_a_small_valid_png():
    bomb = png_bomb(30000, 30000)
    assert len(bomb) < 1_500_000 and struct.unpack(">II", bomb[16:24]) == (30000, 30000)
    with Image.open(io.BytesIO(png_bomb(40, 30))) as small:  # the same recipe makes a valid PNG
        assert small.size == (40, 30) and np.asarray(small.convert("L")).min() == 255


def test_an_upload_over_the_default_spool_size_stays_in_memory(client, monkeypatch):
    """Starlette spools file parts over 1 MB to a temporary file; here nothing touches the disk."""

    def no_disk(self):
        raise AssertionError("an upload was written to a temporary file")

    monkeypatch.setattr(tempfile.SpooledTemporaryFile, "rollover", no_disk)
    noise = np.random.default_rng(0).integers(0, 256, (1200, 1200, 3), dtype=np.uint8)
    data = encode(noise)
    assert 3_000_000 < len(data) < MAX_PHOTO_BYTES and 1200 * 1200 < MAX_PIXELS
    assert post(client, data).status_code == 200


def test_wrong_method_and_unknown_paths(client):
    assert client.get("/api/predict").status_code == 405
    assert client.get("/../../etc/passwd").status_code == 404


# ----------------------------------------------------------------------------- concurrency


def test_concurrent_requests_get_the_answers_of_sequential_ones(client, happy):
    """Layers keep caches on themselves: without the predictor's lock, parallel forward passes
    would mix their activations."""
    x, _ = happy
    photos = [encode(image) for image in x[:40]]
    sequential = [post(client, p).json()["probabilities"] for p in photos]
    with ThreadPoolExecutor(max_workers=16) as pool:
        concurrent = list(pool.map(lambda p: post(client, p).json()["probabilities"], photos * 3))
    assert concurrent == sequential * 3


def test_forward_passes_never_overlap(model_path, happy):
    """The same guarantee made deterministic: a slowed-down forward pass is never entered twice."""
    predictor = Predictor(npconv.load_model(model_path))
    original, guard = predictor.model.intermediate_outputs, threading.Lock()
    inside = most = 0

    def slow_forward(*args, **kwargs):
        nonlocal inside, most
        with guard:
            inside += 1
            most = max(most, inside)
        time.sleep(0.005)
        try:
            return original(*args, **kwargs)
        finally:
            with guard:
                inside -= 1

    predictor.model.intermediate_outputs = slow_forward
    image = decode_image(io.BytesIO(encode(happy[0][5])), (16, 16))
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(predictor.predict, [image] * 16))
    assert most == 1 and all(a == answers[0] for a in answers)


# ----------------------------------------------------------------------------- the command


def test_serve_without_the_extra_says_how_to_install_it(model_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn now raises ImportError
    assert main(["serve", str(model_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("npconv: error: ") and "pip install 'npconv[serve]'" in err
    assert "uvicorn" in err and len(err.splitlines()) == 1


def test_serve_binds_to_this_machine_unless_told(model_path, monkeypatch, capsys):
    import uvicorn

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append(options))
    assert main(["serve", str(model_path)]) == 0
    assert calls[-1]["host"] == "127.0.0.1" and calls[-1]["port"] == 8000
    assert "http://127.0.0.1:8000/" in capsys.readouterr().out
    assert main(["serve", str(model_path), "--host", "0.0.0.0", "--port", "8123"]) == 0
    assert calls[-1]["host"] == "0.0.0.0" and calls[-1]["port"] == 8123
    assert "other machines on the network" in capsys.readouterr().err


def test_serve_refuses_a_missing_model_and_a_bad_port(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "nothing.npz")]) == 1
    assert "no such file" in capsys.readouterr().err
    assert main(["serve", "model.npz", "--port", "70000"]) == 2
    assert "port number" in capsys.readouterr().err


# ----------------------------------------------------------------------------- a real browser


@pytest.fixture(scope="module")
def server(model_path):
    """``npconv serve`` in a subprocess on a free port of 127.0.0.1; its base URL."""
    with npconv_server(model_path) as url:
        yield url


def test_python_urllib_reads_the_413_of_a_real_server(server):
    """Answered before the body was read, the refusal reached curl and Chromium but Python's urllib,
    still sending, got 'Connection reset by peer'. The server now reads the body (up to a bound)
    first, and the message gives the photo's size, not the multipart body's."""
    photo = b"\0" * (30 * MB)
    request = urllib.request.Request(
        server + "/api/predict", data=multipart(photo, "big.jpg"), headers=MULTIPART, method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=120)
    assert refused.value.code == 413
    message = json.loads(refused.value.read())["error"]
    assert f"30.0 MB ({len(photo):,} bytes)" in message and "limit is 25 MB" in message
    # the server goes on serving
    with urllib.request.urlopen(server + "/api/model", timeout=30) as answer:
        assert answer.status == 200


def test_python_urllib_posts_a_phone_photo_to_a_real_server(server, phone_jpeg):
    request = urllib.request.Request(
        server + "/api/predict", data=multipart(phone_jpeg.read_bytes(), "IMG.jpg"), headers=MULTIPART, method="POST"
    )
    with urllib.request.urlopen(request, timeout=120) as answer:
        assert json.loads(answer.read())["label"] in ("not smiling", "smiling")


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.mark.slow
def test_the_page_shows_the_verdict_in_a_real_browser(server, browser, happy, tmp_path):
    import httpx2

    x, y = happy
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.goto(server + "/")
    page.wait_for_selector("#card-fields dd")
    assert "not smiling, smiling" in page.inner_text("#card")
    for index in (int(np.argmax(y == 1)), int(np.argmax(y == 0))):  # a smiling and a non-smiling face
        photo = tmp_path / f"happy_{index}.png"
        photo.write_bytes(encode(x[index]))
        expected = httpx2.post(server + "/api/predict", files={"image": photo.open("rb")}).json()
        page.evaluate("document.getElementById('verdict').textContent = ''")
        page.set_input_files("#file", str(photo))
        page.wait_for_function(
            "label => document.getElementById('verdict').textContent.startsWith(label)", arg=expected["label"]
        )
        door = page.inner_text("#door-text")
        assert ("door opens" in door) == expected["door_opens"]
        assert page.locator("#maps img").count() == len(expected["feature_maps"])
        assert page.eval_on_selector("#model-input", "img => img.naturalWidth") == 16
        # where it looked, beside the verdict: the answer's heatmap, drawn
        page.wait_for_function("document.getElementById('heatmap').naturalWidth > 0")
        assert page.is_visible("#heatmap") and page.get_attribute("#heatmap", "src") == expected["heatmap"]
        assert page.eval_on_selector("#heatmap", "img => img.naturalWidth") == 16
        assert expected["label"] in page.inner_text("#heatmap-caption")
    shot = page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
    assert len(shot) > 10_000
    # The page keeps working after a refused file: the error is shown, then the next photo is answered.
    junk = tmp_path / "notes.txt"
    junk.write_text("not a photo")
    page.set_input_files("#file", str(junk))
    page.wait_for_function("document.getElementById('error').textContent.includes('not an image')")
    page.close()


@pytest.mark.slow
def test_the_page_shrinks_a_phone_photo_before_sending_it(server, browser, phone_jpeg):
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    sent = []
    page.on(
        "request", lambda r: sent.append(len(r.post_data_buffer or b"")) if r.url.endswith("/api/predict") else None
    )
    page.goto(server + "/")
    page.wait_for_selector("#card-fields dd")
    page.set_input_files("#file", str(phone_jpeg))
    page.wait_for_function("document.getElementById('verdict').textContent !== ''", timeout=60_000)
    assert page.inner_text("#verdict").split(" (")[0] in ("not smiling", "smiling")
    assert page.inner_text("#error") == ""
    note = page.inner_text("#shrunk")
    assert "8000×6000" in note and "1600×1200" in note, note
    assert len(sent) == 1 and sent[0] < 2 * MB < phone_jpeg.stat().st_size  # what went over the wire
    page.wait_for_function("document.getElementById('photo').naturalWidth > 0")
    assert page.eval_on_selector("#photo", "img => [img.naturalWidth, img.naturalHeight]") == [1600, 1200]
    assert len(page.screenshot(full_page=True)) > 10_000
    page.close()


@pytest.mark.slow
def test_the_webcam_button_takes_a_photo_in_a_real_browser(server, browser):
    context = browser.new_context(permissions=["camera"])
    page = context.new_page()
    page.goto(server + "/")
    page.click("#webcam")
    page.wait_for_function("document.getElementById('video').videoWidth > 0")
    page.click("#snap")
    page.wait_for_function("document.getElementById('verdict').textContent !== ''")
    assert page.inner_text("#verdict").split(" (")[0] in ("not smiling", "smiling")
    assert page.eval_on_selector("#photo", "img => img.src").startswith("blob:")
    # the snapshot is the centre of the frame at the model's aspect ratio (16 x 16: square)
    page.wait_for_function("document.getElementById('photo').naturalWidth > 0")
    width, height = page.eval_on_selector("#photo", "img => [img.naturalWidth, img.naturalHeight]")
    assert width == height
    page.click("#stop")
    assert page.is_visible("#webcam") and not page.is_visible("#video")
    context.close()
