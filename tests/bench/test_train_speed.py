"""benchmarks/train_speed.py: the FLOP count of an epoch, and a ``--quick`` run's JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
CLASSES_EXPECTED = ("convolution", "batch norm", "ReLU", "Add", "pooling", "dense", "loss", "optimizer", "other")


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


def test_torch_profile_classes_by_outermost_name(benchmark_modules):
    from epoch_profile import torch_class

    assert torch_class("aten::addmm") == "dense"  # not Add
    assert torch_class("autograd::engine::evaluate_function: ConvolutionBackward0") == "convolution"
    assert torch_class("Optimizer.step#Adam.step") == "optimizer"
    assert torch_class("aten::log_softmax") == "loss"
    assert torch_class("aten::index") is None


@pytest.mark.torch
def test_quick_run_writes_every_figure(tmp_path, torch):
    out = tmp_path / "train_speed.json"
    subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "train_speed.py"),
            "--quick",
            "--models",
            "Happy",
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
        timeout=300,
    )
    result = json.loads(out.read_text())
    assert result["quick"] and result["peak"]["gflops"] > 0 and result["provenance"]["commit"]
    (row,) = result["rows"]
    assert row["model"] == "Happy (course)" and row["images"] == 3 * 16 + 8
    assert set(row["runs"]) == {"numpy", "torch_eager_cl"} and len(row["runs"]["numpy"]) == 1
    assert row["best_fp32"] == "torch_eager_cl" and row["numpy_ratio"] is None  # no eager NCHW run
    assert row["numpy_ratio_best"] == row["ratios"]["numpy"]["torch_eager_cl"] > 0
    assert row["torch"]["torch_eager_cl"]["optimizer"] == "Adam(fused=True)"
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
