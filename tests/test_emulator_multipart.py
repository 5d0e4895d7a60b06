"""The emulator's multipart parser gives what werkzeug's own parser gives, body for body."""

from __future__ import annotations

import io
from typing import IO, Any

import pytest
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser

from ftops.emulator.multipart import FormParser

BOUNDARY = "b0undary-7f3a"
# File bytes that look like the start of a delimiter, so a parser that matches too early or
# drops bytes across reads shows it.
TRICKY = b"line 1\r\n--b0und\r\n--b0undary-7f\r\n\r\n\x00\xff" * 50


def _body(parts: list[tuple[str, str | None, bytes]], *, close: bool = True) -> bytes:
    out = b""
    for name, filename, value in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n".encode()
        if filename is not None:
            out += b"Content-Type: application/octet-stream\r\n"
        out += b"\r\n" + value + b"\r\n"
    return out + (f"--{BOUNDARY}--\r\n".encode() if close else b"")


class _Trickle(io.RawIOBase):
    """A request body that arrives a few bytes per read, as a slow socket delivers it."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data, self._pos, self._step = data, 0, step

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = self._step if size < 0 else min(size, self._step)
        chunk = self._data[self._pos:self._pos + size]
        self._pos += len(chunk)
        return chunk


def _factory(*_: Any, **__: Any) -> IO[bytes]:
    return io.BytesIO()


def _parsed(parser_class: type[FormDataParser], body: bytes, step: int,
            boundary: str = BOUNDARY) -> tuple[list[tuple[str, str]], list[tuple[Any, ...]]]:
    parser = parser_class(_factory)
    _, form, files = parser.parse(_Trickle(body, step), "multipart/form-data", len(body),
                                  {"boundary": boundary} if boundary else {})
    return (list(form.items(multi=True)),
            [(name, f.filename, f.content_type, f.stream.read())
             for name, f in files.items(multi=True)])


FIELDS = [("purpose", None, "fine-tune ✓".encode()), ("file", "données.jsonl", TRICKY),
          ("empty", "e.bin", b""), ("purpose", None, b"second")]
EXPECTED = ([("purpose", "fine-tune ✓"), ("purpose", "second")],
            [("file", "données.jsonl", "application/octet-stream", TRICKY),
             ("empty", "e.bin", "application/octet-stream", b"")])


def test_werkzeug_reads_the_sample_as_expected() -> None:
    assert _parsed(FormDataParser, _body(FIELDS), 64 * 1024) == EXPECTED


@pytest.mark.parametrize("step", [1, 7, 64 * 1024, 1 << 22])
def test_fields_and_files_as_werkzeug_at_any_read_size(step: int) -> None:
    # At 1-byte reads werkzeug itself keeps a stray "\r" on the last field, hence EXPECTED.
    assert _parsed(FormParser, _body(FIELDS), step) == EXPECTED


@pytest.mark.parametrize(("body", "boundary"), [
    # cut off before the closing boundary: the whole body is refused, not its first part kept
    (_body([("purpose", None, b"fine-tune"), ("data", "a.bin", TRICKY)], close=False), BOUNDARY),
    (b"not multipart at all", BOUNDARY),
    (_body([("data", "a.bin", b"x")]), ""),  # no boundary parameter
])
def test_unparsable_bodies_have_no_fields_as_with_werkzeug(body: bytes, boundary: str) -> None:
    assert _parsed(FormParser, body, 1 << 20, boundary) == ([], [])
    assert _parsed(FormDataParser, body, 1 << 20, boundary) == ([], [])


def test_other_form_types_are_left_to_werkzeug() -> None:
    body = b"purpose=fine-tune&x=1"
    _, form, files = FormParser(_factory).parse(
        io.BytesIO(body), "application/x-www-form-urlencoded", len(body), {})
    assert dict(form) == {"purpose": "fine-tune", "x": "1"}
    assert not files


def _parse(parser_class: type[FormDataParser], body: bytes, **limits: int) -> None:
    parser_class(_factory, **limits).parse(  # type: ignore[arg-type]
        io.BytesIO(body), "multipart/form-data", len(body), {"boundary": BOUNDARY})


@pytest.mark.parametrize("parser_class", [FormParser, FormDataParser])
def test_werkzeugs_limit_on_parts_holds(parser_class: type[FormDataParser]) -> None:
    three = _body([("a", None, b"1"), ("b", None, b"2"), ("f", "f.bin", b"3")])
    _parse(parser_class, three, max_form_parts=3)
    with pytest.raises(RequestEntityTooLarge):
        _parse(parser_class, three, max_form_parts=2)


def test_the_memory_limit_holds_for_text_fields_not_files() -> None:
    big_text = _body([("a", None, b"x" * 100), ("f", "f.bin", b"y" * 1000)])
    _parse(FormParser, big_text, max_form_memory_size=100)
    with pytest.raises(RequestEntityTooLarge):
        _parse(FormParser, big_text, max_form_memory_size=99)
