"""Following a fine-tuning job: poll it until it ends, reporting each new event once.

"Once" holds across runs when the caller keeps a ``Shown`` (``ftops wait`` keeps it in
``.ftops/events.json``): a second ``ftops wait`` prints only what happened since the first.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path

from ftops import stop
from ftops.atomic import write_atomic
from ftops.errors import FtopsError
from ftops.providers import Account, JobEvent
from ftops.state import Job

Report = Callable[[str], None]
POLL_SECONDS = 1.0


class Shown:
    """The newest event reported of each job (its id and time), kept in a file between runs.

    A file that cannot be read or written costs only repetition, never a failed wait."""

    def __init__(self, path: Path | None = None, *, forget: bool = False) -> None:
        self.path = path
        self.last: dict[str, tuple[str, int]] = {}  # job id -> (event id, created_at)
        if path is not None and not forget:
            with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
                raw = json.loads(path.read_text(encoding="utf-8"))
                self.last = {job: (str(e["id"]), int(e["created_at"])) for job, e in raw.items()}

    def new(self, job_id: str, events: list[JobEvent]) -> list[JobEvent]:
        """Of a job's events (oldest first), those after the newest one reported."""
        if job_id not in self.last:
            return events
        event_id, created_at = self.last[job_id]
        ids = [e.id for e in events]
        if event_id in ids:
            return events[ids.index(event_id) + 1:]
        return [e for e in events if e.created_at > created_at]

    def mark(self, job_id: str, event: JobEvent) -> None:
        self.last[job_id] = (event.id, event.created_at)

    def save(self) -> None:
        if self.path is None:
            return
        data = {job: {"id": i, "created_at": t} for job, (i, t) in sorted(self.last.items())}
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, json.dumps(data, indent=1) + "\n", durable=False)


def follow(remote: Account, name: str, job_id: str, *, report: Report,
           deadline: float | None, budget: stop.RequestBudget | None = None,
           shown: Shown | None = None) -> Job:
    """Poll a job until it ends (or the monotonic ``deadline`` passes), reporting new events.

    Each poll (the job, then its events) holds one slot of ``budget`` when one is given. A
    stop (see ``ftops.stop``) ends the wait between polls, at once, with ``Interrupted``.
    Events ``shown`` records as reported before are skipped, with one line counting them.
    """
    slots = budget or stop.RequestBudget(1)
    seen = shown or Shown()
    first = True
    while True:
        with slots.slot():
            job = remote.job(job_id)
            events = remote.events(job_id)
        fresh = seen.new(job_id, events)
        if first and len(fresh) < len(events):
            skipped = len(events) - len(fresh)
            report(f"model {name}: {skipped} earlier event{'s' if skipped != 1 else ''} "
                   "already shown (`ftops wait --all` shows them again)")
        first = False
        for event in fresh:
            seen.mark(job_id, event)
            report(f"model {name}: {event.message}")
        if not job.live:
            return job
        if deadline is not None and time.monotonic() > deadline:
            raise FtopsError(f"timed out waiting for job {job_id} of model {name}",
                             hint="`ftops wait` follows it further")
        stop.sleep(POLL_SECONDS)
