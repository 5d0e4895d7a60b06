"""CPU a full validate does not need to spend: what the benchmark's full-run ratio rests on."""

from __future__ import annotations

import sys

import pytest

from ftops import tokens
from ftops.datasets.lines import make_settings
from ftops.datasets.parallel import open_pool

SETTINGS = make_settings("chat", "o200k_base", None, 50, 1 << 30)


def _encodings_built() -> int:
    """Run in a worker: how many tokenizers this process has loaded (its cache's misses)."""
    return tokens.count_function.cache_info().misses


@pytest.mark.skipif(sys.platform != "linux", reason="workers are forked on Linux only")
def test_forked_workers_inherit_the_tokenizer_instead_of_each_loading_it() -> None:
    tokens.count_function.cache_clear()  # as in a fresh `ftops validate`
    with open_pool(SETTINGS, 2) as pool:
        built = [pool.submit(_encodings_built).result() for _ in range(4)]
    assert tokens.count_function.cache_info().misses == 1  # this process built it once
    assert built == [1, 1, 1, 1]  # and no worker built another
