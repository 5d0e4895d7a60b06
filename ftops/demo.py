"""``ftops demo``: validate -> plan -> apply --wait on the embedded emulator, in a throw-away
git repository holding a copy of the specs, so a newcomer needs no key and changes nothing."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import git

from ftops import engine, render
from ftops.errors import FtopsError
from ftops.validate import validate

Echo = Callable[[str], None]


def _scratch_repo(specs: Path, into: Path) -> Path:
    """A committed git repository with ``specs`` copied to ``into/specs``."""
    if not specs.is_dir():
        raise FtopsError(f"no spec directory at {specs}",
                         hint="run `ftops demo` from an ftops checkout (it has specs/)")
    shutil.copytree(specs, into / "specs", ignore=shutil.ignore_patterns(".*"))
    repo = git.Repo.init(into)
    with repo.config_writer() as config:
        config.set_value("user", "name", "ftops demo")
        config.set_value("user", "email", "demo@ftops.invalid")
    repo.git.add(A=True)
    repo.index.commit("demo specs")
    repo.close()
    return into / "specs"


def run(echo: Echo, *, specs: Path = Path("specs"), job_seconds: float = 1.0,
        timeout: float = 120.0) -> dict[str, str]:
    """Runs the whole loop and returns model name -> fine-tuned model id."""
    with tempfile.TemporaryDirectory(prefix="ftops-demo-") as tmp:
        copied = _scratch_repo(specs, Path(tmp))
        echo(f"$ ftops validate   (a copy of {specs}/ in {tmp})")
        report = validate(specs=copied)
        echo(report.to_text().rstrip())
        if not report.ok:
            raise FtopsError("the demo specs do not validate")
        project = engine.load_project(copied)
        with engine.connect(project, emulator=True, job_seconds=job_seconds) as remotes:
            echo("\n$ ftops plan --emulator")
            plan = engine.make_plan(project, remotes)
            echo(render.render_text(plan).rstrip())
            echo("\n$ ftops apply --emulator --auto-approve --wait")
            outcome = engine.apply_plan(project, remotes, plan, saved=False, wait=True,
                                        timeout=timeout, report=echo)
            locked = engine.refresh_lock(project, remotes)
            echo("\n$ ftops plan --emulator   (again: nothing left to do)")
            echo(render.render_text(engine.make_plan(project, remotes)).rstrip())
        for name, reason in sorted(outcome.deferred.items()):
            echo(f"model {name}: not started: {reason}")
        if not outcome.ok:
            raise FtopsError("demo apply failed: " + "; ".join(outcome.failed.values()))
        models = {name: entry.fine_tuned_model for name, entry in locked.models.items()
                  if entry.fine_tuned_model}
        echo("\nFine-tuned models (from ftops.lock):")
        for name, model_id in sorted(models.items()):
            echo(f"  {name}: {model_id}")
        return models
