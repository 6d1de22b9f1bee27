"""Default training recipes per data set: what ``npconv train`` does when given no options.

Each recipe trains a ``smallres`` within 10 minutes on two CPU cores. The choices were made by
cross-validation of the training data only (``benchmarks/recipe_cv.py``, ``npconv tune``), and a
default changes only for a gain larger than the spread between seeds; the experiments behind each
choice, with their figures, are in ``docs/benchmarks/recipes.md``.

Flips: horizontal flips are on for faces (a mirrored face smiles as much), for
sign-language-digits, and for SIGNS: a learner's left hand counts fingers like the right one that
every SIGNS photo shows.
Vertical flips and large rotations are off: upside-down hands and faces do not occur here.

SIGNS trains on a learner's kind of photo (issue 30): grey, tinted, blurred, noisy, further away and
tilted copies, each image standardised inside the model. Without them the model reads the test
pictures in grey at chance; with them it gives up some clean accuracy, measured by cross-validation
in ``docs/benchmarks/robustness.md``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

FINE_TUNE = "fine-tune"
#: The recipe fields that make a learner's kind of photo part of training (issue 30), passed to the
#: arch as they are (``smallres``'s options of the same names).
PHOTO_OPTIONS = ("zoom_out", "rotation", "white_balance", "brightness", "grayscale", "blur", "noise", "standardize")


@dataclass(frozen=True)
class Recipe:
    """How to train on one data set (every field can be overridden from the command line)."""

    arch: str = "smallres"
    epochs: int = 20
    batch_size: int = 32
    learning_rate: float = 2e-3  # Adam's initial rate, decayed to 0 along a cosine
    image_size: int = 64  # images are resized to image_size x image_size
    color_mode: str = "rgb"  # "rgb" or "grayscale"
    flip: bool = True  # random horizontal flips while training
    translate: float = 0.1  # random shifts up to this fraction of the size
    val_split: float = 0.15  # held-out fraction when there is no separate test file
    widths: tuple | None = None  # channels of each smallres stage (None: the arch's default)
    frozen_epochs: int = 0  # with --init: epochs training only the output layer, first
    weight_decay: float = 0.0  # decoupled weight decay (AdamW) when > 0
    label_smoothing: float = 0.0  # targets y * (1 - s) + s / K when > 0
    zoom: float = 0.0  # random zoom in/out up to this fraction (RandomZoom)
    contrast: float = 0.0  # random contrast factor in [1 - c, 1 + c] (RandomContrast)
    zoom_out: float = 0.0  # half the images shrunk to [1 - zoom_out, 1] of the frame (RandomReframe)
    rotation: float = 0.0  # with zoom_out: and rotated by up to this many degrees
    white_balance: float = 0.0  # per-channel gains in [1 - w, 1 + w] (RandomWhiteBalance)
    brightness: float = 0.0  # with white_balance: exposure gain in [1 - b, 1 + b]
    grayscale: float = 0.0  # probability of a grey copy (RandomGrayscale)
    blur: float = 0.0  # Gaussian blur up to this many pixels (RandomGaussianBlur)
    noise: float = 0.0  # Gaussian noise up to this standard deviation (GaussianNoise)
    standardize: bool = False  # each image to mean 0, std 1 inside the model (PerImageStandardization)
    tta: str | None = None  # test-time augmentation of the held-out evaluation: flip, shift, flip+shift
    ensemble: int = 1  # N models (seeds N * seed + k) averaged into one (apps.ensemble)

    def replace(self, **changes) -> Recipe:
        """A copy with the fields in ``changes`` set (``None`` values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def arch_options(self) -> dict:
        """The options for archs that take them (``smallres``): augmentation, and widths when set."""
        options = {
            "flip": self.flip,
            "translate": self.translate,
            "zoom": self.zoom,
            "contrast": self.contrast,
            **{name: getattr(self, name) for name in PHOTO_OPTIONS},
        }
        if self.widths:
            options["widths"] = tuple(self.widths)
        return options


#: name -> recipe. Sizes: SIGNS 1080 train + 120 test at 64 px; sign-language-digits 1,663 photos
#: (100 px, resized to 64); smiles 10,516 grayscale faces (64 px); Happy House 600 train + 150 test;
#: the built-in synthetic faces, 600.
RECIPES: dict[str, Recipe] = {
    "signs": Recipe(
        epochs=144,
        batch_size=32,
        learning_rate=2e-3,
        image_size=64,
        zoom_out=0.45,
        rotation=20,
        white_balance=0.3,
        grayscale=0.3,
        blur=1.5,
        noise=0.08,
        standardize=True,
    ),
    "sign-language-digits": Recipe(
        epochs=24, batch_size=32, learning_rate=2e-3, image_size=64, ensemble=3, widths=(24, 48, 96)
    ),
    "smiles": Recipe(
        epochs=12, batch_size=64, learning_rate=2e-3, image_size=64, color_mode="grayscale", widths=(24, 48, 96)
    ),
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
