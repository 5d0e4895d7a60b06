"""The datasets a models entry trains on, checked against what its open-weight provider takes
(``ftops.dataformats``): a format the provider does not take for the method, or a validation file
the method there takes none of, is a spec error at the entry's file:line, before any upload.
"""

from __future__ import annotations

from ftops.dataformats import refusals
from ftops.spec.reader import _Entry, _Problems
from ftops.spec.types import Provider


def check(problems: _Problems, entry: _Entry, provider: Provider) -> bool:
    """Every dataset of the entry its provider would refuse is reported; True when none."""
    value = entry.value
    found = refusals(provider.type, f"provider {provider.name} ({provider.type})", value.method,
                     validation=value.validation is not None)
    for loc, message, code in found:
        problems.at(entry, loc, message, code)
    return not found
