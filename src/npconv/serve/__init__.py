"""``npconv serve MODEL``: a local web page to try a model on your own photos.

Drop a photo (or use the webcam) and the page shows the predicted class with a bar per class, the
Happy House door for a smile model, the photo as the model sees it and the feature maps of every
convolution. Built on Starlette and uvicorn, the optional extra ``npconv[serve]``::

    pip install 'npconv[serve]'
    npconv serve runs/smiles.npz            # http://127.0.0.1:8000

``create_app(model)`` gives the ASGI app itself (tests drive it with Starlette's ``TestClient``).
"""

from __future__ import annotations

import importlib
import sys

from ..errors import NpconvError

#: The modules of the ``serve`` extra (import names).
SERVE_MODULES = ("starlette", "uvicorn", "python_multipart")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class MissingExtraError(NpconvError, ImportError):
    """An optional dependency of npconv is not installed."""


def require_extra() -> None:
    """Raise :class:`MissingExtraError` saying how to install the ``serve`` extra if any part is missing."""
    missing = []
    for module in SERVE_MODULES:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module.replace("_", "-"))
    if missing:
        raise MissingExtraError(
            f"npconv serve: expected the web server packages of the 'serve' extra, "
            f"got {', '.join(missing)} not installed. Install them: "
            "pip install 'npconv[serve]'."
        )


def create_app(model, file_name: str = "model", kernels=None):
    """The Starlette app serving ``model`` (see :mod:`npconv.serve.app`); ``kernels``: the path of the
    learner's course functions that the ``/learn`` page runs (``npconv serve --kernels``)."""
    require_extra()
    from .app import create_app as build

    return build(model, file_name, kernels)


def run(model, file_name: str, host: str = "127.0.0.1", port: int = 8000, kernels=None) -> None:
    """Serve ``model`` with uvicorn on ``host:port`` until Ctrl-C."""
    require_extra()
    import uvicorn

    app = create_app(model, file_name, kernels)
    if host not in LOOPBACK:
        print(
            f"npconv: warning: serving on {host}: other machines on the network can reach this "
            "page. Use --host 127.0.0.1 to keep it to this machine.",
            file=sys.stderr,
        )
    shown = f"[{host}]" if ":" in host else host
    print(f"Serving {file_name} at http://{shown}:{port}/ (Ctrl-C to stop)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
