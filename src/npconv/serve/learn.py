"""The ``/learn`` page's routes: one training step of the served model, number by number.

    GET  /learn                 the page (static HTML, no build step)
    GET  /api/learn/samples     the sample pictures offered (see :mod:`.learn_samples`)
    POST /api/learn/photo       multipart field ``image`` -> a new session and its summary
    POST /api/learn/sample      ``{"sample": k}`` -> a new session on sample k and its summary
    GET  /api/learn/summary     ``session``, ``label`` -> loss, probabilities, layers, first difference
    GET  /api/learn/layer       ``session``, ``label``, ``layer``, ``channel``, ``in_channel`` -> its maps
    GET  /api/learn/terms       ``session``, ``label``, ``layer``, ``which``, ``index`` -> the entry's terms
    POST /api/learn/step        ``{"session", "label"}`` -> one optimizer update of the session's weights
    GET  /api/learn/update      ``session``, ``layer``, ``channel``, ``in_channel`` -> W_old, dW, W_new, slots
    POST /api/learn/rewind      ``{"session"}`` -> the model's own weights again

``kernels=mine`` on ``layer`` and ``terms`` shows the learner's trace (``npconv serve --kernels``). The
learner's file is the one named on the command line; a visitor sends a photo and numbers, nothing else.
Bad requests get ``{"error": message}`` with 400 (404 for an expired session).
"""

from __future__ import annotations

import json
from importlib.resources import files

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from ..apps.heads import probabilities
from ..errors import ShapeError, expected
from ..trace.terms import TERMS
from .learn_samples import load_samples
from .learn_sessions import Learner, SessionGone
from .learn_views import array_map, parse_index, terms_answer
from .pictures import png_data_url
from .uploads import decode_photo, read_image_field

_BAD_REQUEST = (ValueError, TypeError, IndexError, KeyError, ShapeError)


def pickers(trace, name: str) -> dict:
    """The channel pickers a layer's row has: ``channel`` (its output's channels, a Dense layer's units,
    or its input's channels for a flattening layer) and ``in_channel`` (a convolution's input channels)."""
    record = trace.record(name)
    out = record.output
    x = record.inputs[0] if record.inputs else out  # the input layer has no input of its own
    kernel = record.weights.get("W")
    in_channel = int(kernel.shape[2]) if kernel is not None and kernel.ndim == 4 else None
    if out is not None and out.ndim == 4:
        channel = int(out.shape[-1])
    elif kernel is not None and kernel.ndim == 2:
        channel = int(kernel.shape[1])
    else:
        channel = int(x.shape[-1]) if x.ndim == 4 else None
    return {"channel": channel, "in_channel": in_channel}


def lively(trace, name: str) -> int:
    """The output channel that the most gradient flows through (``sum |dout|``), where the page's
    channel picker starts: after a ReLU, channel 0 may carry none at all for a photo."""
    record = trace.record(name)
    dout = record.grads.get("dout")
    if dout is None or np.ndim(dout) != 4:
        return 0
    return int(np.argmax(np.abs(dout[0]).sum(axis=(0, 1))))


def layer_maps(trace, name: str, channel: int, in_channel: int, backward: bool) -> dict:
    """The shown maps of layer ``name``: its input and output, and with ``backward`` every gradient."""
    record = trace.record(name)
    choice = pickers(trace, name)
    if choice["channel"] is None:
        channel = 0
    c_in = in_channel if choice["in_channel"] is not None else channel

    def activation(array, label, c):
        return array_map(array, label, c if array.ndim == 4 else 0, 0)

    maps = {"output": activation(trace.output(name), "output", channel)}
    if record.inputs:  # the input layer has none: its output is the photo
        maps = {"input": activation(record.inputs[0], "input" if len(record.inputs) == 1 else "input[0]", c_in), **maps}
    if backward:
        for which in trace.whiches(name):
            grad = trace.grad(name, which)
            for k, g in enumerate(grad if isinstance(grad, list) else [grad]):
                label = f"{which}[{k}]" if isinstance(grad, list) else which
                if which in ("dout", "dZ"):
                    maps[label] = activation(g, label, channel)
                elif which == "dx":
                    maps[label] = activation(g, label, c_in)
                else:
                    maps[label] = array_map(g, label, channel, in_channel, batch_first=False)
    opens = TERMS.get(type(record.layer).__name__, ())
    return {
        "layer": name,
        "type": type(record.layer).__name__,
        **choice,
        "channel_shown": channel,
        "in_channel_shown": c_in,
        "maps": maps,
        "terms": [w for w in opens if w in maps],
    }


def learn_routes(model, predictor, kernels=None, data_dir=None) -> list[Route]:
    """The routes of the ``/learn`` page for ``model`` (served by ``predictor``)."""
    meta = predictor.metadata
    learner = Learner(model, meta["value_scale"], predictor.class_names, kernels)
    page = (files(__package__) / "static" / "learn.html").read_text(encoding="utf-8")
    samples: dict = {}

    def sample_list():
        if not samples:
            source, pictures = load_samples(meta, predictor.input_shape, data_dir)
            samples.update(source=source, pictures=pictures)
        return samples

    def summary(sid: str, label_text=None) -> dict:
        session = learner.session(sid)
        label = learner.label(label_text) if label_text not in (None, "") else None
        if label is None:  # until the visitor picks one: the model's own verdict
            first = learner.views(sid, 0).reference
            label = int(np.argmax(probabilities(first.output(first.names[-1]))[0]))
        views = learner.views(sid, label)
        trace = views.reference
        probs = probabilities(trace.output(trace.names[-1]))[0]
        layers = [dict(row, **pickers(trace, row["name"]), lively=lively(trace, row["name"])) for row in trace.layers()]
        answer = {
            "session": sid,
            "photo": png_data_url(session.photo),
            "classes": predictor.class_names,
            "label": predictor.class_names[label],
            "loss": trace.loss,
            "steps": session.steps,
            "probabilities": {n: float(p) for n, p in zip(predictor.class_names, probs)},
            "layers": layers,
            "optimizer": model.optimizer.get_config(),
            "kernels": None if kernels is None else str(kernels),
        }
        if kernels is not None:
            answer["kernels_error"] = views.kernels_error
            answer["difference"] = None if views.difference is None else _plain(views.difference.to_dict())
            answer["stopped"] = views.mine.stopped if views.mine is not None else None
        return answer

    def chosen(request: Request, sid: str):
        views = learner.views(sid, learner.label(request.query_params.get("label", "0")))
        if request.query_params.get("kernels") == "mine":
            if views.mine is None:
                raise ValueError(
                    "kernels=mine: this server runs no learner's kernels (npconv serve MODEL --kernels mine.py)"
                    if kernels is None
                    else f"kernels=mine: the learner's functions failed: {views.kernels_error}"
                )
            return views.mine
        return views.reference

    def number(request: Request, key: str, default: int = 0) -> int:
        text = request.query_params.get(key, str(default))
        try:
            return int(text)
        except ValueError:
            raise ValueError(expected(key, "an integer", repr(text))) from None

    def param(request: Request, key: str) -> str:
        if key not in request.query_params:
            raise ValueError(f"expected the query parameter {key!r}")
        return request.query_params[key]

    def layer(request: Request) -> dict:
        trace = chosen(request, param(request, "session"))
        name = param(request, "layer")
        trace.record(name)  # an unknown name lists the valid ones
        return layer_maps(
            trace,
            name,
            number(request, "channel"),
            number(request, "in_channel"),
            request.query_params.get("backward", "1") != "0",
        )

    def terms(request: Request) -> dict:
        trace = chosen(request, param(request, "session"))
        return terms_answer(
            trace, param(request, "layer"), param(request, "which"), parse_index(param(request, "index"))
        )

    def update(request: Request) -> dict:
        sid, name = param(request, "session"), param(request, "layer")
        learner.views(sid, 0).reference.record(name)  # an unknown name lists the valid ones
        channel, in_channel = number(request, "channel"), number(request, "in_channel")
        weights = learner.update(sid, name)
        return {
            "layer": name,
            "steps": learner.session(sid).steps,
            "weights": {
                w: {
                    label: array_map(a, label, channel if a.ndim > 1 else 0, in_channel, batch_first=False)
                    for label, a in arrays.items()
                }
                for w, arrays in weights.items()
            },
        }

    async def body(request: Request) -> dict:
        try:
            data = json.loads(await request.body() or b"{}")
        except json.JSONDecodeError as exc:
            raise ValueError(f"expected a JSON body, got invalid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise TypeError(expected("body", 'a JSON object such as {"session": "..."}', type(data).__name__))
        return data

    def respond(work):
        async def endpoint(request: Request) -> JSONResponse:
            try:
                return JSONResponse(await work(request))
            except SessionGone as exc:
                return JSONResponse({"error": str(exc)}, status_code=404)
            except _BAD_REQUEST as exc:
                message = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
                return JSONResponse({"error": message}, status_code=400)

        return endpoint

    def threaded(function):
        async def work(request: Request):
            return await run_in_threadpool(function, request)

        return work

    async def photo(request: Request):
        data = await read_image_field(request)
        image = await run_in_threadpool(decode_photo, data, predictor.input_shape)
        return await run_in_threadpool(summary, learner.open(image))

    async def sample(request: Request):
        k = (await body(request)).get("sample")
        pictures = (await run_in_threadpool(sample_list))["pictures"]
        if not isinstance(k, int) or not 0 <= k < len(pictures):
            raise ValueError(expected("sample", f"a number from 0 to {len(pictures) - 1}", repr(k)))
        return await run_in_threadpool(summary, learner.open(pictures[k][0].copy()), pictures[k][1])

    async def step(request: Request):
        data = await body(request)
        sid = str(data.get("session"))
        label = learner.label(data.get("label", 0))
        rate = data.get("learning_rate")
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate <= 10):
            raise ValueError(expected("learning_rate", "a number in (0, 10]", repr(rate)))
        done = await run_in_threadpool(learner.step, sid, label, rate)
        return {**done, **await run_in_threadpool(summary, sid, label)}

    async def rewind(request: Request):
        data = await body(request)
        sid = str(data.get("session"))
        learner.rewind(sid)
        return await run_in_threadpool(summary, sid, data.get("label"))

    def listing(request: Request) -> dict:
        found = sample_list()
        return {
            "source": found["source"],
            "samples": [
                {"id": k, "label": label, "png": png_data_url(p)} for k, (p, label) in enumerate(found["pictures"])
            ],
        }

    async def index(request: Request) -> HTMLResponse:
        return HTMLResponse(
            page,
            headers={"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"},
        )

    get = threaded
    return [
        Route("/learn", index),
        Route("/api/learn/samples", respond(get(listing))),
        Route("/api/learn/photo", respond(photo), methods=["POST"]),
        Route("/api/learn/sample", respond(sample), methods=["POST"]),
        Route("/api/learn/summary", respond(get(lambda r: summary(param(r, "session"), r.query_params.get("label"))))),
        Route("/api/learn/layer", respond(get(layer))),
        Route("/api/learn/terms", respond(get(terms))),
        Route("/api/learn/step", respond(step), methods=["POST"]),
        Route("/api/learn/update", respond(get(update))),
        Route("/api/learn/rewind", respond(rewind), methods=["POST"]),
    ]


def _plain(value):
    """NumPy scalars and tuples inside a dict as JSON's numbers and lists."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
