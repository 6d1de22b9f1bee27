"""The PyTorch twin of ``npconv train signs`` for ``robustness.py``: the same net, trained the same way.

``train_twin("default" or RECIPE.json, ...)`` trains ``torch_twins.smallres`` (npconv's ``smallres``
without its augmentation layers: the same layers, initialisers, batch-norm momentum and epsilon,
dropout), with ``torch_twins.PerImageStandardization`` as its first op when the recipe has
``standardize``, on ``train_signs.h5``, with the recipe:

* the same augmentation: each batch goes through npconv's own augmentation layers, those that
  ``npconv train signs --recipe FILE`` puts in its model (``npconv.apps.fitting.build``), in
  training mode: the same kernels (``npconv.data.augment``), parameters and order, one draw per image
  from npconv's generator (seeded with the twin's seed);
* the same optimiser and schedule: ``accuracy.torch_fit_logits`` (Adam with Keras's epsilon 1e-7,
  the recipe's rate decayed to 0 along a per-step cosine, the recipe's epochs and batch size,
  shuffled each epoch, the last batch partial), as ``benchmarks/accuracy.py``'s twins.

Recipe fields the twin does not reproduce (an ensemble, weight decay, label smoothing, test-time
augmentation) are refused. Imported by ``robustness.py --torch-recipe`` only: PyTorch stays a
benchmark dependency.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import torch_twins
from accuracy import torch_fit_logits

import npconv as nc
from npconv.apps import RECIPES, datasets
from npconv.apps.recipe_files import read_recipe, recipe_json
from npconv.data import find_file

#: ``--quick``: the twin trains 1 epoch on this many pictures (a smoke test).
QUICK_IMAGES = 64
#: Recipe fields the twin does not reproduce, with the value it needs.
NOT_REPRODUCED = {"ensemble": 1, "weight_decay": 0.0, "label_smoothing": 0.0, "tta": None, "arch": "smallres"}


def recipe_of(spec: str):
    """``(name, recipe)``: ``"default"`` is ``npconv train signs``'s recipe; a file's fields go on top
    of it, as ``npconv train signs --recipe FILE`` reads them."""
    if spec == "default":
        return "default recipe", RECIPES["signs"]
    recipe = read_recipe(spec, base=RECIPES["signs"])
    for field, needed in NOT_REPRODUCED.items():
        if getattr(recipe, field) != needed:
            raise SystemExit(f"--torch-recipe {spec}: the PyTorch twin needs {field} = {needed!r}")
    return f"recipe {Path(spec).name}", recipe


def train_twin(spec: str, input_shape, args):
    """Train the twin with recipe ``spec``; ``(summary, predict)``, ``predict(uint8 NHWC) -> (m, K)``
    float64 softmax probabilities."""
    name, recipe = recipe_of(spec)
    train = datasets.load_for_input(str(find_file("train_signs.h5", args.data_dir)), tuple(input_shape))
    x, y = train.x, train.y
    epochs = recipe.epochs
    if args.quick:
        keep = np.random.default_rng(0).permutation(len(x))[:QUICK_IMAGES]
        x, y, epochs = x[keep], y[keep], 1
    torch.set_num_threads(args.torch_threads)
    torch.manual_seed(args.torch_seed)
    nc.utils.set_random_seed(args.torch_seed)  # the generator npconv's augmentation layers draw from
    augmentation, augmenters = torch_twins.npconv_augmentation(recipe, input_shape, train.class_names)
    net = torch_twins.recipe_net(recipe, tuple(input_shape), len(train.class_names))
    print(f"\ntraining the PyTorch twin ({name}: {epochs} epochs on {len(x)} pictures) ...", flush=True)
    wall, cpu = time.perf_counter(), time.process_time()
    torch_fit_logits(
        net, x, y, x[:1], epochs, recipe.batch_size, recipe.learning_rate, args.torch_seed, True, augmentation
    )
    summary = {
        "framework": f"pytorch {torch.__version__}",
        "recipe_name": name,
        "recipe_fields": changed_fields(recipe),
        "recipe": recipe_json(recipe),
        "augmentation": augmenters,
        "standardize_first": recipe.standardize,
        "seed": args.torch_seed,
        "epochs": epochs,
        "train_images": int(len(x)),
        "threads": args.torch_threads,
        "wall_s": time.perf_counter() - wall,
        "cpu_s": time.process_time() - cpu,
    }

    def predict(x_uint8: np.ndarray) -> np.ndarray:
        net.eval()
        out = []
        with torch.no_grad():
            for start in range(0, len(x_uint8), 256):
                xb = datasets.to_float(x_uint8[start : start + 256]).transpose(0, 3, 1, 2)
                out.append(torch.softmax(net(torch.from_numpy(np.ascontiguousarray(xb))).double(), dim=1).numpy())
        return np.concatenate(out)

    return summary, predict


def changed_fields(recipe) -> dict:
    """The recipe's fields that differ from ``npconv train signs``'s."""
    base, fields = recipe_json(RECIPES["signs"]), recipe_json(recipe)
    return {k: v for k, v in fields.items() if v != base[k]}
