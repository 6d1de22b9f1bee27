"""An uploaded photo, from the request body to the uint8 array a model takes, within fixed limits.

Nothing touches the file system: the body is read into memory (at most :data:`MAX_UPLOAD_BYTES`),
the multipart parser keeps the file part in memory, and Pillow decodes from a ``BytesIO``. The image
size is checked from its header before any pixel is decoded (:data:`MAX_PIXELS`), so a
decompression bomb (a small PNG of 30000 x 30000 pixels) costs a few bytes of reading, not gigabytes.
"""
from __future__ import annotations

import io
import threading
from collections.abc import AsyncIterator

import numpy as np
from PIL import Image, UnidentifiedImageError
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from ..apps.photos import prepare_photo

#: Largest request body accepted (413 above it).
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
#: Largest image accepted, width x height (a 24-megapixel camera photo is 6000 x 4000).
MAX_PIXELS = 25_000_000
#: Image formats Pillow may decode: the ones browsers show. Pillow knows many more (EPS through
#: Ghostscript, for one) that a web upload has no reason to reach.
FORMATS = ("JPEG", "PNG", "GIF", "BMP", "WEBP")
#: Photos decoded at once: a full-size decode holds up to MAX_PIXELS x 4 bytes (100 MB).
_DECODE_SLOTS = threading.BoundedSemaphore(4)


class UploadError(Exception):
    """A request the server refuses: ``status`` (400 or 413) and a message for the user."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class _InMemoryMultiPartParser(MultiPartParser):
    # Starlette spools file parts over 1 MB to a temporary file; the body is capped below this size,
    # so the spool never rolls over to disk.
    spool_max_size = MAX_UPLOAD_BYTES + 1


async def _limited(stream: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    """``stream`` unchanged, or a 413 :class:`UploadError` once more than ``limit`` bytes arrive."""
    received = 0
    async for chunk in stream:
        received += len(chunk)
        if received > limit:
            raise UploadError(413, f"upload too large: the limit is {limit // (1024 * 1024)} MB. "
                                   "Send a smaller photo.")
        yield chunk


async def read_image_field(request: Request, field: str = "image") -> bytes:
    """The bytes of the multipart file field ``field`` of ``request`` (the form a file input posts)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
        raise UploadError(413, f"upload too large: {int(declared):,} bytes, the limit is "
                               f"{MAX_UPLOAD_BYTES // (1024 * 1024)} MB. Send a smaller photo.")
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise UploadError(400, f"expected a multipart/form-data body with a file field '{field}', got "
                               f"content type {request.headers.get('content-type', 'none')!r}.")
    parser = _InMemoryMultiPartParser(request.headers, _limited(request.stream(), MAX_UPLOAD_BYTES),
                                      max_files=1, max_fields=8)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise UploadError(400, f"the upload is not a valid multipart form ({exc}).") from exc
    try:
        upload = form.get(field)
        if upload is None or isinstance(upload, str):
            raise UploadError(400, f"expected a file in the form field '{field}', got "
                                   f"{'a text value' if isinstance(upload, str) else 'no such field'}.")
        return await upload.read()
    finally:
        await form.close()


def decode_photo(data: bytes, input_shape) -> np.ndarray:
    """``data`` (an encoded photo) as uint8 ``(n_H, n_W, n_C)`` for a model taking
    ``input_shape = (n_H, n_W, n_C)``: :func:`npconv.apps.photos.prepare_photo`, as ``npconv predict``
    and training prepare pictures, within the limits above."""
    if not data:
        raise UploadError(400, "the file is empty: choose a photo (JPEG, PNG, GIF, BMP or WebP).")
    try:
        with _DECODE_SLOTS:
            return prepare_photo(io.BytesIO(data), input_shape, formats=FORMATS, max_pixels=MAX_PIXELS)
    except Image.DecompressionBombError as exc:
        raise UploadError(413, f"image too large: {str(exc).rstrip('.')}. Send a photo of at most "
                               f"{MAX_PIXELS // 1_000_000} megapixels.") from exc
    except UnidentifiedImageError as exc:
        raise UploadError(400, "not an image: the file is none of JPEG, PNG, GIF, BMP or WebP. "
                               "Send a photo in one of these formats.") from exc
    except (OSError, ValueError, SyntaxError) as exc:  # truncated or corrupt files
        raise UploadError(400, f"the image could not be decoded ({exc}). Check that the file is a "
                               "complete photo.") from exc
