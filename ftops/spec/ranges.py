"""The values an open-weight provider takes for each hyperparameter, checked at their file:line:
a value of the wrong type or out of the provider's range (``ftops.methods.RANGES``, the table
the provider modules send from) is a spec error naming the provider and what it takes, so that
a job is never refused for it after the datasets were uploaded.

Only the keys the provider takes are checked here (``ftops.spec.openweight`` reports the rest);
``"auto"`` is every key's "the provider's default". Limits that depend on the base (Together's
batch size and LoRA rank, Nebius' context length) stay the provider's to check.
"""

from __future__ import annotations

import json
from typing import Any

from ftops.methods import COMMON_KEYS, RANGES
from ftops.spec.reader import _Entry, _Problems
from ftops.spec.types import Provider


def _written(value: Any) -> dict[tuple[str, str], Any]:
    """(section, key) -> value of every hyperparameter and option the entry writes."""
    found: dict[tuple[str, str], Any] = {}
    chosen = value.hyperparameters
    for key in sorted(chosen.model_fields_set if chosen is not None else ()):
        found[("hyperparameters", key)] = getattr(chosen, key)
    for key in sorted(value.options):
        if key not in COMMON_KEYS:  # one written under options is reported by openweight
            found[("options", key)] = value.options[key]
    return found


def check(problems: _Problems, entry: _Entry, provider: Provider) -> bool:
    """Every value of the entry its provider does not take is reported; True when none."""
    table = RANGES.get(provider.type, {}).get(entry.value.method)
    if table is None:
        return True  # no such provider type or method: openweight reports it
    ok = True
    for (section, key), given in _written(entry.value).items():
        allowed = table.get(key)
        if allowed is None or allowed.admits(given):
            continue
        problems.at(entry, (section, key), f"provider {provider.name} ({provider.type}) takes "
                    f"{allowed}, not {json.dumps(given)}", "invalid_value")
        ok = False
    return ok
