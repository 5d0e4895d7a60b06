"""The Plan: a closed set of actions, what they were computed from, and its versioned JSON.

Fields under ``display`` are for people (status, model id, error, cost) and never drive apply.
``plan_hash`` covers only what apply would do, so it can serve as a PR approval record;
``inputs`` records what the planner read, so that when a confirmed plan and a fresh one differ
(``ftops.plandiff``) the difference can be told in words: which job ended, which file came.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ftops.errors import Diagnostic, FtopsError, Severity
from ftops.identity import canonical_json, sha256_text
from ftops.inputs import Inputs
from ftops.state import DEFAULT_PROVIDER, HyperValue

FORMAT_VERSION = 1

# Job metadata that records provenance (which commit applied it): it differs between the
# reviewed PR head and the merge commit by design, so it is not part of the approval hash.
PROVENANCE_KEYS = ("ftops_commit", "ftops_repo")


class ActionType(str, Enum):
    UPLOAD = "upload"
    TRAIN = "train"
    REPLACE = "replace"
    RETRY = "retry"
    RETRAIN = "retrain"  # it succeeded, but its fine-tuned model was deleted: train it again
    BLOCKED = "blocked"
    PENDING = "pending"
    OK = "ok"
    RETIRED = "retired"  # trained, but its base has shut down: the model no longer answers
    CANCEL = "cancel"
    DELETE = "delete"
    DEPLOY = "deploy"  # create a deployment serving the model (Azure)
    REDEPLOY = "redeploy"  # point a deployment at the model's current fine-tuned model


class Kind(str, Enum):
    DATASET = "dataset"
    MODEL = "model"
    FILE = "file"
    JOB = "job"
    FINE_TUNED_MODEL = "fine_tuned_model"
    DEPLOYMENT = "deployment"


# Actions that start a training job (now, or for ``blocked`` once the parent succeeds).
STARTS_JOB = frozenset({ActionType.TRAIN, ActionType.REPLACE, ActionType.RETRY,
                        ActionType.RETRAIN, ActionType.BLOCKED})
# Actions that change the account; ok and pending only report.
CHANGES = STARTS_JOB | {ActionType.UPLOAD, ActionType.CANCEL, ActionType.DELETE,
                        ActionType.DEPLOY, ActionType.REDEPLOY}
# What ``--detailed-exitcode`` reports as 2: changes, and drift that apply cannot mend.
NEEDS_ATTENTION = CHANGES | {ActionType.RETIRED}


@dataclass(frozen=True)
class Change:
    """One field that differs between the previous job and the new one."""

    path: str
    before: Any
    after: Any

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "before": self.before, "after": self.after}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Change:
        return cls(path=raw["path"], before=raw["before"], after=raw["after"])


@dataclass(frozen=True)
class Upload:
    """What apply uploads: the file at ``path`` under the hash-carrying ``filename``."""

    path: str
    sha256: str
    size: int
    filename: str
    datasets: tuple[str, ...]  # every declared dataset with these bytes

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "size": self.size,
                "filename": self.filename, "datasets": list(self.datasets)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Upload:
        return cls(path=raw["path"], sha256=raw["sha256"], size=raw["size"],
                   filename=raw["filename"], datasets=tuple(raw["datasets"]))


@dataclass(frozen=True)
class DeployRef:
    """What a deployment action makes ``name`` serve: ``model``'s fine-tuned model, known
    (``model_id``) or, while it trains, None until its job succeeds."""

    model: str  # the declared model
    model_id: str | None
    sku: str
    capacity: int

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "model_id": self.model_id, "sku": self.sku,
                "capacity": self.capacity}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> DeployRef:
        return cls(model=raw["model"], model_id=raw["model_id"], sku=raw["sku"],
                   capacity=raw["capacity"])


@dataclass(frozen=True)
class DatasetRef:
    """A dataset a job trains on; ``file_id`` is None when this plan's upload provides it."""

    name: str
    sha256: str
    file_id: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": self.sha256, "file_id": self.file_id}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> DatasetRef:
        return cls(name=raw["name"], sha256=raw["sha256"], file_id=raw["file_id"])


@dataclass(frozen=True)
class Training:
    """Everything apply needs to create the job.

    ``base`` is the model id to train from; None while ``parent`` (a declared model) has no
    fine-tuned model yet, in which case apply uses the parent's result once it succeeds.
    """

    fingerprint: str
    base: str | None
    parent: str | None
    training: DatasetRef
    validation: DatasetRef | None
    method: str
    hyperparameters: Mapping[str, HyperValue]
    suffix: str | None
    seed: int | None
    metadata: Mapping[str, str]
    training_type: str | None = None  # Azure's; not in the fingerprint (see ftops.spec.azure)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "base": self.base,
            "parent": self.parent,
            "training": self.training.to_dict(),
            "validation": self.validation.to_dict() if self.validation else None,
            "method": self.method,
            "hyperparameters": dict(sorted(self.hyperparameters.items())),
            "suffix": self.suffix,
            "seed": self.seed,
            "metadata": dict(sorted(self.metadata.items())),
            "training_type": self.training_type,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Training:
        validation = raw["validation"]
        return cls(
            fingerprint=raw["fingerprint"],
            base=raw["base"],
            parent=raw["parent"],
            training=DatasetRef.from_dict(raw["training"]),
            validation=DatasetRef.from_dict(validation) if validation else None,
            method=raw["method"],
            hyperparameters=dict(raw["hyperparameters"]),
            suffix=raw["suffix"],
            seed=raw["seed"],
            metadata=dict(raw["metadata"]),
            training_type=raw.get("training_type"),  # absent from plans saved before it
        )


@dataclass(frozen=True)
class Display:
    """For people only; apply never reads these."""

    status: str | None = None
    model_id: str | None = None
    error: str | None = None
    cost_usd: float | None = None
    note: str | None = None
    retired_on: str | None = None  # ISO day the fine-tuned model stopped answering

    def to_dict(self) -> dict[str, Any]:
        out = {"status": self.status, "model_id": self.model_id, "error": self.error,
               "cost_usd": self.cost_usd, "note": self.note}
        if self.retired_on:
            out["retired_on"] = self.retired_on
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Display:
        return cls(status=raw["status"], model_id=raw["model_id"], error=raw["error"],
                   cost_usd=raw["cost_usd"], note=raw["note"], retired_on=raw.get("retired_on"))


@dataclass(frozen=True)
class Action:
    """One step. For ``job``, ``file`` and ``fine_tuned_model`` kinds, ``name`` is the remote id.

    ``job_id`` is the job a model action is based on (the one followed, or superseded).
    """

    action: ActionType
    kind: Kind
    name: str
    provider: str = DEFAULT_PROVIDER
    job_id: str | None = None
    upload: Upload | None = None
    training: Training | None = None
    depends_on: tuple[str, ...] = ()
    changes: tuple[Change, ...] = ()
    display: Display = field(default_factory=Display)
    deploy: DeployRef | None = None

    @property
    def address(self) -> str:
        base = f"{self.kind.value}.{self.name}"
        return base if self.provider == DEFAULT_PROVIDER else f"{base}[{self.provider}]"

    def to_dict(self) -> dict[str, Any]:
        out = {
            "action": self.action.value,
            "kind": self.kind.value,
            "name": self.name,
            "address": self.address,
            "provider": self.provider,
            "job_id": self.job_id,
            "upload": self.upload.to_dict() if self.upload else None,
            "training": self.training.to_dict() if self.training else None,
            "depends_on": list(self.depends_on),
            "changes": [c.to_dict() for c in self.changes],
            "display": self.display.to_dict(),
        }
        if self.deploy:  # only deployments carry it: every other action hashes as before
            out["deploy"] = self.deploy.to_dict()
        return out

    def decisive(self) -> dict[str, Any]:
        """What apply would act on: no display fields, no provenance metadata."""
        out = self.to_dict()
        del out["display"]
        if out["training"]:
            meta = out["training"]["metadata"]
            out["training"]["metadata"] = {
                k: v for k, v in meta.items() if k not in PROVENANCE_KEYS
            }
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Action:
        return cls(
            action=ActionType(raw["action"]),
            kind=Kind(raw["kind"]),
            name=raw["name"],
            provider=raw["provider"],
            job_id=raw["job_id"],
            upload=Upload.from_dict(raw["upload"]) if raw["upload"] else None,
            training=Training.from_dict(raw["training"]) if raw["training"] else None,
            depends_on=tuple(raw["depends_on"]),
            changes=tuple(Change.from_dict(c) for c in raw["changes"]),
            display=Display.from_dict(raw["display"]),
            deploy=DeployRef.from_dict(raw["deploy"]) if raw.get("deploy") else None,
        )


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    warnings: tuple[Diagnostic, ...] = ()  # each of severity "warning"
    errors: tuple[Diagnostic, ...] = ()  # each of severity "error": apply refuses the plan
    inputs: Inputs = field(default_factory=Inputs)
    today: str | None = None  # the ISO day the plan was made for (its dates decide actions)
    pinned: bool = False  # True when that day came from FTOPS_TODAY, not the machine's clock

    def __post_init__(self) -> None:
        # The JSON has no severity: a notice's list says it, so the two must never disagree.
        for notices, severity in ((self.warnings, "warning"), (self.errors, "error")):
            wrong = [str(n) for n in notices if n.severity != severity]
            if wrong:
                raise ValueError(f"not of severity {severity}: {'; '.join(wrong)}")

    @property
    def as_of(self) -> str:
        """``as of <day>`` for a plan made on a pinned day, else ``""``."""
        return f"as of {self.today}" if self.pinned and self.today else ""

    @property
    def needs_attention(self) -> bool:
        """Changes pending, or drift such as a retired model: ``--detailed-exitcode`` 2."""
        return any(a.action in NEEDS_ATTENTION for a in self.actions)

    @property
    def summary(self) -> dict[str, int]:
        counts = {t.value: 0 for t in ActionType}
        for action in self.actions:
            counts[action.action.value] += 1
        return counts

    @property
    def has_changes(self) -> bool:
        return any(a.action in CHANGES for a in self.actions)

    @property
    def estimated_cost_usd(self) -> float:
        """Known costs of the jobs this plan starts; actions with unknown cost add nothing."""
        costs = [a.display.cost_usd for a in self.actions
                 if a.action in STARTS_JOB and a.display.cost_usd is not None]
        return round(sum(costs), 4)

    @property
    def plan_hash(self) -> str:
        """sha256 of what apply would do. ok/pending actions are left out: a job finishing
        elsewhere while a PR is in review must not invalidate its approval."""
        decisive = {
            "format_version": FORMAT_VERSION,
            "actions": [a.decisive() for a in self.actions if a.action in CHANGES],
            "errors": [e.to_dict() for e in self.errors],
        }
        return sha256_text(canonical_json(decisive))

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "plan_hash": self.plan_hash,
            "has_changes": self.has_changes,
            "summary": self.summary,
            "estimated_cost_usd": self.estimated_cost_usd,
            "actions": [a.to_dict() for a in self.actions],
            "warnings": [w.to_dict() for w in self.warnings],
            "errors": [e.to_dict() for e in self.errors],
            "inputs": self.inputs.to_dict(),
            "today": self.today,
            "pinned": self.pinned,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str, *, source: str = "plan.json") -> Plan:
        """Parse a saved plan; refuses other format versions and edited or corrupted plans."""
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FtopsError(f"not valid JSON: {exc.msg}", path=source, line=exc.lineno,
                             hint="save plans with `ftops plan --out FILE`") from None
        if not isinstance(raw, dict) or "format_version" not in raw:
            raise FtopsError("not an ftops plan (no format_version)", path=source)
        if raw["format_version"] != FORMAT_VERSION:
            raise FtopsError(
                f"plan format_version {raw['format_version']!r} is not supported "
                f"(this ftops reads {FORMAT_VERSION})", path=source,
                hint="re-run `ftops plan` with this version of ftops")
        try:
            plan = cls(
                actions=tuple(Action.from_dict(a) for a in raw["actions"]),
                warnings=_notices(raw["warnings"], "warning"),
                errors=_notices(raw["errors"], "error"),
                inputs=Inputs.from_dict(raw["inputs"]),
                today=raw.get("today"),
                pinned=bool(raw.get("pinned", False)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise FtopsError(f"malformed plan ({type(exc).__name__}: {exc})", path=source,
                             hint="re-run `ftops plan`") from None
        if raw.get("plan_hash") != plan.plan_hash:
            raise FtopsError("plan_hash does not match the plan's content", path=source,
                             hint="the file was edited or corrupted; re-run `ftops plan`")
        return plan


def _notices(raw: list[Mapping[str, Any]], severity: Severity) -> tuple[Diagnostic, ...]:
    return tuple(Diagnostic.from_dict(n, severity=severity) for n in raw)
