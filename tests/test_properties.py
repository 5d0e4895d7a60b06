"""Property tests of apply: whatever the specs, whatever the account held before, whatever
faults the API injects, repeated ``apply --wait`` converges to an account where

- a fresh plan shows no change,
- no fingerprint has two live jobs, and no fingerprint was trained twice unless an injected
  ``500-after-create`` on a job create explains it (with ``job_seconds=0`` every job ends on
  the next request, so a duplicate is never live long enough to be cancelled: counting creates
  is how "never train one fingerprint twice" stays observable),
- no declared dataset has two files,
- and no ``ftops plan`` along the way sent a mutating request.

Each example builds a real git repository and starts from an account made through a raw strict
SDK client: files under ftops's own names, jobs labelled with ftops's metadata (existing,
cancelled, failed, superseded, duplicated). That account is made on a fault-free emulator
with a clock of its own, then the same state is served with faults to the real code, driven
in-process (``ftops.commands.apply.run`` and ``ftops.commands.plan.run``).
"""

from __future__ import annotations

import hashlib
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import openai
import pytest
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st

from ftops.commands import apply, plan
from ftops.emulator import Emulator
from ftops.errors import FtopsError
from ftops.identity import dataset_filename, fingerprints, job_metadata, sha256_text
from ftops.plan import Plan
from ftops.project import load_project
from ftops.state import Desired, ResolvedModel
from tests.conftest import make_chat_jsonl, sdk_client
from tests.test_engine import BASE, KEY, LIVE, Project, model

MAX_ROUNDS = 4  # apply, then plan; a converging account needs two at most, faults a few more
# What a model's jobs were before ftops ran, oldest first. "superseded" trained an earlier
# version of the model (another fingerprint): the plan replaces it.
JOB_STATES = ("succeeded", "failed", "cancelled", "superseded")
# Injected 500s and dropped connections make the SDK back off for half a second or more
# (``retry_after=0`` only shortens the advised wait of 429 and 503): they come in some sets.
MODE_SETS = (("429", "503"), ("429", "503", "500-after-create"),
             ("429", "500", "503", "drop", "500-after-create"))


@dataclass(frozen=True)
class Shape:
    """One declared model and the jobs the account held for it."""

    name: str
    parent: str | None  # a declared model this one chains on, else the base alias
    training: str
    validation: str | None
    epochs: int
    suffix: str | None
    jobs: tuple[str, ...]


@dataclass(frozen=True)
class Faults:
    rate: float
    modes: tuple[str, ...]
    seed: int


@dataclass(frozen=True)
class Case:
    tags: tuple[str, ...]  # d<i> is make_chat_jsonl(10, tag=tags[i]): repeats share bytes
    copies: tuple[int, ...]  # files the account held of each dataset, under ftops's name
    models: tuple[Shape, ...]
    faults: Faults
    parallel: int


@st.composite
def cases(draw: st.DrawFn) -> Case:
    tags = tuple(draw(st.lists(st.sampled_from("xyz"), min_size=1, max_size=3)))
    names = [f"d{i}" for i in range(len(tags))]
    copies = tuple(draw(st.lists(st.integers(0, 3), min_size=len(tags), max_size=len(tags))))
    models: list[Shape] = []
    for i in range(draw(st.integers(1, 8))):
        earlier = [m.name for m in models]
        training = draw(st.sampled_from(names))
        others = [n for n in names if n != training]  # the specs refuse training as validation
        models.append(draw(st.builds(
            Shape,
            name=st.just(f"m{i}"),
            # chains point at earlier models only: declared order is a valid training order
            parent=st.none() | st.sampled_from(earlier) if earlier else st.none(),
            training=st.just(training),
            validation=st.none() | st.sampled_from(others) if others else st.none(),
            epochs=st.integers(1, 3),
            suffix=st.sampled_from([None, "a", "b"]),
            jobs=st.lists(st.sampled_from(JOB_STATES), max_size=3).map(tuple),
        )))
    faults = draw(st.builds(Faults, rate=st.sampled_from([0.0, 0.1, 0.2]),
                            modes=st.sampled_from(MODE_SETS), seed=st.integers(0, 2**16)))
    return Case(tags, copies, tuple(models), faults, draw(st.sampled_from([1, 2, 4])))


# --- the repository and the account before the first apply ------------------------------------


def dataset_bytes(case: Case) -> dict[str, bytes]:
    return {f"d{i}": make_chat_jsonl(10, tag=tag) for i, tag in enumerate(case.tags)}


def write_project(root: Path, case: Case) -> Project:
    project = Project(root)
    specs: dict[str, Any] = {}
    for shape in case.models:
        extra: dict[str, Any] = {}
        if shape.validation is not None:
            extra["validation"] = shape.validation
        if shape.suffix is not None:
            extra["suffix"] = shape.suffix
        specs[shape.name] = model(shape.training, base=shape.parent or "mini",
                                  epochs=shape.epochs, **extra)
    project.write(specs, dataset_bytes(case))
    project.commit()
    return project


class ManualClock:
    """The seeding emulator's clock: every job it starts has ended a step later."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@dataclass
class Before:
    """What the account held before the first apply, as the properties need it."""

    kept: set[str]  # fingerprints with a succeeded job: never to be trained again
    job_ids: set[str]


def seed_account(state: Path, case: Case, desired: Desired, prints: dict[str, str]) -> Before:
    """Files and jobs "ftops's own" by name and metadata, made by a raw strict SDK client."""
    data = dataset_bytes(case)
    sha = {name: hashlib.sha256(content).hexdigest() for name, content in data.items()}
    models = {m.name: m for m in desired.models}
    clock = ManualClock(1_700_000_000.0)  # long before now: every job is over when apply runs
    before = Before(set(), set())
    with Emulator(state_path=state, job_seconds=60, clock=clock) as emu, \
            sdk_client(emu.base_url) as sdk:
        files: dict[str, list[str]] = {}  # sha256 -> file ids, oldest first

        def upload(name: str) -> str:
            clock.now += 1
            made = sdk.files.create(file=(dataset_filename(sha[name]), data[name]),
                                    purpose="fine-tune")
            files.setdefault(sha[name], []).append(made.id)
            return made.id

        for i, count in enumerate(case.copies):
            for _ in range(count if sha[f"d{i}"] not in files else 0):
                upload(f"d{i}")
        wanted = {s: len(ids) for s, ids in files.items()}
        bad = sdk.files.create(file=("bad.jsonl", make_chat_jsonl(5)), purpose="fine-tune").id
        trained: dict[str, str] = {}  # model -> a fine-tuned model id its jobs made
        for shape in case.models:
            resolved = models[shape.name]
            for state_name in shape.jobs:
                job = _seed_job(sdk, clock, resolved, shape, state_name, desired, prints,
                                bad=bad, file_of=lambda n: (files.get(sha[n]) or [upload(n)])[0],
                                base=trained.get(shape.parent or "", BASE))
                before.job_ids.add(job.id)
                if job.status == "succeeded" and state_name != "superseded":
                    trained[shape.name] = job.fine_tuned_model
                    before.kept.add(prints[shape.name])
        for digest, ids in files.items():  # copies made only for jobs: deleted since
            for extra in ids[wanted.get(digest, 0):]:
                sdk.files.delete(extra)
    return before


def _seed_job(sdk: Any, clock: ManualClock, resolved: ResolvedModel, shape: Shape,
              state_name: str, desired: Desired, prints: dict[str, str], *, bad: str,
              file_of: Any, base: str) -> Any:
    fingerprint = (sha256_text(f"earlier version of {shape.name}")
                   if state_name == "superseded" else prints[shape.name])
    meta = job_metadata(resolved, fingerprint=fingerprint, repo=desired.repo,
                        commit=desired.commit)
    args: dict[str, Any] = {
        "model": base,
        # too few examples: the job fails once its files are validated
        "training_file": bad if state_name == "failed" else file_of(shape.training),
        "method": {"type": "supervised",
                   "supervised": {"hyperparameters": {"n_epochs": shape.epochs}}},
        "seed": 42,
        "metadata": meta,
    }
    if shape.validation is not None:
        args["validation_file"] = file_of(shape.validation)
    if shape.suffix is not None:
        args["suffix"] = shape.suffix
    clock.now += 1
    job = sdk.fine_tuning.jobs.create(**args)
    if state_name == "cancelled":
        sdk.fine_tuning.jobs.cancel(job.id)
    clock.now += 1_000
    job = sdk.fine_tuning.jobs.retrieve(job.id)
    expected = {"superseded": "succeeded"}.get(state_name, state_name)
    assert job.status == expected, (state_name, job.status, job.error)
    return job


# --- driving the real code ---------------------------------------------------------------------


def mutating(emu: Emulator) -> int:
    """Non-GET API requests since the emulator started (the counters see every request)."""
    return sum(n for method, n in emu.stats()["by_method"].items() if method != "GET")


def planned(emu: Emulator, project: Project) -> Plan | None:
    """``ftops plan``, tried a few times as faults may exhaust the SDK's retries; each try
    must send no mutating request."""
    for _ in range(3):
        sent = mutating(emu)
        try:
            result = plan.run(plan.PlanOptions(specs=project.specs, env={}))
        except (FtopsError, openai.APIError):  # what the CLI reports as one line, exit 1
            result = None
        assert mutating(emu) == sent, "ftops plan sent a mutating request"
        if result is not None:
            assert result.plan is not None
            return result.plan
    return None


def live_twice(jobs: list[Any]) -> dict[str, int]:
    live = Counter(j.metadata["ftops_fingerprint"] for j in jobs
                   if j.status in LIVE and j.metadata and "ftops_fingerprint" in j.metadata)
    return {fp: n for fp, n in live.items() if n > 1}


@contextmanager
def serving(state: Path, **options: Any) -> Iterator[Emulator]:
    with Emulator(state_path=state, job_seconds=0, retry_after=0, **options) as emu:
        yield emu


def account(emu: Emulator) -> tuple[list[Any], list[Any]]:
    with sdk_client(emu.base_url) as sdk:
        return (list(sdk.files.list(purpose="fine-tune", limit=10_000)),
                list(sdk.fine_tuning.jobs.list(limit=100)))


def converge(emu: Emulator, project: Project, case: Case, out: list[str]) -> Plan:
    """apply --wait, then plan, until an apply succeeded and the plan after it is empty."""
    for round_no in range(1, MAX_ROUNDS + 1):
        out.append(f"--- round {round_no}")
        try:
            apply.run(apply.ApplyOptions(specs=project.specs, wait=True, timeout=30,
                                         parallel=case.parallel, report=out.append, env={}))
            applied = True
        except (FtopsError, openai.APIError) as exc:  # the CLI: one line, exit 1
            out.append(f"apply failed: {exc}")
            applied = False
        fresh = planned(emu, project)
        if fresh is not None:
            out.append("plan: " + ", ".join(f"{a.address} {a.action.value}"
                                            for a in fresh.actions))
        if applied and fresh is not None and not fresh.has_changes:
            return fresh
    raise AssertionError(f"no convergence in {MAX_ROUNDS} rounds:\n" + "\n".join(out))


# --- the property ------------------------------------------------------------------------------


def check_case(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    """Seed the account, apply until converged, then hold the account to the properties."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with tempfile.TemporaryDirectory() as tmp:
        project = write_project(Path(tmp) / "repo", case)
        desired = load_project(project.specs).desired
        prints = fingerprints(desired)
        state = Path(tmp) / "emulator.json"
        before = seed_account(state, case, desired, prints)
        out: list[str] = []
        with serving(state, fault_rate=case.faults.rate, faults=case.faults.modes,
                     seed=case.faults.seed) as emu:
            monkeypatch.setenv("OPENAI_BASE_URL", emu.base_url)
            converge(emu, project, case, out)
            lost = sum(1 for r in emu.requests()
                       if r["fault"] == "500-after-create" and r["method"] == "POST"
                       and r["path"] == "/v1/fine_tuning/jobs")
        with serving(state) as calm:  # the account as it is now, read without faults
            files, jobs = account(calm)
    report = f"{case!r}\n" + "\n".join(out)
    assert not live_twice(jobs), report
    # Every job created since, cancelled ones included: starting a duplicate is the fault.
    started = Counter(j.metadata["ftops_fingerprint"] for j in jobs
                      if j.id not in before.job_ids and j.metadata)
    again = {fp[:12] for fp in set(started) & before.kept}
    assert not again, f"trained again though a job of it had succeeded: {again}\n{report}"
    assert sum(n - 1 for n in started.values()) <= lost, (
        f"jobs started per fingerprint {sorted(started.values())} with {lost} create "
        f"replies lost to injected faults\n{report}")
    assert set(started) | before.kept >= set(prints.values()), report
    names = Counter(f.filename for f in files)
    twice = {name: names[name] for name in
             {dataset_filename(hashlib.sha256(b).hexdigest())
              for b in dataset_bytes(case).values()} if names[name] > 1}
    assert not twice, f"dataset files twice: {twice}\n{report}"


# Each example runs the real apply several times, so shrinking a failure can take minutes:
# it is left out. A failing case is printed in full; pinned below, it becomes a regression.
@settings(max_examples=10, deadline=None, derandomize=True, database=None,
          phases=(Phase.explicit, Phase.generate),
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=cases())
def test_repeated_apply_converges_exactly_once(case: Case,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    note(repr(case))
    check_case(case, monkeypatch)


# --- failures the property found, pinned ---------------------------------------------------------

NO_FAULTS = Faults(rate=0.0, modes=("429", "503"), seed=0)


def test_a_fingerprint_that_succeeded_is_not_trained_again_after_a_later_failure(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A succeeded job, then a failed one of the same fingerprint: the model is trained."""
    check_case(Case(tags=("x",), copies=(0,), parallel=1, faults=NO_FAULTS, models=(
        Shape("m0", None, "d0", None, 1, None, ("succeeded", "failed")),)), monkeypatch)


def test_two_models_of_one_fingerprint_start_one_job(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two entries that train the same thing (same base, data, settings) in one round."""
    twin = Shape("m0", None, "d0", None, 1, None, ())
    check_case(Case(tags=("x",), copies=(0,), parallel=4, faults=NO_FAULTS,
                    models=(twin, replace(twin, name="m1"))), monkeypatch)
