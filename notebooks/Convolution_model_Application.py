# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Convolutional networks with npconv
#
# This notebook retells the deeplearning.ai course *Convolutional Neural Networks*, week 1 (the
# assignments "Convolution model – Step by Step" and "Convolution model – Application"), with
# **npconv**: a small library that does everything in NumPy.
#
# npconv has two tiers of the same mathematics:
#
# * `npconv.course`: the course's step functions (`zero_pad`, `conv_single_step`, `conv_forward`,
#   `pool_forward`, `conv_backward`, `pool_backward`), written with the course's readable loops;
# * `npconv.functional`: the same maths vectorised (im2col and one matrix product), fast enough to train on.
#
# On top sits a Keras-like API (`Sequential`, `Model`, `layers`, `compile`/`fit`/`evaluate`), so the
# course's Keras models can be written exactly as in the course, with `npconv` in place of TensorFlow.
#
# Every array is laid out **NHWC**, `(m, n_H, n_W, n_C)`: examples, height, width, channels.
#
# **How long it takes.** Top to bottom, after the README's two commands (so with no SMILEsmileD
# model in `runs/` yet): about **2.5 minutes on two idle CPU cores** (the committed run: 146 s of
# cells, with Numba's compiled kernels already cached; a first run also compiles them, 20 to 40 s
# more, see `notebooks/README.md`). Each cell that takes more than a few seconds says how long before
# it starts (at most twice what it took in the committed run) and prints a line per epoch while it
# trains. The long ones: the smile model for transfer learning (40 s in the committed run), its
# fine-tuning on the Happy House (22 s), the SIGNS model (24 s) and its robust twin (26 s). With `NPCONV_NOTEBOOK_FAST=1` the whole notebook takes well under two minutes.

# %% [markdown]
# ## 1. Set-up
#
# `FAST` is for continuous integration: with `NPCONV_NOTEBOOK_FAST=1` every training run is cut to a
# token size, so the whole notebook runs in well under two minutes. Leave it unset for the real run
# (the time above).
#
# The data sets are looked up in the folder named by the `NPCONV_DATA` environment variable. If a file
# is missing, the notebook says so and uses npconv's built-in synthetic faces instead, so every cell
# still runs (the numbers then mean little).

# %%
# %matplotlib inline
import os
import time

import numpy as np

import npconv as nc
from npconv import course, data, utils, viz
from npconv import functional as F
from npconv import layers as L
from npconv.gradcheck import gradcheck

FAST = os.environ.get("NPCONV_NOTEBOOK_FAST") == "1"
DATA_DIR = data.data_dir()  # $NPCONV_DATA, else npconv's user cache folder
print(f"npconv {nc.__version__}   FAST = {FAST}   data directory: {DATA_DIR}")


# %%
def data_file(name):
    # The course files may sit in DATA_DIR or in its happy/ and signs/ folders.
    try:
        return data.find_file(name, DATA_DIR)
    except FileNotFoundError:
        return None


SMILES_DIR = DATA_DIR / "smiles"
HAVE = {
    "smiles/": SMILES_DIR.is_dir(),
    "test_happy.h5": data_file("test_happy.h5") is not None,
    "train_signs.h5": data_file("train_signs.h5") is not None,
    "test_signs.h5": data_file("test_signs.h5") is not None,
}
for name, found in HAVE.items():
    print(f"{name:15} {'found' if found else 'MISSING: the built-in synthetic faces stand in for it'}")

# %% [markdown]
# ## 2. Zero padding
#
# Padding adds a border of zeros around each image, so that a convolution can keep the height and
# width (a "same" convolution) and the pixels at the border count as much as those in the middle.
# With `pad` zeros on every side,
#
# $$(m, n_H, n_W, n_C) \;\longrightarrow\; (m,\; n_H + 2\,pad,\; n_W + 2\,pad,\; n_C).$$
#
# The course's check: four 3×3 images with two channels, padded by 3.

# %%
np.random.seed(1)
x = np.random.randn(4, 3, 3, 2)
x_pad = course.zero_pad(x, 3)
print("x.shape =\n", x.shape)
print("x_pad.shape =\n", x_pad.shape)
print("x[1,1] =\n", x[1, 1])
print("x_pad[1,1] =\n", x_pad[1, 1])

# %% [markdown]
# The course's picture: channel 0 of the first image before and after padding (the dashed box is the
# original image). The vectorised tier, `F.zero_pad2d_forward`, gives the same array.

# %%
x_pad_fast, _ = F.zero_pad2d_forward(x, 3)
print("same as the vectorised kernel:", np.array_equal(x_pad, x_pad_fast))
viz.plot_zero_pad(x, x_pad)

# %% [markdown]
# ## 3. Convolution and pooling, forward
#
# ### One step of a convolution
#
# A filter $W$ of shape $(f, f, n_{C,prev})$ looks at one window $a$ of the same shape and gives one number:
#
# $$Z = \sum_{i,j,k} a_{ijk}\, W_{ijk} + b.$$
#
# The course's check (seed 1) gives $Z = -6.99908945068$.

# %%
np.random.seed(1)
a_slice_prev = np.random.randn(4, 4, 3)
W = np.random.randn(4, 4, 3)
b = np.random.randn(1, 1, 1)

Z = course.conv_single_step(a_slice_prev, W, b)
print("Z =", Z)

# %% [markdown]
# ### A whole convolution layer
#
# Slide every filter $c$ over every window of the padded input with stride $s$:
#
# $$Z_{i,h,w,c} = \sum A^{pad}_{i,\; hs:hs+f,\; ws:ws+f,\; :} \;\ast\; W_{:,:,:,c} + b_c,
# \qquad n_H = \left\lfloor \frac{n_{H,prev} + 2\,pad - f}{s} \right\rfloor + 1$$
#
# (and the same for $n_W$). `course.conv_forward` does this with four loops (examples, rows, columns,
# filters); `F.conv2d_forward` unrolls all windows into one matrix ("im2col") and multiplies it by
# the filters once. Same inputs, same answer to rounding:

# %%
np.random.seed(1)
A_prev = np.random.randn(2, 5, 7, 4)
W = np.random.randn(3, 3, 4, 8)
b = np.random.randn(1, 1, 1, 8)
hparameters = {"pad": 1, "stride": 2}

Z, cache_conv = course.conv_forward(A_prev, W, b, hparameters)
print("Z's mean =\n", np.mean(Z))
print("Z[0,2,1] =\n", Z[0, 2, 1])
print("cache_conv[0][1][2][3] =\n", cache_conv[0][1][2][3])

Z_fast, _ = F.conv2d_forward(A_prev, W, b, stride=2, padding=1)
print(f"\nZ.shape = {Z.shape};  max |course - vectorised| = {np.max(np.abs(Z - Z_fast)):.1e}")
assert np.allclose(Z, Z_fast, rtol=0, atol=1e-12)

# %% [markdown]
# ### Pooling
#
# Pooling shrinks height and width with no parameters to learn: each $f \times f$ window of each
# channel becomes its maximum (max pooling) or its mean (average pooling), so $n_C$ stays the same and
# $n_H = \lfloor (n_{H,prev} - f)/s \rfloor + 1$.

# %%
np.random.seed(1)
A_prev = np.random.randn(2, 5, 5, 3)
hparameters = {"stride": 1, "f": 3}

for mode in ("max", "average"):
    A, cache = course.pool_forward(A_prev, hparameters, mode=mode)
    A_fast, _ = F.pool2d_forward(A_prev, 3, stride=1, mode=mode)
    print(f"mode = {mode}")
    print("A.shape = " + str(A.shape))
    print("A[1, 1] =\n", A[1, 1])
    print(f"max |course - vectorised| = {np.max(np.abs(A - A_fast)):.1e}\n")

# %% [markdown]
# ## 4. Backward passes
#
# Training needs the gradient of the cost with respect to every input and weight. For the
# convolution, each output gradient $dZ_{i,h,w,c}$ flows back to the window that produced it:
#
# $$dA^{pad}_{i,\,win,\,:} \mathrel{+}= W_{:,:,:,c}\; dZ_{i,h,w,c}, \qquad
# dW_{:,:,:,c} \mathrel{+}= A^{pad}_{i,\,win,\,:}\; dZ_{i,h,w,c}, \qquad
# db_c \mathrel{+}= dZ_{i,h,w,c}.$$
#
# The course checks it by sending $Z$ itself back as $dZ$:

# %%
np.random.seed(1)
A_prev = np.random.randn(10, 4, 4, 3)
W = np.random.randn(2, 2, 3, 8)
b = np.random.randn(1, 1, 1, 8)
hparameters = {"pad": 2, "stride": 2}

Z, cache_conv = course.conv_forward(A_prev, W, b, hparameters)
dA, dW, db = course.conv_backward(Z, cache_conv)
print("dA_mean =", np.mean(dA))
print("dW_mean =", np.mean(dW))
print("db_mean =", np.mean(db))

_, cache_fast = F.conv2d_forward(A_prev, W, b, stride=2, padding=2)
dA_fast, dW_fast, db_fast = F.conv2d_backward(Z, cache_fast)
for name, slow, fast in (("dA", dA, dA_fast), ("dW", dW, dW_fast), ("db", db, db_fast)):
    print(f"{name}: max |course - vectorised| = {np.max(np.abs(slow - fast)):.1e}")

# %% [markdown]
# Pooling has no weights, only a route back. **Max pooling** sends each gradient to the position of
# the window's maximum (`create_mask_from_window`: $mask = (x = \max x)$); **average pooling**
# spreads it evenly, $dz / f^2$ to each entry (`distribute_value`).

# %%
np.random.seed(1)
A_prev = np.random.randn(5, 5, 3, 2)
hparameters = {"stride": 1, "f": 2}
A, cache = course.pool_forward(A_prev, hparameters)
dA = np.random.randn(5, 4, 2, 2)

for mode in ("max", "average"):
    dA_prev = course.pool_backward(dA, cache, mode=mode)
    _, cache_fast = F.pool2d_forward(A_prev, 2, stride=1, mode=mode)
    dA_prev_fast = F.pool2d_backward(dA, cache_fast)
    print(f"mode = {mode}")
    print("mean of dA = ", np.mean(dA))
    print("dA_prev[1,1] = \n", dA_prev[1, 1])
    print(f"max |course - vectorised| = {np.max(np.abs(dA_prev - dA_prev_fast)):.1e}\n")

# %% [markdown]
# ### Gradient check
#
# Is a hand-written backward really the derivative of its forward? Compare it with central
# differences, $\frac{\partial L}{\partial x_k} \approx \frac{L(x + \varepsilon e_k) - L(x - \varepsilon e_k)}{2\varepsilon}$,
# entry by entry, on a small float64 example ($L$ is a fixed random projection of the output). The
# relative error $\frac{\lVert g - g_{num} \rVert}{\lVert g \rVert + \lVert g_{num} \rVert}$ should
# be around $10^{-10}$; `gradcheck` raises if any exceeds $10^{-7}$.

# %%
rng = np.random.default_rng(0)
x = rng.standard_normal((2, 7, 7, 3))
w = rng.standard_normal((3, 3, 3, 4))
b = rng.standard_normal(4)

checks = {
    "conv2d, stride 2, 'same'": gradcheck(
        lambda x, w, b: F.conv2d_forward(x, w, b, stride=2, padding="same"), F.conv2d_backward, {"x": x, "w": w, "b": b}
    ),
}
for mode in ("max", "average"):
    checks[f"pool2d {mode}, 2x2, stride 2"] = gradcheck(
        lambda x, mode=mode: F.pool2d_forward(x, 2, stride=2, mode=mode), F.pool2d_backward, {"x": x}
    )

for kernel, errors in checks.items():
    print(f"{kernel:31}" + "   ".join(f"d{name}: {err:.1e}" for name, err in errors.items()))


# %% [markdown]
# ## 5. Loops or vectors: how much faster?
#
# The loops are there to be read. A network needs the vectorised kernels: timed on the same inputs
# (a batch of 32×32 images with 8 channels, 16 filters of 3×3, "same" padding):


# %%
def seconds(fn, repeat=1):
    # Best of `repeat` runs: the least disturbed by other work on the machine.
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


m = 2 if FAST else 8
rng = np.random.default_rng(0)
A_prev = rng.standard_normal((m, 32, 32, 8))
W = rng.standard_normal((3, 3, 8, 16))
b = rng.standard_normal((1, 1, 1, 16))
Z, cache_conv = course.conv_forward(A_prev, W, b, {"pad": 1, "stride": 1})
_, cache_fast = F.conv2d_forward(A_prev, W, b, stride=1, padding=1)
_, cache_pool = course.pool_forward(A_prev, {"f": 2, "stride": 2})
_, cache_pool_fast = F.pool2d_forward(A_prev, 2, stride=2)
dpool = rng.standard_normal((m, 16, 16, 8))

rows = [
    (
        "conv forward",
        lambda: course.conv_forward(A_prev, W, b, {"pad": 1, "stride": 1}),
        lambda: F.conv2d_forward(A_prev, W, b, stride=1, padding=1),
    ),
    ("conv backward", lambda: course.conv_backward(Z, cache_conv), lambda: F.conv2d_backward(Z, cache_fast)),
    (
        "max pool forward",
        lambda: course.pool_forward(A_prev, {"f": 2, "stride": 2}),
        lambda: F.pool2d_forward(A_prev, 2, stride=2),
    ),
    (
        "max pool backward",
        lambda: course.pool_backward(dpool, cache_pool),
        lambda: F.pool2d_backward(dpool, cache_pool_fast),
    ),
]
print(f"input {A_prev.shape}, filters {W.shape}, float64\n")
print(f"{'':18}{'course loops':>14}{'vectorised':>14}{'speed-up':>11}")
for name, loop, vectorised in rows:
    slow, fast = seconds(loop), seconds(vectorised, repeat=5)
    print(f"{name:18}{slow * 1e3:>11.1f} ms{fast * 1e3:>11.2f} ms{slow / fast:>10.0f}x")


# %% [markdown]
# ## 6. The Happy House
#
# In the course's Happy House, the door opens only for people who smile. The model is a small binary
# classifier: one convolution block and one sigmoid unit giving $P(\text{smiling})$.
#
# | layer | output shape | parameters |
# |---|---|---|
# | input | $(64, 64, 3)$ | |
# | ZeroPadding2D(3) | $(70, 70, 3)$ | |
# | Conv2D(32, 7×7, stride 1) | $(64, 64, 32)$ | $7 \cdot 7 \cdot 3 \cdot 32 + 32 = 4{,}736$ |
# | BatchNormalization | $(64, 64, 32)$ | $4 \cdot 32 = 128$ (64 of them are running statistics) |
# | ReLU, MaxPooling2D(2×2) | $(32, 32, 32)$ | |
# | Flatten | $(32768,)$ | |
# | Dense(1, sigmoid) | $(1,)$ | $32{,}768 + 1 = 32{,}769$ |
#
# Here is the course's `happyModel()`, word for word, with `nc.Sequential` for `tf.keras.Sequential`
# and npconv's `L` for Keras's `tfl` layers:


# %%
def happyModel():
    model = nc.Sequential(
        [
            ## ZeroPadding2D with padding 3, input shape of 64 x 64 x 3
            L.ZeroPadding2D(padding=(3, 3), input_shape=(64, 64, 3)),
            ## Conv2D with 32 7x7 filters and stride of 1
            L.Conv2D(32, (7, 7), strides=(1, 1), name="conv0"),
            ## BatchNormalization for axis 3
            L.BatchNormalization(axis=3, name="bn0"),
            ## ReLU
            L.ReLU(),
            ## Max Pooling 2D with default parameters
            L.MaxPooling2D(),
            ## Flatten layer
            L.Flatten(),
            ## Dense layer with 1 unit for output & 'sigmoid' activation
            L.Dense(1, activation="sigmoid", name="fc"),
        ]
    )
    return model


utils.set_random_seed(1)  # npconv's generator: initial weights and shuffling repeat
happy_model = happyModel()
happy_model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
happy_model.summary()


# %% [markdown]
# ### The data
#
# The course trains on `train_happy.h5` (600 pictures) and tests on `test_happy.h5` (150). If you
# took the course you have both: put them in your data directory and `data.load_happy_dataset()`
# loads them exactly as the course's `load_happy_dataset()` does, and the next cell uses them.
#
# Without the course's train file, we train on **SMILEsmileD**, a public set of face crops labelled
# smiling or not (64×64 grayscale, copied into three RGB channels), using a balanced random subset
# (2,000 faces for training plus 400 held out, in the full run), and still test on the course's exact
# `test_happy.h5`. Labels agree: 0 = not smiling, 1 = smiling. Images are scaled to $[0, 1]$ as in the
# course (`X / 255.`), and labels become a column $(m, 1)$.


# %%
def balanced_split(dataset, n_train, n_val, seed=1):
    # n_train + n_val random examples of each class; returns (train, held-out) Datasets.
    rng = np.random.default_rng(seed)
    picks = [
        rng.permutation(np.flatnonzero(dataset.y == c))[: n_train + n_val] for c in range(len(dataset.class_names))
    ]
    train = rng.permutation(np.concatenate([p[:n_train] for p in picks]))
    val = rng.permutation(np.concatenate([p[n_train:] for p in picks]))
    return dataset.subset(train), dataset.subset(val)


def course_arrays(dataset):
    # The course's layout: images (m, 64, 64, 3) uint8 and labels as a row (1, m).
    return dataset.x, dataset.y.reshape(1, -1)


X_val_orig = Y_val_orig = None
try:
    X_train_orig, Y_train_orig, X_test_orig, Y_test_orig, classes = data.load_happy_dataset(DATA_DIR)
    SOURCE = "train_happy.h5, the course's own train set"
except FileNotFoundError:
    n_train, n_val = (100, 20) if FAST else (1000, 200)  # per class
    if HAVE["smiles/"]:
        faces = data.load_image_folder(
            SMILES_DIR, image_size=(64, 64), color_mode="rgb", max_per_class=n_train + n_val if FAST else None
        )
        SOURCE = f"SMILEsmileD faces from {SMILES_DIR} ({len(faces)} loaded)"
    else:
        faces = data.load_dataset("builtin:smiles")
        n_train, n_val = 200, 50
        SOURCE = "npconv's built-in synthetic faces (data missing: numbers are only a demo)"
    assert list(faces.class_names) in (["not_smiling", "smiling"], ["not smiling", "smiling"])
    train, held_out = balanced_split(faces, n_train, n_val)
    X_train_orig, Y_train_orig = course_arrays(train)
    X_val_orig, Y_val_orig = course_arrays(held_out)
    if HAVE["test_happy.h5"]:
        X_test_orig, Y_test_orig = course_arrays(data.load_h5(data_file("test_happy.h5")))
    else:
        X_test_orig, Y_test_orig = X_val_orig, Y_val_orig
        print("test_happy.h5 missing: testing on the held-out faces instead")

X_train = X_train_orig / 255.0
X_test = X_test_orig / 255.0
Y_train = Y_train_orig.T
Y_test = Y_test_orig.T
print("training on", SOURCE)
print("number of training examples =", X_train.shape[0])
print("number of test examples =", X_test.shape[0])
print("X_train shape:", X_train.shape)
print("Y_train shape:", Y_train.shape)
print("X_test shape:", X_test.shape)
print("Y_test shape:", Y_test.shape)

# %%
happy_names = ["not smiling", "smiling"]
viz.plot_samples(X_train_orig, Y_train_orig, happy_names, n=8)

# %% [markdown]
# ### Training
#
# The course trains for 10 epochs on 600 pictures with batch size 16, which is 6,000 pictures seen.
# On the larger SMILEsmileD subset, 3 epochs show the model about as many pictures. The held-out faces
# (when there are any) tell us how well it does on new faces of the same kind.

# %%
if X_val_orig is None:  # the course's own train set: 10 epochs, as in the course
    HAPPY_EPOCHS, validation = (1 if FAST else 10), None
else:
    HAPPY_EPOCHS, validation = (1 if FAST else 3), (X_val_orig / 255.0, Y_val_orig.T)
print(
    f"training happyModel for {HAPPY_EPOCHS} epochs on {len(X_train)} pictures "
    f"(about 10 s on two idle cores), a line per epoch:"
)
start = time.perf_counter()
history = happy_model.fit(X_train, Y_train, epochs=HAPPY_EPOCHS, batch_size=16, validation_data=validation, verbose=2)
print(f"trained in {time.perf_counter() - start:.0f} s")

# %%
viz.plot_history(history)

# %% [markdown]
# ### Testing on the course's test set

# %%
loss, accuracy = happy_model.evaluate(X_test, Y_test)
P_test = happy_model.predict(X_test).ravel()
print(
    f"test accuracy {accuracy:.1%};  predicted smiling for {np.mean(P_test > 0.5):.0%} "
    f"of the pictures ({np.mean(Y_test):.0%} of them smile)"
)

# %% [markdown]
# In the course, trained on its own 600 pictures, this model scores about 95% on this test set.
# Trained on SMILEsmileD, it does fairly well on *held-out SMILEsmileD faces* (the validation accuracy
# above, about 75% in the full run) but on the Happy House pictures it is no better than guessing:
# in the full run it calls every one of them "not smiling". The two sets look different: SMILEsmileD
# crops the face tightly (eyes and mouth fill the frame), in grayscale; the Happy House pictures are
# wider, blurrier colour shots in which the face takes a third of the frame, with a garden behind.
# A network learns the pictures it is shown, not the idea of a smile: this is **data set shift**, and
# no test on held-out data of the training kind would have warned us.

# %%
viz.plot_sample_rows(
    {"training faces": (X_train_orig, Y_train_orig), "Happy House": (X_test_orig, Y_test_orig)}, happy_names, ncols=8
)

# %% [markdown]
# ### The Happy House on its own pictures
#
# To see the course's model learn the course's task, train a fresh `happyModel()` on part of the
# Happy House pictures we do have: a stratified split of `test_happy.h5` into 100 for training and 50
# held out. That is a sixth of the pictures the course trains on, so expect well below its 95%
# (about 75% in the full run; with 50 test pictures each one is worth 2%).

# %%
(x_house, y_house), (x_door, y_door) = data.train_val_split(
    (X_test_orig, Y_test_orig.ravel()), val_fraction=1 / 3, seed=0
)
utils.set_random_seed(1)
house_model = happyModel()
house_model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
print("training a fresh happyModel on 100 house pictures, 10 epochs (about 5 s on two idle cores):")
house_history = house_model.fit(
    x_house / 255.0,
    y_house.reshape(-1, 1),
    epochs=2 if FAST else 10,
    batch_size=16,
    validation_data=(x_door / 255.0, y_door.reshape(-1, 1)),
    verbose=2,
)
viz.plot_history(house_history)

# %% [markdown]
# Who gets in? The door opens when the model says $P(\text{smiling}) > 0.5$:

# %%
p_door = house_model.predict(x_door / 255.0).ravel()
opens = (p_door > 0.5).astype(int)
print(f"held-out accuracy {np.mean(opens == y_door):.1%} on {len(y_door)} pictures")
viz.plot_samples(x_door, opens, ["stays shut", "the door opens"], n=16, ncols=8)

# %%
viz.plot_misclassified(x_door, y_door, opens, happy_names, probs=p_door)

# %% [markdown]
# ### Transfer learning: the smile detector meets the Happy House
#
# A smile model trained on SMILEsmileD (`npconv train smiles`, see the README's Happy House section)
# has seen thousands of faces, but only as tight crops from eyes to chin. The Happy House pictures
# are people at a distance in a garden, faces a quarter of the picture's height. First,
# **zero-shot**: the smile model on all 150 pictures as they are, having never seen one. Then
# **fine-tuned**: start from the smile model (its weights, its input size and colour mode, its
# smiling/not-smiling unit) and train on the same 100 house pictures as above, first the output layer
# alone, then every layer at a low learning rate. This is `npconv train happy/test_happy.h5 --init
# MODEL`, here through the Python API.
#
# Which smile model? The README's main job, `npconv train --out runs/smiles.npz`, trains on npconv's
# built-in cartoon faces, not on SMILEsmileD, whatever the file is called. So the next cell asks each
# model in `runs/` what it was trained on (its metadata) and takes the newest SMILEsmileD one; when
# there is none, it trains a small one first.

# %%
import tempfile
from pathlib import Path

from npconv.apps import datasets as app_data
from npconv.apps import training
from npconv.apps.model_info import find_model
from npconv.apps.recipes import FINE_TUNE, recipe_for
from npconv.apps.transfer import Pretrained

# A model in runs/ trained on SMILEsmileD, whatever its file name (its metadata says what it learnt).
SMILE_MODEL = None if FAST else find_model(Path("..") / "runs", dataset="smiles")
if SMILE_MODEL is None:
    # None yet: a smaller one, the `npconv train smiles` recipe on a random 5,000 of the 10,516 faces
    # for 3 epochs instead of all of them for 12 (about 8 minutes on two idle cores, and 14 were not
    # enough on a busy one: run `npconv train smiles --out runs/smiles_full.npz` for it, and this cell
    # will find it).
    n_faces, epochs = (500, 1) if FAST else (5000, 3)
    recipe = recipe_for("smiles").replace(epochs=epochs)
    source = str(SMILES_DIR) if HAVE["smiles/"] else "builtin:smiles"
    faces = app_data.load(source, recipe.image_size, recipe.color_mode)
    faces = faces.subset(np.random.default_rng(0).permutation(len(faces))[:n_faces])
    faces_train, faces_held_out = data.train_val_split(faces, recipe.val_split, seed=0)
    print(
        f"no SMILEsmileD model in runs/: training one on {len(faces_train)} faces for {epochs} epochs "
        f"(about a minute on two idle cores), a line per epoch:"
    )
    trained = training.train(
        faces_train, recipe, recipe.arch, test=faces_held_out, verbose=2, dataset=app_data.dataset_name(source)
    )
    # Saved and read back as `npconv train --init` would read it, in a folder removed right after.
    with tempfile.TemporaryDirectory() as folder:
        SMILE_MODEL = Path(folder) / "smiles.npz"
        trained.model.save(SMILE_MODEL)
        smile = Pretrained.load(SMILE_MODEL)
else:
    smile = Pretrained.load(SMILE_MODEL)
input_shape = smile.meta["input_shape"]
print(
    f"smile model {SMILE_MODEL.name}: {smile.arch}, input {input_shape}, trained on {smile.meta['dataset']}, "
    f"held-out accuracy {smile.meta['trained'].get('held_out_accuracy') or float('nan'):.3f}"
)


# The pictures as the smile model sees them: resized, and grayscale if it is.
def as_model_input(x):
    return app_data.fit_to_input(x, input_shape)


zero_shot = training.evaluate(smile.model, as_model_input(X_test_orig), Y_test_orig.ravel())
print(
    f"zero-shot on all {zero_shot['n']} Happy House pictures: accuracy {zero_shot['accuracy']:.1%}, "
    f"the door opens for {int(zero_shot['pred'].sum())} of them"
)

# %%
recipe = smile.adapt(recipe_for(FINE_TUNE)).replace(epochs=2 if FAST else None)
house = data.Dataset(as_model_input(x_house), y_house, happy_names)
door = data.Dataset(as_model_input(x_door), y_door, happy_names)
print(
    f"fine-tuning on {len(house)} house pictures for {recipe.epochs} epochs "
    f"(about 30 s on two idle cores), a line per epoch:"
)
tuned = training.train(house, recipe, recipe.arch, test=door, verbose=2, init=smile)
print(
    f"fine-tuned on {len(house)} house pictures ({recipe.frozen_epochs} epochs head only, then "
    f"{recipe.epochs - recipe.frozen_epochs} all layers): held-out accuracy "
    f"{tuned.evaluation['accuracy']:.1%} on the same {len(door)} pictures the course's model got "
    f"{np.mean(opens == y_door):.1%} on"
)
tuned_opens = tuned.evaluation["pred"]
viz.plot_samples(x_door, tuned_opens, ["stays shut", "the door opens"], n=16, ncols=8)

# %%
viz.plot_misclassified(x_door, y_door, tuned_opens, happy_names, probs=tuned.evaluation["probs"][:, 1])

# %% [markdown]
# ## 7. SIGNS: six hand signs
#
# The second model of the application assignment reads hand signs for the digits 0 to 5. It is
# written with the **functional API**: each layer is called on the previous tensor, and `Model`
# joins the input to the output.
#
# | layer | output shape |
# |---|---|
# | input | $(64, 64, 3)$ |
# | Conv2D(8, 4×4, "same") → ReLU | $(64, 64, 8)$ |
# | MaxPool2D(8×8, stride 8, "same") | $(8, 8, 8)$ |
# | Conv2D(16, 2×2, "same") → ReLU | $(8, 8, 16)$ |
# | MaxPool2D(4×4, stride 4, "same") | $(2, 2, 16)$ |
# | Flatten → Dense(6, softmax) | $(64,) \to (6,)$ |
#
# "same" padding keeps $n_H = \lceil n_{H,prev} / s \rceil$. The softmax gives six probabilities, and
# the labels become one-hot rows: `convert_to_one_hot(Y, 6).T`, shape $(m, 6)$.

# %%
if HAVE["train_signs.h5"] and HAVE["test_signs.h5"]:
    X_train_orig, Y_train_orig, X_test_orig, Y_test_orig, classes = data.load_signs_dataset(DATA_DIR)
else:  # a stand-in so that the cells run: two classes of synthetic faces, in six outputs
    print("SIGNS files missing: training on the built-in synthetic faces instead")
    fake_train, fake_test = data.train_val_split(data.load_dataset("builtin:smiles"), 0.2)
    (X_train_orig, Y_train_orig), (X_test_orig, Y_test_orig) = map(course_arrays, (fake_train, fake_test))
    classes = np.arange(6)

X_train = X_train_orig / 255.0
X_test = X_test_orig / 255.0
Y_train = course.convert_to_one_hot(Y_train_orig, 6).T
Y_test = course.convert_to_one_hot(Y_test_orig, 6).T
print("number of training examples =", X_train.shape[0])
print("number of test examples =", X_test.shape[0])
print("X_train shape:", X_train.shape)
print("Y_train shape:", Y_train.shape)
print("X_test shape:", X_test.shape)
print("Y_test shape:", Y_test.shape)
sign_names = [str(c) for c in classes]
viz.plot_samples(X_train_orig, Y_train_orig, sign_names, n=16, ncols=8)


# %%
def convolutional_model(input_shape):
    input_img = nc.Input(shape=input_shape)
    ## CONV2D: 8 filters 4x4, stride of 1, padding 'SAME'
    Z1 = L.Conv2D(filters=8, kernel_size=(4, 4), strides=(1, 1), padding="same")(input_img)
    ## RELU
    A1 = L.ReLU()(Z1)
    ## MAXPOOL: window 8x8, stride 8, padding 'SAME'
    P1 = L.MaxPool2D(pool_size=(8, 8), strides=(8, 8), padding="same")(A1)
    ## CONV2D: 16 filters 2x2, stride 1, padding 'SAME'
    Z2 = L.Conv2D(filters=16, kernel_size=(2, 2), strides=(1, 1), padding="same")(P1)
    ## RELU
    A2 = L.ReLU()(Z2)
    ## MAXPOOL: window 4x4, stride 4, padding 'SAME'
    P2 = L.MaxPool2D(pool_size=(4, 4), strides=(4, 4), padding="same")(A2)
    ## FLATTEN
    F = L.Flatten()(P2)
    ## Dense layer
    ## 6 neurons in output layer. Hint: one of the arguments should be "activation='softmax'"
    outputs = L.Dense(units=6, activation="softmax")(F)
    model = nc.Model(inputs=input_img, outputs=outputs)
    return model


utils.set_random_seed(0)
conv_model = convolutional_model((64, 64, 3))
conv_model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
conv_model.summary()

# %% [markdown]
# ### Training
#
# Adam (learning rate $10^{-3}$), batches of 64, 100 epochs, the test set as validation data, as in
# the course (about 20 s on two idle CPU cores). The model is tiny (1,310 parameters), so it
# learns slowly but steadily; the course reports about 78% on the test set after 100 epochs, and
# `benchmarks/accuracy.py` measures 0.775 ± 0.018 over three seeds with npconv (0.778 with PyTorch).

# %%
SIGNS_EPOCHS = 2 if FAST else 100
print(f"training for {SIGNS_EPOCHS} epochs (about 20 s on two idle cores), a line per epoch:")
start = time.perf_counter()
history = conv_model.fit(
    X_train, Y_train, batch_size=64, epochs=SIGNS_EPOCHS, validation_data=(X_test, Y_test), verbose=2
)
print(f"trained in {time.perf_counter() - start:.0f} s")

# %%
viz.plot_history(history)

# %%
loss, accuracy = conv_model.evaluate(X_test, Y_test)
probs = conv_model.predict(X_test)
y_pred = probs.argmax(axis=1)
y_true = Y_test_orig.ravel()
viz.plot_confusion_matrix(
    viz.confusion_matrix(y_true, y_pred, 6), sign_names, pictures=f"the {len(y_true)} test pictures"
)

# %%
viz.plot_misclassified(X_test_orig, y_true, y_pred, sign_names, probs=probs, n=16)

# %% [markdown]
# ### What did it learn?
#
# The first layer's eight 4×4×3 filters, each as its R, G and B channels side by side (red for
# positive weights, blue for negative, scaled to the filter's largest weight), and the feature maps
# of one test picture, shown on the left, on its way through the network: every channel of every
# layer, as an image.

# %%
first_conv = next(layer for layer in conv_model.layers if isinstance(layer, L.Conv2D))
viz.plot_filters(first_conv.get_weights()[0])

# %%
index = 0
# Every image-shaped layer output (CONV, RELU, POOL) for one test picture.
spatial = [layer.name for layer in conv_model.layers if isinstance(layer, (L.Conv2D, L.ReLU, L.MaxPool2D))]
outputs = conv_model.intermediate_outputs(X_test[index : index + 1].astype(np.float32), spatial)
maps, names = [out[0] for out in outputs.values()], list(outputs)
print(f"test picture {index}: sign {y_true[index]}, predicted {y_pred[index]} ({probs[index, y_pred[index]]:.0%})")
viz.plot_feature_maps(
    maps, names, max_channels=16, image=X_test_orig[index], image_title=f"test picture {index}\nsign {y_true[index]}"
)

# %% [markdown]
# ## 8. Where does the model look?
#
# Accuracy says how often a model is right, not what it looks at. **Grad-CAM** (Selvaraju et al.,
# 2017) asks where the evidence for a class lies. The class's score $S$ (its logit, before the
# sigmoid or softmax) is differentiated with respect to a layer's feature maps $A$, of shape
# $(h, w, K)$; each channel is weighted by the mean of its gradient, and the weighted sum, cut at
# zero, is the heatmap:
#
# $$\alpha_k = \frac{1}{hw}\sum_{i,j} \frac{\partial S}{\partial A_{ijk}}, \qquad
#   \text{cam} = \mathrm{ReLU}\Big(\sum_k \alpha_k\, A_{::k}\Big),$$
#
# scaled to its maximum and resized to the picture (`npconv.explain.grad_cam`, at the last feature
# maps unless told otherwise): bright where the evidence lies. The **saliency map**,
# $\max_c |\partial S / \partial x|$, marks the pixels that would change the score most
# (`npconv.explain.saliency`). Each is one backward pass, the one training uses, pointed at a feature
# map or at the input. From a terminal, `npconv explain MODEL PHOTO --out DIR` draws the same
# pictures, and `npconv train`'s report has the heatmaps of a few right and a few wrong validation
# pictures of each class (`gradcam.png`).
#
# ### The smile model in the Happy House
#
# Four of the 50 held-out house pictures (two smiling, two not), as the smile model sees them: first
# through the SMILEsmileD model as it is (zero-shot), then through the same model fine-tuned on the
# 100 house pictures.

# %%
from npconv import explain, explain_plots
from npconv.apps.datasets import to_float

door_x = to_float(as_model_input(x_door))  # the 50 held-out house pictures, as the smile model takes them
shown = np.concatenate([np.flatnonzero(y_door == 1)[:2], np.flatnonzero(y_door == 0)[:2]])
explain_plots.plot_explanations(smile.model, door_x[shown], labels=y_door[shown], class_names=happy_names)

# %%
explain_plots.plot_explanations(tuned.model, door_x[shown], labels=y_door[shown], class_names=happy_names)

# %% [markdown]
# Four pictures are anecdotes. Over all 50: each model's heatmaps averaged over the pictures it gives
# one verdict, drawn over the mean of those pictures.

# %%
import matplotlib.pyplot as plt


def mean_heatmap(model, x):
    # Each picture's map for its predicted class, averaged, over the mean of the pictures.
    return explain_plots.heatmap_overlay(x.mean(axis=0), explain.grad_cam(model, x).mean(axis=0))


panels = []
for name, model in (("zero-shot", smile.model), ("fine-tuned", tuned.model)):
    says = (model.predict(door_x)[:, 0] > 0.5).astype(int)
    for k in (1, 0):
        if np.any(says == k):
            panels.append(
                (f"{name}: {np.sum(says == k)} called\n{happy_names[k]!r}", mean_heatmap(model, door_x[says == k]))
            )
fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 3.0), squeeze=False)
for ax, (title, picture) in zip(axes[0], panels):
    ax.imshow(picture)
    ax.set_title(title, fontsize=10)
    ax.axis("off")
plt.show()

# %% [markdown]
# What the pictures of the full run show (the committed outputs):
#
# * **Zero-shot**, the smile model calls all four "not smiling" (0.98-0.99), the two smiles included,
#   as it calls all 50. Its evidence for "not smiling" lies mostly off the face: on the shirt and the
#   shoulders at the bottom of the frame and in the garden beside the head; the face itself takes part
#   in one of the four maps. On average over the 50 it is the same: the bottom of the frame and the
#   sides of the neck bright, the face dark. Its saliency is speckled over the whole picture. The
#   SMILEsmileD crops it learnt from are faces that fill the frame; here the face is a third of it.
# * **Fine-tuned**, it reads three of the four right (the first smile still comes out "not smiling",
#   0.53) and its saliency gathers on the middle of the face in all four. For its "smiling" verdict
#   the heatmap lies on the face, between the eyes and the mouth; averaged over the 28 pictures it
#   calls smiling, on the face, brightest in its lower half, with the shirt dark. Its evidence for
#   "not smiling" is elsewhere: above the head, at the top edge of the frame, in the three pictures
#   and in the mean of the 22. Not a smile's absence on the face, then, but something about the top
#   of these pictures that 100 training pictures taught it: the heatmap shows it, the accuracy (96%)
#   would not.
#
# ### SIGNS: right and wrong
#
# The course's SIGNS model on its test pictures, a row per sign: a few it reads right, then a few
# it reads wrong (titled in colour). Its last feature maps are $2 \times 2$ (after the 4×4 pool), so
# Grad-CAM there has four cells for the whole picture; one layer earlier, the second convolution's
# ReLU is $8 \times 8$, and that is where we look.

# %%
last_relu = [layer.name for layer in conv_model.layers if isinstance(layer, L.ReLU)][-1]
explain_plots.plot_right_and_wrong(
    conv_model,
    X_test,
    y_true,
    probs,
    sign_names,
    per_class=4,
    pictures=f"the {len(y_true)} test pictures",
    layer=last_relu,
)

# %% [markdown]
# In the full run: for a 0, the evidence is a small spot on the ring that the thumb and the index
# finger make, in all four pictures. For a 5 it is the grey background around the hand, nearly the
# whole frame, and the 3s and 4s mistaken for 5s light up the same way: the model seems to have learnt
# "5" as much background around a spread hand more than as five fingers. The 3s and 4s it reads right
# light up only in the bottom corners, off the hand, and many maps are blank (the 1s, most 2s): at this
# layer no place adds to the class's score, and those verdicts come with low probabilities (0.4-0.6).
# With 1,310 weights, and an 8×8 pool right after its first convolution, this model does not look at
# fingers. A residual network from `npconv train` does: even a short one (`npconv train signs
# --image-size 32 --epochs 12`, 0.942 on these pictures) puts its heatmaps on the hand (the picture in
# the README's "Why did it say that?").

# %% [markdown]
# ## 9. Your own photo: grey, dim, a left hand
#
# The test pictures above were taken like the training pictures: the same camera, light and hand.
# A learner's own photo differs. `npconv.data.corruptions` changes the test pictures the way a
# photo can differ (as ImageNet-C does, Hendrycks and Dietterich, 2019): here one picture in grey,
# dimmed, washed out, mirrored (a left hand) and under a warm white balance.

# %%
from npconv.data import corruptions

CHANGES = ["grayscale", "dimmed", "washed out", "mirrored", "white balance"]
changed_test = {"as it is": X_test_orig, **{name: corruptions.CORRUPTIONS[name](X_test_orig) for name in CHANGES}}
fig, axes = plt.subplots(1, len(changed_test), figsize=(2.0 * len(changed_test), 2.3))
for ax, (name, pictures) in zip(axes, changed_test.items()):
    ax.imshow(pictures[index])
    ax.set_title(name, fontsize=10)
    ax.axis("off")
plt.show()


# %%
def accuracy_on_changes(model):
    # The share of the test pictures read right, as they are and after each change.
    return {
        name: float(np.mean(model.predict(pictures / 255.0).argmax(axis=1) == y_true))
        for name, pictures in changed_test.items()
    }


plain_scores = accuracy_on_changes(conv_model)
for name, score in plain_scores.items():
    print(f"{name:>14}: {score:.3f}")

# %% [markdown]
# The model learnt colours and brightness along with the hands: in grey, dimmed or washed out it
# reads far fewer of the same pictures right, and the changes cost it more than anything in its own
# test set did. The usual cure is to show it such pictures while it trains. Keras's answer, and
# npconv's, is a few **augmentation layers** in front of the same network: each changes every
# training batch at random and does nothing at prediction time.
#
# * `RandomFlip("horizontal")`: a left hand counts fingers like a right one;
# * `RandomWhiteBalance(0.3)`: each colour channel scaled by its own factor in $[0.7, 1.3]$;
# * `RandomGrayscale(0.3)`: three pictures in ten turned grey;
# * `PerImageStandardization()`: each picture to mean 0 and standard deviation 1, in training *and*
#   at prediction, so a dimmed or washed-out picture, $a x + b$, becomes the picture itself.
#
# The same layers, the same optimizer and epochs (about 20 s):


# %%
def robust_convolutional_model(input_shape):
    input_img = nc.Input(shape=input_shape)
    x = L.RandomFlip("horizontal")(input_img)
    x = L.RandomWhiteBalance(0.3, value_range=(0, 1))(x)
    x = L.RandomGrayscale(0.3)(x)
    x = L.PerImageStandardization()(x)
    # From here on, convolutional_model's layers, unchanged.
    Z1 = L.Conv2D(filters=8, kernel_size=(4, 4), strides=(1, 1), padding="same")(x)
    A1 = L.ReLU()(Z1)
    P1 = L.MaxPool2D(pool_size=(8, 8), strides=(8, 8), padding="same")(A1)
    Z2 = L.Conv2D(filters=16, kernel_size=(2, 2), strides=(1, 1), padding="same")(P1)
    A2 = L.ReLU()(Z2)
    P2 = L.MaxPool2D(pool_size=(4, 4), strides=(4, 4), padding="same")(A2)
    F = L.Flatten()(P2)
    outputs = L.Dense(units=6, activation="softmax")(F)
    return nc.Model(inputs=input_img, outputs=outputs)


utils.set_random_seed(0)
robust_model = robust_convolutional_model((64, 64, 3))
robust_model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
print(f"training for {SIGNS_EPOCHS} epochs (about 20 s on two idle cores), a line per epoch:")
start = time.perf_counter()
robust_model.fit(X_train, Y_train, batch_size=64, epochs=SIGNS_EPOCHS, verbose=2)
print(f"trained in {time.perf_counter() - start:.0f} s")

# %%
robust_scores = accuracy_on_changes(robust_model)
positions = np.arange(len(changed_test))
fig, ax = plt.subplots(figsize=(8, 3))
ax.bar(positions - 0.2, list(plain_scores.values()), 0.4, label="convolutional_model")
ax.bar(positions + 0.2, list(robust_scores.values()), 0.4, label="with augmentation layers")
ax.axhline(1 / 6, color="grey", linestyle=":", label="chance (1/6)")
ax.set_xticks(positions, list(changed_test), fontsize=9)
ax.set_ylim(0, 1)
ax.set_ylabel("test accuracy")
ax.legend(fontsize=8, loc="lower left")
plt.show()

# %% [markdown]
# In the full run (the committed outputs), the plain model reads 27% to 58% of the changed pictures
# right; with the four layers in front, the same network reads about 75% to 80% of every set, as
# many as of the pictures as they are. The layers cost nothing on those, because nothing in them
# depends on the colour or the light that a change takes away.
#
# ### Saying "unsure"
#
# A network's probabilities are not its confidence: trained to be right on its training pictures,
# it gives a photo unlike any of them a class at 99% all the same. npconv's tools (`npconv
# predict`, the web page of `npconv serve` and `npconv.apps.verdict.classify`) answer with a verdict
# beside the class. `npconv.apps.calibration.calibrate` fits a **temperature** $T$ on held-out
# pictures (Guo et al., 2017: the probabilities become $\mathrm{softmax}(z / T)$ for the logits
# $z$, with $T$ minimising the held-out negative log-likelihood), and the verdict is "unsure" when
# the calibrated top probability is under 0.7, or when the picture is almost blank, looks like
# noise, or sits far from every class in the last layer's features. `npconv train` does this for
# every model it trains; here, by hand, on the test pictures as held-out set. Then a grey and a
# dimmed picture, a left hand, random noise and a blank wall:

# %%
from npconv.apps import calibration, verdict

calibration.calibrate(robust_model, X_train_orig, Y_train_orig.ravel(), X_test_orig, y_true, held_out="test set")
photos = np.stack(
    [
        changed_test["grayscale"][index],
        changed_test["dimmed"][index],
        changed_test["mirrored"][index],
        np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8),  # random noise
        np.full((64, 64, 3), 200, dtype=np.uint8),  # a blank wall
    ]
)
titles = ["grey", "dimmed", "a left hand", "random noise", "a blank wall"]
fig, axes = plt.subplots(1, len(photos), figsize=(2.2 * len(photos), 2.8))
for ax, photo, title, answer in zip(axes, photos, titles, verdict.classify(robust_model, photos)):
    ax.imshow(photo)
    said = f"sign {answer['class']} ({answer['calibrated_probability']:.0%})"
    ax.set_title(
        f"{title}\n{said}\n{answer['verdict']}",
        fontsize=9,
        color="darkorange" if answer["verdict"] == "unsure" else "black",
    )
    ax.axis("off")
    print(f"{title:>13}: {said}, {answer['verdict']}" + (f" ({answer['why']})" if answer["why"] else ""))
plt.show()

# %% [markdown]
# The app's own SIGNS model, `npconv train signs`, is trained this way by default (with more: zoomed
# out and tilted copies, blur and noise), and measured on these changes and on other people's hands
# in the robustness benchmark (`docs/benchmarks/robustness.md`, `python benchmarks/robustness.py`).

# %% [markdown]
# ## 10. Next steps: the command line and a stronger model
#
# The course's SIGNS model has only 1,310 weights and pools away most of the picture after one
# layer. npconv's default network (`smallres`: a small residual network with batch normalisation,
# trained with Adam, cosine learning-rate decay and light augmentation) does much better on the same
# data. From a terminal:
#
# ```bash
# export NPCONV_DATA=/path/to/datasets
# npconv train signs                   # the default recipe and model; writes model.npz and a report folder
# npconv train signs --arch signs      # the course's convolutional_model, for comparison
# npconv evaluate model.npz signs      # on test_signs.h5
# npconv train smiles --arch happy     # the course's happyModel on SMILEsmileD
# npconv --help
# ```
#
# Everything in this notebook also runs without a notebook: `npconv.course` for the loops,
# `npconv.functional` for the kernels, and the Keras-like API for models.
