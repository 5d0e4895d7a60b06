"""``ftops.lock``: the last known job of each declared model, committed next to the specs.

Applications read fine-tuned model ids from it. It is a record, not state ftops depends on:
plan never reads it, and it can always be rebuilt from the account (``update_lock``).

Two marks tell an application that the id it reads no longer answers: ``retired: <day>`` (its
base shut down) and ``deleted: true`` (the fine-tuned model was deleted from the account, by
the rule of ``ftops.drift``; the plan shows it as ``retrain``). A marked entry keeps the dead id,
so that it is plain which model went away; the next job's entry carries neither mark.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from ftops import drift
from ftops.atomic import write_atomic
from ftops.errors import FtopsError
from ftops.identity import fingerprints
from ftops.state import DEFAULT_PROVIDER, Actual, Desired, ResolvedModel

LOCK_VERSION = 1
HEADER = (
    "# ftops.lock: the fine-tuning job behind each declared model, written by `ftops apply`\n"
    "# and `ftops status`. Commit it; applications read fine_tuned_model ids from here.\n"
    "# Do not edit by hand: it is rebuilt from the account on every apply.\n"
)
_REQUIRED = ("fingerprint", "job_id", "status")
_OPTIONAL = ("fine_tuned_model", "trained_tokens", "provider", "retired", "deleted",
             "deployment")


@dataclass(frozen=True)
class LockedModel:
    fingerprint: str
    job_id: str
    status: str
    fine_tuned_model: str | None = None
    trained_tokens: int | None = None
    provider: str = DEFAULT_PROVIDER
    retired: str | None = None  # ISO day its base shut down: the model no longer answers
    deleted: bool = False  # the fine-tuned model was deleted from the account
    # Azure: the deployment that serves it, {name, model_id, sku}; applications call the name.
    deployment: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "fingerprint": self.fingerprint,
            "job_id": self.job_id,
            "status": self.status,
            "fine_tuned_model": self.fine_tuned_model,
            "trained_tokens": self.trained_tokens,
        }
        if self.provider != DEFAULT_PROVIDER:
            out["provider"] = self.provider
        if self.retired:
            out["retired"] = self.retired
        if self.deleted:  # written only when true: unmarked entries read as they always did
            out["deleted"] = True
        if self.deployment:
            out["deployment"] = dict(self.deployment)
        return out


@dataclass(frozen=True)
class Lock:
    """``aliases`` belongs to promotion; this module keeps it exactly as read."""

    models: Mapping[str, LockedModel] = field(default_factory=dict)
    aliases: Mapping[str, Any] = field(default_factory=dict)

    def alias_models(self) -> dict[str, str]:
        """Alias -> the declared model it was promoted to."""
        return {alias: str(entry["model"]) for alias, entry in self.aliases.items()
                if isinstance(entry, Mapping) and entry.get("model")}


def update_lock(lock: Lock, desired: Desired, actual: Actual,
                retired: Mapping[str, str] | None = None) -> Lock:
    """Each declared model's entry describes the latest job for its declared fingerprint.

    A model whose fingerprint has no job yet keeps its old entry (its fingerprint then shows it
    is behind the specs); models no longer declared are dropped. ``retired`` (model -> ISO
    day) marks models whose fine-tune no longer answers, and ``deleted`` those whose fine-tuned
    model the account's listing no longer holds, so applications can tell.
    """
    retired = retired or {}
    models: dict[str, LockedModel] = {}
    for name, fingerprint in sorted(fingerprints(desired).items()):
        model = desired.model(name)
        assert model is not None
        job = actual.current_job(desired.repo, model.provider, fingerprint,
                                 dead=partial(drift.model_deleted, actual,
                                              provider_type=model.provider_type))
        if job is not None:
            models[name] = LockedModel(
                fingerprint=fingerprint,
                job_id=job.id,
                status=job.status,
                fine_tuned_model=job.fine_tuned_model,
                trained_tokens=job.trained_tokens,
                provider=job.provider,
                retired=retired.get(name),
                deleted=drift.model_deleted(actual, job, model.provider_type),
                deployment=_deployment(model, actual),
            )
        elif name in lock.models:
            models[name] = lock.models[name]
    return replace(lock, models=models)


def _deployment(model: ResolvedModel, actual: Actual) -> dict[str, Any] | None:
    """The model's declared deployment as the account has it, once Azure has made it."""
    found = actual.deployment(model.provider, model.deploy.name) if model.deploy else None
    if found is None or found.state != "Succeeded":
        return None
    return {"name": found.name, "model_id": found.model, "sku": found.sku}


def dump_lock(lock: Lock) -> str:
    """The file's text: header, version, then sorted keys, one value per line."""
    body: dict[str, Any] = {"models": {n: m.to_dict() for n, m in sorted(lock.models.items())}}
    if lock.aliases:
        body["aliases"] = dict(lock.aliases)
    text = yaml.safe_dump(body, sort_keys=True, default_flow_style=False, allow_unicode=True,
                          width=4096)
    return f"{HEADER}version: {LOCK_VERSION}\n{text}"


def write_lock(path: Path, lock: Lock) -> None:
    """Write atomically: readers see the old file or the new one, never half of one."""
    write_atomic(path, dump_lock(lock))


def _line(node: yaml.Node | None, *keys: str) -> int | None:
    """1-based line of the value at ``keys`` in a composed document, for error messages."""
    line = node.start_mark.line + 1 if node is not None else None
    for key in keys:
        if not isinstance(node, yaml.MappingNode):
            break
        match = next(((k, v) for k, v in node.value if k.value == key), None)
        if match is None:
            break
        line, node = match[0].start_mark.line + 1, match[1]
    return line


def read_lock(path: Path) -> Lock:
    """The lock at ``path``; an empty Lock when the file does not exist yet."""
    if not path.exists():
        return Lock()
    text = path.read_text(encoding="utf-8")
    try:
        # libyaml's parser where PyYAML has it: the lock is read by every plan and apply.
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        root = yaml.compose(text, Loader=loader)
        raw = yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise FtopsError("not valid YAML", path=str(path),
                         line=mark.line + 1 if mark is not None else None,
                         hint="restore it from git or delete it; apply rebuilds it") from None

    def fail(message: str, *keys: str) -> FtopsError:
        return FtopsError(message, path=str(path), line=_line(root, *keys),
                          hint="restore it from git or delete it; apply rebuilds it")

    if not isinstance(raw, dict):
        raise fail("not an ftops lock file (expected a mapping)")
    if raw.get("version") != LOCK_VERSION:
        raise fail(f"lock version {raw.get('version')!r} is not supported (expected "
                   f"{LOCK_VERSION})", "version")
    unknown = sorted(set(raw) - {"version", "models", "aliases"})
    if unknown:
        raise fail(f"unknown key {unknown[0]!r}", unknown[0])
    entries = raw.get("models") or {}
    aliases = raw.get("aliases") or {}
    if not isinstance(entries, dict) or not isinstance(aliases, dict):
        raise fail("`models` and `aliases` must be mappings", "models")
    models: dict[str, LockedModel] = {}
    for name, entry in entries.items():
        if not isinstance(entry, dict):
            raise fail(f"model {name!r} must be a mapping", "models", name)
        missing = [k for k in _REQUIRED if not isinstance(entry.get(k), str)]
        extra = sorted(set(entry) - set(_REQUIRED) - set(_OPTIONAL))
        if missing or extra:
            what = f"missing {missing[0]!r}" if missing else f"unknown key {extra[0]!r}"
            raise fail(f"model {name!r}: {what}", "models", name)
        if not isinstance(entry.get("deleted", False), bool):
            raise fail(f"model {name!r}: 'deleted' must be true or false",
                       "models", name, "deleted")
        models[str(name)] = LockedModel(
            fingerprint=entry["fingerprint"],
            job_id=entry["job_id"],
            status=entry["status"],
            fine_tuned_model=entry.get("fine_tuned_model"),
            trained_tokens=entry.get("trained_tokens"),
            provider=entry.get("provider", DEFAULT_PROVIDER),
            retired=entry.get("retired"),
            deleted=entry.get("deleted", False),
            deployment=entry.get("deployment") if isinstance(entry.get("deployment"), dict)
            else None,
        )
    return Lock(models=models, aliases=aliases)
