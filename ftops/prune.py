"""What ``--prune`` removes: this project's live jobs, dataset files and (only with
``--allow-delete-models``) fine-tuned models that no declared model accounts for.

A pure function of what the planner already computed; it reads nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Set

from ftops.errors import Diagnostic
from ftops.identity import FINE_TUNE_PURPOSE, sha256_from_filename
from ftops.plan import Action, ActionType, Display, Kind
from ftops.state import Actual, Desired, Job


def prune_actions(
    desired: Desired,
    actual: Actual,
    jobs: tuple[Job, ...],
    fingerprints: Mapping[str, str],
    needed_files: Set[tuple[str, str]],
    *,
    allow_delete_models: bool,
) -> tuple[list[Action], list[Diagnostic]]:
    """The cancels and deletes, and the warnings to add to the plan.

    ``jobs`` are the project's jobs, ``fingerprints`` each declared model's and
    ``needed_files`` the (provider, file id) of dataset files a declared model trains on.
    """
    declared = {m.name for m in desired.models}
    claimed = {(m.provider, fingerprints[m.name]) for m in desired.models}

    def undeclared(job: Job) -> bool:
        return (job.metadata["ftops_model"] not in declared
                and (job.provider, job.metadata.get("ftops_fingerprint")) not in claimed)

    live = [j for j in actual.jobs if j.live]
    actions = [
        Action(ActionType.CANCEL, Kind.JOB, j.id, j.provider, job_id=j.id,
               display=Display(status=j.status, note=_gone(j)))
        for j in sorted(jobs, key=lambda j: (j.provider, j.id))
        if j.live and undeclared(j)
    ]
    keep = set(needed_files)
    keep |= {(j.provider, f) for j in live for f in (j.training_file, j.validation_file) if f}
    actions += [
        Action(ActionType.DELETE, Kind.FILE, f.id, f.provider,
               display=Display(note=f"dataset file {f.filename[:18]}… is not used by "
                                    "any declared model"))
        for f in sorted(actual.files, key=lambda f: (f.provider, f.id))
        if f.purpose == FINE_TUNE_PURPOSE and sha256_from_filename(f.filename)
        and not f.shared and (f.provider, f.id) not in keep
    ]
    existing = {(m.provider, m.id) for m in actual.models}
    in_use = {(m.provider, m.base) for m in desired.models if m.parent is None}
    in_use |= {(j.provider, j.model) for j in live}
    orphans = [j for j in sorted(jobs, key=lambda j: (j.provider, j.id))
               if j.status == "succeeded" and j.fine_tuned_model and undeclared(j)
               and (j.provider, j.fine_tuned_model) in existing
               and (j.provider, j.fine_tuned_model) not in in_use]
    warnings: list[Diagnostic] = []
    if allow_delete_models:
        actions += [
            Action(ActionType.DELETE, Kind.FINE_TUNED_MODEL, str(j.fine_tuned_model),
                   j.provider, job_id=j.id, display=Display(note=_gone(j)))
            for j in orphans
        ]
    elif orphans:
        ids = ", ".join(str(j.fine_tuned_model) for j in orphans)
        warnings.append(Diagnostic(
            "warning", "models_kept",
            f"kept {len(orphans)} fine-tuned model(s) of models no longer declared ({ids}); "
            "pass --allow-delete-models to delete them", subject="prune"))
    return actions, warnings


def _gone(job: Job) -> str:
    return f"model {job.metadata['ftops_model']} is no longer declared"


_NOUNS = {Kind.JOB: "live job", Kind.FILE: "dataset file",
          Kind.FINE_TUNED_MODEL: "fine-tuned model", Kind.DEPLOYMENT: "deployment"}


def undeclared_notice(candidates: list[Action]) -> list[Diagnostic]:
    """Without ``--prune``: how many things of this project no spec declares any more, so that
    a plan never says the account matches the specs while ``--prune`` would remove some.
    ``candidates`` are what ``prune_actions`` gives with ``allow_delete_models``."""
    if not candidates:
        return []
    counts = {noun: sum(1 for a in candidates if _NOUNS.get(a.kind) == noun)
              for noun in _NOUNS.values()}
    what = ", ".join(f"{n} {noun}{'s' if n != 1 else ''}" for noun, n in counts.items() if n)
    total = len(candidates)
    return [Diagnostic(
        "warning", "undeclared",
        f"the account holds {total} thing{'s' if total != 1 else ''} of this project that no "
        f"spec declares ({what}); `ftops plan --prune` shows them", subject="prune")]
