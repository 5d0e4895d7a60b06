"""The one clock: every date rule (cut-offs, shutdowns, the emulator's calendar) asks here.

``FTOPS_TODAY=YYYY-MM-DD`` pins the day for reproducible runs and tests. It is read from the
environment on every call, so an emulator in another process of the same tree shares the day.
"""

from __future__ import annotations

import datetime as dt
import os

from ftops.errors import UsageError

ENV = "FTOPS_TODAY"


def pinned() -> dt.date | None:
    """The day ``FTOPS_TODAY`` names, or None when it is unset or empty."""
    value = os.environ.get(ENV, "").strip()
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{ENV}={value!r} is not a date",
                         hint="use YYYY-MM-DD, e.g. FTOPS_TODAY=2027-01-07, or unset it") from None


def today() -> dt.date:
    """The pinned day if any, else the machine's local date."""
    return pinned() or dt.date.today()


def as_of(day: dt.date | None = None) -> str:
    """``"as of <date>"`` when the day is pinned (or given), else ``""``: a run on a fake day
    must say so, and an ordinary run should not clutter its first line."""
    day = day or pinned()
    return f"as of {day.isoformat()}" if day else ""
