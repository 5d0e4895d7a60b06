"""What the planner read that decides actions, recorded in a plan so that a saved plan can be
refused once the specs or the account have moved on (see ``Plan.is_stale_against``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Inputs:
    """What the planner read that decides actions. Remote keys are ``provider/id``.

    Jobs are recorded by status class (``live`` or the terminal status), so a running job's
    progress does not make a saved plan stale, but it finishing does.
    """

    datasets: Mapping[str, str] = field(default_factory=dict)  # name -> sha256
    models: Mapping[str, str] = field(default_factory=dict)  # name -> fingerprint
    jobs: Mapping[str, str] = field(default_factory=dict)  # job -> status class
    files: Mapping[str, str] = field(default_factory=dict)  # file -> file name
    fine_tuned_models: tuple[str, ...] = ()
    prune: bool = False
    allow_delete_models: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "datasets": dict(sorted(self.datasets.items())),
            "models": dict(sorted(self.models.items())),
            "jobs": dict(sorted(self.jobs.items())),
            "files": dict(sorted(self.files.items())),
            "fine_tuned_models": sorted(self.fine_tuned_models),
            "prune": self.prune,
            "allow_delete_models": self.allow_delete_models,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Inputs:
        return cls(
            datasets=dict(raw["datasets"]),
            models=dict(raw["models"]),
            jobs=dict(raw["jobs"]),
            files=dict(raw["files"]),
            fine_tuned_models=tuple(raw["fine_tuned_models"]),
            prune=raw["prune"],
            allow_delete_models=raw["allow_delete_models"],
        )

    def stale_reasons(self, fresh: Inputs) -> list[str]:
        """Why a plan made from these (saved) inputs no longer matches one made from ``fresh``;
        [] if it does."""
        reasons = [
            *_mapping_drift("dataset", self.datasets, fresh.datasets),
            *_mapping_drift("model", self.models, fresh.models),
            *_mapping_drift("job", self.jobs, fresh.jobs),
            *_mapping_drift("file", self.files, fresh.files),
        ]
        for gone in sorted(set(self.fine_tuned_models) - set(fresh.fine_tuned_models)):
            reasons.append(f"fine-tuned model {gone} is gone")
        for new in sorted(set(fresh.fine_tuned_models) - set(self.fine_tuned_models)):
            reasons.append(f"fine-tuned model {new} appeared")
        if (self.prune, self.allow_delete_models) != (fresh.prune, fresh.allow_delete_models):
            reasons.append("planned with different prune options")
        return reasons


def _mapping_drift(what: str, saved: Mapping[str, str], now: Mapping[str, str]) -> list[str]:
    reasons = []
    for key in sorted(set(saved) | set(now)):
        before, after = saved.get(key), now.get(key)
        if before == after:
            continue
        if before is None:
            reasons.append(f"{what} {key} appeared ({after})")
        elif after is None:
            reasons.append(f"{what} {key} is gone (was {before})")
        else:
            reasons.append(f"{what} {key} changed: {before} -> {after}")
    return reasons
