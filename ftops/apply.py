"""Execute a Plan so that re-running it, crashing half-way, SDK retries or two applies at once never
upload a dataset twice or train one fingerprint twice.

The rule for every create: look first, create only if nothing is there, look again afterwards and,
if a retry or a concurrent apply made duplicates, keep the oldest and remove the rest. One look
serves every create of a round (see :mod:`ftops.pipeline`). Every apply also mends duplicates
that an earlier crash left behind.

Who owns what: the thread that calls ``Executor.run`` owns the run and alone changes the
``Outcome``, ``file_ids``, ``model_ids`` and the jobs found (in the pipeline's check and settle
steps, and as each followed job ends). Workers (creates, upload parts, prunes, followers) only
read those and return what they made for the owner to fold in. ``Features`` (what a provider
refused) is shared by every thread and locks itself. Every request of the run holds a slot of
one ``RequestBudget`` of ``parallel`` slots. On a stop (``ftops.stop``) nothing new starts and,
once what is in flight has returned, ``Interrupted`` goes up to the command.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from typing_extensions import Unpack  # typing.Unpack is 3.11+; ftops supports 3.10

from ftops.deploying import deploy_all
from ftops.errors import FtopsError, RemoteError
from ftops.follow import Report, follow
from ftops.identity import dataset_filename
from ftops.mend import Outcome, dedupe_files, dedupe_jobs, ignore_missing, oldest_first
from ftops.pipeline import Create, Pipeline
from ftops.plan import Action, ActionType, Kind, Plan
from ftops.providers import Account, JobRequest
from ftops.providers.base import FileGone
from ftops.providers.messages import rate_limited
from ftops.providers.uploads import UploadSizes
from ftops.state import Actual, Job, RemoteFile
from ftops.stop import RequestBudget, cooperating

if TYPE_CHECKING:
    import openai

FileIds = dict[tuple[str, str], str]  # (provider, sha256) -> file id


@dataclass(frozen=True)
class _JobCreated:
    """What a job create's worker returns, for the owning thread to fold in."""

    job: Job | None = None
    refused: str | None = None  # the provider refused for now (e.g. too many active jobs)
    file_ids: FileIds = field(default_factory=dict)  # the copies kept that it trained on


class Executor:
    """Runs one plan's actions: uploads, then models (parents before children), then prunes.

    ``parallel`` bounds every request in flight at once, whatever sends it (see the module's
    docstring): a number of slots, or the budget of a command whose reads share it;
    ``known`` is the read the plan was checked against, made just before: a look at the jobs
    reads only the newest page or so since its jobs, and it is the first pipeline's first look
    (which would repeat it); ``sizes`` lower when and in what parts datasets go up (tests).
    """

    def __init__(self, plan: Plan, remotes: Mapping[str, Account], *, root: Path,
                 parallel: int | RequestBudget = 4, wait_for_jobs: bool = False,
                 timeout: float | None = None,
                 known: Actual | None = None,
                 report: Report = lambda _line: None, **sizes: Unpack[UploadSizes]) -> None:
        self.plan = plan
        self.remotes = remotes
        self.root = root
        self.budget = parallel if isinstance(parallel, RequestBudget) else RequestBudget(parallel)
        self.sizes = sizes
        self.wait_for_jobs = wait_for_jobs
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.report = report
        self.outcome = Outcome()
        self.file_ids: FileIds = {}
        self.model_ids: dict[str, str] = {}  # declared model -> fine-tuned model id
        known = known or Actual()
        self.jobs_since = {p: max((j.created_at for j in known.jobs if j.provider == p),
                                  default=0) for p in remotes}
        # The read the next pipeline may start from, and whose (None: every provider's).
        self._ready: tuple[str | None, Actual] | None = (None, known)
        # Provider -> its whole account, as read by the run's last request to it (the last
        # look after its last creates), which the mend and ftops.lock are made from.
        self.read_after: dict[str, Actual] = {}

    def remote(self, provider: str) -> Account:
        if provider not in self.remotes:
            raise FtopsError(f"no provider {provider!r} is configured")
        return self.remotes[provider]

    def _first_look(self, provider: str) -> Actual | None:
        """For the pipeline about to run: the read made just before it (the one apply made
        before executing, or the last look of the upload pipeline just run), if of its
        provider; every other pipeline starts after creates, so it looks for itself."""
        ready, self._ready = self._ready, None
        return ready[1] if ready is not None and ready[0] in (None, provider) else None

    def _last_upload_look(self, provider: str, *, jobs_next: bool) -> tuple[RemoteFile, ...]:
        """The upload pipeline's last look and, at once, the first look of the job pipeline
        that follows it (when it does): one round of latency, not two."""
        remote = self.remote(provider)
        if not jobs_next:
            return self.budget.call(remote.files)
        with ThreadPoolExecutor(max_workers=2) as both:
            files = both.submit(self.budget.call, remote.files)
            since = self.jobs_since.get(provider, 0)
            jobs = both.submit(self.budget.call, partial(remote.recent_jobs, since))
            ready = Actual(files=files.result(), jobs=jobs.result())
        self._ready = (provider, ready)
        return ready.files

    def _read_after(self, provider: str) -> tuple[Job, ...]:
        """The last look of a provider's job pipeline: its whole account at once (a listing a
        slot), so that no read right after repeats it (see ``read_after``)."""
        self.read_after[provider] = self.remote(provider).read(self.budget)
        return self.read_after[provider].jobs

    def _by_provider(self, actions: list[Action]) -> dict[str, list[Action]]:
        providers = dict.fromkeys(a.provider for a in actions)  # in the plan's order
        return {p: [a for a in actions if a.provider == p] for p in providers}

    # --- uploads -------------------------------------------------------------------------------
    def upload_all(self, pool: ThreadPoolExecutor, actions: list[Action]) -> None:
        groups = self._by_provider(actions)
        training = {a.provider for a in self.plan.actions if a.kind is Kind.MODEL
                    and a.training is not None and a.training.base is not None}
        for n, (provider, group) in enumerate(groups.items()):
            remote = self.remote(provider)
            known = self._first_look(provider)
            Pipeline(pool, self.budget, look=remote.files,
                      check=partial(self._uploaded, remote, after=False),
                      create=partial(self._upload, remote),
                      settle=partial(self._settle_upload, remote),
                      last=partial(self._last_upload_look, provider,  # the jobs come next
                                   jobs_next=n == len(groups) - 1 and provider in training),
                      ).run(group, None if known is None else
                            tuple(f for f in known.files if f.provider == provider))

    def _uploaded(self, remote: Account, item: Create, files: tuple[RemoteFile, ...],
                  after: bool) -> bool:
        up = item.action.upload
        assert up is not None
        kept = dedupe_files(remote, files, up.sha256, up.size, self.outcome, self.budget)
        if kept is None:
            return False
        self.file_ids[(item.action.provider, up.sha256)] = kept.id
        (self.outcome.uploaded if after else self.outcome.reused).append(up.path)
        return True

    def _upload(self, remote: Account, item: Create) -> RemoteFile:
        up = item.action.upload
        assert up is not None
        self.report(f"uploading {up.path} ({up.size} bytes) as {up.filename}")
        return remote.upload(self.root / up.path, up.sha256, budget=self.budget, **self.sizes)

    def _settle_upload(self, remote: Account, item: Create,
                       files: tuple[RemoteFile, ...]) -> None:
        if self._uploaded(remote, item, files, True):
            return
        up = item.action.upload
        assert up is not None
        if item.failure is not None:
            raise item.failure
        raise RemoteError(f"uploaded {up.path} but the file is not listed",
                          hint="run `ftops apply` again")

    # --- jobs ----------------------------------------------------------------------------------
    def _file_id(self, provider: str, ref_sha: str, ref_id: str | None,
                 refound: FileIds) -> str:
        key = (provider, ref_sha)
        file_id = refound.get(key) or self.file_ids.get(key) or ref_id
        if file_id is None:
            raise FtopsError(f"dataset {ref_sha[:12]} was not uploaded", hint="run apply again")
        return file_id

    def train_all(self, pool: ThreadPoolExecutor, actions: list[Action]) -> dict[str, str]:
        """Starts each model's job unless one with its fingerprint exists; returns the job id
        of every model that has one now (started or found), by address."""
        jobs: dict[str, str] = {}
        ready = [a for a in actions if a.training is not None and a.training.base is not None]
        for action in (a for a in actions if a not in ready):
            parent = action.training.parent if action.training else None
            self.outcome.deferred[action.name] = (
                f"waits for {parent} to finish training "
                "(run `ftops apply --wait`, or apply again once it has succeeded)")
        for provider, group in self._by_provider(ready).items():
            remote = self.remote(provider)
            since = self.jobs_since.get(provider, 0)
            known = self._first_look(provider)
            self.read_after.pop(provider, None)  # this pipeline's creates come after it
            Pipeline(pool, self.budget, look=partial(remote.recent_jobs, since),
                      check=partial(self._job_exists, remote, jobs=jobs),
                      create=partial(self._create_job, remote),
                      settle=partial(self._settle_job, remote, jobs=jobs),
                      key=lambda a: a.training.fingerprint if a.training else a.address,
                      last=partial(self._read_after, provider),
                      ).run(group, None if known is None else
                            tuple(j for j in known.jobs if j.provider == provider))
        return jobs

    def _kept_job(self, remote: Account, item: Create, found: tuple[Job, ...]) -> Job | None:
        """The job kept for the model's fingerprint; a retrain's own (its model deleted) is
        no job to keep, and none of its duplicates."""
        assert item.action.training is not None
        dead = item.action.job_id if item.action.action is ActionType.RETRAIN else None
        return dedupe_jobs(remote, tuple(j for j in found if j.id != dead),
                           item.action.training.fingerprint, self.outcome, self.budget)

    def _job_exists(self, remote: Account, item: Create, found: tuple[Job, ...],
                    jobs: dict[str, str]) -> bool:
        existing = self._kept_job(remote, item, found)
        if existing is None:
            return False
        self.report(f"model {item.action.name}: job {existing.id} exists ({existing.status})")
        jobs[item.action.address] = existing.id
        return True

    def _create_job(self, remote: Account, item: Create) -> _JobCreated:
        """On a worker: what was created, for ``_settle_job`` to fold in."""
        self.report(f"model {item.action.name}: starting a job")
        try:
            try:
                return _JobCreated(job=self._job_request(remote, item.action, {}))
            except FileGone:
                # A concurrent apply keeps the oldest copy of a dataset and deletes the rest,
                # maybe the one this apply uploaded: train on the copy that is kept, or on one
                # uploaded again when none is (every provider type raises FileGone for this).
                refound = self._refind_files(remote, item.action)
                return _JobCreated(job=self._job_request(remote, item.action, refound),
                                   file_ids=refound)
        except rate_limited() as exc:
            # e.g. too many active jobs: the rest waits for the next apply, reported, not fatal.
            return _JobCreated(refused=f"provider refused for now: {_message(exc)}")

    def _job_request(self, remote: Account, action: Action, refound: FileIds) -> Job:
        training = action.training
        assert training is not None and training.base is not None
        validation = training.validation
        request = partial(remote.create_job, JobRequest(
            model=training.base,
            training_file=self._file_id(action.provider, training.training.sha256,
                                        training.training.file_id, refound),
            validation_file=(self._file_id(action.provider, validation.sha256,
                                           validation.file_id, refound) if validation else None),
            method=training.method,
            hyperparameters=training.hyperparameters,
            suffix=training.suffix,
            seed=training.seed,
            metadata=training.metadata,
            training_type=training.training_type,
        ))
        return self.budget.call(request)

    def _refind_files(self, remote: Account, action: Action) -> FileIds:
        training = action.training
        assert training is not None
        files = self.budget.call(remote.files)
        found: FileIds = {}
        for ref in filter(None, (training.training, training.validation)):
            name = dataset_filename(ref.sha256)
            same = oldest_first([f for f in files if f.filename == name])
            if same:
                found[(action.provider, ref.sha256)] = same[0].id
            else:
                found.update(self._upload_again(remote, action, ref.sha256))
        return found

    def _upload_again(self, remote: Account, action: Action, sha256: str) -> FileIds:
        """On a worker: the dataset this plan uploaded once, uploaded again now that no copy
        of it is left; nothing for one it did not upload (the next plan will)."""
        up = next((a.upload for a in self.plan.actions if a.provider == action.provider
                   and a.upload is not None and a.upload.sha256 == sha256), None)
        if up is None:
            return {}
        self.report(f"model {action.name}: {up.path} is gone from {action.provider}: "
                    "uploading it again")
        made = remote.upload(self.root / up.path, up.sha256, budget=self.budget, **self.sizes)
        return {(action.provider, sha256): made.id}

    def _settle_job(self, remote: Account, item: Create, found: tuple[Job, ...],
                    jobs: dict[str, str]) -> None:
        created = item.result if isinstance(item.result, _JobCreated) else _JobCreated()
        if created.refused is not None:
            self.outcome.deferred[item.action.name] = created.refused
            return
        self.file_ids.update(created.file_ids)
        kept = self._kept_job(remote, item, found) or created.job
        if kept is None:
            assert item.failure is not None  # only a failed create leaves no job
            raise item.failure
        self.report(f"model {item.action.name}: started job {kept.id}")
        self.outcome.started[item.action.name] = kept.id
        jobs[item.action.address] = kept.id

    def follow(self, name: str, provider: str, job_id: str) -> Job:
        """On a follower: the job as it ended (its polls in the run's budget)."""
        return follow(self.remote(provider), name, job_id, report=self.report,
                      deadline=self.deadline, budget=self.budget)

    def _followed(self, action: Action, job: Job) -> None:
        """On the owning thread, once a followed job has ended."""
        if job.fine_tuned_model:
            self.model_ids[action.name] = job.fine_tuned_model
        if job.status != "succeeded":
            detail = f": {job.error.message}" if job.error else ""
            self.outcome.failed[action.name] = f"job {job.id} {job.status}{detail}"

    # --- prune ---------------------------------------------------------------------------------
    def prune(self, action: Action) -> str:
        """On a worker: the prune, in a slot; returns the line for ``Outcome.pruned``."""
        remote = self.remote(action.provider)
        remove = {Kind.JOB: remote.cancel_job, Kind.FILE: remote.delete_file,
                  Kind.FINE_TUNED_MODEL: remote.delete_model,
                  Kind.DEPLOYMENT: remote.undeploy}.get(action.kind)
        if remove is not None:
            ignore_missing(partial(remove, action.name), self.budget)
        return f"{action.action.value} {action.address}"

    # --- the whole plan -------------------------------------------------------------------------
    def run(self) -> Outcome:
        """The whole plan, on this (the owning) thread; ``Interrupted`` on a stop, once what
        was in flight has returned."""
        slots = self.budget.size
        with cooperating(), ThreadPoolExecutor(max_workers=slots) as pool, \
                ThreadPoolExecutor(max_workers=slots) as followers:
            self.upload_all(pool, [a for a in self.plan.actions
                                   if a.action is ActionType.UPLOAD])
            self._run_models(pool, followers)
            if self.wait_for_jobs or any(a.kind is Kind.DEPLOYMENT or a.action in (
                    ActionType.CANCEL, ActionType.DELETE) for a in self.plan.actions):
                self.read_after.clear()  # followed, deployed or pruned since: read again
            deployed, deferred, failed = deploy_all(self.plan, self.remote, pool, self.budget,
                                                    self.model_ids)
            self.outcome.deployed += deployed
            self.outcome.deferred.update(deferred)
            self.outcome.failed.update(failed)
            prunes = [a for a in self.plan.actions
                      if a.action in (ActionType.CANCEL, ActionType.DELETE)]
            for future in [pool.submit(self.prune, a) for a in prunes]:
                self.outcome.pruned.append(future.result())
        return self.outcome

    def _run_models(self, pool: ThreadPoolExecutor, followers: ThreadPoolExecutor) -> None:
        """Independent models together; a child once its parent's run has finished (with
        ``--wait``, once its job has ended). Uploads are done by then, so only model addresses
        in ``depends_on`` can still wait."""
        todo = {a.address: a for a in self.plan.actions
                if a.kind is Kind.MODEL and a.training is not None
                and a.action in (ActionType.TRAIN, ActionType.REPLACE, ActionType.RETRY,
                                 ActionType.RETRAIN, ActionType.BLOCKED)}
        following: dict[Future[Job], Action] = {}
        while todo or following:
            waiting = set(todo) | {a.address for a in following.values()}
            ready = [a for a in todo.values() if not waiting.intersection(a.depends_on)]
            for action in ready:
                del todo[action.address]
            jobs = self.train_all(pool, [self._resolved(a) for a in ready])
            if self.wait_for_jobs:
                for action in ready:
                    if action.address in jobs:
                        future = followers.submit(self.follow, action.name, action.provider,
                                                  jobs[action.address])
                        following[future] = action
            if not following:
                if ready:
                    continue
                break
            done, _ = wait(list(following), return_when=FIRST_COMPLETED)
            for future in done:
                self._followed(following.pop(future), future.result())

    def _resolved(self, action: Action) -> Action:
        """A blocked child gets its parent's model id once the parent has one."""
        training = action.training
        if training is None or training.base is not None or training.parent is None:
            return action
        model = self.model_ids.get(training.parent)
        return action if model is None else replace(action, training=replace(training, base=model))


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return str(exc.message)
