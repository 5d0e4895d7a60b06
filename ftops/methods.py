"""What a models entry may set on each open-weight provider type: its methods and, per method,
the hyperparameter keys it takes (ftops's common keys where they mean the same thing, and the
provider's own, written under ``options:``). Pure data, so that the spec resolver checks a spec
at file:line before anything is sent; the wire names and ranges are each provider module's
``HYPERPARAMETERS`` (``ftops.providers.<type>``), and a test keeps both in step.
"""

from __future__ import annotations

COMMON_KEYS = ("n_epochs", "batch_size", "learning_rate_multiplier")

_NEBIUS = ("n_epochs", "batch_size", "learning_rate", "warmup_ratio", "weight_decay",
           "max_grad_norm", "context_length", "packing", "lora", "lora_r", "lora_alpha",
           "lora_dropout")
_TOGETHER = ("n_epochs", "batch_size", "learning_rate", "n_checkpoints", "n_evals",
             "warmup_ratio", "max_grad_norm", "weight_decay", "lora", "lora_r", "lora_alpha",
             "lora_dropout")
_FIREWORKS = ("n_epochs", "batch_size", "learning_rate", "lora_rank", "max_context_length",
              "batch_size_tokens", "warmup_steps", "gradient_accumulation_steps",
              "weight_decay")

# provider type -> method -> the keys it takes
KEYS: dict[str, dict[str, tuple[str, ...]]] = {
    "nebius": {"supervised": _NEBIUS},
    "together": {"supervised": (*_TOGETHER, "train_on_inputs"),
                 "dpo": (*_TOGETHER, "beta", "rpo_alpha", "simpo_gamma")},
    "fireworks": {"supervised": _FIREWORKS},
}
# Provider types whose jobs take no seed.
SEEDLESS = frozenset({"fireworks"})
