"""The rules of the open-weight providers (Nebius, Together, Fireworks) for a models entry,
checked offline at its file:line: the methods each offers, the hyperparameters each takes
(``ftops.methods``) and whether a job takes a seed. Their own keys go under ``options:``, which
joins the hyperparameters (and so the fingerprint: changing one is a visible ``replace``).
"""

from __future__ import annotations

from typing import Any

from ftops.methods import COMMON_KEYS, KEYS, SEEDLESS, SUFFIX_MAX
from ftops.spec import accepted, ranges
from ftops.spec.reader import _Entry, _Problems
from ftops.spec.types import Provider


def options(value: Any) -> dict[str, Any]:
    """The entry's ``options``, in key order: hyperparameters like the common ones."""
    return dict(sorted(value.options.items()))


def check(problems: _Problems, entry: _Entry, provider: Provider | None) -> bool:
    """Every rule of the entry's provider type it breaks is reported; True when none."""
    value = entry.value
    if provider is None:
        return True  # an unknown provider is reported by the resolver
    table = KEYS.get(provider.type)
    if table is None:
        if value.options:
            problems.at(entry, ("options",), f"only for providers of type nebius, together or "
                        f"fireworks (provider {provider.name} is {provider.type})",
                        "invalid_value")
        return not value.options
    who = f"provider {provider.name} ({provider.type})"
    if value.method not in table:
        problems.at(entry, ("method",) if "method" in value.model_fields_set else (),
                    f"{who} does not offer method {value.method} (offers: "
                    f"{', '.join(table)})", "unsupported_method")
        return False
    taken = table[value.method]
    ok = True
    written = value.hyperparameters.model_fields_set if value.hyperparameters else set()
    for key in sorted(written):
        if key not in taken:
            problems.at(entry, ("hyperparameters", key), f"{who} takes no {key}"
                        + (" (it takes an absolute learning_rate under options)"
                           if key == "learning_rate_multiplier" else ""), "unsupported_key")
            ok = False
    for key in sorted(value.options):
        if key not in taken or key in COMMON_KEYS:
            where = "hyperparameters" if key in COMMON_KEYS else "options"
            problems.at(entry, ("options", key), f"{who} takes no option {key}"
                        + (f" (write it under {where})" if key in taken else
                           f" (takes: {', '.join(k for k in taken if k not in COMMON_KEYS)})"),
                        "unsupported_key")
            ok = False
    if value.seed is not None and provider.type in SEEDLESS:
        problems.at(entry, ("seed",), f"{who} takes no seed", "unsupported_key")
        ok = False
    ok = _suffix(problems, entry, provider, who) and ok
    ok = accepted.check(problems, entry, provider) and ok
    return ranges.check(problems, entry, provider) and ok


def _suffix(problems: _Problems, entry: _Entry, provider: Provider, who: str) -> bool:
    limit = SUFFIX_MAX.get(provider.type)
    suffix = entry.value.suffix
    if limit is None or suffix is None or len(suffix) <= limit:
        return True
    problems.at(entry, ("suffix",), f"{who} takes a suffix of at most {limit} characters "
                f"(ftops appends the repository's tag), not {len(suffix)}", "invalid_value")
    return False
