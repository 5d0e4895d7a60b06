from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

import pytest

from ftops.atomic import write_atomic


@pytest.mark.parametrize("durable", [True, False])
def test_writes_bytes_text_and_streams(tmp_path: Path, durable: bool) -> None:
    path = tmp_path / "out"
    write_atomic(path, b"\x00bytes", durable=durable)
    assert path.read_bytes() == b"\x00bytes"
    write_atomic(path, "été\nline\n", durable=durable)
    assert path.read_bytes() == "été\nline\n".encode()  # UTF-8, newlines as given

    def chunks(out: BinaryIO) -> None:
        for chunk in (b"a", b"b", b"c"):
            out.write(chunk)

    write_atomic(path, chunks, durable=durable)
    assert path.read_bytes() == b"abc"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary file left


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "out"
    path.write_text("old")

    def fail(out: BinaryIO) -> None:
        out.write(b"half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        write_atomic(path, fail)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_modes_are_those_of_a_plain_write(tmp_path: Path) -> None:
    fresh, plain = tmp_path / "fresh", tmp_path / "plain"
    write_atomic(fresh, "x")
    plain.write_text("x")
    assert stat.S_IMODE(fresh.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)
    os.chmod(fresh, 0o640)
    write_atomic(fresh, "y")  # replacing a file keeps its permissions, as writing in place would
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o640
