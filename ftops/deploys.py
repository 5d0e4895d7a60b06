"""Deployments in the plan (Azure OpenAI): a model called through a deployment is usable only
once the deployment serves its current fine-tuned model.

Per model that declares ``deploy``: ``deploy`` when the deployment does not exist (after training
when the model still trains: apply deploys once the job has succeeded, in the same
``apply --wait``), ``redeploy`` when it serves another model or another sku or capacity (Azure
updates the deployment in place: the old model answers until the new one is ready), ``pending``
while Azure provisions it, ``ok`` when it serves the current fine-tuned model. With ``--prune``, a
deployment that serves one of this project's fine-tuned models under a name no spec declares is
deleted, first in the plan. A pure function of what the planner computed; it reads nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping

from ftops.plan import STARTS_JOB, Action, ActionType, Change, DeployRef, Display, Kind
from ftops.state import Actual, Deployment, Desired, Job, ResolvedModel

_READY = "Succeeded"
_SETTLING = ("Accepted", "Creating", "Updating", "Moving")


def deploy_actions(desired: Desired, actual: Actual,
                   models: Mapping[str, Action]) -> list[Action]:
    """One action per declared deployment, in model order."""
    out = []
    for model in sorted(desired.models, key=lambda m: m.name):
        action = models.get(model.name)
        if model.deploy is not None and action is not None:
            current = actual.deployment(model.provider, model.deploy.name)
            out.append(_action(model, action, current))
    return out


def _action(model: ResolvedModel, trained: Action, current: Deployment | None) -> Action:
    assert model.deploy is not None
    wanted = model.deploy
    model_id = trained.display.model_id if trained.action == ActionType.OK else None
    waits = trained.action in STARTS_JOB or trained.action == ActionType.PENDING
    if trained.action not in (ActionType.OK, *STARTS_JOB, ActionType.PENDING):
        kind = ActionType.OK
        note = f"nothing to deploy: model.{model.name} is {trained.action.value}"
    elif current is None or current.state not in (_READY, *_SETTLING):
        kind, note = ActionType.DEPLOY, None
    elif model_id is not None and current.state in _SETTLING and current.model == model_id:
        kind, note = ActionType.PENDING, f"Azure is provisioning it ({current.state})"
    elif model_id is not None and (current.model, current.sku, current.capacity) == (
            model_id, wanted.sku, wanted.capacity):
        kind, note = ActionType.OK, None
    else:
        kind, note = ActionType.REDEPLOY, None
    if waits and kind in (ActionType.DEPLOY, ActionType.REDEPLOY):
        note = f"after {trained.address} succeeds (`ftops apply --wait`)"
    changes: tuple[Change, ...] = ()
    if kind == ActionType.REDEPLOY and current is not None:
        changes = tuple(Change(path, before, after) for path, before, after in (
            ("model", current.model, model_id or f"model.{model.name} once trained"),
            ("sku", current.sku, wanted.sku), ("capacity", current.capacity, wanted.capacity))
            if before != after)
    return Action(
        kind, Kind.DEPLOYMENT, wanted.name, model.provider,
        depends_on=(trained.address,) if waits and kind != ActionType.OK else (),
        changes=changes,
        deploy=DeployRef(model.name, model_id, wanted.sku, wanted.capacity),
        display=Display(status=current.state if current else None,
                        model_id=current.model if current else None, note=note),
    )


def undeclared_deployments(desired: Desired, actual: Actual,
                           jobs: tuple[Job, ...]) -> list[Action]:
    """Deletions of deployments that serve this project's fine-tuned models under a name no
    model declares (deployments of anything else are never this project's to remove)."""
    ours = {(j.provider, j.fine_tuned_model) for j in jobs if j.fine_tuned_model}
    declared = {(m.provider, m.deploy.name) for m in desired.models if m.deploy}
    return [
        Action(ActionType.DELETE, Kind.DEPLOYMENT, d.name, d.provider,
               display=Display(status=d.state, model_id=d.model,
                               note="no declared model deploys under this name"))
        for d in sorted(actual.deployments, key=lambda d: (d.provider, d.name))
        if (d.provider, d.model) in ours and (d.provider, d.name) not in declared
    ]
