"""A streaming ``multipart/form-data`` parser for the capture upload: each image byte is copied once, from
the chunks the server received into the part's own ``bytes`` (which Pillow, hashlib and the ``minio``
client then read without copying), and an image part over its limit stops being kept at once.

Starlette's form parser spools every file part into a temporary file object and the route read it back
out: two more copies of every image and a Python callback per piece. Here the boundary is looked for
with ``bytes.find`` in each chunk as it arrives; only headers (bounded) and the few bytes that may begin
a boundary at a chunk's end are held apart. The body's total size is limited before parsing, by
``api.app.BodyLimit``, which counts the chunks this reads.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

MAX_HEADER_BYTES = 16 * 1024  # one part's header block
MAX_PREAMBLE_BYTES = 16 * 1024
MAX_FIELD_BYTES = 1 << 20  # a part without a filename (Starlette's limit too)
MAX_PARTS = 1000

_PARAM = re.compile(r';\s*([\w*.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


class MultipartError(Exception):
    """The body is not readable as the form it claims to be (a 400)."""


class FieldTooLarge(Exception):
    """A form field (a part without a filename) is over ``MAX_FIELD_BYTES`` (a 413)."""


@dataclass
class Part:
    name: str
    filename: str | None
    data: bytes = b""
    size: int = 0  # bytes received, also when ``data`` was not kept (over the limit)
    over_limit: bool = False


@dataclass
class _Open:
    part: Part
    limit: int
    pieces: list[bytes | memoryview] = field(default_factory=list)


def boundary_of(content_type: str) -> bytes:
    """The boundary of a ``multipart/form-data`` content type; MultipartError when there is none."""
    for name, value in _PARAM.findall(";" + content_type.partition(";")[2]):
        if name.lower() == "boundary":
            value = value.strip()
            if value.startswith('"') and value.endswith('"'):
                value = value[1:-1]
            if 1 <= len(value) <= 70:
                return value.encode("latin-1")
    raise MultipartError("the multipart body names no valid boundary")


class FormParser:
    """Feed it the body's chunks, then :meth:`close` for the parts. ``file_limit`` bytes per part with a
    filename: past it the part's bytes are dropped and ``over_limit`` set, the rest still parsed."""

    def __init__(self, boundary: bytes, *, file_limit: int) -> None:
        self.delimiter = b"\r\n--" + boundary
        self.file_limit = file_limit
        self.state = "preamble"
        self.pending = bytearray(b"\r\n")  # the body's start counts as a line break before the first boundary
        self.tail = b""  # the end of a part's data that may be the start of the delimiter
        self.current: _Open | None = None
        self.parts: list[Part] = []

    # -- the small states: bytes are held in ``pending``, never more than a header block ---------------------

    def _take(self, chunk: bytes, pos: int, most: int) -> int:
        """Append up to ``most`` bytes of the chunk to ``pending``; the count taken."""
        taken = chunk[pos : pos + most]
        self.pending += taken
        return len(taken)

    def feed(self, chunk: bytes) -> None:
        pos, end = 0, len(chunk)
        while pos < end:
            if self.state == "data":
                pos = self._data(chunk, pos)
            elif self.state == "preamble":
                pos = self._preamble(chunk, pos)
            elif self.state == "after":
                pos = self._after(chunk, pos)
            elif self.state == "headers":
                pos = self._headers(chunk, pos)
            else:  # "end": an epilogue is ignored
                return

    def _preamble(self, chunk: bytes, pos: int) -> int:
        old = len(self.pending)
        taken = self._take(chunk, pos, MAX_PREAMBLE_BYTES + len(self.delimiter) - old)
        found = self.pending.find(self.delimiter, max(0, old - len(self.delimiter) + 1))
        if found < 0:
            if len(self.pending) > MAX_PREAMBLE_BYTES:
                raise MultipartError("the body does not start with its multipart boundary")
            return pos + taken
        self.pending.clear()
        self.state = "after"
        return pos + found + len(self.delimiter) - old

    def _after(self, chunk: bytes, pos: int) -> int:
        pos += self._take(chunk, pos, 2 - len(self.pending))
        if len(self.pending) < 2:
            return pos
        mark = bytes(self.pending)
        self.pending.clear()
        if mark == b"--":
            self.state = "end"
        elif mark == b"\r\n":
            if len(self.parts) >= MAX_PARTS:
                raise MultipartError(f"the multipart body has more than {MAX_PARTS} parts")
            self.pending += b"\r\n"
            self.state = "headers"
        else:
            raise MultipartError("a multipart boundary is not followed by a line break")
        return pos

    def _headers(self, chunk: bytes, pos: int) -> int:
        old = len(self.pending)
        taken = self._take(chunk, pos, MAX_HEADER_BYTES + 4 - old)
        found = self.pending.find(b"\r\n\r\n", max(0, old - 3))
        if found < 0:
            if len(self.pending) > MAX_HEADER_BYTES:
                raise MultipartError("a multipart part's headers are too long")
            return pos + taken
        name, filename = _disposition(bytes(self.pending[2:found]))
        self.pending.clear()
        part = Part(name=name, filename=filename)
        self.parts.append(part)
        self.current = _Open(part, self.file_limit if filename is not None else MAX_FIELD_BYTES)
        self.state = "data"
        return pos + found + 4 - old

    # -- a part's data: found with bytes.find in the chunk itself ------------------------------------------

    def _keep(self, piece: bytes | memoryview) -> None:
        current = self.current
        assert current is not None
        current.part.size += len(piece)
        if current.part.size > current.limit:
            if current.part.filename is None:
                raise FieldTooLarge(f"a form field is over the limit of {MAX_FIELD_BYTES} bytes")
            current.part.over_limit = True
            current.pieces.clear()
        elif piece:
            current.pieces.append(piece)

    def _finish(self) -> None:
        current = self.current
        assert current is not None
        if not current.part.over_limit:
            pieces = current.pieces
            # the one copy: the received chunks' pieces into the part's bytes (a single piece of a whole
            # chunk is that chunk, not a copy)
            if len(pieces) == 1 and isinstance(pieces[0], bytes):
                current.part.data = pieces[0]
            else:
                current.part.data = b"".join(pieces)
        self.current = None
        self.state = "after"

    def _data(self, chunk: bytes, pos: int) -> int:
        delimiter, width = self.delimiter, len(self.delimiter)
        if self.tail:
            if len(chunk) - pos < width:  # a small chunk: join it to the held bytes, parse those instead
                joined, self.tail = self.tail + chunk[pos:], b""
                self._feed_joined(joined)
                return len(chunk)
            held = len(self.tail)
            found = (self.tail + chunk[pos : pos + width - 1]).find(delimiter)
            if 0 <= found < held:  # the delimiter began in the held bytes
                self._keep(self.tail[:found])
                self.tail = b""
                self._finish()
                return pos + found + width - held
            self._keep(self.tail)
            self.tail = b""
        found = chunk.find(delimiter, pos)
        if found >= 0:
            self._keep(_view(chunk, pos, found))
            self._finish()
            return found + width
        cut = len(chunk) - min(width - 1, len(chunk) - pos)
        self._keep(_view(chunk, pos, cut))
        self.tail = chunk[cut:]
        return len(chunk)

    def _feed_joined(self, data: bytes) -> None:
        pos = self._data(data, 0)  # the tail is empty now: no further joining
        if pos < len(data):
            self.feed(data[pos:])

    def close(self) -> list[Part]:
        if self.state != "end":
            raise MultipartError("the multipart body ended before its closing boundary")
        return self.parts


def _view(chunk: bytes, start: int, stop: int) -> bytes | memoryview:
    if start == 0 and stop == len(chunk):
        return chunk
    return memoryview(chunk)[start:stop]


def _disposition(block: bytes) -> tuple[str, str | None]:
    """(name, filename or None) from a part's ``Content-Disposition: form-data; name=...`` header."""
    for line in block.split(b"\r\n"):
        key, _, value = line.partition(b":")
        if key.strip().lower() != b"content-disposition":
            continue
        text = value.decode("utf-8", "replace")
        kind, _, _ = text.partition(";")
        if kind.strip().lower() != "form-data":
            raise MultipartError("a multipart part is not form-data")
        params: dict[str, str] = {}
        for param, raw in _PARAM.findall(";" + text.partition(";")[2]):
            raw = raw.strip()
            if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
                raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
            params[param.lower()] = raw
        if "name" not in params:
            raise MultipartError("a multipart part has no name")
        return params["name"], params.get("filename")
    raise MultipartError("a multipart part has no Content-Disposition header")


async def read_form(chunks: AsyncIterator[bytes], content_type: str, *, file_limit: int) -> list[Part]:
    """The parts of a ``multipart/form-data`` body, or the fields of an urlencoded one; no parts at all
    for any other type (the caller then finds its fields missing, as FastAPI's forms did)."""
    kind = content_type.partition(";")[0].strip().lower()
    if kind == "multipart/form-data":
        parser = FormParser(boundary_of(content_type), file_limit=file_limit)
        async for chunk in chunks:
            if chunk:
                parser.feed(chunk)
        return parser.close()
    if kind != "application/x-www-form-urlencoded":
        async for _ in chunks:  # read (the body limit still counts it) and dropped
            pass
        return []
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > MAX_FIELD_BYTES:
            raise FieldTooLarge(f"a form is over the limit of {MAX_FIELD_BYTES} bytes")
    fields = parse_qsl(body.decode("latin-1"), keep_blank_values=True, encoding="latin-1")
    return [Part(name=k, filename=None, data=v.encode("latin-1"), size=len(v)) for k, v in fields]
