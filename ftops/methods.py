"""What a models entry may set on each open-weight provider type: its methods and, per method,
the hyperparameters it takes (ftops's common keys where they mean the same thing, and the
provider's own, written under ``options:``), each with its name on the wire and the values it
takes. Pure data, the one table both sides read: the spec check (``ftops.spec.ranges``,
``ftops.spec.openweight``) refuses a key or a value at file:line before anything is sent, and
each provider module's ``HYPERPARAMETERS`` is derived from it for the wire names.

Sources of the ranges (``RANGES``): Together's from its docs (CLI reference: n_epochs 1-20,
n_evals 0-100, n_checkpoints at least 1) and SDK 3.1.1's checks (warmup_ratio in [0, 1],
lora_dropout in [0, 1), max_grad_norm, weight_decay, rpo_alpha and simpo_gamma >= 0; it casts
lora_alpha to an integer); its per-base limits (batch size, LoRA rank, learning rate) are
Together's to check. Fireworks' types from SDK 1.2.30 and its LoRA rank ("between 4 and 64");
its other bounds, and all of Nebius' (its API reference gives names, types and defaults only),
are the emulator's (``ftops.emulator.nebius_jobs``, ``fireworks_jobs``), which a test keeps
equal to these.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

COMMON_KEYS = ("n_epochs", "batch_size", "learning_rate_multiplier")
# The keys a spec writes under ``hyperparameters:`` (the common ones, and dpo's beta).
_SPEC_KEYS = (*COMMON_KEYS, "beta")
Kind = Literal["integer", "number", "boolean"]


@dataclass(frozen=True)
class Allowed:
    """The values one hyperparameter takes: its kind and bounds (each inclusive unless
    ``open_low``/``open_high``); ``words`` are strings it takes besides (``"auto"``, which
    every key takes as "the provider's default", is not among them)."""

    wire: str
    kind: Kind
    low: float = -math.inf
    high: float = math.inf
    open_low: bool = False
    open_high: bool = False
    words: tuple[str, ...] = ()

    @property
    def bounds(self) -> tuple[float, float] | None:
        """(low, high) of a numeric key; None for a boolean."""
        return None if self.kind == "boolean" else (self.low, self.high)

    def admits(self, value: object) -> bool:
        if isinstance(value, str):
            return value == "auto" or value in self.words
        if self.kind == "boolean" or isinstance(value, bool):
            return self.kind == "boolean" and isinstance(value, bool)
        if not isinstance(value, int) and not (self.kind == "number"
                                               and isinstance(value, float)):
            return False
        above = value > self.low if self.open_low else value >= self.low
        below = value < self.high if self.open_high else value <= self.high
        return above and below

    def __str__(self) -> str:
        words = "".join(f"'{w}' or " for w in self.words)
        if self.kind == "boolean":
            return f"{words}true or false"
        what = "an integer" if self.kind == "integer" else "a number"
        low, high = _number(self.low), _number(self.high)
        if math.isinf(self.high):
            return f"{words}{what} {'>' if self.open_low else '>='} {low}"
        if not self.open_low and not self.open_high:
            return f"{words}{what} from {low} to {high}"
        return (f"{words}{what} in {'(' if self.open_low else '['}{low}, {high}"
                f"{')' if self.open_high else ']'}")


def _number(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"


def _int(wire: str, low: float, high: float = math.inf) -> Allowed:
    return Allowed(wire, "integer", low, high)


def _num(wire: str, low: float, high: float = math.inf, *, open_low: bool = False,
         open_high: bool = False) -> Allowed:
    return Allowed(wire, "number", low, high, open_low, open_high)


def _bool(wire: str, *words: str) -> Allowed:
    return Allowed(wire, "boolean", words=words)


_NEBIUS = {
    "n_epochs": _int("n_epochs", 1, 20), "batch_size": _int("batch_size", 8, 32),
    "learning_rate": _num("learning_rate", 0, 1), "warmup_ratio": _num("warmup_ratio", 0, 1),
    "weight_decay": _num("weight_decay", 0, 1), "max_grad_norm": _num("max_grad_norm", 0, 1000),
    "context_length": _int("context_length", 1024, 131072), "packing": _bool("packing"),
    "lora": _bool("lora"), "lora_r": _int("lora_r", 1, 128),
    "lora_alpha": _int("lora_alpha", 1, 256), "lora_dropout": _num("lora_dropout", 0, 1),
}
_TOGETHER = {
    "n_epochs": _int("n_epochs", 1, 20), "batch_size": _int("batch_size", 1),
    "learning_rate": _num("learning_rate", 0, open_low=True),
    "n_checkpoints": _int("n_checkpoints", 1, 20), "n_evals": _int("n_evals", 0, 100),
    "warmup_ratio": _num("warmup_ratio", 0, 1), "max_grad_norm": _num("max_grad_norm", 0),
    "weight_decay": _num("weight_decay", 0), "lora": _bool("lora"),
    "lora_r": _int("lora_r", 1), "lora_alpha": _int("lora_alpha", 1),
    "lora_dropout": _num("lora_dropout", 0, 1, open_high=True),
}
_FIREWORKS = {
    "n_epochs": _int("epochs", 1, 100), "batch_size": _int("batchSizeSamples", 1, 4096),
    "learning_rate": _num("learningRate", 1e-7, 1.0), "lora_rank": _int("loraRank", 4, 64),
    "max_context_length": _int("maxContextLength", 512, 131072),
    "batch_size_tokens": _int("batchSize", 1, 1 << 22),
    "warmup_steps": _int("learningRateWarmupSteps", 0, 100_000),
    "gradient_accumulation_steps": _int("gradientAccumulationSteps", 1, 1024),
    "weight_decay": _num("optimizerWeightDecay", 0.0, 1.0),
}

# provider type -> method -> ftops's key -> what it takes
RANGES: dict[str, dict[str, dict[str, Allowed]]] = {
    "nebius": {"supervised": _NEBIUS},
    "together": {
        "supervised": {**_TOGETHER, "train_on_inputs": _bool("train_on_inputs")},
        "dpo": {**_TOGETHER, "beta": _num("dpo_beta", 0, open_low=True),
                "rpo_alpha": _num("rpo_alpha", 0), "simpo_gamma": _num("simpo_gamma", 0)},
    },
    # DPO takes the same training config (SDK 1.2.30 ``TrainingConfig``) and the loss's beta,
    # "> 0 and < 0.5" (``DpoConfig``); no validation dataset (``ftops.dataformats``).
    "fireworks": {"supervised": _FIREWORKS,
                  "dpo": {**_FIREWORKS, "beta": _num("beta", 0, 0.5, open_low=True,
                                                     open_high=True)}},
}
# provider type -> method -> the keys it takes
KEYS: dict[str, dict[str, tuple[str, ...]]] = {
    kind: {method: tuple(keys) for method, keys in methods.items()}
    for kind, methods in RANGES.items()
}
# Provider types whose jobs take no seed.
SEEDLESS = frozenset({"fireworks"})
# The longest suffix a spec may write, per provider type that limits it: Together takes 40
# characters ("Up to 40 character suffix", its SDK's fine_tuning.create) and ftops appends the
# repository's tag to it ("-" and 8 hex, ``ftops.identity.repo_tag``).
SUFFIX_MAX = {"together": 40 - 9}


def markdown() -> str:
    """The README's table of what each provider takes, a row per key (with the methods that
    take it alike); a test keeps the README equal to it."""
    rows: dict[tuple[str, str, str, str], list[str]] = {}
    for kind, methods in RANGES.items():
        for method, keys in methods.items():
            for key, allowed in keys.items():
                where = "hyperparameters" if key in _SPEC_KEYS else "options"
                rows.setdefault((kind, f"{where}.{key}", allowed.wire, str(allowed)),
                                []).append(method)
    lines = ["| provider | methods | key | sent as | takes (and `auto`: the provider's default) |",
             "|---|---|---|---|---|"]
    lines += [f"| {kind} | {', '.join(used)} | {key} | `{wire}` | {takes} |"
              for (kind, key, wire, takes), used in rows.items()]
    return "\n".join(lines)
