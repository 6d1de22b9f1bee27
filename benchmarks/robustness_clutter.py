"""What a SIGNS model's miss on the cluttered background comes from: the cut, or what is behind it.

The 120 pictures of ``test_signs.h5`` with their wall (:func:`npconv.data.corruptions.wall_mask`)
replaced by ever busier backgrounds: a flat wall of the picture's own wall colour (the cut alone,
its shading and the hand's shadow gone), flat light and mid grey, the Happy House scene crop's mean
colour, that crop blurred (Gaussian, radius 6 px), and the crop itself (the benchmark's
"cluttered background" set, seed 0). A model that holds up on the first but not on the last reads
the background, not the cut.

Run: ``NPCONV_DATA=/path/to/datasets python benchmarks/robustness_clutter.py MODEL.npz [MODEL.npz ...]``
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from PIL import Image, ImageFilter

import npconv as nc
from npconv.apps import datasets
from npconv.apps.heads import probabilities
from npconv.data import find_file
from npconv.data.corruptions import background_colour, scene_crops, wall_mask


def backgrounds(x: np.ndarray, scenes: np.ndarray) -> dict[str, np.ndarray]:
    """``{name: (m, n_H, n_W, 3) uint8}``: the backgrounds put where each picture's wall was."""
    crops = scene_crops(scenes, len(x), x.shape[1:3], seed=0)
    blurred = np.stack([np.asarray(Image.fromarray(c).filter(ImageFilter.GaussianBlur(6))) for c in crops])
    return {
        "its own wall colour, flat": np.stack([np.full_like(im, background_colour(im)) for im in x]),
        "light grey (235), flat": np.full_like(x, 235),
        "mid grey (128), flat": np.full_like(x, 128),
        "the scene crop's mean colour": np.broadcast_to(crops.mean(axis=(1, 2), keepdims=True).round(), x.shape),
        "the scene crop, blurred 6 px": blurred,
        "the scene crop (cluttered background)": crops,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--data-dir")
    args = parser.parse_args(argv)
    test = datasets.load_for_input(str(find_file("test_signs.h5", args.data_dir)), (64, 64, 3))
    scenes = datasets.load_for_input(str(find_file("test_happy.h5", args.data_dir)), (64, 64, 3)).x
    walls = np.stack([wall_mask(image) for image in test.x])[..., None]
    sets = {"as they are": test.x}
    sets.update(
        {name: np.where(walls, bg, test.x).astype(np.uint8) for name, bg in backgrounds(test.x, scenes).items()}
    )
    print("| wall replaced by | " + " | ".join(f"`{m}`" for m in args.models) + " |")
    print("|" + "---|" * (len(args.models) + 1))
    models = [nc.load_model(path) for path in args.models]
    for name, x in sets.items():
        accuracy = [
            np.mean(probabilities(m.predict(datasets.to_float(x), batch_size=256)).argmax(1) == test.y) for m in models
        ]
        print(f"| {name} | " + " | ".join(f"{a:.3f}" for a in accuracy) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
