"""Saying "unsure" (issue 30): ``npconv predict``, ``npconv serve``'s API and page, and the Python
API answer "unsure" for random noise and a blank wall, and answer plainly for a picture like the
training ones. Models saved before calibration existed load and predict as before.

The model: the ``tiny`` net trained in a second on horizontal vs vertical stripes (16 x 16 RGB),
calibrated on 60 held-out pictures as ``npconv train`` calibrates every model.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from conftest import require
from PIL import Image

import npconv
from npconv.apps import training
from npconv.apps.recipes import Recipe
from npconv.apps.verdict import classify
from npconv.cli import main
from npconv.data import Dataset

from .running import chromium, npconv_server

try:
    from starlette.testclient import TestClient

    from npconv.serve import create_app
except ImportError:  # the serve extra is missing: the page tests fail under CI, skip elsewhere
    TestClient = None


def stripes(n: int, seed: int) -> Dataset:
    """Soft stripes of period 8 px at a random phase, horizontal (class 0) or vertical (class 1)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    wave = 0.5 + 0.35 * np.sin(2 * np.pi * np.arange(16)[None] / 8 + rng.uniform(0, 2 * np.pi, (n, 1)))
    images = np.where(y[:, None, None] == 0, wave[:, :, None] * np.ones(16), wave[:, None, :] * np.ones((16, 1)))
    images = images + rng.normal(0, 0.02, images.shape)
    x = np.clip(np.rint(np.repeat(images[..., None], 3, axis=-1) * 255), 0, 255).astype(np.uint8)
    return Dataset(x, y.astype(np.int64), ["horizontal", "vertical"])


NOISE = np.random.default_rng(7).integers(0, 256, (16, 16, 3), dtype=np.uint8)
WALLS = {
    "white": np.full((16, 16, 3), 255, np.uint8),
    "grey": np.full((16, 16, 3), 128, np.uint8),
    "beige": np.broadcast_to(np.array([222, 205, 180], np.uint8), (16, 16, 3)).copy(),
}


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    result = training.train(
        stripes(200, 0),
        Recipe(arch="tiny", epochs=10, batch_size=16, learning_rate=1e-2),
        "tiny",
        test=stripes(60, 1),
        verbose=0,
    )
    assert result.evaluation["accuracy"] == 1.0
    path = tmp_path_factory.mktemp("unsure") / "stripes.npz"
    result.model.save(path)
    return path


@pytest.fixture(scope="module")
def photos(tmp_path_factory, model_path):
    folder = tmp_path_factory.mktemp("photos")
    pictures = {"noise": NOISE, **{f"wall_{name}": wall for name, wall in WALLS.items()}, "stripes": stripes(1, 5).x[0]}
    for name, picture in pictures.items():
        Image.fromarray(picture).save(folder / f"{name}.png")
    return folder


def predict_json(capsys, model, *paths):
    assert main(["predict", str(model), *map(str, paths), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    return {entry["path"].rsplit("/", 1)[-1]: entry for entry in (out if isinstance(out, list) else [out])}


def test_the_model_file_holds_its_calibration(model_path):
    calibration = npconv.load_model(model_path).metadata["calibration"]
    assert calibration["temperature"] > 0 and calibration["unsure_below"] == 0.7
    assert {"min_contrast", "max_detail"} <= calibration["pictures"].keys()
    assert calibration["features"]["layer"] == "gap" and calibration["features"]["max_distance"] > 0


def test_predict_says_unsure_for_noise_and_blank_walls_and_not_for_stripes(model_path, photos, capsys):
    answers = predict_json(capsys, model_path, photos)
    for name in ["noise.png", "wall_white.png", "wall_grey.png", "wall_beige.png"]:
        assert answers[name]["verdict"] == "unsure" and answers[name]["why"], name
    assert answers["wall_grey.png"]["why"] == "the picture is almost blank"
    assert answers["stripes.png"]["verdict"] == "sure" and answers["stripes.png"]["class"] == "horizontal"
    assert main(["predict", str(model_path), str(photos / "noise.png"), str(photos / "stripes.png")]) == 0
    noise_line, stripes_line = capsys.readouterr().out.strip().splitlines()
    assert ": unsure (" in noise_line and "best guess" in noise_line
    assert stripes_line.endswith(f": horizontal ({answers['stripes.png']['calibrated_probability']:.2f})")


def test_calibrated_probabilities_sit_beside_the_models_own(model_path, photos, capsys):
    model = npconv.load_model(model_path)
    entry = predict_json(capsys, model_path, photos / "stripes.png")["stripes.png"]
    p = float(model.predict(stripes(1, 5).x[:1].astype(np.float32) / 255)[0, 0])
    assert entry["probabilities"]["vertical"] == pytest.approx(p, rel=1e-6)
    t = model.metadata["calibration"]["temperature"]
    logit = np.log(p / (1 - p))
    assert entry["calibrated_probabilities"]["vertical"] == pytest.approx(1 / (1 + np.exp(-logit / t)), rel=1e-5)


def test_the_python_api_gives_the_same_verdicts(model_path):
    model = npconv.load_model(model_path)
    answers = classify(model, np.stack([NOISE, WALLS["white"], stripes(1, 5).x[0]]))
    assert [a["verdict"] for a in answers] == ["unsure", "unsure", "sure"]


def test_a_model_saved_before_calibration_loads_and_predicts_as_before(model_path, photos, tmp_path, capsys):
    old = npconv.load_model(model_path)
    old.metadata = {k: v for k, v in old.metadata.items() if k != "calibration"}
    old_path = tmp_path / "old.npz"
    old.save(old_path)
    answers = predict_json(capsys, old_path, photos)
    for name, entry in answers.items():
        assert entry["calibrated_probabilities"] == pytest.approx(entry["probabilities"])  # T = 1
        assert entry["verdict"] == ("unsure" if entry["probability"] < 0.7 else "sure"), name


def png(picture: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG")
    return buffer.getvalue()


def test_the_server_answers_unsure_for_noise_and_a_wall(model_path):
    require(TestClient is not None, "the serve extra is not installed (pip install 'npconv[serve]')")
    with TestClient(create_app(npconv.load_model(model_path), model_path.name)) as client:
        for picture, verdict in [(NOISE, "unsure"), (WALLS["white"], "unsure"), (stripes(1, 5).x[0], "sure")]:
            answer = client.post("/api/predict", files={"image": ("p.png", png(picture), "image/png")}).json()
            assert answer["verdict"] == verdict
            assert answer["calibrated_probabilities"].keys() == answer["probabilities"].keys()


@pytest.mark.slow
def test_the_page_says_unsure_plainly_in_a_real_browser(model_path, photos, browser_and_server):
    browser, url = browser_and_server
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.goto(url + "/")
    page.wait_for_selector("#card-fields dd")
    for name in ("noise", "wall_white"):
        page.evaluate("document.getElementById('verdict').textContent = ''")
        page.set_input_files("#file", str(photos / f"{name}.png"))
        page.wait_for_function("document.getElementById('verdict').textContent !== ''")
        assert page.is_visible("#unsure") and page.inner_text("#unsure").startswith("Unsure:")
        assert "(best guess, " in page.inner_text("#verdict")
        top = page.eval_on_selector("#bars .bar.top .fill", "e => getComputedStyle(e).backgroundColor")
        assert top == "rgb(154, 165, 181)"  # grey, not the accent colour
    page.evaluate("document.getElementById('verdict').textContent = ''")
    page.set_input_files("#file", str(photos / "stripes.png"))
    page.wait_for_function("document.getElementById('verdict').textContent !== ''")
    assert page.inner_text("#verdict").startswith("horizontal (") and "guess" not in page.inner_text("#verdict")
    assert not page.is_visible("#unsure")
    page.close()


@pytest.fixture(scope="module")
def browser_and_server(model_path):
    """A real ``npconv serve`` of the stripes model and a headless Chromium."""
    with npconv_server(model_path) as url, chromium() as browser:
        yield browser, url
