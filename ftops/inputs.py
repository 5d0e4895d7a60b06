"""What the planner read that decides actions, recorded in a plan so that, when a confirmed plan
and a fresh one differ, ``ftops.plandiff`` can say why in words (a job that ended, a file that
came or went, a dataset whose bytes changed)."""

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
