"""Recognising this repository's jobs on a provider that does not keep the metadata ftops wrote.

Where job metadata is kept (OpenAI), a job names its model and fingerprint itself. Where it is
not (Azure does not document it; ``ftops emulator --drop-metadata``), a job is still told apart
by what it shows of how it was created: its base (or, chained, the fine-tuned model of the
parent's job), the sha256 in the ``ftops-<sha256>.jsonl`` names of its training and validation
files, its method, every hyperparameter the spec sets (``auto`` matches whatever the provider
chose), its seed when the spec sets one, and its suffix wherever the provider shows it (on the
job, or inside the fine-tuned model's id). A job that shows all of these as a declared model
would be created is that model's job: the labels it would carry are put back on it, so the
planner, the lock and apply's duplicate checks work exactly as with metadata.

Scoped to the repository: the providers show only this repository's dataset files under ftops
names (theirs carry its tag, ``ftops.identity.repo_tag``; another repository's give no sha256
here), so a job is recognised only on this repository's data. On Together, where files are
shared by content, the tag ends the job's suffix instead, and jobs without it are never labelled
(``ftops.providers.together``).

Limits, by construction: two declared models that differ only in a suffix the provider does not
show are told apart only once the fine-tuned model's id shows it; and a job created outside ftops
from ftops's own files with exactly a model's settings is taken for that model's job.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

from ftops.identity import normalize_hyperparameters
from ftops.modelid import parse_fine_tuned
from ftops.state import Desired, HyperValue, Job

FileSha = Callable[[str], "str | None"]  # file id -> the sha256 its ftops name carries
# The fingerprint label of a job recognised as an earlier version of a model: no declared
# fingerprint is this, so the job is the model's previous one, never its current.
SUPERSEDED = "superseded"


@dataclass(frozen=True)
class Expected:
    """What the job of one declared model shows of itself, metadata aside."""

    name: str
    fingerprint: str
    base: str | None  # the literal base; None when chained on ``parent``
    parent: str | None  # the parent's fingerprint
    training: str  # sha256
    validation: str | None
    method: str
    hyperparameters: Mapping[str, HyperValue]  # the values the spec sets (no ``auto``)
    suffix: str | None
    seed: int | None


def expectations(desired: Desired, fingerprints: Mapping[str, str],
                 provider: str) -> tuple[Expected, ...]:
    """One ``Expected`` per model of ``provider`` whose fingerprint is known."""
    hashes = {d.name: d.sha256 for d in desired.datasets}
    found = []
    for m in desired.models:
        if m.provider != provider or m.name not in fingerprints:
            continue
        found.append(Expected(
            name=m.name, fingerprint=fingerprints[m.name], base=m.base,
            parent=fingerprints.get(m.parent) if m.parent else None,
            training=hashes[m.training],
            validation=hashes[m.validation] if m.validation else None,
            method=m.method, hyperparameters=normalize_hyperparameters(m.hyperparameters),
            suffix=m.suffix, seed=m.seed))
    return tuple(found)


def _shown_suffix(job: Job) -> tuple[bool, str | None]:
    """(whether the job shows its suffix, the suffix)."""
    if job.suffix is not None:
        return True, job.suffix
    parsed = parse_fine_tuned(job.fine_tuned_model) if job.fine_tuned_model else None
    return (True, parsed.suffix) if parsed else (False, None)


def _same_number(a: HyperValue | None, b: HyperValue) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):  # a flag (Nebius' lora) is no number
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return not isinstance(a, bool) and float(a) == float(b)
    return a == b


def matches(job: Job, want: Expected, file_sha: FileSha,
            trained: Mapping[str, str]) -> bool:
    """Whether ``job`` shows everything ``want`` would be created with. ``trained`` maps a
    fine-tuned model id to the fingerprint of the job that made it (for chained models)."""
    if want.parent is None:
        if job.model != want.base:
            return False
    elif trained.get(job.model) != want.parent:
        return False
    validation = file_sha(job.validation_file) if job.validation_file else None
    if (job.method != want.method or file_sha(job.training_file) != want.training
            or validation != want.validation):
        return False
    if want.seed is not None and job.seed != want.seed:
        return False
    if not all(_same_number(job.hyperparameters.get(k), v)
               for k, v in want.hyperparameters.items()):
        return False
    shown, suffix = _shown_suffix(job)
    return not shown or (suffix or "").lower() == (want.suffix or "").lower()


def earlier(job: Job, want: Expected, file_sha: FileSha) -> bool:
    """Whether ``job`` is an earlier version of ``want``'s model: the same training data,
    base and method under the model's own suffix, with other settings. (An earlier version
    on other data is not told from another repository's job: it is left alone.)"""
    shown, suffix = _shown_suffix(job)
    return (shown and want.suffix is not None and want.parent is None
            and (suffix or "").lower() == want.suffix.lower()
            and job.model == want.base and job.method == want.method
            and file_sha(job.training_file) == want.training)


def label(jobs: Iterable[Job], expected: tuple[Expected, ...], file_sha: FileSha, *,
          repo: str, trained: dict[str, str]) -> tuple[Job, ...]:
    """``jobs`` with the labels of the declared model each unlabelled one is recognised as
    (jobs of no declared model stay as they are): its current fingerprint when the job shows
    all of it, else ``SUPERSEDED`` for an earlier version (so a change plans as ``replace``).
    Oldest first, so a parent's job is known before its children's; ``trained`` is updated
    with every fine-tuned model seen."""
    out = []
    for job in sorted(jobs, key=lambda j: (j.created_at, j.id)):
        if "ftops_fingerprint" not in job.metadata:
            want = next((e for e in expected if matches(job, e, file_sha, trained)), None)
            old = None if want else next((e for e in expected if earlier(job, e, file_sha)), None)
            found = want or old
            if found is not None:
                job = replace(job, metadata={
                    **job.metadata, "ftops_repo": repo, "ftops_model": found.name,
                    "ftops_fingerprint": want.fingerprint if want else SUPERSEDED})
        if job.fine_tuned_model and "ftops_fingerprint" in job.metadata:
            trained[job.fine_tuned_model] = job.metadata["ftops_fingerprint"]
        out.append(job)
    return tuple(out)
