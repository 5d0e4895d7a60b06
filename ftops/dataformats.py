"""Which dataset formats each open-weight provider type takes, per method: pure data and one
pure check, so that a spec whose datasets a provider would refuse is a spec error at its
file:line before anything is uploaded (``ftops.spec.accepted`` reports it).

ftops's formats (``ftops.formats``) are OpenAI's layouts: ``chat`` (``messages``) and
``preference`` (``input.messages``, ``preferred_output``, ``non_preferred_output``). What each
provider documents, followed here:

- Together: SDK 3.1.1 ``together/lib/constants.py`` names the layouts its server tells apart by
  their columns: ``conversation`` (``messages``, extra column ``tools``; roles system, user,
  assistant, tool), ``instruction`` (``prompt``, ``completion``), ``general`` (``text``) and
  ``preference_openai`` (``input``, ``preferred_output``, ``non_preferred_output``); the docs
  (docs.together.ai/docs/fine-tuning/data-preparation, .../preference-tuning) say the same.
  ftops's chat is its conversation layout and ftops's preference its preference_openai, byte
  for byte. The SDK's local checker (``together/lib/utils/files.py``) only checks that each line
  is a UTF-8 JSON object ("Semantic checks run on the server after upload"), so the finer rules
  (a conversation alternates user and assistant; an output is "a single assistant message")
  could not be confirmed from code and are not checked here.
- Fireworks: supervised datasets are ``CHAT`` (``messages``); DPO
  (docs.fireworks.ai/fine-tuning/dpo-fine-tuning) takes ``input.messages``, ``preferred_output``
  and ``non_preferred_output``, the same layout as ftops's preference ("one-turn conversations"
  only, roles system, user, assistant, string content: not confirmed to be enforced, so not
  checked here). SDK 1.2.30's ``dpo_jobs.create`` takes a ``dataset`` and no evaluation
  dataset, so a DPO job on Fireworks takes no validation file.
- Nebius Token Factory: conversational (``messages``) and instruction (``prompt``,
  ``completion``) JSONL for supervised jobs; Nebius offers ftops no other method.

So no provider needs another layout than the one a spec declares: ``CONVERSIONS`` is empty, and
no dataset is ever converted (nor silently); a format a provider does not take, or a validation
file a method there does not take, is refused instead.
"""

from __future__ import annotations

from dataclasses import dataclass

# The format each method trains on (as ``ftops.spec.schema.METHOD_FORMAT``, which a test keeps
# equal: this module sits below the spec and cannot import it).
METHOD_FORMAT = {"supervised": "chat", "dpo": "preference", "reinforcement": "reinforcement"}


@dataclass(frozen=True)
class Accepts:
    """What one provider type's jobs of one method take: the ftops formats of the training file,
    those of the validation file (empty: the job takes none) and the provider's name for the
    layout."""

    training: tuple[str, ...]
    validation: tuple[str, ...]
    layout: str


# provider type -> method -> what its jobs take
ACCEPTED: dict[str, dict[str, Accepts]] = {
    "nebius": {"supervised": Accepts(("chat",), ("chat",), "conversational")},
    "together": {
        "supervised": Accepts(("chat",), ("chat",), "conversation"),
        "dpo": Accepts(("preference",), ("preference",), "preference_openai"),
    },
    "fireworks": {
        "supervised": Accepts(("chat",), ("chat",), "CHAT"),
        "dpo": Accepts(("preference",), (), "DPO (input, preferred_output, "
                       "non_preferred_output)"),
    },
}
# (provider type, method, declared format) -> the layout ftops would convert to: none is needed.
CONVERSIONS: dict[tuple[str, str, str], str] = {}

# One refusal: where in the models entry (a key path), the message, the code.
Refusal = tuple[tuple[str, ...], str, str]


def refusals(kind: str, who: str, method: str, *, validation: bool) -> list[Refusal]:
    """Why a models entry of ``method`` on a provider of type ``kind`` (named ``who`` in the
    message) would have its datasets refused; [] when they are taken, or when ``kind`` or
    ``method`` is not in the table (the method check reports that)."""
    accepts = ACCEPTED.get(kind, {}).get(method)
    if accepts is None:
        return []
    fmt = METHOD_FORMAT.get(method, "")
    found: list[Refusal] = []
    if fmt not in accepts.training and (kind, method, fmt) not in CONVERSIONS:
        found.append((("training",), f"{who} does not take datasets of format {fmt} for "
                      f"method {method} (takes: {', '.join(accepts.training)})",
                      "unsupported_format"))
    if validation and not accepts.validation:
        found.append((("validation",), f"{who} takes no validation dataset for method "
                      f"{method}", "unsupported_key"))
    elif validation and fmt not in accepts.validation:
        found.append((("validation",), f"{who} does not take validation datasets of format "
                      f"{fmt} for method {method}", "unsupported_format"))
    return found


def markdown() -> str:
    """The README's table of what each provider takes (a test keeps the README equal)."""
    rows = ["| provider | method | training | validation | the provider's layout |",
            "|---|---|---|---|---|"]
    for kind, methods in ACCEPTED.items():
        for method, accepts in methods.items():
            rows.append(f"| {kind} | {method} | {', '.join(accepts.training)} | "
                        f"{', '.join(accepts.validation) or 'none'} | {accepts.layout} |")
    return "\n".join(rows)
