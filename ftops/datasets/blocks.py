"""Blocks of whole lines, cut where the content says, and their scans as stored bytes.

A block ends after a line chosen by that line's own bytes (``Rule``), so an edit moves only the
cuts next to it: the blocks before and after are the same bytes as before, found in the cache
under the same content hash (``ftops.datasets.incremental``). Stored scans keep line numbers
relative to their block, so a block's entry serves it wherever it sits in any file.
"""

from __future__ import annotations

import hashlib
import json
import sys
import zlib
from array import array
from collections.abc import Iterator
from dataclasses import dataclass

from ftops.datasets.lines import Scan
from ftops.errors import Diagnostic

FORMAT = 2  # of stored scans and layouts: bump when their fields change (2: assistant sums)


@dataclass(frozen=True)
class Rule:
    """A block ends after the first line that takes it to ``min_bytes``, then after a line with a
    chance proportional to the line's length (so about ``spread_bytes`` more whatever the lines'
    size), and at the latest after the line that takes it to ``max_bytes``. Larger blocks cost
    less per byte to look up and store; smaller ones less to analyse again after an edit."""

    min_bytes: int = 256 * 1024
    spread_bytes: int = 768 * 1024
    max_bytes: int = 4 * 1024 * 1024


def content_hash(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


class Cutter:
    """Cuts bytes fed in pieces, from file offset ``offset`` on, into blocks by ``rule``, without
    copying them: a block is told by its offset, length and ``content_hash``."""

    def __init__(self, rule: Rule, offset: int = 0) -> None:
        self.rule = rule
        self.offset = offset  # where the open block starts in the file
        self._size = 0  # its bytes fed so far, with the line not yet ended
        self._sha = hashlib.sha256()
        self._line = (0, 0)  # that line: its bytes fed so far and their CRC-32

    def feed(self, piece: bytes) -> Iterator[tuple[int, int, str]]:
        """The blocks that ``piece`` completes: offset, length and content hash."""
        view = memoryview(piece)
        start = 0  # where the open block's bytes in ``piece`` begin
        for cut in self._cuts(piece, view):
            self._sha.update(view[start:cut])
            length = self._size + cut - start if start == 0 else cut - start
            yield self.offset, length, self._sha.hexdigest()[:32]
            self.offset += length
            self._sha, self._size, start = hashlib.sha256(), 0, cut
        self._sha.update(view[start:])
        self._size += len(piece) - start
        end = piece.rfind(b"\n") + 1
        if end == 0:  # the line goes on from before, and on past this piece
            self._line = (self._line[0] + len(piece), zlib.crc32(view, self._line[1]))
        else:
            self._line = (len(piece) - end, zlib.crc32(view[end:]))

    def _cuts(self, piece: bytes, view: memoryview) -> Iterator[int]:
        """Offsets in ``piece`` after which a block ends."""
        rule = self.rule
        opened = self._size  # bytes of the open block before ``piece``
        start = pos = 0  # the open block's start in piece; the next line's start
        while (newline := piece.find(b"\n", pos)) >= 0:
            short = rule.min_bytes - opened - (pos - start)
            if short > 1 + newline - pos:  # no cut before min_bytes: on to the line reaching it
                newline = piece.find(b"\n", pos + short - 1)
                if newline < 0:
                    return
                pos = piece.rfind(b"\n", pos, newline) + 1 or pos
            length, crc = newline - pos, 0
            if pos == 0:  # the line began in an earlier piece
                length, crc = length + self._line[0], self._line[1]
            crc = zlib.crc32(view[pos:newline], crc)
            pos = newline + 1
            if crc * rule.spread_bytes < length << 32 or opened + pos - start >= rule.max_bytes:
                yield pos
                opened, start = 0, pos

    def finish(self) -> tuple[int, int, str] | None:
        """The last block: what is left, ended by the end of the file."""
        if not self._size:
            return None
        block = (self.offset, self._size, self._sha.hexdigest()[:32])
        self.offset += self._size
        self._size, self._sha, self._line = 0, hashlib.sha256(), (0, 0)
        return block


def encode_scan(scan: Scan, key: str) -> bytes:
    """A JSON header line (sums, findings as [line, code, message]) then the digests and their
    lines as 8-byte integers."""
    header = {
        "format": FORMAT, "key": key, "order": sys.byteorder, "n": len(scan.digests),
        "lines": scan.lines, "examples": scan.examples, "error_count": scan.error_count,
        "too_long_count": scan.too_long_count, "counted": scan.counted, "total": scan.total,
        "min": scan.min, "max": scan.max, "billable": scan.billable,
        "assistant": scan.assistant, "assistant_min": scan.assistant_min,
        "assistant_max": scan.assistant_max, "missing_system": scan.missing_system,
        "missing_user": scan.missing_user,
        "errors": [[f.line, f.code, f.message] for f in scan.errors],
        "too_long": [[f.line, f.code, f.message] for f in scan.too_long],
    }
    return b"".join([json.dumps(header).encode(), b"\n", array("Q", scan.digests).tobytes(),
                     array("Q", scan.digest_lines).tobytes()])


def decode_scan(body: bytes, key: str) -> Scan | None:
    """The scan ``encode_scan`` stored under ``key``, or None for anything else."""
    head, _, raw = body.partition(b"\n")
    try:
        h = json.loads(head)
        if (h["format"], h["key"], h["order"]) != (FORMAT, key, sys.byteorder):
            return None
        n = h["n"]
        if len(raw) != 16 * n:
            return None
        digests, lines = array("Q"), array("Q")
        digests.frombytes(raw[: 8 * n])
        lines.frombytes(raw[8 * n :])
        return Scan(
            lines=h["lines"], examples=h["examples"], error_count=h["error_count"],
            too_long_count=h["too_long_count"], counted=h["counted"], total=h["total"],
            min=h["min"], max=h["max"], billable=h["billable"], assistant=h["assistant"],
            assistant_min=h["assistant_min"], assistant_max=h["assistant_max"],
            missing_system=h["missing_system"], missing_user=h["missing_user"],
            errors=[Diagnostic("error", code, text, line=line) for line, code, text in h["errors"]],
            too_long=[Diagnostic("warning", code, text, line=line)
                      for line, code, text in h["too_long"]],
            digests=digests, digest_lines=lines,
        )
    except (ValueError, KeyError, TypeError):
        return None


@dataclass(frozen=True)
class Layout:
    """How a file was cut when last analysed: its size, SHA-256 and (length, content hash) of
    each block in order. Only a hint: the next run trusts it for a prefix whose SHA-256 it has
    checked (an append)."""

    size: int
    sha256: str
    blocks: tuple[tuple[int, str], ...]

    def encode(self) -> bytes:
        return json.dumps({"format": FORMAT, "size": self.size, "sha256": self.sha256,
                           "blocks": self.blocks}).encode()

    @classmethod
    def decode(cls, body: bytes | None) -> Layout | None:
        if body is None:
            return None
        try:
            data = json.loads(body)
            blocks = tuple((int(length), str(digest)) for length, digest in data["blocks"])
            layout = cls(int(data["size"]), str(data["sha256"]), blocks)
            if data["format"] != FORMAT or sum(n for n, _ in blocks) != layout.size:
                return None
        except (ValueError, KeyError, TypeError):
            return None
        return layout
