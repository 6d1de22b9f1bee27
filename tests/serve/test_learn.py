"""``npconv serve``'s ``/learn`` page: one training step, number by number.

The JSON endpoints through Starlette's ``TestClient`` for tiny Happy House, SIGNS and ``smallres``
models (16 x 16, trained in seconds on the built-in faces); the step's arithmetic; rewind to the
model's weights bit for bit; the served model untouched; a learner's buggy file found at its first
difference; bad requests answered with clear errors; and the page in a real headless Chromium.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import require

import npconv
from npconv.cli import main
from npconv.testing import mistakes

from .running import chromium, npconv_server

try:
    from starlette.testclient import TestClient

    from npconv.serve import create_app
    from npconv.serve.learn_samples import load_samples
    from npconv.serve.learn_sessions import Learner
except ImportError:  # the serve extra is missing: the tests fail under CI, skip elsewhere
    TestClient = None

LEARNER = Path(__file__).parents[1] / "trace" / "learner_loops.py"
MB = 1024 * 1024
ARCHS = ("happy", "signs", "smallres")


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """Tiny Happy House, SIGNS and smallres models (16 x 16 RGB, the built-in faces, one epoch)."""
    require(TestClient is not None, "the serve extra is not installed (pip install 'npconv[serve]')")
    folder = tmp_path_factory.mktemp("learn")
    paths = {}
    for arch in ARCHS:
        paths[arch] = folder / f"{arch}.npz"
        assert (
            main(
                [
                    "train",
                    "--out",
                    str(paths[arch]),
                    "--epochs",
                    "1",
                    "--arch",
                    arch,
                    "--image-size",
                    "16",
                    "--quiet",
                    "--no-report",
                ]
            )
            == 0
        )
    return paths


@pytest.fixture(scope="module")
def clients(models):
    opened = {}
    for arch, path in models.items():
        client = TestClient(create_app(npconv.load_model(path), path.name))
        opened[arch] = client.__enter__()
    yield opened
    for client in opened.values():
        client.__exit__(None, None, None)


def start(client, sample: int = 0) -> dict:
    answer = client.post("/api/learn/sample", json={"sample": sample})
    assert answer.status_code == 200, answer.text
    return answer.json()


def fill(template, r: int = 0, c: int = 0) -> list[int]:
    """The array index of cell (r, c) of a map (``"k"``: its position in a wrapped vector)."""
    return [r if p == "r" else c if p == "c" else 0 if p == "k" else p for p in template]


def small(response, limit: int = 2 * MB):
    assert response.status_code == 200, response.text
    assert len(response.content) < limit, (response.url, len(response.content))
    return response.json()


# ----------------------------------------------------------------------------- the endpoints


def test_the_first_page_links_to_the_learn_page(clients):
    client = clients["happy"]
    assert 'href="/learn"' in client.get("/").text
    page = client.get("/learn")
    assert page.status_code == 200 and "Inside the network" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # works offline: no CDN


@pytest.mark.parametrize("arch", ARCHS)
def test_every_layer_shows_its_maps_and_every_entry_opens_into_terms_that_add_up(clients, arch):
    client = clients[arch]
    samples = small(client.get("/api/learn/samples"))
    assert samples["samples"] and all(s["png"].startswith("data:image/png;base64,") for s in samples["samples"])
    summary = start(client)
    sid, label = summary["session"], summary["label"]
    assert summary["label"] in summary["classes"] and math.isfinite(summary["loss"])
    assert pytest.approx(1.0, abs=1e-5) == sum(summary["probabilities"].values())
    opened = set()
    for layer in summary["layers"]:
        answer = small(client.get("/api/learn/layer", params={"session": sid, "label": label, "layer": layer["name"]}))
        maps = answer["maps"]
        # the input layer of a functional model has no input of its own: its output is the photo
        assert "output" in maps and ("input" in maps) == (answer["type"] != "InputLayer")
        for name, shown in maps.items():
            assert len(shown["values"]) == shown["rows"] * shown["cols"], name
        if "dout" in layer["grads"]:
            assert "dout" in maps
        for which in answer["terms"]:
            index = fill(maps[which]["index"])
            terms = small(
                client.get(
                    "/api/learn/terms",
                    params={
                        "session": sid,
                        "label": label,
                        "layer": layer["name"],
                        "which": which,
                        "index": ",".join(map(str, index)),
                    },
                )
            )
            assert terms["index"] == index and terms["count"] >= terms["shown"] >= 1
            assert terms["sum"] == pytest.approx(terms["value"], rel=1e-4, abs=1e-7)
            assert len(terms["a"]) == len(terms["b"]) == len(terms["product"]) == terms["shown"]
            if layer["type"] == "Conv2D" and which in ("dW", "dx"):
                assert len(terms["window"]) == len(terms["tap"]) == terms["shown"]
            opened.add((layer["type"], which))
    expected = {
        "happy": {("Conv2D", "dW"), ("Conv2D", "dx"), ("MaxPooling2D", "dx"), ("Dense", "dW")},
        "signs": {("Conv2D", "dW"), ("Conv2D", "dx"), ("MaxPooling2D", "dx"), ("Dense", "dW")},
        "smallres": {("Conv2D", "dW"), ("Conv2D", "dx"), ("MaxPooling2D", "dx"), ("Dense", "dW")},
    }[arch]
    assert expected <= opened


def test_a_channel_picks_the_slice_shown(clients):
    client = clients["happy"]
    summary = start(client)
    sid = summary["session"]
    conv = next(row for row in summary["layers"] if row["type"] == "Conv2D")
    assert conv["channel"] == conv["output_shape"][-1] and conv["in_channel"] == conv["input_shapes"][0][-1]
    answer = small(
        client.get(
            "/api/learn/layer",
            params={"session": sid, "label": summary["label"], "layer": conv["name"], "channel": 5, "in_channel": 2},
        )
    )
    assert answer["maps"]["dW"]["index"] == ["r", "c", 2, 5]
    assert answer["maps"]["output"]["index"] == [0, "r", "c", 5]
    assert answer["maps"]["input"]["index"] == [0, "r", "c", 2]


def test_an_uploaded_photo_opens_a_session(clients):
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.full((40, 30, 3), 128, np.uint8)).save(buffer, format="PNG")
    answer = clients["signs"].post("/api/learn/photo", files={"image": ("me.png", buffer.getvalue(), "image/png")})
    assert answer.status_code == 200, answer.text
    assert answer.json()["session"] and answer.json()["layers"]
    refused = clients["signs"].post("/api/learn/photo", files={"image": ("notes.txt", b"not a photo", "text/plain")})
    assert refused.status_code == 400 and "not an image" in refused.json()["error"]


# ----------------------------------------------------------------------------- step and rewind


@pytest.mark.parametrize("arch", ARCHS)
def test_step_shows_the_update_and_rewind_gives_back_the_starting_numbers(clients, arch):
    client = clients[arch]
    summary = start(client)
    sid, label = summary["session"], summary["label"]
    first = next(row["name"] for row in summary["layers"] if "dW" in row["grads"])
    before = small(client.get("/api/learn/layer", params={"session": sid, "label": label, "layer": first}))
    stepped = small(client.post("/api/learn/step", json={"session": sid, "label": label}))
    assert stepped["steps"] == 1 and stepped["learning_rate"] > 0
    assert stepped["loss_before"] == summary["loss"] and stepped["loss"] != summary["loss"]
    update = small(client.get("/api/learn/update", params={"session": sid, "layer": first}))
    kernel = next(iter(update["weights"].values()))
    assert {"W_old", "dW", "W_new", "m", "v"} <= set(kernel)  # Adam's moments
    assert kernel["W_new"]["values"] != kernel["W_old"]["values"]
    rewound = small(client.post("/api/learn/rewind", json={"session": sid, "label": label}))
    assert rewound["steps"] == 0 and rewound["loss"] == summary["loss"]
    after = small(client.get("/api/learn/layer", params={"session": sid, "label": label, "layer": first}))
    assert after == before


def test_rewind_restores_the_weights_bit_for_bit_and_the_served_model_never_changes(models):
    model = npconv.load_model(models["smallres"])
    saved = [w.value.copy() for w in model.weights]
    learner = Learner(model, 255, ["not smiling", "smiling"])
    photo = (np.random.default_rng(0).random((16, 16, 3)) * 255).astype(np.uint8)
    sid = learner.open(photo)
    start_trace = learner.views(sid, 1).reference
    for _ in range(3):
        learner.step(sid, 1)
    assert any(not np.array_equal(a, b) for a, b in zip(learner.weights_now(sid), learner.start))
    assert all(np.array_equal(w.value, s) for w, s in zip(model.weights, saved))  # the served model
    learner.rewind(sid)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(learner.weights_now(sid), learner.start))
    again = learner.views(sid, 1).reference
    for name in start_trace.names:
        for key, value in start_trace.record(name).weights.items():
            assert again.record(name).weights[key].tobytes() == value.tobytes(), (name, key)
    assert again.loss == start_trace.loss
    assert all(w.value.tobytes() == s.tobytes() for w, s in zip(model.weights, saved))
    assert (
        model.optimizer.get_state()["iterations"]
        == npconv.load_model(models["smallres"]).optimizer.get_state()["iterations"]
    )


def test_each_step_is_adams_update_from_the_sessions_own_moments(models):
    model = npconv.load_model(models["happy"])
    optimizer = model.optimizer
    learner = Learner(model, 255, ["not smiling", "smiling"])
    sid = learner.open((np.random.default_rng(1).random((16, 16, 3)) * 255).astype(np.uint8))
    b1, b2, eps = optimizer.beta_1, optimizer.beta_2, optimizer.epsilon
    first = learner.step(sid, 0)
    assert first["learning_rate"] == optimizer._learning_rate(0)  # the schedule's first rate
    m = v = 0.0
    for t, rate in ((1, first["learning_rate"]), (2, 0.01)):
        if t == 2:
            assert learner.step(sid, 0, learning_rate=0.01)["learning_rate"] == 0.01
        arrays = learner.update(sid, "conv0")["conv0/kernel"]
        g = arrays["dW"].astype(np.float64)
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g**2
        np.testing.assert_allclose(arrays["m"], m, rtol=1e-5, atol=1e-9)
        np.testing.assert_allclose(arrays["v"], v, rtol=1e-5, atol=1e-12)
        alpha = rate * math.sqrt(1 - b2**t) / (1 - b1**t)
        np.testing.assert_allclose(
            arrays["W_new"], arrays["W_old"] - alpha * m / (np.sqrt(v) + eps), rtol=1e-5, atol=1e-7
        )


def test_sessions_are_bounded(models):
    from npconv.serve import learn_sessions

    learner = Learner(npconv.load_model(models["signs"]), 255, ["not smiling", "smiling"])
    photo = np.zeros((16, 16, 3), np.uint8)
    ids = [learner.open(photo) for _ in range(learn_sessions.MAX_SESSIONS + 3)]
    for sid in ids[-learn_sessions.MAX_SESSIONS :]:
        learner.views(sid, 0)
    assert len(learner._sessions) == learn_sessions.MAX_SESSIONS
    assert len(learner._traces) <= learn_sessions.MAX_TRACES
    with pytest.raises(learn_sessions.SessionGone, match="choose the photo again"):
        learner.session(ids[0])


# ----------------------------------------------------------------------------- the learner's kernels


@pytest.fixture(scope="module")
def buggy_learner(tmp_path_factory) -> Path:
    """The test learner's functions with the classic mistake: ``=`` for ``+=`` in ``dW``."""
    text = LEARNER.read_text()
    right = "dW[:, :, :, c] += a_slice"
    assert text.count(right) == 1
    path = tmp_path_factory.mktemp("learner") / "mine.py"
    path.write_text(text.replace(right, "dW[:, :, :, c] = a_slice"))
    return path


def test_the_learners_buggy_kernels_show_their_first_difference_with_the_hint(models, buggy_learner):
    with TestClient(create_app(npconv.load_model(models["happy"]), "happy.npz", kernels=str(buggy_learner))) as client:
        summary = start(client)
        difference = summary["difference"]
        assert summary["kernels"] == str(buggy_learner) and summary["kernels_error"] is None
        assert difference["layer"] == "conv0" and difference["which"] == "dW"
        assert difference["hint"] == mistakes.LAST_ONLY
        params = {"session": summary["session"], "label": summary["label"], "layer": "conv0"}
        mine = small(client.get("/api/learn/layer", params={**params, "kernels": "mine"}))
        ours = small(client.get("/api/learn/layer", params=params))
        assert mine["maps"]["dW"]["values"] != ours["maps"]["dW"]["values"]
        terms = small(
            client.get("/api/learn/terms", params={**params, "which": "dW", "index": "0,0,0,0", "kernels": "mine"})
        )
        assert terms["value"] != pytest.approx(terms["sum"])  # the learner's dW is not the sum of its terms


def test_the_learners_right_kernels_agree(models):
    with TestClient(create_app(npconv.load_model(models["happy"]), "happy.npz", kernels=str(LEARNER))) as client:
        summary = start(client)
        assert summary["difference"] is None and summary["kernels_error"] is None


def test_kernels_come_from_the_command_line_never_from_a_visitor(clients, models, tmp_path, capsys):
    client = clients["happy"]
    summary = start(client)
    answer = client.get("/api/learn/layer", params={"session": summary["session"], "layer": "conv0", "kernels": "mine"})
    assert answer.status_code == 400 and "--kernels" in answer.json()["error"]
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    assert main(["serve", str(models["happy"]), "--kernels", str(empty), "--port", "8123"]) != 0
    assert "does not define conv_forward" in capsys.readouterr().err


# ----------------------------------------------------------------------------- bad requests


def test_bad_requests_get_clear_errors(clients):
    client = clients["happy"]
    summary = start(client)
    sid, label = summary["session"], summary["label"]

    def error(path, status=400, **params):
        answer = client.get(path, params={"session": sid, "label": label, **params})
        assert answer.status_code == status, answer.text
        return answer.json()["error"]

    assert "'conv0', 'bn0'" in error("/api/learn/layer", layer="conv9")  # lists the valid names
    assert "(7, 7, 3, 32)" in error("/api/learn/terms", layer="conv0", which="dW", index="9,0,0,0")  # the shape
    assert "one of 'dout', 'dx'" in error("/api/learn/terms", layer="max_pool0", which="dW", index="0,0,0,0")
    assert "4 integers" in error("/api/learn/terms", layer="conv0", which="dW", index="0,0")
    assert "integers separated by commas" in error("/api/learn/terms", layer="conv0", which="dW", index="a,b")
    assert "from 0 to 31" in error("/api/learn/layer", layer="conv0", channel=40)
    assert "an integer" in error("/api/learn/layer", layer="conv0", channel="x")
    assert "'not smiling', 'smiling'" in error("/api/learn/layer", layer="conv0", label="cat")
    assert "no terms" in error("/api/learn/terms", layer="bn0", which="dgamma", index="0")
    assert "'layer'" in error("/api/learn/layer")
    assert "expired" in error("/api/learn/layer", status=404, session="nope", layer="conv0")
    for body, words in (({"sample": 99}, "from 0 to"), ({"sample": "0"}, "from 0 to")):
        answer = client.post("/api/learn/sample", json=body)
        assert answer.status_code == 400 and words in answer.json()["error"]
    answer = client.post("/api/learn/step", json={"session": sid, "label": label, "learning_rate": -1})
    assert answer.status_code == 400 and "learning_rate" in answer.json()["error"]
    answer = client.post("/api/learn/step", content=b"{not json", headers={"content-type": "application/json"})
    assert answer.status_code == 400 and "JSON" in answer.json()["error"]
    assert client.get("/api/model").status_code == 200  # still serving


# ----------------------------------------------------------------------------- samples


@pytest.mark.data
def test_samples_come_from_the_models_data_set_when_it_is_here(data_dir):
    meta = {"dataset": "signs", "class_names": [str(i) for i in range(6)]}
    source, samples = load_samples(meta, (32, 32, 3), data_dir)
    assert "test_signs.h5" in source and len(samples) == 8
    assert [label for _, label in samples] == [str(i) for i in range(6)] + ["0", "1"]  # one class after another
    assert all(p.shape == (32, 32, 3) and p.dtype == np.uint8 for p, _ in samples)
    happy, labelled = load_samples(
        {"dataset": "happy", "class_names": ["not smiling", "smiling"]}, (64, 64, 3), data_dir
    )
    assert "test_happy.h5" in happy and {label for _, label in labelled} == {"not smiling", "smiling"}


def test_samples_are_generated_and_said_so_without_the_data(tmp_path):
    names = ["not smiling", "smiling"]
    source, samples = load_samples({"dataset": "builtin:smiles", "class_names": names}, (16, 16, 1))
    assert "model's own data set" in source and {label for _, label in samples} <= set(names)
    assert samples[0][0].shape == (16, 16, 1)
    source, samples = load_samples({"dataset": "signs", "class_names": list("012345")}, (16, 16, 3), tmp_path)
    assert "not the model's data" in source and all(label is None for _, label in samples)


# ----------------------------------------------------------------------------- a real browser


@pytest.fixture(scope="module")
def server(models):
    """``npconv serve`` of the tiny Happy House model in a subprocess; its base URL."""
    with npconv_server(models["happy"]) as url:
        yield url


@pytest.mark.slow
def test_the_learn_page_opens_a_gradient_entry_in_a_real_browser(server, tmp_path):
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(server + "/")
        page.click("#learn-link")
        page.wait_for_selector("#samples button")
        page.click("#samples button >> nth=0")
        page.wait_for_function(
            "document.querySelectorAll('.layer').length === 7 && "
            "document.querySelectorAll('.layer canvas').length >= 14"
        )
        page.click("#backward")
        page.wait_for_function("document.querySelectorAll('canvas.opens').length >= 5")
        dW = page.locator(".layer[data-layer=conv0] canvas.opens").first
        dW.click(position={"x": 3, "y": 3})  # the entry dW[0, 0, 0, 0]
        page.wait_for_selector("#terms:not([hidden])")
        title = page.inner_text("#terms-title")  # the filter shown: the liveliest channel
        assert re.fullmatch(r"dW\[0,0,0,\d+\] of conv0", title), title
        text = page.inner_text("#terms-sum")
        assert text.startswith("Σ A_prev_pad · dZ over 256 terms = ") and title.split(" of")[0] + " = " in text
        assert page.locator("#terms tbody tr").count() >= 1
        page.click("#step")
        page.wait_for_selector("#update:not([hidden])")
        page.wait_for_function("document.getElementById('steps').textContent === '1'")
        assert "adam" in page.inner_text("#update-rule")
        # the update's maps arrive by a request of their own, after the step count shows
        page.wait_for_function("document.querySelectorAll('#update-maps canvas').length >= 5")
        page.click("#rewind")
        page.wait_for_function("document.getElementById('steps').textContent === '0'")
        assert page.inner_text("#error") == "" and not errors
        assert len(page.screenshot(path=str(tmp_path / "learn.png"), full_page=True)) > 10_000
