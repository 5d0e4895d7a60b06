"""Providers: the SDK boundary. One connection per ``providers`` entry, what each kind of
endpoint can do, and each account read and changed through ``Account`` methods that return
ftops's own frozen dataclasses (``ftops.state``), never an SDK object.

- ``base``: the ``Account`` protocol the layers above use, and its value types.
- ``features``: the optional features, probed where a kind of endpoint does not document them.
- ``uploads``: large datasets in parallel parts, hashed in order.
- ``openai``: type ``openai`` and compatible endpoints, and ``Remote``, the SDK-backed account.
- ``azure``: what type ``azure`` changes: its client, key variable and capabilities.
- ``registry``: the capability table, the client factory and the connections.
"""

from typing import Any

from ftops.providers.base import Account, ChatReply, JobEvent, JobRequest
from ftops.providers.features import Capabilities, Feature, Features, Support
from ftops.providers.messages import api_error_message
from ftops.providers.registry import (
    CAPABILITIES,
    DEFAULT_KEY_ENV,
    Connection,
    adoptions,
    connection,
    connections,
    kind,
    make_client,
    management,
    manages,
)
from ftops.providers.uploads import MULTIPART_THRESHOLD, PART_SIZE

__all__ = [
    "CAPABILITIES",
    "DEFAULT_KEY_ENV",
    "EMULATOR_HEADER",
    "FILES_PAGE",
    "JOBS_PAGE",
    "MULTIPART_THRESHOLD",
    "PART_SIZE",
    "Account",
    "Capabilities",
    "ChatReply",
    "Connection",
    "Feature",
    "Features",
    "JobEvent",
    "JobRequest",
    "Remote",
    "Support",
    "adoptions",
    "api_error_message",
    "connection",
    "connections",
    "kind",
    "make_client",
    "management",
    "manages",
    "to_job",
]

# The openai-SDK account and its constants load on first use (the SDK takes ~0.7 s to import):
# a run on Together or Fireworks alone never needs them.
_OPENAI_TYPE = ("EMULATOR_HEADER", "FILES_PAGE", "JOBS_PAGE", "Remote", "to_job")


def __getattr__(name: str) -> Any:
    if name in _OPENAI_TYPE:
        from ftops.providers import openai as openai_type

        return getattr(openai_type, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
