"""Eval gates: a trained model answers its eval's held-out prompts through Chat Completions, is
scored by the eval's checks against the reference replies and compared with its base (or another
declared model); only a model whose gate passes is promoted to its alias in ``ftops.lock``.

Replies are cached under ``.ftops/evals/`` by (provider, model id, eval dataset sha256, request
settings): a fine-tuned model id names fixed weights and requests use temperature 0 and a fixed
seed, so a re-run sends no request. Checks are applied to the cached replies on every run, so
changing only the checks re-scores without a request either.

``checks`` reads examples and scores replies, ``runner`` asks a remote (or the cache) for them,
``gates`` evaluates, decides and promotes, ``results`` holds what they produce and ``views``
renders it.
"""

from ftops.evals.checks import Example, check, load_examples, score
from ftops.evals.gates import (
    DISAGREEMENTS,
    Report,
    disagreements,
    evaluate,
    evaluate_model,
    gate,
    gate_reasons,
    promote,
    trained_id,
)
from ftops.evals.results import Disagreement, EvalResult, Gate, Run, Scored
from ftops.evals.runner import CACHE_DIR, CACHE_VERSION, RETRIES, SEED, run_model
from ftops.evals.views import results_json, results_markdown, results_text, summary_line

__all__ = [
    "CACHE_DIR",
    "CACHE_VERSION",
    "DISAGREEMENTS",
    "RETRIES",
    "SEED",
    "Disagreement",
    "EvalResult",
    "Example",
    "Gate",
    "Report",
    "Run",
    "Scored",
    "check",
    "disagreements",
    "evaluate",
    "evaluate_model",
    "gate",
    "gate_reasons",
    "load_examples",
    "promote",
    "results_json",
    "results_markdown",
    "results_text",
    "run_model",
    "score",
    "summary_line",
    "trained_id",
]
