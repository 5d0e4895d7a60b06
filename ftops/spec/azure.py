"""Azure OpenAI's rules for a models entry, checked offline at its file:line so that nothing is
uploaded for a job Azure would refuse, and the Azure-only settings it resolves to.

From Microsoft Learn (via the search tool, as of 2026-09; see ``data/catalog.yaml`` sources):
fine-tuning takes a dated base snapshot (``gpt-4.1-2025-04-14``, not ``gpt-4.1``); the bases
and their methods are the catalog's ``azure.methods`` table; a suffix is at most 40 characters of
letters, digits, ``-`` and ``_``; a job runs as one ``trainingType`` (Standard, GlobalStandard,
Developer); a model is called through a deployment, managed in the subscription's resource group.
"""

from __future__ import annotations

import re
from typing import TypedDict

from ftops import catalog
from ftops.errors import did_you_mean
from ftops.spec.reader import _Entry, _Problems
from ftops.spec.types import Provider
from ftops.state import Deploy

DEFAULT_TRAINING_TYPE = "globalstandard"
MAX_SUFFIX = 40
_SUFFIX = re.compile(r"[A-Za-z0-9_-]{1,40}")
_DATED = re.compile(r".+-\d{4}(-\d{2}-\d{2})?")  # 2024-07-18, or the older 0125
_DEPLOY_NEEDS = ("subscription", "resource_group", "account")


def check(problems: _Problems, entry: _Entry, provider: Provider | None,
          base_model: str | None, *, chained: bool) -> bool:
    """Every Azure rule the entry breaks is reported; True when it breaks none. A chained
    model trains on its parent's result, so only an unchained one names a base to check."""
    value = entry.value
    if provider is None:
        return True  # an unknown provider is reported by the resolver
    if provider.type != "azure":
        wrong = [k for k in ("training_type", "deploy") if getattr(value, k) is not None]
        for key in wrong:
            problems.at(entry, (key,), f"only for providers of type azure (provider "
                                       f"{provider.name} is {provider.type})", "invalid_value")
        return not wrong
    checks = [_suffix(problems, entry), _deploy(problems, entry, provider)]
    if not chained:
        checks.append(_base(problems, entry, base_model))
    return all(checks)


def _suffix(problems: _Problems, entry: _Entry) -> bool:
    suffix = entry.value.suffix
    if suffix is None or _SUFFIX.fullmatch(suffix):
        return True
    problems.at(entry, ("suffix",), f"Azure OpenAI takes a suffix of at most {MAX_SUFFIX} "
                                    "letters, digits, '-' and '_'", "invalid_value")
    return False


def _deploy(problems: _Problems, entry: _Entry, provider: Provider) -> bool:
    if entry.value.deploy is None:
        return True
    missing = [k for k in _DEPLOY_NEEDS if getattr(provider, k) is None]
    if missing:
        problems.at(entry, ("deploy",), f"deploying needs {', '.join(missing)} on provider "
                                        f"{provider.name} (the Azure resource to deploy in)",
                    "missing_key")
    return not missing


def _base(problems: _Problems, entry: _Entry, base: str | None) -> bool:
    """A dated base Azure fine-tunes, with the method asked."""
    table = _methods()
    if base is None or not table:
        return True
    info = catalog.load().model(base)
    if base not in table:
        dated = info.id if info is not None and info.id in table else None
        why = ("Azure OpenAI needs a dated model version" if not _DATED.fullmatch(base)
               else "Azure OpenAI does not fine-tune it")
        hint = f" (did you mean '{dated}'?)" if dated else did_you_mean(base, table)
        problems.at(entry, ("base",), f"base {base}: {why}{hint}", "unknown_base")
        return False
    method = entry.value.method
    if method not in table[base]:
        where = ("method",) if "method" in entry.value.model_fields_set else ("base",)
        problems.at(entry, where, f"Azure OpenAI does not fine-tune {base} with method "
                                  f"{method} (offers: {', '.join(table[base])})",
                    "unsupported_method")
        return False
    return True


def _methods() -> dict[str, tuple[str, ...]]:
    info = catalog.load().provider("azure")
    return info.methods if info else {}


class AzureFields(TypedDict, total=False):
    training_type: str
    deploy: Deploy | None


def resolved(entry: _Entry, provider: Provider | None) -> AzureFields:
    """The Azure-only fields of the resolved model: its training type and deployment."""
    value = entry.value
    if provider is None or provider.type != "azure":
        return {}
    deploy = value.deploy
    return {
        "training_type": value.training_type or provider.training_type or DEFAULT_TRAINING_TYPE,
        "deploy": Deploy(deploy.name, deploy.sku, deploy.capacity) if deploy else None,
    }
