"""What an eval produces: a model's replies (``Run``), their scores per check (``Scored``), the
gate's verdict with its reasons (``EvalResult``) and the lock that promotion leaves (``Gate``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ftops import catalog, lock
from ftops.cost import inference_cost_usd


@dataclass(frozen=True)
class Run:
    """One model's replies to an eval dataset."""

    provider: str
    model_id: str
    outputs: tuple[str, ...]
    prompt_tokens: int
    completion_tokens: int
    cached: bool = False

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def cost_usd(self) -> float | None:
        """Estimated from the catalog's inference prices; None when the model is not in it."""
        info = catalog.load().model(self.model_id)
        prices = info.inference_prices(self.model_id) if info else None
        if prices is None:
            return None
        return inference_cost_usd(self.prompt_tokens, self.completion_tokens, prices)


@dataclass(frozen=True)
class Scored:
    run: Run
    passes: tuple[tuple[bool, ...], ...]  # per example, per check

    @property
    def passed(self) -> tuple[bool, ...]:
        return tuple(all(p) for p in self.passes)

    @property
    def score(self) -> float:
        return sum(self.passed) / len(self.passes) if self.passes else 0.0

    def check_counts(self, checks: Sequence[str]) -> dict[str, int]:
        return {c: sum(p[i] for p in self.passes) for i, c in enumerate(checks)}

    def to_dict(self, checks: Sequence[str]) -> dict[str, Any]:
        return {
            "model_id": self.run.model_id,
            "score": round(self.score, 6),
            "passed_examples": sum(self.passed),
            "check_passes": self.check_counts(checks),
            "prompt_tokens": self.run.prompt_tokens,
            "completion_tokens": self.run.completion_tokens,
            "estimated_cost_usd": _round(self.run.cost_usd),
            "cached": self.run.cached,
        }


@dataclass(frozen=True)
class Disagreement:
    line: int
    question: str
    reference: str
    output: str
    comparison: str


@dataclass(frozen=True)
class EvalResult:
    model: str  # the declared model
    eval: str
    dataset_sha256: str
    checks: tuple[str, ...]
    examples: int
    candidate: Scored
    comparison: Scored | None
    comparison_label: str | None  # "base" or the declared model compared with
    min_score: float | None
    min_improvement: float | None
    reasons: tuple[str, ...]  # why the gate failed; empty when it passed
    disagreements: tuple[Disagreement, ...]

    @property
    def passed(self) -> bool:
        return not self.reasons

    def record(self) -> dict[str, Any]:
        """What ``ftops.lock`` keeps as the justification of a promotion."""
        return {
            "eval": self.eval,
            "dataset_sha256": self.dataset_sha256,
            "checks": list(self.checks),
            "examples": self.examples,
            "score": round(self.candidate.score, 6),
            "compared_with": self.comparison.run.model_id if self.comparison else None,
            "comparison_score": round(self.comparison.score, 6) if self.comparison else None,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "eval": self.eval,
            "passed": self.passed,
            "reasons": list(self.reasons),
            "dataset_sha256": self.dataset_sha256,
            "checks": list(self.checks),
            "examples": self.examples,
            "min_score": self.min_score,
            "min_improvement": self.min_improvement,
            "candidate": self.candidate.to_dict(self.checks),
            "compare_with": self.comparison_label,
            "comparison": self.comparison.to_dict(self.checks) if self.comparison else None,
            "disagreements": [vars(d) for d in self.disagreements],
        }


@dataclass(frozen=True)
class Gate:
    results: tuple[EvalResult, ...]
    lock: lock.Lock

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)



def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
