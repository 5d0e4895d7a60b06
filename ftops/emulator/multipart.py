"""multipart/form-data bodies parsed with python-multipart in 1 MiB reads.

werkzeug's own parser works in 64 KiB steps of Python under the interpreter lock, so with parts
sent in parallel the emulator, not the client, was what an upload waited for
(benchmarks/upload_bench.py). Fields and files come out as werkzeug's, file parts written to the
request's stream factory (the blob directory's spool files).
"""

from __future__ import annotations

from typing import IO, Any

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from werkzeug.datastructures import FileStorage, Headers, MultiDict
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser

READ_SIZE = 1 << 20


class FormParser(FormDataParser):
    """werkzeug's form parser with python-multipart for multipart bodies. As werkzeug does by
    default, a body that does not parse yields no fields rather than an error, and werkzeug's
    limits on parts and on the size of a text field hold."""

    def parse(self, stream: IO[bytes], mimetype: str, content_length: int | None,
              options: dict[str, str] | None = None) -> tuple[IO[bytes], MultiDict[str, Any],
                                                             MultiDict[str, FileStorage]]:
        if mimetype != "multipart/form-data":
            return super().parse(stream, mimetype, content_length, options)
        try:
            form, files = self._multipart(stream, (options or {}).get("boundary", ""),
                                          content_length)
        except (FormParserError, ValueError):
            if not self.silent:
                raise
            form, files = MultiDict(), MultiDict()
        return stream, form, files

    def _multipart(self, stream: IO[bytes], boundary: str, content_length: int | None
                   ) -> tuple[MultiDict[str, Any], MultiDict[str, FileStorage]]:
        if not boundary:
            raise ValueError("multipart body without a boundary")
        form: MultiDict[str, Any] = MultiDict()
        files: MultiDict[str, FileStorage] = MultiDict()
        part = _Part(self.max_form_memory_size)
        count, ended = 0, False

        def headers_finished() -> None:
            disposition = part.headers.get("Content-Disposition")
            _, params = parse_options_header(disposition)
            part.name = params.get(b"name", b"").decode("utf-8", "replace")
            filename = params.get(b"filename")
            if filename is not None:
                part.filename = filename.decode("utf-8", "replace")
                part.file = self.stream_factory(
                    total_content_length=content_length,
                    content_type=part.headers.get("Content-Type"),
                    filename=part.filename, content_length=None)

        def part_end() -> None:
            nonlocal count
            count += 1
            if self.max_form_parts is not None and count > self.max_form_parts:
                raise RequestEntityTooLarge()
            if part.file is None:
                form.add(part.name, bytes(part.value).decode("utf-8", "replace"))
            else:
                part.file.seek(0)
                files.add(part.name, FileStorage(part.file, part.filename, part.name,
                                                 headers=part.headers))
            part.reset()

        def end() -> None:
            nonlocal ended
            ended = True

        parser = MultipartParser(boundary.encode("latin-1"), {
            "on_header_field": lambda data, start, end: part.field.extend(data[start:end]),
            "on_header_value": lambda data, start, end: part.raw.extend(data[start:end]),
            "on_header_end": part.header_end,
            "on_headers_finished": headers_finished,
            "on_part_data": part.data,
            "on_part_end": part_end,
            "on_end": end,
        })
        while chunk := stream.read(READ_SIZE):
            parser.write(chunk)
        parser.finalize()
        if not ended:
            raise ValueError("multipart body ends before its closing boundary")
        return form, files


class _Part:
    """The part being parsed: headers as they arrive, then its value or file."""

    def __init__(self, max_value: int | None) -> None:
        self.max_value = max_value
        self.reset()

    def reset(self) -> None:
        self.headers = Headers()
        self.field = bytearray()
        self.raw = bytearray()
        self.name = ""
        self.filename = ""
        self.file: IO[bytes] | None = None
        self.value = bytearray()

    def header_end(self) -> None:
        self.headers.add(self.field.decode("latin-1"), self.raw.decode("latin-1"))
        self.field.clear()
        self.raw.clear()

    def data(self, data: bytes, start: int, end: int) -> None:
        if self.file is None:
            self.value.extend(data[start:end])
            if self.max_value is not None and len(self.value) > self.max_value:
                raise RequestEntityTooLarge()
        else:
            self.file.write(memoryview(data)[start:end])
