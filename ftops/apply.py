"""Execute a Plan so that re-running it, crashing half-way, SDK retries or two applies at once never
upload a dataset twice or train one fingerprint twice.

The rule for every create: look first, create only if nothing is there, look again afterwards and,
if a retry or a concurrent apply made duplicates, keep the oldest and remove the rest. Every apply
also mends duplicates that an earlier crash left behind.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path

import openai

from ftops.errors import FtopsError
from ftops.identity import dataset_filename, sha256_from_filename
from ftops.plan import Action, ActionType, Kind, Plan, Training
from ftops.remote import Remote
from ftops.state import Actual, Job, RemoteFile

Report = Callable[[str], None]
# Failures after which a create may still have happened (a 5xx sent after the create, a reply
# lost on the way back): look again before reporting them.
MAYBE_CREATED = (openai.InternalServerError, openai.APIConnectionError)
POLL_SECONDS = 1.0


@dataclass
class Outcome:
    """What one apply did; ``deferred`` is left for the next apply, ``failed`` is an error."""

    uploaded: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    started: dict[str, str] = field(default_factory=dict)  # model -> job id
    deduplicated: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    deferred: dict[str, str] = field(default_factory=dict)  # model -> reason
    failed: dict[str, str] = field(default_factory=dict)  # model -> error
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def ok(self) -> bool:
        return not self.failed


def _oldest_first(items: list[RemoteFile] | list[Job]) -> list:  # type: ignore[type-arg]
    return sorted(items, key=lambda x: (x.created_at, x.id))


def dedupe_files(remote: Remote, files: tuple[RemoteFile, ...], sha256: str, size: int,
                 outcome: Outcome) -> RemoteFile | None:
    """Keep the oldest file carrying this dataset; delete the rest. Returns the kept one."""
    name = dataset_filename(sha256)
    same = _oldest_first([f for f in files if f.filename == name and f.bytes == size])
    for extra in same[1:]:
        _ignore_missing(lambda f=extra: remote.delete_file(f.id))
        with outcome.lock:
            outcome.deduplicated.append(f"file {extra.id} (duplicate of {same[0].id})")
    return same[0] if same else None


def dedupe_jobs(remote: Remote, jobs: tuple[Job, ...], fingerprint: str,
                outcome: Outcome) -> Job | None:
    """Keep the oldest live-or-succeeded job of a fingerprint; cancel every other live one."""
    mine = [j for j in jobs if j.metadata.get("ftops_fingerprint") == fingerprint]
    keepers = _oldest_first([j for j in mine if j.live or j.status == "succeeded"])
    if not keepers:
        return None
    for extra in keepers[1:]:
        if extra.live:
            _ignore_missing(lambda j=extra: remote.cancel_job(j.id))
            with outcome.lock:
                outcome.deduplicated.append(f"job {extra.id} (duplicate of {keepers[0].id})")
    return keepers[0]


def _ignore_missing(call: Callable[[], object]) -> None:
    """Deleting or cancelling what another apply already removed is success, not an error."""
    with contextlib.suppress(openai.NotFoundError, openai.BadRequestError, openai.ConflictError):
        call()


def mend_duplicates(remotes: Mapping[str, Remote], actual: Actual, outcome: Outcome) -> None:
    """Remove duplicates an earlier crash or race left behind (no requests when there are none)."""
    for provider, remote in remotes.items():
        files = tuple(f for f in actual.files if f.provider == provider)
        counts = Counter((f.filename, f.bytes) for f in files)
        for (filename, size), count in counts.items():
            sha = sha256_from_filename(filename)
            if count > 1 and sha is not None:
                dedupe_files(remote, files, sha, size, outcome)
        jobs = tuple(j for j in actual.jobs if j.provider == provider)
        kept = Counter(j.metadata.get("ftops_fingerprint") for j in jobs
                       if j.live or j.status == "succeeded")
        for fingerprint, count in kept.items():
            if count > 1 and fingerprint is not None:
                dedupe_jobs(remote, jobs, fingerprint, outcome)


def follow(remote: Remote, name: str, job_id: str, *, report: Report,
           deadline: float | None) -> Job:
    """Poll a job until it ends (or the monotonic ``deadline`` passes), reporting new events."""
    seen: set[str] = set()
    while True:
        job = remote.job(job_id)
        for event in remote.events(job_id):
            if event.id not in seen:
                seen.add(event.id)
                report(f"model {name}: {event.message}")
        if not job.live:
            return job
        if deadline is not None and time.monotonic() > deadline:
            raise FtopsError(f"timed out waiting for job {job_id} of model {name}",
                             hint="`ftops wait` follows it further")
        time.sleep(POLL_SECONDS)


class Executor:
    """Runs one plan's actions with a bounded pool, parents before children."""

    def __init__(self, plan: Plan, remotes: Mapping[str, Remote], *, root: Path,
                 parallel: int = 4, wait_for_jobs: bool = False, timeout: float | None = None,
                 report: Report = lambda _line: None) -> None:
        self.plan = plan
        self.remotes = remotes
        self.root = root
        self.parallel = max(1, parallel)
        self.wait_for_jobs = wait_for_jobs
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.report = report
        self.outcome = Outcome()
        self.file_ids: dict[tuple[str, str], str] = {}  # (provider, sha256) -> file id
        self.model_ids: dict[str, str] = {}  # declared model -> fine-tuned model id

    def remote(self, provider: str) -> Remote:
        try:
            return self.remotes[provider]
        except KeyError:
            raise FtopsError(f"no provider {provider!r} is configured") from None

    # --- uploads -------------------------------------------------------------------------------
    def upload(self, action: Action) -> None:
        assert action.upload is not None
        up = action.upload
        remote = self.remote(action.provider)
        kept = dedupe_files(remote, remote.files(), up.sha256, up.size, self.outcome)
        if kept is None:
            self.report(f"uploading {up.path} ({up.size} bytes) as {up.filename}")
            failure: openai.APIError | None = None
            try:
                remote.upload(self.root / up.path, up.sha256, parallel=self.parallel)
            except MAYBE_CREATED as exc:
                failure = exc
            kept = dedupe_files(remote, remote.files(), up.sha256, up.size, self.outcome)
            if kept is None:
                if failure is not None:
                    raise failure
                raise FtopsError(f"uploaded {up.path} but the file is not listed",
                                 hint="run `ftops apply` again")
            with self.outcome.lock:
                self.outcome.uploaded.append(up.path)
        else:
            with self.outcome.lock:
                self.outcome.reused.append(up.path)
        self.file_ids[(action.provider, up.sha256)] = kept.id

    # --- jobs ----------------------------------------------------------------------------------
    def _file_id(self, provider: str, ref_sha: str, ref_id: str | None) -> str:
        file_id = self.file_ids.get((provider, ref_sha)) or ref_id
        if file_id is None:
            raise FtopsError(f"dataset {ref_sha[:12]} was not uploaded", hint="run apply again")
        return file_id

    def _create_job(self, remote: Remote, provider: str, training: Training, base: str) -> Job:
        validation = training.validation
        return remote.create_job(
            model=base,
            training_file=self._file_id(provider, training.training.sha256,
                                        training.training.file_id),
            validation_file=(self._file_id(provider, validation.sha256, validation.file_id)
                             if validation else None),
            method=training.method,
            hyperparameters=training.hyperparameters,
            suffix=training.suffix,
            seed=training.seed,
            metadata=training.metadata,
        )

    def _refind_files(self, remote: Remote, provider: str, training: Training) -> None:
        files = remote.files()
        for ref in (training.training, training.validation):
            if ref is None:
                continue
            name = dataset_filename(ref.sha256)
            same = _oldest_first([f for f in files if f.filename == name])
            if same:
                self.file_ids[(provider, ref.sha256)] = same[0].id

    def train(self, action: Action) -> str | None:
        """Start the model's job unless one with its fingerprint exists. Returns the job id."""
        assert action.training is not None
        training = action.training
        remote = self.remote(action.provider)
        base = training.base
        if base is None:
            with self.outcome.lock:
                self.outcome.deferred[action.name] = (
                    f"waits for {training.parent} to finish training "
                    "(run `ftops apply --wait`, or apply again once it has succeeded)")
            return None
        existing = dedupe_jobs(remote, remote.jobs(ftops_fingerprint=training.fingerprint),
                               training.fingerprint, self.outcome)
        if existing is not None:
            self.report(f"model {action.name}: job {existing.id} exists ({existing.status})")
            return existing.id
        failure: openai.APIError | None = None
        job: Job | None = None
        try:
            try:
                job = self._create_job(remote, action.provider, training, base)
            except openai.BadRequestError as exc:
                if exc.param not in ("training_file", "validation_file"):
                    raise
                # A concurrent apply keeps the oldest copy of a dataset and deletes the rest,
                # maybe the one this apply uploaded: train on the copy that is kept.
                self._refind_files(remote, action.provider, training)
                job = self._create_job(remote, action.provider, training, base)
        except openai.RateLimitError as exc:
            # e.g. too many active jobs: the rest waits for the next apply, reported, not fatal.
            with self.outcome.lock:
                self.outcome.deferred[action.name] = f"provider refused for now: {_message(exc)}"
            return None
        except MAYBE_CREATED as exc:
            failure = exc
        kept = dedupe_jobs(remote, remote.jobs(ftops_fingerprint=training.fingerprint),
                           training.fingerprint, self.outcome) or job
        if kept is None:
            assert failure is not None  # only a failed create leaves no job
            raise failure
        job_id = kept.id
        self.report(f"model {action.name}: started job {job_id}")
        with self.outcome.lock:
            self.outcome.started[action.name] = job_id
        return job_id

    def follow(self, name: str, provider: str, job_id: str) -> Job:
        job = follow(self.remote(provider), name, job_id, report=self.report,
                     deadline=self.deadline)
        if job.fine_tuned_model:
            self.model_ids[name] = job.fine_tuned_model
        return job

    def run_model(self, action: Action) -> None:
        job_id = self.train(action)
        if job_id is None or not self.wait_for_jobs:
            return
        job = self.follow(action.name, action.provider, job_id)
        if job.status != "succeeded":
            detail = f": {job.error.message}" if job.error else ""
            with self.outcome.lock:
                self.outcome.failed[action.name] = f"job {job.id} {job.status}{detail}"

    # --- prune ---------------------------------------------------------------------------------
    def prune(self, action: Action) -> None:
        remote = self.remote(action.provider)
        if action.kind is Kind.JOB:
            _ignore_missing(lambda: remote.cancel_job(action.name))
        elif action.kind is Kind.FILE:
            _ignore_missing(lambda: remote.delete_file(action.name))
        elif action.kind is Kind.FINE_TUNED_MODEL:
            _ignore_missing(lambda: remote.delete_model(action.name))
        with self.outcome.lock:
            self.outcome.pruned.append(f"{action.action.value} {action.address}")

    # --- the whole plan -------------------------------------------------------------------------
    def run(self) -> Outcome:
        with ThreadPoolExecutor(max_workers=self.parallel) as pool:
            uploads = [a for a in self.plan.actions if a.action is ActionType.UPLOAD]
            for future in [pool.submit(self.upload, a) for a in uploads]:
                future.result()
            self._run_models(pool)
            prunes = [a for a in self.plan.actions
                      if a.action in (ActionType.CANCEL, ActionType.DELETE)]
            for future in [pool.submit(self.prune, a) for a in prunes]:
                future.result()
        return self.outcome

    def _run_models(self, pool: ThreadPoolExecutor) -> None:
        """Independent models in parallel; a child starts once its parent's run has finished.
        Uploads are done by then, so only model addresses in ``depends_on`` can still wait."""
        todo = {a.address: a for a in self.plan.actions
                if a.kind is Kind.MODEL and a.training is not None
                and a.action in (ActionType.TRAIN, ActionType.REPLACE, ActionType.RETRY,
                                 ActionType.BLOCKED)}
        running: dict[Future[None], str] = {}
        while todo or running:
            for address, action in list(todo.items()):
                waiting = set(todo) | set(running.values())
                if not waiting.intersection(action.depends_on):
                    del todo[address]
                    running[pool.submit(self.run_model, self._resolved(action))] = address
            if not running:
                break
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                running.pop(future)
                future.result()

    def _resolved(self, action: Action) -> Action:
        """A blocked child gets its parent's model id once the parent has one."""
        training = action.training
        if training is None or training.base is not None or training.parent is None:
            return action
        parent_model = self.model_ids.get(training.parent)
        if parent_model is None:
            return action
        return replace(action, training=replace(training, base=parent_model))


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return str(exc.message)
