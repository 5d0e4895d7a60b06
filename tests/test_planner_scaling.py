"""The planner looks at each job a bounded number of times, however many models there are:
a plan of 1,000 models over 20,000 jobs must not scan every job once per model."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping

from ftops.identity import fingerprints
from ftops.plan import ActionType
from ftops.planner import plan
from ftops.state import Actual, Desired, DesiredDataset, Job, RemoteModel, ResolvedModel

REPO = "github.com/acme/scaling"
NANO = "gpt-4.1-nano-2025-04-14"  # no shutdown date in the catalog
SHA = "ab" * 32


class CountingMetadata(Mapping[str, str]):
    """Job metadata that counts every look at it: each scan of the jobs reads it."""

    looks = 0

    def __init__(self, values: dict[str, str]) -> None:
        self._values = values

    def __getitem__(self, key: str) -> str:
        CountingMetadata.looks += 1
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        CountingMetadata.looks += 1
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, key: object) -> bool:
        CountingMetadata.looks += 1
        return key in self._values


def account(models: int, per_model: int) -> tuple[Desired, Actual]:
    """``models`` models on two providers, each with one current succeeded job and
    ``per_model - 1`` older ones (half of those still running: superseded)."""
    specs = tuple(ResolvedModel(name=f"m{i}", training="d", base_model=NANO, suffix=f"m{i}",
                                provider=("openai", "azure")[i % 2],
                                provider_type=("openai", "azure")[i % 2])
                  for i in range(models))
    desired = Desired(datasets=(DesiredDataset("d", "data/d.jsonl", SHA, 10),), models=specs,
                      repo=REPO)
    prints = fingerprints(desired)
    jobs, listed = [], []
    for m in specs:
        for k in range(per_model):
            current = k == per_model - 1
            meta = {"ftops_repo": REPO, "ftops_model": m.name,
                    "ftops_fingerprint": prints[m.name] if current else f"old-{k}"}
            status = "succeeded" if current or k % 2 else "running"
            tuned = f"ft:{NANO}:acme::{m.name}-{k}" if status == "succeeded" else None
            jobs.append(Job(f"ftjob-{m.name}-{k}", status, NANO, "file-d", created_at=k,
                            fine_tuned_model=tuned, metadata=CountingMetadata(meta),
                            provider=m.provider))
            if tuned:
                listed.append(RemoteModel(tuned, provider=m.provider))
    return desired, Actual(jobs=tuple(jobs), models=tuple(listed))


def looks_per_job(models: int, per_model: int) -> float:
    desired, actual = account(models, per_model)
    CountingMetadata.looks = 0
    result = plan(desired, actual, today=dt.date(2026, 6, 1))
    assert {a.action for a in result.actions if a.kind.value == "model"} == {ActionType.OK}
    return CountingMetadata.looks / len(actual.jobs)


def test_each_job_is_looked_at_a_bounded_number_of_times() -> None:
    # Before the indexes: 59 and 224 looks per job (a scan per model); with them 6.8 at any size.
    small, large = looks_per_job(20, 6), looks_per_job(80, 6)
    assert large < 12, (small, large)
    assert large < 2 * small + 1, (small, large)


def test_models_named_is_the_listing_by_provider_and_id() -> None:
    a = RemoteModel("ft:x", provider="openai", created=1)
    b = RemoteModel("ft:x", provider="openai", created=2)  # a listing may repeat an id
    c = RemoteModel("ft:x", provider="azure")
    actual = Actual(models=(a, c, b))
    assert actual.models_named("openai") == {"ft:x": (a, b)}
    assert actual.models_named("azure") == {"ft:x": (c,)}
    assert actual.models_named("other") == {}


class CountingModels(tuple[RemoteModel, ...]):
    """A /models listing that counts how often it is walked."""

    walks = 0

    def __iter__(self) -> Iterator[RemoteModel]:
        CountingModels.walks += 1
        return super().__iter__()


def test_the_models_listing_is_walked_a_bounded_number_of_times() -> None:
    desired, actual = account(60, 3)
    actual = Actual(jobs=actual.jobs, models=CountingModels(actual.models))
    plan(desired, actual, today=dt.date(2026, 6, 1))
    assert CountingModels.walks < 10, CountingModels.walks
