"""The planner: a pure function from (desired, actual, options, today) to a Plan."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ftops import checks, drift
from ftops.changes import diff, job_changes, job_error, labels
from ftops.deploys import deploy_actions, undeclared_deployments
from ftops.errors import Diagnostic, FtopsError
from ftops.identity import (
    FINE_TUNE_PURPOSE,
    dataset_filename,
    fingerprints,
    is_dataset_file,
    job_metadata,
    sha256_from_filename,
)
from ftops.inputs import Inputs
from ftops.lifecycle import Calendar
from ftops.plan import (
    STARTS_JOB,
    Action,
    ActionType,
    Change,
    DatasetRef,
    Display,
    Kind,
    Plan,
    Training,
    Upload,
)
from ftops.prune import prune_actions, undeclared_notice
from ftops.state import Actual, Desired, Job, RemoteFile, ResolvedModel


def plan(
    desired: Desired,
    actual: Actual,
    *,
    prune: bool = False,
    allow_delete_models: bool = False,
    today: dt.date,
    pinned: bool = False,
    aliases: Mapping[str, str] | None = None,
) -> Plan:
    """Compare what the specs declare with what the account holds. Reads nothing else.

    ``today`` decides cut-offs and retirements (``pinned``: it came from FTOPS_TODAY, and the
    plan says so); ``aliases`` (alias -> model, from ftops.lock) are flagged when retired.
    """
    planner = _Planner(desired, actual, today, aliases or {})
    return planner.run(prune=prune, allow_delete_models=allow_delete_models, pinned=pinned)


@dataclass(frozen=True)
class _Needed:
    """One dataset's bytes needed on one provider, and the remote file that holds them."""

    provider: str
    sha256: str
    names: tuple[str, ...]
    file: RemoteFile | None

    @property
    def upload_address(self) -> str:
        return Action(ActionType.UPLOAD, Kind.DATASET, self.names[0], self.provider).address


class _Planner:
    def __init__(self, desired: Desired, actual: Actual, today: dt.date,
                 aliases: Mapping[str, str]) -> None:
        self.desired = desired
        self.actual = actual
        self.today = today
        self.aliases = aliases
        self.calendar = Calendar(desired, actual, today)
        self.retired: dict[str, dt.date] = {}  # model -> the day its fine-tune stopped answering
        self.fingerprints = fingerprints(desired)
        self.jobs = actual.project_jobs(desired.repo)
        # (provider, model) -> its jobs in account order: what each model's checks look at,
        # rather than every job of the project once per model (quadratic).
        self.jobs_of: dict[tuple[str, str], list[Job]] = {}
        for job in self.jobs:
            self.jobs_of.setdefault((job.provider, job.metadata["ftops_model"]), []).append(job)
        self.trained: dict[str, str | None] = {}  # ok model -> its fine-tuned model id
        self.deleted: dict[str, str] = {}  # retrain model -> the fine-tuned model id now gone
        self.wanted_uploads: set[tuple[str, str]] = set()
        self.warnings: list[Diagnostic] = []
        self.errors: list[Diagnostic] = []

    def run(self, *, prune: bool, allow_delete_models: bool, pinned: bool) -> Plan:
        needed = self._needed_datasets()
        models = self._model_actions(needed)
        models += deploy_actions(self.desired, self.actual, {a.name: a for a in models})
        uploads = [self._upload(n) for key, n in needed.items()
                   if n.file is None and key in self.wanted_uploads]
        pruned = self._prune(needed, allow_delete_models, prune=prune)
        self.warnings += self.calendar.warnings(self.retired)
        self.warnings += self.calendar.alias_warnings(self.aliases, self.retired)
        self.errors += self.calendar.errors()
        undeployed = [a for a in pruned if a.kind == Kind.DEPLOYMENT]  # shown first
        return Plan(
            actions=(*undeployed, *uploads, *models,
                     *(a for a in pruned if a.kind != Kind.DEPLOYMENT)),
            warnings=_sorted_notices(self.warnings),
            errors=_sorted_notices(self.errors),
            inputs=self._inputs(needed, prune=prune, allow_delete_models=allow_delete_models),
            today=self.today.isoformat(),
            pinned=pinned,
        )

    # -- datasets ---------------------------------------------------------------------------

    def _needed_datasets(self) -> dict[tuple[str, str], _Needed]:
        """Per (provider, sha256): bytes a declared model trains on there, and its remote file."""
        names: dict[tuple[str, str], set[str]] = {}
        for model in self.desired.models:
            for name in (model.training, model.validation):
                if name is not None:
                    dataset = self.desired.dataset(name)
                    assert dataset is not None  # fingerprints() checked every reference
                    names.setdefault((model.provider, dataset.sha256), set()).add(name)
        named: dict[tuple[str, str], list[RemoteFile]] = {}  # not every file once per dataset
        for f in self.actual.files:
            named.setdefault((f.provider, f.filename), []).append(f)
        needed = {}
        for (provider, sha), group in sorted(names.items(),
                                             key=lambda kv: (kv[0][0], min(kv[1]))):
            first = self.desired.dataset(min(group))
            assert first is not None
            candidates = [f for f in named.get((provider, dataset_filename(sha)), ())
                          if is_dataset_file(f, sha, first.size)]
            file = min(candidates, key=lambda f: (f.created_at, f.id), default=None)
            needed[(provider, sha)] = _Needed(provider, sha, tuple(sorted(group)), file)
        return needed

    def _upload(self, needed: _Needed) -> Action:
        dataset = self.desired.dataset(needed.names[0])
        assert dataset is not None
        upload = Upload(path=dataset.path, sha256=dataset.sha256, size=dataset.size,
                        filename=dataset_filename(dataset.sha256), datasets=needed.names)
        return Action(ActionType.UPLOAD, Kind.DATASET, dataset.name, needed.provider,
                      upload=upload)

    def _dataset_ref(
        self, model: ResolvedModel, name: str, needed: Mapping[tuple[str, str], _Needed]
    ) -> tuple[DatasetRef, str | None]:
        """The reference a job trains on, and the upload it waits for (if any)."""
        dataset = self.desired.dataset(name)
        assert dataset is not None
        entry = needed[(model.provider, dataset.sha256)]
        if entry.file is not None:
            return DatasetRef(name, dataset.sha256, entry.file.id), None
        self.wanted_uploads.add((model.provider, dataset.sha256))
        return DatasetRef(name, dataset.sha256, None), entry.upload_address

    # -- models -----------------------------------------------------------------------------

    def _depth(self, model: ResolvedModel) -> int:
        parent = self.desired.model(model.parent) if model.parent else None
        return 0 if parent is None else 1 + self._depth(parent)

    def _model_actions(self, needed: Mapping[tuple[str, str], _Needed]) -> list[Action]:
        done: dict[str, Action] = {}
        for model in sorted(self.desired.models, key=lambda m: (self._depth(m), m.name)):
            done[model.name] = self._model_action(model, done, needed)
        return list(done.values())

    def _latest_previous(self, model: ResolvedModel) -> Job | None:
        jobs = [j for j in self.jobs_of.get((model.provider, model.name), ())
                if j.status != "cancelled"]
        return max(jobs, key=lambda j: (j.created_at, j.id), default=None)

    def _kind(self, model: ResolvedModel, current: Job | None,
              previous: Job | None) -> ActionType:
        """What the jobs alone say, before chains and the calendar have their word."""
        if current is None:
            return ActionType.REPLACE if previous else ActionType.TRAIN
        if current.live:
            return ActionType.PENDING
        if current.status != "succeeded":
            return ActionType.RETRY
        retired = self.calendar.retired_on(model)
        if retired is not None:  # retired first: a shut-down base cannot be trained again
            self.trained[model.name] = current.fine_tuned_model
            self.retired[model.name] = retired
            return ActionType.RETIRED
        if drift.model_deleted(self.actual, current, model.provider_type):
            # Nothing left to train children from: they wait for the new job, like any parent's.
            self.deleted[model.name] = str(current.fine_tuned_model)
            return ActionType.RETRAIN
        self.trained[model.name] = current.fine_tuned_model
        return ActionType.OK

    def _chain(self, model: ResolvedModel, parent: Action | None, kind: ActionType,
               depends_on: list[str]) -> tuple[ActionType, str | None, str | None]:
        """(kind, base, note) once the parent is known: a chained model trains from its
        parent's result, and waits while the parent has none."""
        if parent is None:
            return kind, model.base, None
        if parent.provider != model.provider:
            self.errors.append(Diagnostic(
                "error", "parent_provider",
                f"chains on {parent.address}, which trains on another provider; "
                "a fine-tuned model can only be trained further where it lives",
                subject=f"model.{model.name}"))
        base = self.trained.get(parent.name)
        if kind in STARTS_JOB and parent.action != ActionType.OK:
            depends_on.append(parent.address)
            return ActionType.BLOCKED, base, f"waits for {parent.address} ({parent.action.value})"
        return kind, base, None

    def _model_action(
        self,
        model: ResolvedModel,
        done: Mapping[str, Action],
        needed: Mapping[tuple[str, str], _Needed],
    ) -> Action:
        fingerprint = self.fingerprints[model.name]
        subject = f"model.{model.name}"
        metadata = self._metadata(model, fingerprint, subject)
        current = self.actual.current_job(
            self.desired.repo, model.provider, fingerprint,
            dead=lambda job: drift.model_deleted(self.actual, job, model.provider_type))
        previous = None if current else self._latest_previous(model)
        self.warnings += checks.superseded_warnings(
            model, fingerprint, self.jobs_of.get((model.provider, model.name), ()))
        depends_on: list[str] = []
        parent = done.get(model.parent) if model.parent else None
        kind, base, note = self._chain(model, parent, self._kind(model, current, previous),
                                       depends_on)
        if note is None:
            note = self._note(model, current, previous)
        if kind == ActionType.RETRAIN:
            note = f"fine-tuned model {self.deleted[model.name]} was deleted"
        if model.migrates and kind in STARTS_JOB:
            note = "; ".join(filter(None, (self._migrates(model), note)))
        changes = self._model_changes(model, fingerprint, current, previous, base, kind)
        if changes and previous is None:
            note = "labels differ from the job's; they apply to the next job (no retrain)"
        training = None
        if kind in STARTS_JOB:
            training = self._training(model, fingerprint, base, metadata, needed, depends_on)
            # Only a job about to start is checked: one trained already spends and risks nothing.
            self.calendar.refuse_training(model)
            self.errors += [*checks.base_problems(model, self.actual),
                            *checks.budget_problems(model)]
        job = current or previous
        retired = self.retired.get(model.name)
        return Action(
            kind, Kind.MODEL, model.name, model.provider,
            job_id=job.id if job else None,
            training=training,
            depends_on=tuple(sorted(set(depends_on))),
            changes=changes,
            display=Display(
                status=current.status if current else None,
                model_id=(current.fine_tuned_model if current and kind in
                          (ActionType.OK, ActionType.RETIRED) else None),
                error=job_error(current) if kind == ActionType.RETRY and current else None,
                cost_usd=model.estimated_cost_usd if kind in STARTS_JOB else None,
                note=(f"stopped answering on {retired.isoformat()}: its base "
                      f"{self.calendar.root_base(model)} has shut down; see `ftops migrate`"
                      if retired else note),
                retired_on=retired.isoformat() if retired else None,
            ),
        )

    def _migrates(self, model: ResolvedModel) -> str | None:
        """A successor's job: which model it migrates, until when that answers, what gates it."""
        original = self.desired.model(model.migrates or "")
        if original is None:  # the original was removed: the migration is done
            return None
        day = self.calendar.shutdown(original)
        then = (f"; then eval {model.eval}" + (f", alias {model.promote} moves if it passes"
                                                 if model.promote else "")) if model.eval else ""
        return (f"migrates {original.name}" + (f" (shuts down {day.isoformat()})" if day else "")
                + then)

    @staticmethod
    def _note(model: ResolvedModel, current: Job | None, previous: Job | None) -> str | None:
        if current is not None and current.metadata["ftops_model"] != model.name:
            return f"trained as model {current.metadata['ftops_model']}"
        return f"replaces job {previous.id}" if previous else None

    def _model_changes(self, model: ResolvedModel, fingerprint: str, current: Job | None,
                       previous: Job | None, base: str | None,
                       kind: ActionType) -> tuple[Change, ...]:
        """Field diffs against the superseded job, or label drift on the current one."""
        if previous is not None:
            return job_changes(self.desired, self.actual.files, model, fingerprint, previous,
                               base)
        if current is not None and kind in (ActionType.OK, ActionType.PENDING):
            return diff({"metadata": labels(current.metadata)},
                        {"metadata": dict(model.metadata)})
        return ()

    def _training(self, model: ResolvedModel, fingerprint: str, base: str | None,
                  metadata: Mapping[str, str], needed: Mapping[tuple[str, str], _Needed],
                  depends_on: list[str]) -> Training:
        """The job to create, and the uploads it waits for (added to ``depends_on``)."""
        training_ref, upload = self._dataset_ref(model, model.training, needed)
        validation_ref = None
        uploads = [upload]
        if model.validation is not None:
            validation_ref, upload = self._dataset_ref(model, model.validation, needed)
            uploads.append(upload)
        depends_on.extend(u for u in uploads if u is not None)
        return Training(
            fingerprint=fingerprint,
            base=base,
            parent=model.parent,
            training=training_ref,
            validation=validation_ref,
            method=model.method,
            hyperparameters=dict(sorted(model.hyperparameters.items())),
            suffix=model.suffix,
            seed=model.seed,
            metadata=dict(metadata),
            training_type=model.training_type,
        )

    def _metadata(self, model: ResolvedModel, fingerprint: str, subject: str) -> dict[str, str]:
        try:
            return job_metadata(model, fingerprint=fingerprint, repo=self.desired.repo,
                                commit=self.desired.commit)
        except FtopsError as exc:
            self.errors.append(Diagnostic("error", "job_metadata", str(exc), subject=subject))
            return {}

    # -- prune ------------------------------------------------------------------------------

    def _prune(
        self, needed: Mapping[tuple[str, str], _Needed], allow_delete_models: bool, *,
        prune: bool,
    ) -> list[Action]:
        needed_files = {(n.provider, n.file.id) for n in needed.values() if n.file is not None}
        actions, warnings = prune_actions(self.desired, self.actual, self.jobs, self.fingerprints,
                                          needed_files,
                                          allow_delete_models=allow_delete_models or not prune)
        actions += undeclared_deployments(self.desired, self.actual, self.jobs)
        if not prune:  # nothing removed; the plan only counts what --prune would show
            self.warnings += undeclared_notice(actions)
            return []
        self.warnings += warnings
        return actions

    # -- inputs -----------------------------------------------------------------------------

    def _inputs(
        self, needed: Mapping[tuple[str, str], _Needed], *, prune: bool, allow_delete_models: bool
    ) -> Inputs:
        outputs = {(j.provider, j.fine_tuned_model) for j in self.jobs if j.fine_tuned_model}
        return Inputs(
            datasets={name: sha for (_, sha), n in needed.items() for name in n.names},
            models=dict(sorted(self.fingerprints.items())),
            jobs={f"{j.provider}/{j.id}": j.status_class for j in self.jobs},
            files={f"{f.provider}/{f.id}": f.filename for f in self.actual.files
                   if f.purpose == FINE_TUNE_PURPOSE and sha256_from_filename(f.filename)},
            fine_tuned_models=tuple(sorted(f"{m.provider}/{m.id}" for m in self.actual.models
                                           if (m.provider, m.id) in outputs)),
            prune=prune,
            allow_delete_models=allow_delete_models,
        )


def _sorted_notices(notices: Iterable[Diagnostic]) -> tuple[Diagnostic, ...]:
    """Plan notices by subject, spec-form ones (checks: file:line) by where they point."""
    return tuple(sorted(set(notices), key=lambda n: (n.subject or "", n.path or "",
                                                     n.line or 0, n.code, n.message)))
