"""What differs between a plan that was confirmed (shown, saved or reviewed) and a plan made now
for the same specs, in words a reviewer reads: never a fingerprint or a dataset hash.

Apply executes the confirmed plan only when the fresh one would do the same (see
``differences``). Two moves change nothing that apply does and are not differences:

- a step that acts on nothing either way (``pending`` becoming ``ok`` when a job finishes);
- a child the confirmed plan held back until its parent succeeded (``blocked``), which now
  trains from the parent's model: the plan said it would. ``executable`` hands that child's
  fresh action to the executor, so it starts now rather than being deferred once more.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

from ftops.plan import (
    CHANGES,
    PROVENANCE_KEYS,
    STARTS_JOB,
    Action,
    ActionType,
    Kind,
    Plan,
    Training,
)
from ftops.state import DEFAULT_PROVIDER

_JOB_ENDED = {"cancelled": "was cancelled", "failed": "failed", "succeeded": "succeeded",
              "live": "is running"}
_KIND_WORDS = {Kind.DATASET: "dataset", Kind.MODEL: "model", Kind.FILE: "file", Kind.JOB: "job",
               Kind.FINE_TUNED_MODEL: "fine-tuned model"}
# Actions told with the job they follow, supersede or start over from.
_NAMES_ITS_JOB = ("pending", "replace", "retry", "retrain")
# What the executor acts on; ``changes`` and ``display`` only describe.
_ACTED_ON = ("action", "job_id", "upload", "training", "depends_on")


def differences(confirmed: Plan, fresh: Plan) -> list[str]:
    """Each way executing ``confirmed`` now would differ from what ``fresh`` (made from the
    account and the specs as they are) would do, one sentence each; [] when it would not."""
    found = [_sentence(c, f, confirmed, fresh) for c, f in _pairs(confirmed, fresh)
             if _differs(c, f)]
    known = [e.to_dict() for e in confirmed.errors]
    found += [f"the plan now has an error: {e}" for e in fresh.errors if e.to_dict() not in known]
    if ((confirmed.inputs.prune, confirmed.inputs.allow_delete_models)
            != (fresh.inputs.prune, fresh.inputs.allow_delete_models)):
        found.append("the plan was made with other prune options")
    return found


def executable(confirmed: Plan, fresh: Plan) -> Plan:
    """``confirmed``, each child it held back for a parent that has succeeded since taking the
    fresh action that trains it from that parent's model. Call only when ``differences`` is []."""
    now = {a.address: a for a in fresh.actions}
    actions = tuple(now[a.address] if _parent_finished(a, now.get(a.address)) else a
                    for a in confirmed.actions)
    return confirmed if actions == confirmed.actions else replace(confirmed, actions=actions)


# --- comparing ---------------------------------------------------------------------------------


def _pairs(confirmed: Plan, fresh: Plan) -> Iterator[tuple[Action | None, Action | None]]:
    """Actions by address, in the confirmed plan's order, then those only the fresh one has."""
    now = {a.address: a for a in fresh.actions}
    before = {a.address for a in confirmed.actions}
    for action in confirmed.actions:
        yield action, now.get(action.address)
    for action in fresh.actions:
        if action.address not in before:
            yield None, action


def _acted_on(action: Action) -> dict[str, Any]:
    decisive = action.decisive()
    return {key: decisive[key] for key in _ACTED_ON}


def _differs(confirmed: Action | None, fresh: Action | None) -> bool:
    if not any(a is not None and a.action in CHANGES for a in (confirmed, fresh)):
        return False  # nothing to do either way (pending -> ok, ok -> retired, ...)
    if confirmed is None or fresh is None:
        return True
    return _acted_on(confirmed) != _acted_on(fresh) and not _parent_finished(confirmed, fresh)


def _parent_finished(confirmed: Action, fresh: Action | None) -> bool:
    """A blocked child now trains from its parent's model, otherwise as confirmed."""
    if (fresh is None or confirmed.action is not ActionType.BLOCKED
            or fresh.action not in STARTS_JOB or fresh.action is ActionType.BLOCKED):
        return False
    before, now = confirmed.training, fresh.training
    if before is None or now is None or before.base is not None or now.base is None:
        return False
    resolved = replace(confirmed, action=fresh.action, training=replace(before, base=now.base),
                       depends_on=fresh.depends_on)
    return _acted_on(resolved) == _acted_on(fresh)


# --- words -------------------------------------------------------------------------------------


def _sentence(confirmed: Action | None, fresh: Action | None, before: Plan, now: Plan) -> str:
    action = confirmed or fresh
    assert action is not None
    subject = f"{_KIND_WORDS.get(action.kind, action.kind.value)} {action.name}"
    if action.provider != DEFAULT_PROVIDER:
        subject += f" on {action.provider}"
    source = "the specs now say" if _spec_moved(action, before, now) else "the account now says"
    text = f"{subject}: the plan said {_said(confirmed)}, {source} {_said(fresh)}"
    why = _why(confirmed, fresh, before, now)
    return f"{text}: {', '.join(why)}" if why else text


def _said(action: Action | None) -> str:
    if action is None:
        return "nothing to do"
    kind = action.action
    if kind is ActionType.UPLOAD and action.upload is not None:
        return f"upload {action.upload.path}"
    if kind is ActionType.BLOCKED:
        parents = [d.removeprefix("model.") for d in action.depends_on
                   if d.startswith("model.")]
        return f"blocked until {', '.join(parents)} has trained" if parents else "blocked"
    word = str(kind.value)
    if word in _NAMES_ITS_JOB and action.job_id:
        status = f" {action.display.status}" if kind is ActionType.RETRY and \
            action.display.status else ""
        return f"{word} (job {action.job_id}{status})"
    if kind is ActionType.OK and action.display.model_id:
        return f"ok ({action.display.model_id})"
    return word


def _spec_moved(action: Action, before: Plan, now: Plan) -> bool:
    """Whether what is declared changed (a fingerprint, a dataset's bytes), not the account."""
    if action.kind is Kind.MODEL:
        return before.inputs.models.get(action.name) != now.inputs.models.get(action.name)
    if action.kind is Kind.DATASET:
        return before.inputs.datasets.get(action.name) != now.inputs.datasets.get(action.name)
    return False


def _why(confirmed: Action | None, fresh: Action | None, before: Plan, now: Plan) -> list[str]:
    action = confirmed or fresh
    assert action is not None
    why = _upload_why(confirmed, fresh, before, now)
    if confirmed and fresh and confirmed.training and fresh.training:
        why += _training_why(confirmed.training, fresh.training)
    elif action.kind is Kind.MODEL and _spec_moved(action, before, now):
        why += _data_why(fresh or confirmed, before, now) or ["its spec changed"]
    jobs = [action.name] if action.kind is Kind.JOB else []
    jobs += [a.job_id for a in (confirmed, fresh) if a is not None and a.job_id]
    why += _job_why(action.provider, list(dict.fromkeys(jobs)), before, now)
    return why + _remote_why(confirmed, fresh, before, now)


def _upload_why(confirmed: Action | None, fresh: Action | None, before: Plan,
                now: Plan) -> list[str]:
    up, up_now = (confirmed.upload if confirmed else None), (fresh.upload if fresh else None)
    if up is not None and up_now is not None:
        return ["its content changed"] if up.sha256 != up_now.sha256 else []
    if up is not None:
        holder = _file_named(now.inputs.files, confirmed, up.filename)
        return [f"file {holder} already holds its bytes"] if holder else []
    if up_now is not None:
        holder = _file_named(before.inputs.files, fresh, up_now.filename)
        return [f"file {holder}, which held its bytes, is gone"] if holder else []
    return []


def _file_named(files: Mapping[str, str], action: Action | None, filename: str) -> str | None:
    assert action is not None
    prefix = f"{action.provider}/"
    return min((key.removeprefix(prefix) for key, name in files.items()
                if name == filename and key.startswith(prefix)), default=None)


def _data_why(action: Action | None, before: Plan, now: Plan) -> list[str]:
    """The datasets of a model (as the plan that trains it names them) whose bytes changed."""
    training = action.training if action else None
    refs = [("training", training.training), ("validation", training.validation)] \
        if training else []
    return [f"{role} data {ref.name} changed" for role, ref in refs
            if ref and before.inputs.datasets.get(ref.name) != now.inputs.datasets.get(ref.name)]


def _training_why(before: Training, now: Training) -> list[str]:
    why = []
    if before.base != now.base:
        why.append(f"base {_base(before)} → {_base(now)}")
    for role, old, new in (("training", before.training, now.training),
                           ("validation", before.validation, now.validation)):
        if old is None or new is None:
            if (old, new) != (None, None):
                why.append(f"{role} data {old.name if old else 'none'} → "
                           f"{new.name if new else 'none'}")
        elif old.name != new.name:
            why.append(f"{role} data {old.name} → {new.name}")
        elif old.sha256 != new.sha256:
            why.append(f"{role} data {new.name} changed")
        elif old.file_id != new.file_id:
            why.append(f"{role} data {new.name}: {_file(old.file_id)} → {_file(new.file_id)}")
    for name in ("parent", "method", "suffix", "seed"):
        old_value, new_value = getattr(before, name), getattr(now, name)
        if old_value != new_value:
            why.append(f"{name} {_value(old_value)} → {_value(new_value)}")
    why += _mapping_why("", before.hyperparameters, now.hyperparameters)
    why += _mapping_why("label ", _labels(before), _labels(now))
    return why


def _value(value: object) -> str:
    return "unset" if value is None else str(value)


def _base(training: Training) -> str:
    return training.base or f"(model {training.parent} once trained)"


def _file(file_id: str | None) -> str:
    return f"file {file_id}" if file_id else "to be uploaded"


def _labels(training: Training) -> dict[str, str]:
    return {k: v for k, v in training.metadata.items()
            if not k.startswith("ftops_") and k not in PROVENANCE_KEYS}


def _mapping_why(prefix: str, before: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    return [f"{prefix}{key} {_value(before.get(key))} → {_value(now.get(key))}"
            for key in sorted(set(before) | set(now)) if before.get(key) != now.get(key)]


def _job_why(provider: str, jobs: list[str], before: Plan, now: Plan) -> list[str]:
    why = []
    for job in jobs:
        key = f"{provider}/{job}"
        old, new = before.inputs.jobs.get(key), now.inputs.jobs.get(key)
        if old == new:
            continue
        if new is None:
            why.append(f"job {job} is gone")
        elif old is None:
            why.append(f"job {job} appeared ({'running' if new == 'live' else new})")
        else:
            why.append(f"job {job} {_JOB_ENDED.get(new, f'is {new}')}")
    return why


def _remote_why(confirmed: Action | None, fresh: Action | None, before: Plan,
                now: Plan) -> list[str]:
    """A file or fine-tuned model (to prune, or a model's result) that came or went."""
    action = confirmed or fresh
    assert action is not None
    if action.kind is Kind.DATASET:
        return []
    if action.kind is Kind.FILE:
        what, name = "file", action.name
        held = (f"{action.provider}/{name}" in before.inputs.files,
                f"{action.provider}/{name}" in now.inputs.files)
    else:
        name = (action.name if action.kind is Kind.FINE_TUNED_MODEL
                else confirmed.display.model_id if confirmed else None) or ""
        what, key = "fine-tuned model", f"{action.provider}/{name}"
        held = (key in before.inputs.fine_tuned_models, key in now.inputs.fine_tuned_models)
    return {(True, False): [f"{what} {name} is gone"],
            (False, True): [f"{what} {name} appeared"]}.get(held, [])
