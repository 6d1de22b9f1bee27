"""npconv.apps: the course models layer for layer, the arch registry, recipes and data shaping."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from npconv.apps import (
    RECIPES,
    convolutional_model,
    datasets,
    get_arch,
    happyModel,
    list_archs,
    model_info,
    photos,
    recipe_for,
    smallres,
)
from npconv.apps.registry import arch_options
from npconv.errors import DataError


def _summary(model) -> str:
    lines = []
    model.summary(print_fn=lines.append)
    return "\n".join(lines)


def test_happy_model_is_the_course_model():
    model = happyModel()
    assert model.count_params() == 37_633
    text = _summary(model)
    for name in (
        "zero_padding2d",
        "conv0",
        "bn0",
        "max_pool0",
        "flatten",
        "fc",
        "(None, 70, 70, 3)",
        "(None, 32, 32, 32)",
        "(None, 32768)",
    ):
        assert name in text
    assert model.output_shape == (None, 1)


def test_signs_model_is_the_course_model():
    model = convolutional_model((64, 64, 3))
    assert model.count_params() == 1_310
    text = _summary(model)
    for shape in (
        "(None, 64, 64, 8)",
        "(None, 8, 8, 8)",
        "(None, 8, 8, 16)",
        "(None, 2, 2, 16)",
        "(None, 64)",
        "(None, 6)",
    ):
        assert shape in text
    assert convolutional_model((64, 64, 3), n_classes=10).output_shape == (None, 10)


@pytest.mark.parametrize("name", list_archs())
@pytest.mark.parametrize("shape", [(64, 64, 3), (32, 32, 1)])
@pytest.mark.parametrize("n_classes", [2, 6, 10])
def test_every_arch_builds_and_runs(name, shape, n_classes):
    if name == "happy" and n_classes != 2:
        with pytest.raises(ValueError, match="n_classes"):
            get_arch(name, shape, n_classes)
        return
    model = get_arch(name, shape, n_classes)
    x = np.random.default_rng(0).random((3,) + shape, dtype=np.float32)
    out = model.predict(x)
    # Two classes: one sigmoid unit (except the course SIGNS model, which keeps its softmax).
    width = 1 if n_classes == 2 and name != "signs" else n_classes
    assert out.shape == (3, width) and out.dtype == np.float32
    logits = model._forward(x, False, logits=True).astype(np.float64)
    if width == 1:
        expected = 1 / (1 + np.exp(-logits))
    else:
        expected = np.exp(logits - logits.max(axis=1, keepdims=True))
        expected /= expected.sum(axis=1, keepdims=True)
        np.testing.assert_allclose(out.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-7)  # the head's probabilities


def test_registry_refuses_unknown_names_and_options():
    with pytest.raises(ValueError, match="smallres.*happy"):
        get_arch("resnet50", (64, 64, 3), 6)
    with pytest.raises(ValueError, match="flip"):
        get_arch("signs", (64, 64, 3), 6, flip=True)
    with pytest.raises(ValueError, match="n_classes"):
        get_arch("smallres", (64, 64, 3), 1)
    assert list_archs()[0] == "smallres"
    assert {"flip", "translate", "widths"} <= arch_options("smallres")


def test_smallres_shape_and_size():
    model = smallres((64, 64, 3), 6)
    assert 50_000 < model.count_params() < 150_000
    names = [layer.name for layer in model.layers]
    assert names[1:3] == ["augment_flip", "augment_shift"]  # augmentation first: it needs no gradient
    assert "stem_pool" in names and "gap" in names
    assert "stem_pool" not in [l.name for l in smallres((32, 32, 1), 2).layers]


def test_smallres_zoom_and_contrast_come_after_the_other_augmentation():
    names = [layer.name for layer in smallres((32, 32, 3), 2, zoom=0.1, contrast=0.2).layers]
    assert names[1:5] == ["augment_flip", "augment_shift", "augment_zoom", "augment_contrast"]
    model = smallres((32, 32, 3), 2, zoom=0.1, contrast=0.2)
    assert model.get_layer("augment_contrast").value_range == (0.0, 1.0)  # inputs are uint8 / 255
    assert "augment_zoom" not in [layer.name for layer in smallres((32, 32, 3), 2).layers]


def test_new_recipe_options_are_off_by_default():
    from npconv.apps.recipes import Recipe

    recipe = Recipe()
    assert (recipe.weight_decay, recipe.label_smoothing, recipe.zoom, recipe.contrast, recipe.tta) == (
        0.0,
        0.0,
        0.0,
        0.0,
        None,
    )
    assert all(r.tta is None and not r.weight_decay and not r.zoom for r in RECIPES.values())


def test_compile_for_picks_adamw_and_label_smoothing_only_when_asked():
    from npconv import losses, optimizers
    from npconv.apps import training

    model = get_arch("tiny", (16, 16, 3), 6)
    training.compile_for(model, 1e-3, 100)
    assert type(model.optimizer) is optimizers.Adam and model.optimizer.weight_decay is None
    assert type(model.loss) is losses.SparseCategoricalCrossentropy and not model.loss.label_smoothing
    training.compile_for(model, 1e-3, 100, weight_decay=0.05, label_smoothing=0.1)
    assert type(model.optimizer) is optimizers.AdamW and model.optimizer.weight_decay == 0.05
    assert model.optimizer.learning_rate == pytest.approx(1e-3)  # the cosine schedule kept
    assert type(model.loss) is losses.SparseCategoricalCrossentropy and model.loss.label_smoothing == 0.1
    binary = get_arch("tiny", (16, 16, 3), 2)
    training.compile_for(binary, 1e-3, 100, label_smoothing=0.2)
    assert type(binary.loss) is losses.BinaryCrossentropy and binary.loss.label_smoothing == 0.2


def test_build_passes_zoom_and_contrast_to_smallres():
    from npconv.apps import training
    from npconv.apps.recipes import Recipe

    model = training.build("smallres", (16, 16, 1), ["a", "b"], Recipe(zoom=0.15, contrast=0.25))
    assert model.get_layer("augment_zoom").height_factor == 0.15
    assert model.get_layer("augment_contrast").factor == 0.25
    assert model.metadata["recipe"]["zoom"] == 0.15


def test_smallres_learns_a_toy_problem():
    """Bright vs dark images: a few steps reach perfect training accuracy."""
    import npconv

    npconv.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 32)
    x = (rng.random((64, 16, 16, 1)) * 0.3 + 0.6 * y[:, None, None, None]).astype(np.float32)
    model = smallres((16, 16, 1), 2, widths=(4, 8), flip=False, translate=0.0)
    model.compile(optimizer=npconv.optimizers.Adam(0.01), loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=16, epochs=6, verbose=0)
    assert np.mean((model.predict(x)[:, 0] > 0.5) == y) == 1.0


def test_recipes():
    assert recipe_for("signs").arch == "smallres"
    assert recipe_for("smiles").color_mode == "grayscale"
    assert recipe_for("no such set") is RECIPES["default"]
    assert recipe_for("signs").replace(epochs=3).epochs == 3
    assert recipe_for("signs").replace(batch_size=None).batch_size == RECIPES["signs"].batch_size


def test_fit_to_input_resizes_and_converts_channels():
    x = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
    half = datasets.fit_to_input(x, (2, 2, 3))
    assert half.shape == (2, 2, 2, 3) and half.dtype == np.uint8
    assert half[0, 0, 0, 0] == round(np.mean(x[0, :2, :2, 0]))
    assert datasets.fit_to_input(x, (3, 3, 1)).shape == (2, 3, 3, 1)  # a ratio that needs Pillow
    gray = np.full((1, 4, 4, 1), 7, np.uint8)
    assert np.all(datasets.fit_to_input(gray, (4, 4, 3)) == 7)


@pytest.mark.parametrize("size", [(64, 64), (50, 70)])  # a whole factor (block means), and not (Pillow's box)
def test_a_photo_is_prepared_as_training_prepares_the_same_picture(tmp_path, size):
    # The pictures of an .h5 set are fitted by fit_to_input; the same picture as a PNG or JPEG file
    # (npconv predict, npconv serve) and in an image folder (train, evaluate) must come out equal.
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 256, (1, *size, 3), dtype=np.uint8)
    (tmp_path / "folder" / "a").mkdir(parents=True)
    Image.fromarray(picture[0]).save(tmp_path / "folder" / "a" / "picture.png")
    Image.fromarray(picture[0]).save(tmp_path / "picture.jpg", quality=90)
    stored_jpeg = np.asarray(Image.open(tmp_path / "picture.jpg"))[None]  # the JPEG's own pixels
    for input_shape in [(32, 32, 3), (16, 16, 3), (20, 30, 3)]:
        trained_on = datasets.fit_to_input(picture, input_shape)[0]
        np.testing.assert_array_equal(
            photos.prepare_photo(tmp_path / "folder" / "a" / "picture.png", input_shape), trained_on
        )
        folder = datasets.load_for_input(str(tmp_path / "folder"), input_shape)
        np.testing.assert_array_equal(folder.x[0], trained_on)
        # A JPEG under DECODE_PIXELS is averaged from every decoded pixel (no reduced-scale decoding).
        np.testing.assert_array_equal(
            photos.prepare_photo(tmp_path / "picture.jpg", input_shape),
            datasets.fit_to_input(stored_jpeg, input_shape)[0],
        )
    assert photos.load_photos([tmp_path / "picture.jpg"] * 2, (8, 8, 1))[1].shape == (2, 8, 8, 1)


def test_a_large_jpeg_decodes_at_a_reduced_scale_down_to_about_a_megapixel():
    from npconv.data.images import draft_scale

    assert photos.DECODE_PIXELS == 1_000_000
    assert draft_scale(8000, 6000, (64, 64), photos.DECODE_PIXELS) == 8  # 48 MP -> 1000 x 750
    assert draft_scale(4000, 3000, (64, 64), photos.DECODE_PIXELS) == 4  # 12 MP -> 1000 x 750
    assert draft_scale(1600, 1200, (64, 64), photos.DECODE_PIXELS) == 2
    assert draft_scale(1000, 1000, (64, 64), photos.DECODE_PIXELS) == 1  # a megapixel: in full
    assert draft_scale(8000, 6000, (1000, 2500), photos.DECODE_PIXELS) == 2  # never below the input size


def test_a_phone_photo_costs_about_a_megapixel_of_memory(tmp_path):
    """A 48 MP JPEG decoded in full holds 144 MB of RGB pixels; at 1/8 it holds 2.25 MB."""
    import subprocess
    import sys

    from conftest import phone_photo

    from npconv.data.synthetic import make_smiley_faces

    photo = phone_photo(make_smiley_faces(n=1, seed=2).x[0], tmp_path / "IMG_0001.jpg")
    measure = (
        "import resource, sys; from npconv.apps.photos import prepare_photo; "
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; "
        "prepare_photo(sys.argv[1], (64, 64, 3)); "
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)"
    )
    grown_mb = float(
        subprocess.run([sys.executable, "-c", measure, str(photo)], capture_output=True, text=True, check=True).stdout
    )
    assert grown_mb < 30, f"decoding the 48 MP photo grew the process by {grown_mb:.0f} MB"
    # and the answer is what the full decode gives, up to rounding
    from npconv.data.images import decode_image

    full = decode_image(photo, (64, 64), "rgb", "area")
    difference = np.abs(photos.prepare_photo(photo, (64, 64, 3)).astype(int) - full)
    assert difference.max() <= 4 and difference.mean() < 0.5


def test_a_model_is_found_by_what_it_was_trained_on_not_by_its_file_name(tmp_path):
    """After the README's main job, runs/smiles.npz is a model of the built-in cartoon faces: the
    notebook once took it for a SMILEsmileD model by its name."""
    import os

    from npconv import layers as L
    from npconv.models import Sequential

    def saved(name, dataset, age):
        model = Sequential([L.Input((4, 4, 1)), L.Flatten(), L.Dense(1, activation="sigmoid")])
        model.metadata = {"dataset": dataset}
        model.save(tmp_path / name)
        os.utime(tmp_path / name, (1e9 - age, 1e9 - age))
        return tmp_path / name

    saved("smiles.npz", "builtin:smiles", age=0)
    assert model_info.find_model(tmp_path, "smiles") is None
    older = saved("faces_v1.npz", "smiles", age=20)
    (tmp_path / "broken.npz").write_bytes(b"not a model")
    assert model_info.find_model(tmp_path, "smiles") == older
    newer = saved("faces_v2.npz", "smiles", age=10)
    assert model_info.find_model(tmp_path, "smiles") == newer
    assert model_info.find_model(tmp_path, "builtin:smiles") == tmp_path / "smiles.npz"
    assert model_info.find_model(tmp_path / "no such folder", "smiles") is None


def test_model_info_fills_in_metadata_and_knows_smile_models():
    from npconv import layers as L
    from npconv.models import Sequential

    bare = Sequential([L.Input((8, 8, 1)), L.Flatten(), L.Dense(3, activation="softmax")])
    assert model_info.metadata(bare) == {"input_shape": [8, 8, 1], "class_names": ["0", "1", "2"], "value_scale": 255}
    assert model_info.metadata(happyModel())["class_names"] == ["0", "1"]  # one sigmoid output: two classes
    bare.metadata = {"class_names": ["a", "b", "c"]}
    assert model_info.metadata(bare)["class_names"] == ["a", "b", "c"]
    assert bare.metadata == {"class_names": ["a", "b", "c"]}  # a copy: the model's own is unchanged
    assert model_info.is_smile_model({"class_names": ["Not_Smiling", "smiling"]})
    assert model_info.is_smile_model({"class_names": ["0", "1"], "app": "happy"})
    assert not model_info.is_smile_model({"class_names": ["0", "1"]})


def test_match_classes():
    assert datasets.match_classes(["smiling", "not_smiling"], ["not smiling", "smiling"]).tolist() == [1, 0]
    # A course .h5 names its classes 0..K-1: matched by position.
    assert datasets.match_classes(["0", "1"], ["not smiling", "smiling"]).tolist() == [0, 1]
    with pytest.raises(DataError, match="cat"):
        datasets.match_classes(["cat", "dog"], ["not smiling", "smiling"])


def test_dataset_names_and_test_pairs(tmp_path):
    assert datasets.dataset_name("/x/train_signs.h5") == "signs"
    assert datasets.dataset_name("/x/test_happy.h5") == "happy"
    assert datasets.dataset_name("/x/smiles") == "smiles"
    assert datasets.dataset_name("builtin:smiles") == "builtin:smiles"
    assert datasets.dataset_name("/x/holiday_photos") is None
    (tmp_path / "train_x.h5").write_bytes(b"")
    assert datasets.paired_test_file(str(tmp_path / "train_x.h5")) is None
    (tmp_path / "test_x.h5").write_bytes(b"")
    assert datasets.paired_test_file(str(tmp_path / "train_x.h5")) == tmp_path / "test_x.h5"
