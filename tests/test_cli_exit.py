"""A command's process ends without collecting, one by one, the objects every run keeps until
its end (the SDK's thousands of classes: 0.2-0.3 s of each ``ftops`` command): they are frozen
out of the collector once the command is done, before Python's own collection at exit."""

from __future__ import annotations

import subprocess
import sys

# Registered before ftops.cli is imported, so it runs after ftops.cli's exit handler.
PROBE = """
import atexit, gc
atexit.register(lambda: print("frozen", gc.get_freeze_count()))
import ftops.cli
"""


def test_the_collector_passes_by_what_lives_until_exit() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          check=True, timeout=60)
    frozen = int(done.stdout.split()[-1])
    assert frozen > 1000, done.stdout  # ftops.cli and click alone make thousands of objects
