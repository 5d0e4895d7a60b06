"""A run on Together or Fireworks alone never imports the openai SDK (about 0.7 s of every such
command): the registry, the package and apply load the openai-driven types only when used."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ftops.emulator import Emulator
from tests.test_open_weight import write
from tests.test_open_weight_faults import models, spec_provider

# Registered before ftops.cli is imported, so it runs after the command ends.
PROBE = """
import atexit, sys
atexit.register(lambda: print("openai loaded:", "openai" in sys.modules, file=sys.stderr))
from ftops.cli import main
sys.argv = ["ftops", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize("kind", ["together", "fireworks"])
def test_apply_on_an_open_weight_provider_leaves_the_openai_sdk_alone(
        tmp_path: Path, kind: str) -> None:
    pytest.importorskip(kind)
    with Emulator(flavor=kind, job_seconds=3600) as server:
        project = write(tmp_path / "repo", models(kind), {"ow": spec_provider(kind, server)})
        env = {**os.environ, "OW_KEY": "ow-key"}
        done = subprocess.run([sys.executable, "-c", PROBE, "apply", "--auto-approve",
                               "--specs", str(project.specs)], cwd=project.root, env=env,
                              capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "Apply complete: 1 uploaded, 2 started" in done.stdout, done.stdout
    assert "openai loaded: False" in done.stderr, done.stderr
