"""benchmarks/train_speed.py: the FLOP count of an epoch, and a ``--quick`` run's JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
CLASSES_EXPECTED = (
    "convolution",
    "batch norm",
    "ReLU",
    "Add",
    "pooling",
    "dense",
    "loss",
    "optimizer",
    "augmentation",
    "other",
)


@pytest.fixture
def benchmark_modules(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))


def test_epoch_flops_counts_products_by_hand(benchmark_modules):
    import epoch_work

    import npconv as nc
    from npconv import layers as L

    model = nc.Sequential([L.Input((5, 5, 1)), L.Conv2D(2, 3, padding="same"), L.ReLU(), L.Flatten(), L.Dense(3)])
    counted = epoch_work.epoch_flops(model, images=4)
    # conv: 5*5 outputs * 2 filters * 3*3*1 = 450 MACs, forward + weight gradient only (first layer);
    # dense: 50 * 3 = 150 MACs, forward and both gradients; 2 FLOPs per MAC, 4 images
    assert [(r["kind"], r["macs_per_image"], r["products"]) for r in counted["layers"]] == [
        ("convolution", 450, 2),
        ("dense", 150, 3),
    ]
    assert counted["flops"] == (2 * 450 * 2 + 2 * 150 * 3) * 4
    assert counted["flops_x3"] == 2 * (450 + 150) * 3 * 4


def test_epoch_flops_counts_a_convolution_fused_with_its_max_pool(benchmark_modules):
    import epoch_work

    import npconv as nc
    from npconv import layers as L

    model = nc.Sequential([L.Input((8, 8, 1)), L.Conv2D(2, 3, padding="same"), L.MaxPooling2D(4), L.Flatten()])
    assert type(model._steps[0].layer).__name__ == "ConvMaxPool"
    counted = epoch_work.epoch_flops(model, images=1)
    assert [(r["kind"], r["macs_per_image"], r["products"]) for r in counted["layers"]] == [
        ("convolution", 8 * 8 * 2 * 3 * 3, 2)
    ]


def test_torch_profile_classes_by_outermost_name(benchmark_modules):
    from epoch_profile import torch_class

    assert torch_class("aten::addmm") == "dense"  # not Add
    assert torch_class("autograd::engine::evaluate_function: ConvolutionBackward0") == "convolution"
    assert torch_class("Optimizer.step#Adam.step") == "optimizer"
    assert torch_class("aten::log_softmax") == "loss"
    assert torch_class("aten::index") is None
    assert torch_class("npconv_augmentation_layers") == torch_class("per_image_standardization") == "augmentation"


@pytest.mark.torch
def test_torch_twin_standardisation_is_profiled_as_augmentation(benchmark_modules, torch):
    import torch_twins
    from epoch_profile import torch_class
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        torch_twins.PerImageStandardization()(torch.ones(2, 3, 4, 4))
    assert torch_class(torch_twins.STANDARDIZATION_MARK) == "augmentation"
    assert torch_twins.STANDARDIZATION_MARK in {event.name for event in prof.events()}


def test_npconv_profile_counts_augmentation_and_standardisation_as_augmentation(benchmark_modules):
    from epoch_profile import _npconv_class

    from npconv import layers as L

    assert _npconv_class(L.RandomFlip()) == _npconv_class(L.RandomReframe(0.45, 20)) == "augmentation"
    assert _npconv_class(L.PerImageStandardization()) == "augmentation"
    assert _npconv_class(L.Dropout(0.3)) == "other"


def test_npconv_profile_times_every_fused_step_by_its_parts(benchmark_modules):
    """Each step the training plan runs is timed under its ops' classes: the batch norm + ReLU +
    max pool step (smallres's stem) was once left to "other", a sixth of the epoch."""
    from epoch_profile import _npconv_methods

    from npconv.apps import convolutional_model, happyModel
    from npconv.apps.residual import smallres
    from npconv.engine.plan import AddMaxPoolReLU, BatchNormReLUMaxPool, ConvBatchStatistics, ConvMaxPool

    fused = set()
    for model in (smallres((64, 64, 3), 6), happyModel(), convolutional_model((64, 64, 3))):
        model.compile(optimizer="adam", loss="binary_crossentropy")
        for step in model._steps:
            fused |= {type(step.layer), type(getattr(step.layer, "norm_step", None))}
            methods = _npconv_methods(step.layer)
            for owner, name, cls in methods:
                assert callable(getattr(owner, name))
                assert cls != "other" or type(step.layer).__name__ in ("Dropout", "Flatten", "ZeroPadding2D")
    assert {AddMaxPoolReLU, BatchNormReLUMaxPool, ConvBatchStatistics, ConvMaxPool} <= fused


def test_signs_command_row_trains_the_model_npconv_train_signs_builds(benchmark_modules):
    """The row's npconv model is the command's: its recipe's augmentation, standardisation first,
    Adam at the recipe's rate along a cosine, the recipe's batch size; fed floats in [0, 1]."""
    import numpy as np
    import train_speed
    import train_speed_workers as workers

    from npconv.apps import RECIPES, fitting

    recipe = RECIPES["signs"]
    assert train_speed.CASES[workers.SIGNS_COMMAND] == (1080, recipe.batch_size, 6)
    x = np.zeros((40, *workers.signs_command_shape()), np.float32)
    model, _, _ = workers._npconv_model(workers.SIGNS_COMMAND, x, np.zeros(40, int), recipe.batch_size)
    built = fitting.build(recipe.arch, x.shape[1:], workers.SIGNS_CLASSES, recipe)
    assert [type(layer) for layer in model.layers] == [type(layer) for layer in built.layers]
    assert [type(layer).__name__ for layer in model.layers][1:9] == [
        "RandomFlip",
        "RandomTranslation",
        "RandomReframe",
        "RandomWhiteBalance",
        "RandomGrayscale",
        "RandomGaussianBlur",
        "GaussianNoise",
        "PerImageStandardization",
    ]
    assert type(model.optimizer).__name__ == "Adam"
    assert model.optimizer.learning_rate == pytest.approx(recipe.learning_rate)  # the cosine's first step


def quick_run(tmp_path, models: str, timeout: int) -> dict:
    """The results of ``train_speed.py --quick`` for ``models``: the NumPy tier against eager
    channels_last PyTorch."""
    out = tmp_path / "train_speed.json"
    subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "train_speed.py"),
            "--quick",
            "--models",
            models,
            "--tiers",
            "numpy",
            "--torch",
            "torch_eager_cl",
            "--json",
            str(out),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return json.loads(out.read_text())


@pytest.mark.torch
def test_quick_run_writes_every_figure(tmp_path, torch):
    result = quick_run(tmp_path, "Happy", timeout=300)
    assert result["quick"] and result["peak"]["gflops"] > 0 and result["provenance"]["commit"]
    (row,) = result["rows"]
    assert row["model"] == "Happy (course)" and row["images"] == 3 * 16 + 8
    assert set(row["runs"]) == {"numpy", "torch_eager_cl"} and len(row["runs"]["numpy"]) == 1
    assert row["best_fp32"] == "torch_eager_cl" and row["numpy_ratio"] is None  # no eager NCHW run
    assert row["numpy_ratio_best"] == row["ratios"]["numpy"]["torch_eager_cl"] > 0
    assert row["torch"]["torch_eager_cl"]["optimizer"] == "Adam(fused=True)"
    # PyTorch's process keeps its freed memory as npconv's does (on Linux, unless MALLOC_* is set)
    keeps = sys.platform.startswith("linux") and not any(name.startswith("MALLOC_") for name in os.environ)
    assert row["torch"]["torch_eager_cl"]["keeps_freed_memory"] is keeps
    # Happy: a 7x7x3 conv to 64x64x32 (first layer: no input gradient), a dense 32768 -> 1
    assert row["flop_count"]["flops"] == (2 * 64 * 64 * 32 * 49 * 3 * 2 + 2 * 32768 * 3) * row["images"]
    assert 0 < row["of_peak"]["numpy"] == pytest.approx(row["gflops"]["numpy"] / result["peak"]["gflops"])
    for name in ("numpy", "torch_eager_cl"):
        profile = row["profile"][name]
        assert list(profile["seconds"]) == list(CLASSES_EXPECTED)
        assert sum(profile["seconds"].values()) == pytest.approx(profile["wall_s"])
        assert profile["seconds"]["convolution"] > 0
    assert {c["target"].split(" <=")[0] for c in result["target_checks"]} >= {"npconv / fastest PyTorch fp32"}
    assert all(isinstance(c["met"], bool) for c in result["target_checks"])


@pytest.mark.torch
@pytest.mark.slow
def test_quick_run_of_the_signs_command_row(tmp_path, torch):
    """PyTorch's side runs npconv's augmentation layers of the command's model on every batch, and
    both profiles count that work as augmentation."""
    result = quick_run(tmp_path, "train signs", timeout=600)
    from npconv.apps import RECIPES
    from npconv.apps.recipe_files import recipe_json

    (row,) = result["rows"]
    assert row["model"] == "smallres (npconv train signs: photo augmentation)" and row["batch"] == 32
    assert row["recipe"] == json.loads(json.dumps(recipe_json(RECIPES["signs"])))
    assert "torchvision is not a dependency" in row["note"]
    assert row["torch"]["torch_eager_cl"]["augmentation"] == row["augmentation"]
    assert "RandomReframe" in row["augmentation"] and row["numpy_ratio_best"] > 0
    for name in ("numpy", "torch_eager_cl"):
        assert row["profile"][name]["seconds"]["augmentation"] > 0
