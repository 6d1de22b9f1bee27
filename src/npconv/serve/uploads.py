"""An uploaded photo, from the request body to the uint8 array a model takes, within fixed limits.

Nothing touches the file system: the body is read into memory, the multipart parser keeps the photo
in memory (at most :data:`MAX_PHOTO_BYTES`), and Pillow decodes from a ``BytesIO``. A JPEG decodes
at a reduced scale (a phone's 48 MP photo at 1/8: :func:`npconv.apps.photos.prepare_photo`), and
the pixels to decode are checked against :data:`MAX_PIXELS` from the header before any is decoded,
so a decompression bomb (a small PNG of 30000 x 30000 pixels) costs a few bytes of reading, not
gigabytes.

A refused request is answered once its body has been read (up to :data:`MAX_BODY_BYTES`, the rest
dropped as it arrives): a server that answers 413 and closes while the client is still sending
resets the connection, and clients such as Python's ``urllib`` then never see the answer.
"""

from __future__ import annotations

import io
import threading
from collections.abc import AsyncIterator

import numpy as np
from PIL import Image, UnidentifiedImageError
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request

from ..apps.photos import prepare_photo

MB = 1024 * 1024
#: Largest photo accepted (413 above it): a phone's 48-megapixel JPEG is 5-15 MB.
MAX_PHOTO_BYTES = 25 * MB
#: Largest request body read (the photo, the form's other fields, its headers): an answer to a
#: larger one comes as soon as the body passes this size, and the connection closes.
MAX_BODY_BYTES = 4 * MAX_PHOTO_BYTES
#: Largest image accepted, width x height as decoded (a JPEG at its reduced scale).
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


def _megabytes(n_bytes: int) -> str:
    return f"{n_bytes / MB:.1f} MB"


def _photo_too_large(n_bytes: int) -> UploadError:
    return UploadError(
        413,
        f"photo too large: {_megabytes(n_bytes)} ({n_bytes:,} bytes), the limit is "
        f"{MAX_PHOTO_BYTES // MB} MB. Send a smaller photo.",
    )


def _body_too_large(size: str) -> UploadError:
    return UploadError(
        413, f"upload too large: {size}, the limit is {MAX_PHOTO_BYTES // MB} MB for the photo. Send a smaller photo."
    )


class _PhotoFormParser(MultiPartParser):
    """Starlette's multipart parser, in memory, counting the file part's bytes: past
    :data:`MAX_PHOTO_BYTES` they are counted and dropped, so the refusal can say the file's size."""

    # Starlette spools file parts over 1 MB to a temporary file; the photo kept is at most this size.
    spool_max_size = MAX_PHOTO_BYTES + 1

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.photo_bytes = 0

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._current_part.file is None:  # a text field: Starlette's own limit (1 MB)
            return super().on_part_data(data, start, end)
        self.photo_bytes += end - start
        if self.photo_bytes <= MAX_PHOTO_BYTES:
            super().on_part_data(data, start, end)


class _Body:
    """The request body as it arrives, counted, read at most up to ``limit`` bytes."""

    def __init__(self, request: Request, limit: int):
        self.chunks = request.stream()
        self.limit = limit
        self.received = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.chunks:
            self.received += len(chunk)
            if self.received > self.limit:
                raise _body_too_large(f"more than {_megabytes(self.limit)}")
            yield chunk

    async def discard_rest(self) -> None:
        """Read what is left of the body, up to the limit, and drop it: the client, done sending,
        then reads the answer."""
        try:
            async for _ in self:
                pass
        except (UploadError, ClientDisconnect):
            pass


async def read_image_field(request: Request, field: str = "image") -> bytes:
    """The bytes of the multipart file field ``field`` of ``request`` (the form a file input posts).

    Raises :class:`UploadError` (400 or 413) after reading the rest of the body, up to
    :data:`MAX_BODY_BYTES`; a ``Content-Length`` over that is refused before reading.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _body_too_large(_megabytes(int(declared)))
    body = _Body(request, MAX_BODY_BYTES)
    try:
        return await _parse_image_field(request, body, field)
    except UploadError:
        await body.discard_rest()
        raise


async def _parse_image_field(request: Request, body: _Body, field: str) -> bytes:
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise UploadError(
            400,
            f"expected a multipart/form-data body with a file field '{field}', got "
            f"content type {request.headers.get('content-type', 'none')!r}.",
        )
    parser = _PhotoFormParser(request.headers, body.__aiter__(), max_files=1, max_fields=8)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise UploadError(400, f"the upload is not a valid multipart form ({exc}).") from exc
    try:
        if parser.photo_bytes > MAX_PHOTO_BYTES:
            raise _photo_too_large(parser.photo_bytes)
        upload = form.get(field)
        if upload is None or isinstance(upload, str):
            raise UploadError(
                400,
                f"expected a file in the form field '{field}', got "
                f"{'a text value' if isinstance(upload, str) else 'no such field'}.",
            )
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
        raise UploadError(
            413,
            f"image too large: {str(exc).rstrip('.')}. Send a photo of at most {MAX_PIXELS // 1_000_000} megapixels.",
        ) from exc
    except UnidentifiedImageError as exc:
        raise UploadError(
            400, "not an image: the file is none of JPEG, PNG, GIF, BMP or WebP. Send a photo in one of these formats."
        ) from exc
    except (OSError, ValueError, SyntaxError) as exc:  # truncated or corrupt files
        raise UploadError(
            400, f"the image could not be decoded ({exc}). Check that the file is a complete photo."
        ) from exc
