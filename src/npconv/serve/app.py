"""The web app: three Starlette routes around a :class:`~npconv.serve.inference.Predictor`.

    GET  /              the page (static HTML, no build step)
    GET  /api/model     the model card (JSON)
    GET  /learn         one training step, number by number (routes in :mod:`npconv.serve.learn`)
    POST /api/predict   multipart field ``image`` -> {"label", "probabilities", "heatmap", ...} (JSON)

Refused requests get a JSON ``{"error": message}`` with 400 (not an image, bad form) or 413 (too
large); the app keeps serving after each.
"""

from __future__ import annotations

from importlib.resources import files

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from .card import model_card
from .inference import Predictor
from .learn import learn_routes
from .uploads import UploadError, decode_photo, read_image_field

#: Sent with every page and answer: the browser must not guess content types or frame the page.
_HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}


def create_app(model, file_name: str = "model", kernels=None) -> Starlette:
    """The app serving ``model`` (an npconv model; ``file_name`` names it on the model card), with the
    ``/learn`` page (:mod:`npconv.serve.learn`; ``kernels``: the learner's file it runs, if any)."""
    predictor = Predictor(model)
    card = model_card(predictor, file_name)
    page = (files(__package__) / "static" / "index.html").read_text(encoding="utf-8")

    def answer(photo: bytes) -> dict:
        return predictor.predict(decode_photo(photo, predictor.input_shape))

    async def index(request: Request) -> HTMLResponse:
        return HTMLResponse(page, headers=_HEADERS)

    async def model_info(request: Request) -> JSONResponse:
        return JSONResponse(card, headers=_HEADERS)

    async def predict(request: Request) -> JSONResponse:
        photo = await read_image_field(request)
        # Decoding and the forward pass are CPU work: a worker thread, so the event loop keeps serving.
        return JSONResponse(await run_in_threadpool(answer, photo), headers=_HEADERS)

    async def refused(request: Request, exc: UploadError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=exc.status, headers=_HEADERS)

    routes = [
        Route("/", index),
        Route("/api/model", model_info),
        Route("/api/predict", predict, methods=["POST"]),
    ] + learn_routes(model, predictor, kernels)
    return Starlette(routes=routes, exception_handlers={UploadError: refused})
