"""Apply's last step on Azure: the plan's ``deploy`` and ``redeploy`` actions, once each model
has a fine-tuned model to serve (known when the plan was made, or from a job this apply followed
to success with ``--wait``). A deployment whose model has none yet waits for the next apply.

Deploying is idempotent by name: Azure's create-or-update of a deployment that already serves
the model changes nothing, so a retried or repeated apply never makes a second one. Each call
holds one slot of the run's request budget while Azure provisions (its polls included).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

from ftops.errors import FtopsError
from ftops.plan import Action, ActionType, Kind, Plan
from ftops.providers import Account
from ftops.stop import RequestBudget

_DEPLOYS = (ActionType.DEPLOY, ActionType.REDEPLOY)


def deploy_all(plan: Plan, remote: Callable[[str], Account], pool: ThreadPoolExecutor,
               budget: RequestBudget, model_ids: Mapping[str, str]) -> tuple[
                   list[str], dict[str, str], dict[str, str]]:
    """(deployed lines, deferred, failed) — the last two keyed by the deployment's address;
    ``model_ids`` are the fine-tuned models of the jobs followed in this apply."""
    deployed: list[str] = []
    deferred: dict[str, str] = {}
    futures = {}
    for action in plan.actions:
        if action.kind is not Kind.DEPLOYMENT or action.action not in _DEPLOYS:
            continue
        assert action.deploy is not None
        model_id = action.deploy.model_id or model_ids.get(action.deploy.model)
        if model_id is None:
            deferred[action.address] = (f"waits for model.{action.deploy.model}'s job to "
                                        "succeed (`ftops apply --wait` deploys it after)")
            continue
        futures[pool.submit(_deploy, remote(action.provider), budget, action, model_id)] = action
    failed: dict[str, str] = {}
    for future, action in futures.items():
        try:
            deployed.append(future.result())
        except FtopsError as exc:
            failed[action.address] = exc.message
    return deployed, deferred, failed


def _deploy(remote: Account, budget: RequestBudget, action: Action, model_id: str) -> str:
    """On a worker: one deployment, ready, in a slot of the budget."""
    ref = action.deploy
    assert ref is not None
    done = budget.call(lambda: remote.deploy(action.name, model_id, ref.sku, ref.capacity))
    return f"{action.action.value} {action.address}: serves {done.model} ({done.state})"
