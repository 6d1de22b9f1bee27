"""benchmarks/robustness.py's PyTorch twin (robustness_torch.py) and its Markdown tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
ROBUST = {"flip": True, "epochs": 144, "zoom_out": 0.45, "rotation": 20, "white_balance": 0.3, "grayscale": 0.3}


@pytest.fixture
def benchmark_modules(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))


@pytest.fixture
def torch32(torch):
    """PyTorch with float32 by default, as the benchmark runs it (the shared fixture sets float64)."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    yield torch
    torch.set_default_dtype(before)


@pytest.mark.torch
def test_the_twins_standardisation_is_npconvs(benchmark_modules, torch):
    import torch_twins

    from npconv.functional.standardize import standardize_forward

    x = np.random.default_rng(0).random((3, 5, 4, 3))
    x[1] = 0.25  # a blank picture: the 1 / sqrt(N) floor
    expected, _ = standardize_forward(x)
    got = torch_twins.PerImageStandardization()(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    np.testing.assert_allclose(got.transpose(0, 2, 3, 1), expected, atol=1e-12)


@pytest.mark.torch
def test_the_twin_augments_with_npconvs_layers_of_the_recipe(benchmark_modules, torch32, tmp_path):
    import robustness_torch

    path = tmp_path / "robust.json"
    path.write_text(json.dumps({**ROBUST, "standardize": True}))
    name, recipe = robustness_torch.recipe_of(str(path))
    assert name == "recipe robust.json" and recipe.epochs == 144 and recipe.translate == 0.1  # SIGNS's
    augment, names = robustness_torch.torch_twins.npconv_augmentation(recipe, (16, 16, 3), ["0", "1"])
    # the file's fields on top of npconv train signs's recipe, whose blur and noise stay
    assert names == [
        "RandomFlip",
        "RandomTranslation",
        "RandomReframe",
        "RandomWhiteBalance",
        "RandomGrayscale",
        "RandomGaussianBlur",
        "GaussianNoise",
    ]
    x = np.random.default_rng(0).random((4, 16, 16, 3)).astype(np.float32)
    assert augment(x, None).shape == x.shape and not np.array_equal(augment(x, None), x)
    net = robustness_torch.torch_twins.recipe_net(recipe, (16, 16, 3), 6)
    assert isinstance(net[0], robustness_torch.torch_twins.PerImageStandardization)
    assert net(torch32.zeros(2, 3, 16, 16)).shape == (2, 6)


@pytest.mark.torch
def test_a_recipe_the_twin_cannot_reproduce_is_refused(benchmark_modules, torch, tmp_path):
    import robustness_torch

    path = tmp_path / "ensemble.json"
    path.write_text(json.dumps({"ensemble": 3}))
    with pytest.raises(SystemExit, match="ensemble"):
        robustness_torch.recipe_of(str(path))


def test_markdown_puts_the_models_accuracy_side_by_side(benchmark_modules):
    import robustness

    def rows(clean, noise_unsure):
        return [
            {"set": "as they are", "kind": "clean", "n": 120, "accuracy": clean, "top_p": 0.9, "ece": 0.1},
            {"set": "random noise", "kind": "unknown", "n": 60, "top_p": 0.8, "unsure": noise_unsure},
        ]

    npconv_model = {"model": {"file": "m.npz"}, "rows": rows(0.99, 1.0)}
    twin = {"model": {"recipe_fields": {}, "epochs": 48, "train_images": 1080, "wall_s": 70.0}, "rows": rows(0.98, 0)}
    text = robustness.markdown([{"models": {"signs": npconv_model}}, {"models": {"signs, PyTorch twin": twin}}])
    assert "signs model `m.npz`:" in text
    assert "signs, PyTorch twin: recipe `{}`, 48 epochs on 1080 pictures in 70 s:" in text
    assert "| pictures | signs | signs, PyTorch twin |" in text
    assert "| as they are | 0.990 | 0.980 |" in text
    assert "| random noise | unsure 1.00 | unsure 0.00 |" in text


@pytest.mark.slow
@pytest.mark.torch
@pytest.mark.data
def test_a_quick_twin_run_writes_every_set(benchmark_modules, torch32, data_dir, tmp_path):
    import robustness

    out = tmp_path / "twin.json"
    argv = ["--no-signs", "--torch-recipe", "default", "--quick", "--data-dir", str(data_dir), "--out", str(out)]
    assert robustness.main(argv) == 0
    (entry,) = json.loads(out.read_text())["models"].values()
    sets = [row["set"] for row in entry["rows"]]
    assert sets[:2] == ["as they are", "grayscale"] and "cluttered background" in sets
    assert sets[-1] == "all changed pooled" and entry["model"]["epochs"] == 1
