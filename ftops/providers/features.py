"""Optional features: whether a kind of endpoint documents one (``yes``) or must be probed
(``probe``), and one run's view of them (``Features``), which drops a refused feature for the
rest of the run in favour of a slower path giving the same result. The table itself, one row
per kind of endpoint, is ``ftops.providers.registry.CAPABILITIES``."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, TypeVar

if TYPE_CHECKING:
    import openai

T = TypeVar("T")
# yes: documented, used as is; probe: tried, dropped on 400/404; no: never relied on.
Support = Literal["yes", "probe", "no"]
Feature = Literal["metadata_filter", "uploads"]

_FEATURE_TEXT: dict[str, tuple[str, str]] = {
    "metadata_filter": ("the metadata filter on job listing",
                        "listing all jobs and filtering them here (slower)"),
    "uploads": ("the Uploads API", "uploading each file in one request"),
}

log = logging.getLogger(__name__)


def _refusals() -> tuple[type[openai.APIStatusError], ...]:
    """The answers that drop a probed feature. Only the providers driven by the openai SDK
    probe, so it is imported here, when a call failed, not by Together's or Fireworks' runs."""
    import openai

    return (openai.BadRequestError, openai.NotFoundError)


@dataclass(frozen=True)
class Capabilities:
    metadata_filter: Support
    uploads: Support
    # Whether jobs keep the metadata ftops creates them with; where not documented ("probe"),
    # jobs without it are recognised by what they show (``ftops.recognise``).
    job_metadata: Support = "yes"


# Every feature documented: OpenAI's own API, and the view of an endpoint nothing is known of.
DOCUMENTED = Capabilities(metadata_filter="yes", uploads="yes")
# Providers that keep no job metadata and have no Uploads API (Nebius, Together, Fireworks):
# never filter on metadata, recognise jobs by what they show (``ftops.recognise``).
METADATA_FREE = Capabilities(metadata_filter="no", uploads="no", job_metadata="no")
# Every feature unknown: tried, and dropped on 400/404.
PROBED = Capabilities(metadata_filter="probe", uploads="probe", job_metadata="probe")
# Job metadata is not documented on Azure: ftops never filters on it there, and recognises its
# jobs by what they show when they come back without it (``ftops.recognise``).
AZURE = Capabilities(metadata_filter="no", uploads="probe", job_metadata="probe")


@dataclass
class Features:
    """One run's view of a provider's optional features: the table, then what probing found.

    Shared by every thread of the run (parallel uploads, the three listings of a read), so
    ``dropped`` changes under a lock, and the notice is logged once, by the thread that drops.
    """

    provider: str
    capabilities: Capabilities = DOCUMENTED
    dropped: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def attempt(self, feature: Feature, fast: Callable[[], T], slow: Callable[[], T]) -> T:
        """``fast()`` while the feature is usable; ``slow()`` once the endpoint has refused it."""
        with self._lock:
            usable = feature not in self.dropped and getattr(self.capabilities, feature) != "no"
        if not usable:
            return slow()
        try:
            return fast()
        except _refusals() as exc:
            if getattr(self.capabilities, feature) == "yes":
                raise
            with self._lock:
                first = feature not in self.dropped
                self.dropped.add(feature)
            if first:
                lacks, instead = _FEATURE_TEXT[feature]
                log.warning("notice: provider %s answered %s to %s; %s", self.provider,
                            exc.status_code, lacks, instead)
            return slow()
