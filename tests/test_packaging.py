"""``ftops demo`` and ``ftops init`` work from a wheel, in any directory: the demo specs and the
init templates ship inside the package, as links to the repository's one copy of each; a wheel
built from this tree and installed into a fresh virtual environment runs both from an empty
directory."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from ftops.commands import demo, init

ROOT = Path(__file__).resolve().parents[1]
# What building the wheel reads: the package and what its data links point at.
SOURCES = ("pyproject.toml", "README.md", "ftops", "specs", "examples", ".pre-commit-hooks.yaml")
SHIPPED = (
    "ftops/data/demo/specs/models.yaml",
    "ftops/data/demo/specs/data/support-train.jsonl",
    "ftops/data/init/specs/models.yaml",
    "ftops/data/init/specs/data/example-train.jsonl",
    "ftops/data/init/workflows/ftops-plan.yml",
    "ftops/data/init/pre-commit-hooks.yaml",
    "ftops/data/catalog.yaml",
)


@pytest.mark.parametrize(("packaged", "source"), [
    (demo.PACKAGED_SPECS, "specs"),
    (init.TEMPLATES / "workflows", "examples/workflows"),
    (init.TEMPLATES / "pre-commit-hooks.yaml", ".pre-commit-hooks.yaml"),
])
def test_packaged_data_is_the_repository_copy(packaged: Path, source: str) -> None:
    # One copy, kept where the repository uses it; the package holds a symbolic link to it.
    assert packaged.is_symlink(), packaged
    assert packaged.resolve() == (ROOT / source).resolve()


def test_demo_uses_local_specs_else_the_packaged_ones(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert demo.demo_specs(None) == demo.PACKAGED_SPECS
    assert demo.demo_specs(Path("elsewhere")) == Path("elsewhere")
    (tmp_path / "specs").mkdir()
    assert demo.demo_specs(None) == Path("specs")


def _dependencies_pth(venv: Path) -> None:
    """Lets the fresh environment import ftops's dependencies from this one, behind its own
    site-packages: the wheel's ftops comes first, and nothing is downloaded. (A path a .pth file
    adds has its own .pth files ignored, so this environment's editable ftops stays out.)"""
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"],
            *site.getsitepackages()}
    fresh = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                           capture_output=True, text=True, check=True).stdout.strip()
    (Path(fresh) / "ftops-test-deps.pth").write_text("\n".join(sorted(ours)) + "\n")


@pytest.mark.skipif(sys.platform == "win32", reason="venv layout and symbolic links differ")
def test_a_wheel_runs_demo_and_init_from_an_empty_directory(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, source / name)
    dist = tmp_path / "dist"
    # Build isolation fetches setuptools from the configured index (or its local mirror).
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dist),
                    str(source)], check=True, timeout=120, capture_output=True)
    [wheel] = dist.glob("ftops-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert set(SHIPPED) <= names, set(SHIPPED) - names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=60)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
                    "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
                   check=True, timeout=60, capture_output=True)
    _dependencies_pth(venv)
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "OPENAI_API_KEY")}

    def ftops(*args: str, cwd: Path = empty) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(venv / "bin" / "ftops"), *args], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=60, check=False)

    shown = ftops("demo", "--job-seconds", "0")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert f"Using the demo specs that ship with ftops ({venv}" in shown.stdout
    assert "  support-bot: ft:gpt-4o-mini-2024-07-18:" in shown.stdout
    assert "  support-bot-tone: ft:gpt-4o-mini-2024-07-18:" in shown.stdout
    assert sorted(p.name for p in empty.iterdir()) == []  # the demo works in a scratch copy

    started = ftops("init", "project")
    assert started.returncode == 0, started.stdout + started.stderr
    assert (empty / "project" / ".github" / "workflows" / "ftops-plan.yml").is_file()
    validated = ftops("validate", cwd=empty / "project")
    assert validated.returncode == 0, validated.stdout + validated.stderr
