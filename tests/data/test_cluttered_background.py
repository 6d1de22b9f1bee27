"""npconv.data.corruptions' cluttered background: the wall cut out by colour, a real scene put behind."""

from __future__ import annotations

import numpy as np
import pytest

from npconv.data.corruptions import cluttered_background, scene_crops, wall_mask

WALL = np.array([215, 212, 208])
SKIN = np.array([200, 140, 105])


def hand_on_wall() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A 32x32 picture: a wall lit from the top left (and the hand's grey shadow on it), a skin-coloured
    "hand" from the bottom edge with a wall-coloured hole (a "0" sign) and a pale highlight inside."""
    rows, cols = np.mgrid[0:32, 0:32]
    image = np.broadcast_to(WALL, (32, 32, 3)) - 0.6 * (rows + cols)[..., None]
    parts = {
        "hand": (rows >= 8) & (cols >= 10) & (cols < 22),
        "hole": (rows >= 12) & (rows < 16) & (cols >= 14) & (cols < 18),
        "highlight": (rows >= 20) & (rows < 23) & (cols >= 12) & (cols < 15),
        "shadow": (rows >= 10) & (cols >= 22) & (cols < 25),
    }
    image = image.copy()
    image[parts["hand"]] = SKIN
    image[parts["hole"]] = WALL
    image[parts["highlight"]] = SKIN * 0.6 + 255 * 0.4  # pale, but redder than the wall
    image[parts["shadow"]] = WALL * 0.6  # the hand's shadow: darker, the wall's colour
    return np.clip(image, 0, 255).astype(np.uint8), parts


def test_wall_mask_takes_the_wall_its_shadow_and_the_hole_but_no_skin():
    image, parts = hand_on_wall()
    mask = wall_mask(image)
    skin = parts["hand"] & ~parts["hole"]
    assert not mask[skin].any()  # the pale highlight (9 px, enclosed) included: its colour is skin's
    assert mask[parts["hole"]].all()
    assert mask[parts["shadow"]].all()
    assert mask[~parts["hand"]].all()


def test_a_small_enclosed_pale_patch_stays_with_the_hand():
    image, parts = hand_on_wall()
    image[24:26, 16:18] = WALL  # 4 px of wall colour inside the hand: could be a fleck of skin
    assert not wall_mask(image)[24:26, 16:18].any()


def test_cluttered_background_replaces_only_the_wall_and_is_seeded():
    image, parts = hand_on_wall()
    x = np.stack([image, image[:, ::-1]])
    scenes = np.random.default_rng(1).integers(0, 256, (5, 40, 48, 3), dtype=np.uint8)
    out = cluttered_background(x, scenes, seed=3)
    assert out.shape == x.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out, cluttered_background(x, scenes, seed=3))
    assert not np.array_equal(out, cluttered_background(x, scenes, seed=4))
    skin = parts["hand"] & ~parts["hole"]
    np.testing.assert_array_equal(out[0][skin], x[0][skin])
    backgrounds = scene_crops(scenes, 2, (32, 32), seed=3)
    np.testing.assert_array_equal(out[0][~parts["hand"]], backgrounds[0][~parts["hand"]])


def test_scene_crops_have_the_asked_size():
    scenes = np.random.default_rng(0).integers(0, 256, (3, 64, 80, 3), dtype=np.uint8)
    crops = scene_crops(scenes, 7, (32, 24), seed=0)
    assert crops.shape == (7, 32, 24, 3) and crops.dtype == np.uint8


def test_a_grey_picture_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="RGB"):
        cluttered_background(np.zeros((1, 8, 8, 1), np.uint8), np.zeros((1, 8, 8, 3), np.uint8))


@pytest.mark.data
def test_on_the_signs_test_pictures_the_wall_is_most_but_not_all_of_each_picture(data_dir):
    from npconv.data import load_h5

    x = load_h5(data_dir / "signs" / "test_signs.h5").x
    share = np.array([wall_mask(image).mean() for image in x])
    # Looked at on a contact sheet (docs/benchmarks/cluttered_signs.png): the hand takes 12-49%.
    assert share.min() > 0.45 and share.max() < 0.9
