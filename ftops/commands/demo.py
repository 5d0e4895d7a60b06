"""``ftops demo``: validate -> plan -> apply --wait on the embedded emulator, in a throw-away
git repository holding a copy of the specs, so a newcomer needs no key and changes nothing.

The demo works on any day and tells the truth about it: inside OpenAI's training window it
trains on OpenAI's emulated dialect; after OpenAI's cut-off it trains where the catalog says
its base still trains (Azure OpenAI's emulated dialect, until Azure's own end date); after
every window it runs as of the last day of the latest one, and says so.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import git
import yaml

from ftops import catalog, clock, render
from ftops.commands import session
from ftops.commands.apply import ApplyOptions, apply_plan
from ftops.errors import FtopsError
from ftops.lock import Lock
from ftops.mend import Outcome
from ftops.project import load_project
from ftops.validate import validate

Echo = Callable[[str], None]
# Where the demo may train, in order of preference; each runs on its emulated dialect.
PROVIDERS = ("openai", "azure")
AZURE_DEMO = {"type": "azure", "endpoint": "https://ftops-demo.openai.azure.com",
              "api_version": "2024-10-21"}
# The demo specs inside the package, so `ftops demo` runs anywhere after `pip install ftops`. In
# the repository this is a symbolic link to specs/, the one copy; a wheel holds the files.
PACKAGED_SPECS = Path(__file__).resolve().parents[1] / "data" / "demo" / "specs"


@dataclass(frozen=True)
class Route:
    """Where and as of when the demo trains, and the line that says why."""

    provider: str
    day: dt.date | None  # a day to pin (FTOPS_TODAY), or None to keep today
    note: str


def choose_route(bases: set[str], today: dt.date) -> Route:
    """The first provider that still trains every base today; else the latest window's last
    day on the provider that has it."""
    cat = catalog.load()
    stops = {p: [cat.training_stop(p, b) for b in sorted(bases)] for p in PROVIDERS}
    ends = {p: min((d for d in days if d is not None), default=None)
            for p, days in stops.items()}
    for provider in PROVIDERS:
        end = ends[provider]
        if end is None or today < end:
            if provider == PROVIDERS[0]:
                return Route(provider, None, "")
            closed = ends[PROVIDERS[0]]
            return Route(provider, None, (
                f"OpenAI accepts no new fine-tuning jobs since {closed}; the demo trains on "
                f"Azure OpenAI's emulated dialect instead, which trains these bases until {end}."))
    provider = max(PROVIDERS, key=lambda p: ends[p] or dt.date.max)
    end = ends[provider]
    assert end is not None
    last = end - dt.timedelta(days=1)
    return Route(provider, last, (
        f"No provider the demo knows trains {', '.join(sorted(bases))} on {today} (the latest "
        f"window, {provider}'s, closed on {end}); the demo runs as of {last}, its last day."))


@contextlib.contextmanager
def _pinned(day: dt.date | None) -> Iterator[None]:
    """FTOPS_TODAY set to ``day`` for the demo's run (the embedded emulator reads it too)."""
    if day is None:
        yield
        return
    saved = os.environ.get(clock.ENV)
    os.environ[clock.ENV] = day.isoformat()
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(clock.ENV, None)
        else:
            os.environ[clock.ENV] = saved


def _move_to(specs: Path, provider: str) -> None:
    """Point every model of the copied specs at ``provider`` (declared in a file of its own)."""
    if provider == "openai":
        return
    for path in sorted(specs.rglob("*.y*ml")):
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if isinstance(raw.get("models"), dict):
            for entry in raw["models"].values():
                entry["provider"] = provider
            path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    (specs / "demo-provider.yaml").write_text(
        yaml.safe_dump({"providers": {provider: AZURE_DEMO}}, sort_keys=False), encoding="utf-8")


def _scratch_repo(specs: Path, into: Path, provider: str) -> Path:
    """A committed git repository with ``specs`` copied to ``into/specs`` (on ``provider``)."""
    if not specs.is_dir():
        raise FtopsError(f"no spec directory at {specs}",
                         hint="without --specs, the demo uses ./specs or the specs ftops ships")
    shutil.copytree(specs, into / "specs", ignore=shutil.ignore_patterns(".*"))
    _move_to(into / "specs", provider)
    repo = git.Repo.init(into)
    with repo.config_writer() as config:
        config.set_value("user", "name", "ftops demo")
        config.set_value("user", "email", "demo@ftops.invalid")
    repo.git.add(A=True)
    repo.index.commit("demo specs")
    repo.close()
    return into / "specs"


@dataclass(frozen=True)
class DemoOptions:
    specs: Path | None = None  # None: ./specs if there is one, else the packaged demo specs
    job_seconds: float = 1.0  # how long each job takes on the emulator
    timeout: float = 120.0
    echo: Echo = print


def run(options: DemoOptions) -> dict[str, str]:
    """Runs the whole loop and returns model name -> fine-tuned model id."""
    echo, specs = options.echo, demo_specs(options.specs)
    if options.specs is None and specs == PACKAGED_SPECS:
        echo(f"Using the demo specs that ship with ftops ({specs}).")
    route = choose_route(_bases(specs), clock.today())
    if route.note:
        echo(route.note)
    with tempfile.TemporaryDirectory(prefix="ftops-demo-") as tmp, _pinned(route.day):
        copied = _scratch_repo(specs, Path(tmp), route.provider)
        echo(f"$ ftops validate   (a copy of {specs}/ in {tmp})")
        report = validate(specs=copied)
        echo(report.to_text().rstrip())
        if not report.ok:
            raise FtopsError("the demo specs do not validate")
        locked, outcome = _plan_and_apply(copied, options)
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


def demo_specs(given: Path | None) -> Path:
    """The spec directory the demo copies: the one given, else ./specs (a checkout of ftops,
    or a project of your own), else the demo specs that ship with ftops."""
    if given is not None:
        return given
    here = Path("specs")
    return here if here.is_dir() else PACKAGED_SPECS


def _plan_and_apply(specs: Path, options: DemoOptions) -> tuple[Lock, Outcome]:
    """plan, apply --wait, plan again: what a newcomer would type, on the embedded emulator."""
    echo = options.echo
    project = load_project(specs)
    with session.connect(project, emulator=True, job_seconds=options.job_seconds) as remotes:
        echo("\n$ ftops plan --emulator")
        plan = session.make_plan(project, remotes)
        echo(render.render_text(plan).rstrip())
        echo("\n$ ftops apply --emulator --auto-approve --wait")
        outcome = apply_plan(project, remotes, plan, saved=False, options=ApplyOptions(
            specs=specs, wait=True, timeout=options.timeout, report=echo))
        locked = session.refresh_lock(project, remotes)
        echo("\n$ ftops plan --emulator   (again: nothing left to do)")
        echo(render.render_text(session.make_plan(project, remotes)).rstrip())
    return locked, outcome


def _bases(specs: Path) -> set[str]:
    """The literal base models the specs train from (aliases resolved; chains skipped)."""
    from ftops.spec import load_specs

    if not specs.is_dir():
        return set()
    return {m.base_model for m in load_specs(specs).models if not m.parent and m.base_model}
