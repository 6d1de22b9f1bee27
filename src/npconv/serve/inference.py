"""One photo through a model, as the page shows it: the class probabilities, the Happy House door,
the picture the model sees, where it looked (Grad-CAM over that picture), and the feature maps of
every convolution.

The preparation is ``npconv predict``'s and training's: the photo decoded to the model's input size
and colour mode by the area filter (:func:`npconv.apps.photos.prepare_photo`, through
:func:`npconv.serve.uploads.decode_photo`), divided by the metadata's ``value_scale``, then
``model.predict``, :func:`npconv.apps.heads.probabilities` and the model's verdict
(:func:`npconv.apps.verdict.classify`, as ``npconv predict``).
"""

from __future__ import annotations

import threading

import numpy as np

from .. import explain
from ..apps.datasets import to_float
from ..apps.model_info import is_smile_model, metadata
from ..apps.verdict import classify
from ..explain_plots import heatmap_overlay
from ..layers import Conv2D
from .pictures import feature_map_grid, png_data_url


class Predictor:
    """A loaded model ready for one photo at a time, from any number of threads.

    Layers keep their forward caches and work buffers on themselves, so two forward passes at once
    would overwrite each other's: :meth:`predict` runs the model under a lock (about a millisecond
    for the course models at 64 x 64).
    """

    def __init__(self, model, max_channels: int = 32):
        self.model = model
        self.metadata = metadata(model)
        self.input_shape = tuple(int(s) for s in self.metadata["input_shape"])
        self.class_names = [str(n) for n in self.metadata["class_names"]]
        self.is_smile_model = is_smile_model(self.metadata)
        self.conv_layers = [layer.name for layer in model.layers if isinstance(layer, Conv2D)]
        self.explains = bool(explain.spatial_layers(model))  # Grad-CAM needs feature maps
        self.max_channels = max_channels
        self._lock = threading.Lock()

    def predict(self, image: np.ndarray) -> dict:
        """The page's answer for one uint8 image ``(n_H, n_W, n_C)`` of the model's input shape.

        ``{"label", "probabilities": {class: p}, "calibrated_probabilities": {class: q}, "verdict":
        "sure" or "unsure", "why" (:func:`npconv.apps.verdict.classify`), "door_opens" (smile
        models only), "model_input" (PNG data URL), "heatmap" (PNG data URL: the predicted class's
        Grad-CAM over the model's input, its size; models with feature maps only), "feature_maps":
        [{"layer", "shape", "channels_shown", "png"}]}``.
        """
        x = to_float(image[None], self.metadata["value_scale"])
        with self._lock:
            said = classify(self.model, image[None])[0]
            cam = explain.grad_cam(self.model, x)[0] if self.explains else None
            maps = self.model.intermediate_outputs(x, self.conv_layers) if self.conv_layers else {}
        answer = {
            "label": said["class"],
            "probabilities": said["probabilities"],
            "calibrated_probabilities": said["calibrated_probabilities"],
            "verdict": said["verdict"],
            "why": said["why"],
            "model_input": png_data_url(image),
        }
        if self.is_smile_model:
            answer["door_opens"] = said["door_opens"]
        if cam is not None:
            answer["heatmap"] = png_data_url(heatmap_overlay(image, cam))
        answer["feature_maps"] = [
            {
                "layer": name,
                "shape": list(fmap.shape[1:]),
                "channels_shown": min(fmap.shape[-1], self.max_channels),
                "png": png_data_url(feature_map_grid(fmap[0], self.max_channels)),
            }
            for name, fmap in maps.items()
        ]
        return answer
