"""Epochs, billed tokens and training cost, by the OpenAI cookbook's rules.

With ``n_epochs: auto`` the service aims at about 3 passes, but scales the epochs so that small
datasets are seen at least 100 times in total and large ones at most 25,000 times, within 1 to 25
epochs (``Chat_finetuning_data_prep`` in the OpenAI cookbook). Training bills every epoch:
``billed = epochs x sum(min(limit, tokens of each example))``.
"""

from __future__ import annotations

import math

TARGET_EPOCHS = 3
MIN_TARGET_EXAMPLES = 100
MAX_TARGET_EXAMPLES = 25_000
MIN_DEFAULT_EPOCHS = 1
MAX_DEFAULT_EPOCHS = 25
_PER_PRICE = 1_000_000  # prices are quoted in USD per million tokens


def default_epochs(n_examples: int) -> int:
    """Epochs the service picks for ``n_epochs: auto``; an empty dataset gets the maximum."""
    if n_examples <= 0:
        return MAX_DEFAULT_EPOCHS
    if n_examples * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        return min(MAX_DEFAULT_EPOCHS, MIN_TARGET_EXAMPLES // n_examples)
    if n_examples * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        return max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // n_examples)
    return TARGET_EPOCHS


def training_epochs(n_epochs: int | None, n_examples: int) -> int:
    """Epochs a job trains for: the spec's ``n_epochs``, else (``auto``) the service's choice."""
    return n_epochs or default_epochs(n_examples)


def billed_tokens(billable_tokens: int, epochs: int) -> int:
    """Tokens charged for training: every epoch reads every (truncated) example once."""
    return billable_tokens * epochs


def estimate_cost_usd(billed: int, usd_per_1m: float | None) -> float | None:
    """Dollars for ``billed`` tokens at ``usd_per_1m`` per million; None when no price is known."""
    if usd_per_1m is None:
        return None
    return billed * usd_per_1m / _PER_PRICE


def inference_cost_usd(prompt_tokens: int, completion_tokens: int,
                       usd_per_1m: tuple[float, float]) -> float:
    """Dollars for Chat Completions at (input, output) USD per million tokens: inference prices
    input and output separately, unlike training's one price."""
    input_usd, output_usd = usd_per_1m
    return (prompt_tokens * input_usd + completion_tokens * output_usd) / _PER_PRICE


def format_usd(value: float) -> str:
    """Dollars as every view shows them: cents from a cent up, two significant digits below
    one (so $0.0077 and a $0.001 budget keep their size rather than read "$0.01", "$0.00")."""
    if value < 0:
        return "-" + format_usd(-value)
    if value == 0 or value >= 0.01:
        return f"${value:,.2f}"
    decimals = 1 - math.floor(math.log10(value))
    return f"${value:.{decimals}f}".rstrip("0")
