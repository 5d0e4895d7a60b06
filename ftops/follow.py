"""Following a fine-tuning job: poll it until it ends, reporting each new event once."""

from __future__ import annotations

import time
from collections.abc import Callable

from ftops import stop
from ftops.errors import FtopsError
from ftops.providers import Account
from ftops.state import Job

Report = Callable[[str], None]
POLL_SECONDS = 1.0


def follow(remote: Account, name: str, job_id: str, *, report: Report,
           deadline: float | None, budget: stop.RequestBudget | None = None) -> Job:
    """Poll a job until it ends (or the monotonic ``deadline`` passes), reporting new events.

    Each poll (the job, then its events) holds one slot of ``budget`` when one is given. A
    stop (see ``ftops.stop``) ends the wait between polls, at once, with ``Interrupted``.
    """
    slots = budget or stop.RequestBudget(1)
    seen: set[str] = set()
    while True:
        with slots.slot():
            job = remote.job(job_id)
            events = remote.events(job_id)
        for event in events:
            if event.id not in seen:
                seen.add(event.id)
                report(f"model {name}: {event.message}")
        if not job.live:
            return job
        if deadline is not None and time.monotonic() > deadline:
            raise FtopsError(f"timed out waiting for job {job_id} of model {name}",
                             hint="`ftops wait` follows it further")
        stop.sleep(POLL_SECONDS)
