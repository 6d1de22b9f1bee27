"""Default training recipes per data set: what ``npconv train`` does when given no options.

Each recipe trains a ``smallres`` within 10 minutes on two CPU cores. Where a figure is quoted, the
command that produces it is ``python benchmarks/accuracy.py --only ROW`` (``benchmarks/results/
accuracy.json`` keeps every run with its date, commit and machine); figures from one-off runs say when
and how they were measured.

How each choice was made (and on what data). The recipes are chosen by ``benchmarks/recipe_cv.py``:
5-fold stratified cross-validation (folds of seed 0) of the training data only, each variant trained
with seeds 0, 1, 2; "errors" below are summed over the folds, so every training image is scored once
per seed (rows ``signs-cv``, ``sld-cv``, ``smiles-cv`` of ``benchmarks/results/accuracy.json``).
Averaging models (``ensemble``) and test-time augmentation are scored from those same models.

* SIGNS, one model, no label smoothing (2026-11-24, ``python benchmarks/recipe_cv.py signs --seeds 3
  --variant default: --variant ls:label_smoothing=0.1``; ``train_signs.h5``, 1,080 images): errors per
  seed without smoothing 6, 14, 11 (0.990), with 8, 8, 11 (0.992); averaging the three seeds' models
  10 and 9 errors, no fewer than one model; shifted views (TTA) 7, 13, 12; weight decay 0.05 (AdamW,
  ``--variant wd0.05:weight_decay=0.05``) 9, 12, 10 (three averaged: 8). A default changes only
  for a gain larger than the spread between seeds (the rule that kept label smoothing out of
  sign-language-digits); smoothing's 1.3 fewer errors in 1,080 is not, but it was adopted for an hour
  first, and its test run is on record: 0.975, 0.975, 1.000 on ``test_signs.h5`` for seeds 0, 1, 2
  (``accuracy.py --only signs`` at commit 60c6869), against 0.992, 0.983, 1.000 without. So the test
  set has been seen while this choice stood; the revert applies the rule above, not those figures.
  Flips off: by the same CV of seed 0 (``npconv train signs --folds 5 --no-flip`` / ``--flip``):
  without 0.994 +- 0.005 (6 errors), with 0.985 +- 0.005 (16 errors). 48 epochs (npconv 0.1's choice,
  first made on the test set) confirmed by that CV: 32 epochs 13 errors, 64 epochs 8 errors after
  three of the five folds (stopped there).
* sign-language-digits, an average of 3 models of widths 24, 48, 96. Widths by ``npconv tune`` (2026-12-02,
  ``npconv tune sign-language-digits --grid widths=16-32-64,24-48-96 --grid ensemble=1 --folds 5
  --seeds 2 --jobs 2 --out runs/tune-sld``; 5 folds of the same 1,414 images, one model per job,
  seeds 0 and 1, 2.2x the multiply-adds per model):

  ==============  ===================  ===============  ======================================
  widths          mean fold accuracy   errors per seed  two seeds' models averaged (errors)
  ==============  ===================  ===============  ======================================
  16, 32, 64      0.9675 +- 0.0111     42, 50           37
  24, 48, 96      0.9774 +- 0.0076     34, 30           28
  ==============  ===================  ===============  ======================================

  Wider is 12 errors fewer per model, beyond the spread between seeds (8 and 4), and it stays ahead
  averaged (the averages scored from the same fold models, as ``recipe_cv.py`` scores them), so it is
  the default; averaging is kept, chosen by the table below and still 2-6 errors fewer here.
  ``npconv train sign-language-digits`` with it: 1.000 (249/249) on its 15% split, the three models
  alone 0.992, 1.000, 0.996 (seed 0; 6m23s on two idle cores, against 3m31s for three narrow ones).
  Earlier (2026-11-24, ``recipe_cv.py sld --seeds 3``; the
  1,414 images of the recipe's training part, its 15% held-out split never read): one model made 42,
  51, 42 errors (0.968); the average of two 34, of three 33 (0.977). Tried one at a time, one model
  each: label smoothing 0.1: 42, 44, 39 (averaged: 33, no better); zoom 0.1 + contrast 0.2: 43, 42,
  44 (averaged: 34); weight decay 5e-4 (AdamW): 42, 51 for seeds 0 and 1, nothing changed (lr * decay
  = 1e-6 per step is too weak to matter); weight decay 0.05: 43, 45 for seeds 0 and 1 (two averaged
  38, against 34 without); 80 px instead of 64: 47 for seed 0 (1.6x the time); shifted views: 35,
  43, 38 (averaged models with shifts: 30). Three models take 3x the time of one (row ``sld``: 279 s
  of one core per run for all three). 24 epochs and flips on: chosen on the 15% split in npconv 0.1
  (0.988 with flips, 0.984 without; 36 epochs no better).
* smiles (SMILEsmileD), 64 px grayscale, widths 24, 48, 96. Widths by ``npconv tune`` (2026-12-02,
  ``npconv tune smiles --grid widths=16-32-64,24-48-96 --folds 3 --seeds 2 --jobs 2 --out
  runs/tune-smiles``; 3 folds of the 8,939 training images, seeds 0 and 1):

  ==============  ===================  ===============  ======================================  ============
  widths          mean fold accuracy   errors per seed  two seeds' models averaged (errors)     s per job
  ==============  ===================  ===============  ======================================  ============
  16, 32, 64      0.9287 +- 0.0030     633, 642         601                                     220-275
  24, 48, 96      0.9330 +- 0.0028     610, 588         573                                     376-438
  ==============  ===================  ===============  ======================================  ============

  Wider is 39 errors fewer per model (6%), beyond the spread between seeds (9 and 22), for 1.7x the
  time, so it is the default. It does not buy the 0.945 target: on the held-out split, seed 0 scored
  0.937 (1478/1577) in 6m23s on two idle cores, as the narrow model of seed 0 did; the Happy House
  figures from it are unchanged (zero-shot 0.440, fine-tuned 5-fold 0.947 +- 0.027, ``npconv train
  test_happy.h5 --init`` it ``--folds 5 --jobs 2``, 1m43s). The 64 px choice: the Happy House pictures are people at a distance, faces a
  quarter of the picture's height; at 32 px a fine-tuned model sees them 8 px tall. Chosen by 5-fold
  cross-validation of the *fine-tuned* Happy House model (below): started from a 64 px smile model,
  0.953 +- 0.040; from the 32 px one (12 epochs, the 0.1 default), 0.927 +- 0.033. On its own 15%
  held-out split the 64 px model (6 epochs) matched the 32 px one (12 epochs): 0.933 both
  (2026-11-24, one seed, a loaded machine); 12 epochs at 64 px: 0.937 (row ``smiles``). One model,
  by ``recipe_cv.py smiles --seeds 3 --folds 3`` (2026-11-24; the 8,939 images of the training part):
  one model 642, 643, 658 errors (0.928); two averaged 604, three 603; shifted views 598, 622, 644;
  mirrored 632, 611, 640; two averaged with shifted views 584. Averaging is beyond the seed spread
  here, but not enough for 0.945 on the split (0.936 over seeds 0-2 would become about 0.94) and two
  models double a 4.5-minute training, so the default stays one model (``--ensemble 2``, ``--tta
  shift`` for the last half point).
* happy (the course's files; also ``npconv train test_happy.h5 --folds 5``): 60 epochs of batch 16,
  chosen by 5-fold cross-validation on ``test_happy.h5`` (the only Happy House data here): 0.927 +-
  0.039, against 0.68-0.72 for npconv 0.1's 16 epochs of batch 32 (too few steps on 120 pictures);
  adding zoom 0.1, contrast 0.2 and weight decay 5e-4 gave 0.913 +- 0.027 (2026-11-24, seed 0).
* fine-tune (``--init``): batch 16, 60 epochs, learning rate 2e-3, by the same 5-fold cross-validation
  of ``npconv train test_happy.h5 --init smiles.npz`` (2026-11-24, seed 0, from the 6-epoch 64 px
  smile model; with the default 12-epoch one, row ``happy-init-cv``: 0.947 +- 0.027): 2e-3: 0.953
  +- 0.040; 1e-3: 0.947 +- 0.027; 5e-4: 0.920 +- 0.054; 12 epochs at 5e-4 (too few steps): 0.760.
  Five epochs of the output layer alone first (``frozen_epochs=5``, then every layer for 55): 0.953 +-
  0.034, the same mean with a smaller spread, so it is the default.

Flips: horizontal flips are on for faces (a mirrored face smiles as much) and for
sign-language-digits, and off for SIGNS: every SIGNS photo shows the same hand from the same side
(and cross-validation prefers them off, above).
Vertical flips and large rotations are off: upside-down hands and faces do not occur here.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass


FINE_TUNE = "fine-tune"
#: The recipe fields that make a learner's kind of photo part of training (issue 30), passed to the
#: arch as they are (``smallres``'s options of the same names).
PHOTO_OPTIONS = ("zoom_out", "rotation", "white_balance", "brightness", "grayscale", "blur", "noise",
                 "standardize")


@dataclass(frozen=True)
class Recipe:
    """How to train on one data set (every field can be overridden from the command line)."""

    arch: str = "smallres"
    epochs: int = 20
    batch_size: int = 32
    learning_rate: float = 2e-3      # Adam's initial rate, decayed to 0 along a cosine
    image_size: int = 64             # images are resized to image_size x image_size
    color_mode: str = "rgb"          # "rgb" or "grayscale"
    flip: bool = True                # random horizontal flips while training
    translate: float = 0.1           # random shifts up to this fraction of the size
    val_split: float = 0.15          # held-out fraction when there is no separate test file
    widths: tuple | None = None      # channels of each smallres stage (None: the arch's default)
    frozen_epochs: int = 0           # with --init: epochs training only the output layer, first
    weight_decay: float = 0.0        # decoupled weight decay (AdamW) when > 0
    label_smoothing: float = 0.0     # targets y * (1 - s) + s / K when > 0
    zoom: float = 0.0                # random zoom in/out up to this fraction (RandomZoom)
    contrast: float = 0.0            # random contrast factor in [1 - c, 1 + c] (RandomContrast)
    zoom_out: float = 0.0            # half the images shrunk to [1 - zoom_out, 1] of the frame (RandomReframe)
    rotation: float = 0.0            # with zoom_out: and rotated by up to this many degrees
    white_balance: float = 0.0       # per-channel gains in [1 - w, 1 + w] (RandomWhiteBalance)
    brightness: float = 0.0          # with white_balance: exposure gain in [1 - b, 1 + b]
    grayscale: float = 0.0           # probability of a grey copy (RandomGrayscale)
    blur: float = 0.0                # Gaussian blur up to this many pixels (RandomGaussianBlur)
    noise: float = 0.0               # Gaussian noise up to this standard deviation (GaussianNoise)
    standardize: bool = False        # each image to mean 0, std 1 inside the model (PerImageStandardization)
    tta: str | None = None           # test-time augmentation of the held-out evaluation: flip, shift, flip+shift
    ensemble: int = 1                # N models (seeds N * seed + k) averaged into one (apps.ensemble)

    def replace(self, **changes) -> "Recipe":
        """A copy with the fields in ``changes`` set (``None`` values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def arch_options(self) -> dict:
        """The options for archs that take them (``smallres``): augmentation, and widths when set."""
        options = {"flip": self.flip, "translate": self.translate, "zoom": self.zoom,
                   "contrast": self.contrast, **{name: getattr(self, name) for name in PHOTO_OPTIONS}}
        if self.widths:
            options["widths"] = tuple(self.widths)
        return options


#: name -> recipe. Sizes: SIGNS 1080 train + 120 test at 64 px; sign-language-digits 1,663 photos
#: (100 px, resized to 64); smiles 10,516 grayscale faces (64 px); Happy House 600 train + 150 test;
#: the built-in synthetic faces, 600.
RECIPES: dict[str, Recipe] = {
    "signs": Recipe(epochs=48, batch_size=32, learning_rate=2e-3, image_size=64, flip=False),
    "sign-language-digits": Recipe(epochs=24, batch_size=32, learning_rate=2e-3, image_size=64, ensemble=3,
                                   widths=(24, 48, 96)),
    "smiles": Recipe(epochs=12, batch_size=64, learning_rate=2e-3, image_size=64, color_mode="grayscale",
                     widths=(24, 48, 96)),
    "happy": Recipe(epochs=60, batch_size=16, learning_rate=2e-3, image_size=64),
    # 30 epochs: 6 left the smile unlearned (0.51 validation); 30 reach 0.956 (86/90) in under 4 minutes.
    "builtin:smiles": Recipe(epochs=30, batch_size=32, learning_rate=3e-3, image_size=32),
    "default": Recipe(),
    # Fine-tuning a pretrained model (npconv train DATA --init MODEL): its arch, size and colour mode.
    FINE_TUNE: Recipe(epochs=60, batch_size=16, learning_rate=2e-3, frozen_epochs=5),
}


def recipe_for(name: str | None) -> Recipe:
    """The recipe of data set ``name`` (see :data:`RECIPES`), or the ``"default"`` one."""
    return RECIPES.get(name or "default", RECIPES["default"])
