"""A built-in data set for a machine with no data: cartoon faces that smile (1) or do not (0).

Every face varies in position, size, skin tone, tilt, eyes, hair and background, and the two classes
share all of those distributions; only the mouth's curvature tells them apart, so a network has to
learn a shape, not a colour. Drawn with coordinate grids and soft masks, all images at once.
"""

from __future__ import annotations

import numpy as np

from ..errors import check_positive_int
from .dataset import Dataset

SMILE_CLASSES = ["not smiling", "smiling"]
_SKIN = np.array(
    [[255, 224, 189], [241, 194, 125], [224, 172, 105], [198, 134, 66], [141, 85, 36], [255, 219, 172]],
    dtype=np.float32,
)
_HAIR = np.array([[40, 26, 13], [90, 56, 37], [180, 140, 80], [20, 20, 20], [160, 60, 30]], dtype=np.float32)


def _coverage(signed_distance_px: np.ndarray) -> np.ndarray:
    """Anti-aliased alpha from a signed distance in pixels (negative inside): 1 inside, 0 outside."""
    return np.clip(0.5 - signed_distance_px, 0.0, 1.0)


def _paint(canvas: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> None:
    """``canvas = canvas (1 - alpha) + colour alpha`` in place; alpha (n, S, S), colour (n, 3)."""
    a = alpha[..., None]
    canvas *= 1.0 - a
    canvas += a * colour[:, None, None, :]


def _column(values) -> np.ndarray:
    """Per-image parameters as (n, 1, 1) so they broadcast over the pixel grid."""
    return np.asarray(values, dtype=np.float32)[:, None, None]


def make_smiley_faces(n: int = 600, image_size: int = 64, seed: int = 0) -> Dataset:
    """Draw ``n`` cartoon faces as uint8 ``(n, image_size, image_size, 3)``, labels int64 ``(n,)``
    (0 = not smiling, 1 = smiling, balanced), deterministic for a ``seed``.

    The mouth is the arc ``v = v_m - k u^2`` in face coordinates (u right, v down, face radius 1):
    ``k > 0`` lifts the corners (a smile), ``k <= 0.15`` is neutral or a frown.
    """
    n = check_positive_int(n, "n")
    size = check_positive_int(image_size, "image_size")
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % 2).astype(np.int64)

    # Background: a random colour with a linear gradient in a random direction.
    grid = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
    gy, gx = grid[None, :, None], grid[None, None, :]
    direction = rng.uniform(0, 2 * np.pi, n)
    ramp = _column(np.cos(direction)) * gx + _column(np.sin(direction)) * gy  # (n, S, S)
    base = rng.uniform(40, 220, (n, 3)).astype(np.float32)
    canvas = base[:, None, None, :] + ramp[..., None] * rng.uniform(-80, 80, (n, 1, 1, 3)).astype(np.float32)

    # Face frame: centre, radius (pixels), tilt; (u, v) are face coordinates, radius 1.
    radius = rng.uniform(0.26, 0.40, n) * size
    cx = size / 2 + rng.uniform(-0.12, 0.12, n) * size
    cy = size / 2 + rng.uniform(-0.12, 0.12, n) * size
    tilt = np.deg2rad(rng.uniform(-18, 18, n))
    px = np.arange(size, dtype=np.float32) + 0.5
    dx, dy = px[None, None, :] - _column(cx), px[None, :, None] - _column(cy)
    cos, sin, r = _column(np.cos(tilt)), _column(np.sin(tilt)), _column(radius)
    u = (cos * dx + sin * dy) / r
    v = (-sin * dx + cos * dy) / r

    skin = _SKIN[rng.integers(0, len(_SKIN), n)] * rng.uniform(0.85, 1.1, (n, 1)).astype(np.float32)
    face = _coverage((np.sqrt(u**2 + v**2) - 1.0) * r)
    _paint(canvas, face, np.clip(skin, 0, 255))

    # Hair on half of the faces: the top of the disc above a random line.
    has_hair = rng.random(n) < 0.5
    hairline = _column(rng.uniform(-0.75, -0.5, n))
    hair = face * _coverage((v - hairline) * r) * _column(has_hair)
    _paint(canvas, hair, _HAIR[rng.integers(0, len(_HAIR), n)])

    # Eyes: two dark ellipses.
    ex, ey = _column(rng.uniform(0.28, 0.42, n)), _column(rng.uniform(-0.38, -0.2, n))
    ew, eh = _column(rng.uniform(0.07, 0.12, n)), _column(rng.uniform(0.10, 0.17, n))
    eyes = np.zeros_like(u)
    for side in (-1.0, 1.0):
        ellipse = np.sqrt(((u - side * ex) / ew) ** 2 + ((v - ey) / eh) ** 2)
        eyes = np.maximum(eyes, _coverage((ellipse - 1.0) * ew * r))
    eye_colour = rng.uniform(10, 60, (n, 3)).astype(np.float32)
    _paint(canvas, eyes, eye_colour)

    # Mouth: a thick arc; only its curvature k depends on the label.
    k = np.where(y == 1, rng.uniform(0.7, 1.6, n), rng.uniform(-0.9, 0.15, n))
    v_mid = _column(rng.uniform(0.35, 0.5, n) + 0.12 * np.clip(k, 0, None))
    half_width = _column(rng.uniform(0.35, 0.55, n))
    thickness = _column(rng.uniform(0.05, 0.09, n))
    across = (np.abs(v - (v_mid - _column(k) * u**2)) - thickness) * r
    along = (np.abs(u) - half_width) * r
    mouth = _coverage(np.maximum(across, along))
    _paint(canvas, mouth, rng.uniform(60, 160, (n, 1)).astype(np.float32) * np.array([1.0, 0.25, 0.25], np.float32))

    sigma = rng.uniform(3, 12, (n, 1, 1, 1)).astype(np.float32)
    canvas += sigma * rng.standard_normal(canvas.shape, dtype=np.float32)
    x = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
    return Dataset(x, y, list(SMILE_CLASSES), f"builtin:smiles(n={n}, image_size={size}, seed={seed})")
