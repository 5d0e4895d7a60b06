"""Fine-tuned model ids, read one way everywhere.

OpenAI spells them ``ft:<base>:<org>:<suffix>:<id>`` (the suffix empty when the job set none),
and a checkpoint's ``ft:<base>:<org>:<suffix>:<id>:ckpt-step-<n>``. Azure OpenAI spells them
``<base>.ft-<hex>``, the job's suffix, if any, following as ``-<suffix>``.
"""

from __future__ import annotations

from dataclasses import dataclass

_OPENAI_PREFIX = "ft:"
_AZURE_MARK = ".ft-"


@dataclass(frozen=True)
class FineTunedId:
    base: str  # the root base snapshot: a fine-tune of a fine-tune still names its root
    org: str | None  # None in Azure's form, which does not carry it
    suffix: str | None  # None when the job set no suffix
    id: str
    checkpoint: str | None = None  # ``ckpt-step-<n>`` in a checkpoint's id

    @property
    def azure(self) -> bool:
        return self.org is None


def parse_fine_tuned(model_id: str) -> FineTunedId | None:
    """The parts of a fine-tuned model id, or None for any other id (a base snapshot, an alias).

    Org and suffix never hold ':' (the API refuses such suffixes), so OpenAI's form splits on it;
    Azure's hex id holds no '-', so what follows the first '-' after ``.ft-`` is the suffix.
    """
    if model_id.startswith(_OPENAI_PREFIX):
        parts = model_id.split(":")
        if len(parts) not in (5, 6) or "" in (parts[1], parts[4], *parts[5:]):
            return None
        checkpoint = parts[5] if len(parts) == 6 else None
        return FineTunedId(parts[1], parts[2], parts[3] or None, parts[4], checkpoint)
    base, mark, rest = model_id.partition(_AZURE_MARK)
    key, _, suffix = rest.partition("-")
    if not mark or not base or not key:
        return None
    return FineTunedId(base, None, suffix or None, key)
