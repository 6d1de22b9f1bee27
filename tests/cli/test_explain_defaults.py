"""``npconv explain`` without ``--out``: the pictures go beside the model they explain."""

import numpy as np
from PIL import Image

from npconv.cli import main

QUICK = ["--epochs", "1", "--arch", "tiny", "--image-size", "16", "--quiet"]


def test_explain_without_out_writes_beside_the_model(tmp_path, capsys):
    model = tmp_path / "runs" / "faces.npz"
    assert main(["train", "--out", str(model), *QUICK]) == 0
    face = tmp_path / "face.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 50, 3), np.uint8)).save(face)
    capsys.readouterr()
    assert main(["explain", str(model), str(face)]) == 0
    out = tmp_path / "runs" / "faces_explain"
    assert [p.name for p in out.iterdir()] == ["face.png"]
    assert str(out / "face.png") in capsys.readouterr().out
