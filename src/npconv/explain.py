"""See what a model sees: Grad-CAM and saliency maps of its decisions.

Both explain one score per image, ``S``: the logit of a class, the model's output before its final
softmax or sigmoid. For a one-unit sigmoid model ``S = z`` for class 1 and ``S = -z`` for class 0
(the logit of ``1 - p``). By default the class is the predicted one.

* **Grad-CAM** (Selvaraju et al., 2017), at a layer with activations ``A (m, h, w, K)``::

      alpha[i, k] = mean over (h, w) of dS/dA[i, :, :, k]
      cam[i]      = relu(sum_k alpha[i, k] * A[i, :, :, k]) / its maximum   (all zeros where that is 0)

  then resized bilinearly to the input's size (half-pixel centres, as
  ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)``:
  :func:`npconv.data.resample.resize_bilinear`). Where the class's evidence lies, at the layer's
  resolution: coarse, and specific to the class.
* **Saliency** (Simonyan et al., 2014): ``max over channels of |dS/dx|``, not normalised: which
  pixels would change the score most, at full resolution.

Each is one forward and one backward pass through :meth:`npconv.Model.gradients`, in inference
mode; the model is left exactly as it was (weights, batch-norm statistics, optimizer state), so
explaining between two ``fit`` calls changes nothing about the training.

An averaged model (:func:`npconv.apps.ensemble.average_models`) is explained through its averaged
logit. Its Grad-CAM defaults to the last feature maps of every member together (see
:func:`default_layers`): the mean of the members' own maps before the ReLU, since the average's
score is the mean of theirs.
"""

from __future__ import annotations

import numpy as np

from .data.resample import resize_bilinear
from .errors import ShapeError, expected

__all__ = ["grad_cam", "saliency", "cam_layers", "default_layers", "spatial_layers"]


def grad_cam(model, x, layer=None, class_index=None, resize=True) -> np.ndarray:
    """Grad-CAM heatmaps of ``x``'s class scores at ``layer`` (see the module docstring).

    Parameters
    ----------
    model : a built :class:`npconv.Model` taking images ``(n_H, n_W, n_C)``, with a classifier output
    x : one image ``(n_H, n_W, n_C)`` or a batch ``(m, n_H, n_W, n_C)``, uint8 or float, prepared as
        ``model.predict`` takes it (the same size, colour mode and scale)
    layer : a layer name, or a list of names of layers of one spatial size whose maps are summed;
        default :func:`default_layers` (the last layer with a 4-D output)
    class_index : int, a sequence of ints (one per image), or None for the predicted classes
    resize : True to resize to the input's ``(n_H, n_W)``; False keeps the layer's ``(h, w)``

    Returns
    -------
    cam : ndarray (m, n_H, n_W) (or (m, h, w)), float in [0, 1]
    """
    x = _image_batch(model, x)
    names = cam_layers(model, layer)
    _, activations, gradients = model.gradients(x, _class_seed(model, class_index, len(x)), names)
    cam = sum(np.einsum("ihwk,ik->ihw", activations[name], gradients[name].mean(axis=(1, 2))) for name in names)
    cam = np.maximum(cam, 0)
    peak = cam.max(axis=(1, 2), keepdims=True)
    cam = np.divide(cam, peak, out=np.zeros_like(cam), where=peak > 0)
    if resize:
        cam = np.clip(resize_bilinear(cam[..., None], x.shape[1:3])[..., 0], 0, 1)
    return cam


def saliency(model, x, class_index=None) -> np.ndarray:
    """``max over channels of |dS/dx|`` (m, n_H, n_W) for ``x``'s class scores (not normalised).

    ``x`` and ``class_index`` as in :func:`grad_cam`; the gradient is taken with respect to ``x`` as
    the model receives it (in its dtype, after any augmentation layers, which are the identity here).
    """
    x = _image_batch(model, x)
    entry = model.inputs[0].layer.name
    _, _, gradients = model.gradients(x, _class_seed(model, class_index, len(x)), entry)
    return np.abs(gradients[entry]).max(axis=-1)


def spatial_layers(model) -> list[str]:
    """The names of ``model``'s layers with a 4-D output ``(None, h, w, K)``, in graph order: the
    layers :func:`grad_cam` can look at."""
    return [node.layer.name for node in model._nodes if len(model._tensors[node.output].shape) == 4]


def default_layers(model) -> list[str]:
    """Where :func:`grad_cam` looks by default: the last layer with a 4-D output.

    For a model whose output averages branches after all its feature maps (an averaged model,
    ``Average`` of its members' logits), the last 4-D layer of each branch: the average's score is
    the mean of the members' scores, so its Grad-CAM over their maps together is the mean of the
    members' linear maps, before the ReLU. Grad-CAM at one member's layer would explain that member
    alone.
    """
    nodes = model._nodes
    spatial = set(spatial_layers(model))
    last = max((k for k, node in enumerate(nodes) if node.layer.name in spatial), default=None)
    if last is None:
        raise ValueError(
            expected(
                "model",
                "a layer with a spatial (4-D) output for Grad-CAM",
                "none (" + ", ".join(f"{n.layer.name} {model._tensors[n.output].shape}" for n in nodes) + ")",
                "Grad-CAM needs feature maps (a Conv2D or pooling layer); saliency(model, x) works on any image model.",
            )
        )
    from .layers import Average

    merge = next((k for k in range(len(nodes) - 1, last, -1) if isinstance(nodes[k].layer, Average)), None)
    if merge is None:
        return [nodes[last].layer.name]
    producer = {node.output: k for k, node in enumerate(nodes)}

    def last_spatial_before(tensor):
        """The last 4-D layer among the nodes that ``tensor`` is computed from."""
        seen, stack = set(), [tensor]
        while stack:
            k = producer.get(stack.pop())
            if k is not None and k not in seen:
                seen.add(k)
                stack.extend(nodes[k].inputs)
        return max((k for k in seen if nodes[k].layer.name in spatial), default=None)

    branches = sorted({k for k in map(last_spatial_before, nodes[merge].inputs) if k is not None})
    return [nodes[k].layer.name for k in branches]


# ------------------------------------------------------------------ checks


def _image_batch(model, x) -> np.ndarray:
    """``x`` as a batch ``(m, n_H, n_W, n_C)`` for ``model``: one image gets the batch axis."""
    model._require_built("x")
    shape = tuple(model.input_shape[1:])
    if len(shape) != 3:
        raise ValueError(
            expected(
                "model",
                "an image model, input (None, n_H, n_W, n_C)",
                str(model.input_shape),
                "Grad-CAM and saliency explain image models.",
            )
        )
    x = np.asarray(x)
    if x.shape == shape:
        x = x[None]
    if x.shape[1:] != shape or x.ndim != 4:
        raise ShapeError(
            expected(
                "x",
                f"one image of shape {shape} or a batch (m, {', '.join(map(str, shape))})",
                f"shape {x.shape}",
                f"Prepare photos as predict does: npconv.apps.photos.load_photos(paths, {shape}) resizes them "
                f"to {shape[0]}x{shape[1]} with {shape[2]} channel(s).",
            )
        )
    return x


def cam_layers(model, layer=None) -> list[str]:
    """The names of the layers :func:`grad_cam` looks at for ``layer`` (default:
    :func:`default_layers`), checked: known, 4-D, one spatial size; an unknown name is refused with
    the valid ones listed. Callers check a user's choice with it before any work."""
    if layer is None:
        names = default_layers(model)
    else:
        names = [layer] if isinstance(layer, str) else list(layer)
        if not names or not all(isinstance(name, str) for name in names):
            raise TypeError(expected("layer", "a layer name or a list of names", repr(layer)))
    spatial = spatial_layers(model)
    shapes = {node.layer.name: model._tensors[node.output].shape for node in model._nodes}
    for name in names:
        if name in spatial:
            continue
        valid = ", ".join(map(repr, spatial)) or "none"
        if name == model.inputs[0].layer.name:
            got, fix = f"the input layer {name!r}", "For the gradient at the input use saliency(model, x)."
        elif name in shapes:
            got, fix = f"{name!r} with output {shapes[name]}", f"Grad-CAM needs feature maps: choose one of {valid}."
        else:
            got, fix = f"{name!r}, which is not a layer of this model", f"The layers with 4-D outputs: {valid}."
        raise ValueError(expected("layer", "a layer with a spatial (4-D) output (None, h, w, K)", got, fix))
    sizes = {shapes[name][1:3] for name in names}
    if len(sizes) > 1:
        raise ValueError(
            expected(
                "layer",
                "layers of one spatial size (their maps are summed)",
                ", ".join(f"{name} {shapes[name]}" for name in names),
                "Pass one of them as layer=...",
            )
        )
    return names


def _n_classes(model) -> int:
    """2 for a one-unit (sigmoid) output, else the number of outputs; refuses non-classifiers."""
    shape = model.output_shape
    if len(shape) != 2:
        raise ValueError(
            expected(
                "model",
                "a classifier with output (None, n_classes) or (None, 1)",
                str(shape),
                "Explaining needs one score per class.",
            )
        )
    return 2 if shape[1] == 1 else shape[1]


def _class_names(model, n_classes) -> str:
    names = (getattr(model, "metadata", None) or {}).get("class_names") or []
    if len(names) != n_classes:
        return ""
    return " (" + ", ".join(f"{k} {name!r}" for k, name in enumerate(names)) + ")"


def _class_seed(model, class_index, m):
    """``seed(z)`` for :meth:`~npconv.Model.gradients`: picks each image's class score ``S``."""
    n_classes = _n_classes(model)
    one_unit = model.output_shape[1] == 1
    chosen = None
    if class_index is not None:
        chosen = np.asarray(class_index)
        if chosen.ndim == 0:
            chosen = np.full(m, chosen)
        if chosen.dtype.kind not in "iu" or chosen.shape != (m,):
            raise ValueError(
                expected(
                    "class_index",
                    f"an int or a sequence of {m} ints (one per image)",
                    repr(class_index),
                    "Or None for each image's predicted class.",
                )
            )
        bad = chosen[(chosen < 0) | (chosen >= n_classes)]
        if bad.size:
            raise ValueError(
                expected(
                    "class_index",
                    f"a class in 0..{n_classes - 1}{_class_names(model, n_classes)}",
                    str(int(bad[0])),
                    f"The model has {n_classes} classes.",
                )
            )

    def seed(z):
        classes = chosen
        if classes is None:
            classes = (z[:, 0] > 0).astype(int) if one_unit else z.argmax(axis=1)
        if one_unit:
            return np.where(classes == 1, 1.0, -1.0)[:, None]
        return np.eye(z.shape[1])[classes]

    return seed
