"""Importing the dataset analysis costs no process machinery: every command that loads a project
(plan, apply, status) imports ``ftops.datasets``, and only a large file, analysed while not
cached, starts worker processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ftops.datasets import analyze

_PROBE = """
import sys
import ftops.datasets, ftops.datasets.parallel, ftops.datasets.incremental
print(",".join(m for m in ("multiprocessing", "concurrent.futures.process") if m in sys.modules))
"""


def test_importing_datasets_does_not_import_multiprocessing() -> None:
    probe = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                           check=True)
    assert probe.stdout.strip() == "", probe.stdout


def test_the_process_pool_is_still_used_for_large_files(tmp_path: Path) -> None:
    """The lazy import still reaches the pool: two workers analyse a file, with and without a
    cache, and give the report one process gives."""
    line = (b'{"messages": [{"role": "user", "content": "hi"}, '
            b'{"role": "assistant", "content": "yo"}]}\n')
    path = tmp_path / "data.jsonl"
    path.write_bytes(b"".join(line.replace(b"yo", b"yo %d" % n) for n in range(3000)))
    one = analyze(path, workers=1, chunk_bytes=4096)
    pooled = analyze(path, workers=2, chunk_bytes=4096)
    cached = analyze(path, workers=2, chunk_bytes=4096, cache_dir=tmp_path / "cache")
    assert pooled == one
    assert cached.to_dict() == one.to_dict()
    assert one.examples == 3000
