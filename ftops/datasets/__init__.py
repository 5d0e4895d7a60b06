"""Training data analysis: validation, SHA-256, token statistics and duplicates, in one pass.

``reader`` streams a file (``parallel`` splits a large one across processes), ``lines`` validates
and counts each range of lines with the per-format checks of ``ftops.formats``, ``totals`` merges
the ranges into a ``report``, and ``overlap`` compares a training file with its validation file.
With a cache, ``incremental`` analyses only what changed: ``blocks`` cuts the file into blocks of
lines by their content, each block's scan is cached by its bytes' hash, and an append resumes
from the totals saved before the old last block.
Token and cost arithmetic live in ``ftops.cost`` and are re-exported here for callers of
``analyze``.
"""

from ftops.cost import billed_tokens, default_epochs, estimate_cost_usd
from ftops.datasets.overlap import find_overlap
from ftops.datasets.reader import analyze
from ftops.datasets.report import DatasetReport, TokenStats

__all__ = [
    "DatasetReport",
    "TokenStats",
    "analyze",
    "billed_tokens",
    "default_epochs",
    "estimate_cost_usd",
    "find_overlap",
]
