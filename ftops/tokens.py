"""Exact token counts with no network: tiktoken encodings built from the files bpe-openai ships.

tiktoken normally downloads its encoding files on first use. The ``bpe-openai`` package (a
dependency) ships ``o200k_base`` and ``cl100k_base`` as gzip files whose contents are
byte-identical to tiktoken's, so ``get_encoding`` runs tiktoken's own constructor from
``tiktoken_ext.openai_public`` (regex, special tokens, expected SHA-256) with a loader that reads
the bundled file and checks that hash. Nothing is downloaded; tiktoken's cache is never written.

How an example is counted (``TokenCounter.messages``), the rule the README documents:

* Text chat follows the OpenAI cookbook: 3 tokens per message, 1 more for a message with a
  ``name``, 3 for the priming of the reply, plus the encoded length of every string field of every
  message (``role``, ``content``, ``name``, ``tool_call_id``, ...).
* Content given as a list of parts: a ``text`` part counts its text; an ``image_url`` part counts
  85 tokens, the cost of a low-detail image. Higher detail costs more, depending on the image's
  size, which is not known offline, so image examples are counted at the low end.
* ``tool_calls`` and ``function_call`` of a message, and the ``tools`` and ``functions`` of an
  example, count the encoded length of their compact JSON (keys as written, no spaces, non-ASCII
  kept as is). The service renders them in its own layout, so this is a close estimate, not exact.
* Numbers, booleans and nulls (``weight``, ``parallel_tool_calls``) count nothing.
* Text is encoded as ordinary text: ``<|endoftext|>`` inside a message counts as its characters.

Preference (DPO) and reinforcement examples are counted by ``ftops.formats`` with this rule.
"""

from __future__ import annotations

import binascii
import gzip
import hashlib
import importlib.util
import json
import types
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import tiktoken
import tiktoken_ext.openai_public

from ftops.errors import FtopsError

BUNDLED_ENCODINGS = ("o200k_base", "cl100k_base")
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING_TOKENS = 3
IMAGE_TOKENS = 85

# Repeated strings (system prompts, tool definitions) are counted once; the bound keeps memory flat.
_CACHE_ENTRIES = 1024
_CACHE_MAX_CHARS = 4096


def _bundled_dir() -> Path:
    # find_spec locates the package without importing it: its import loads a 70 MB extension.
    spec = importlib.util.find_spec("bpe_openai")
    if spec is None or not spec.submodule_search_locations:
        raise FtopsError(
            "the bpe-openai package is not installed; ftops reads its encoding files",
            hint="install it: pip install bpe-openai",
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _load_bundled(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
    """Stands in for ``tiktoken.load.load_tiktoken_bpe``: the same file, read from bpe-openai."""
    path = _bundled_dir() / (url.rsplit("/", 1)[-1] + ".gz")
    try:
        data = gzip.decompress(path.read_bytes())
    except (OSError, EOFError) as exc:
        raise FtopsError(
            f"cannot read the bundled encoding file: {exc}", path=str(path),
            hint="reinstall bpe-openai",
        ) from exc
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_hash:
        raise FtopsError(
            f"bundled encoding file has SHA-256 {actual}, tiktoken expects {expected_hash}",
            path=str(path),
            hint="reinstall bpe-openai",
        )
    # Lines of "<base64 token> <rank>": split on whitespace, the fields alternate.
    fields = data.split()
    return dict(zip(map(binascii.a2b_base64, fields[::2]), map(int, fields[1::2]), strict=True))


@cache
def get_encoding(name: str) -> tiktoken.Encoding:
    """The tiktoken encoding ``name``, built offline; the hash is checked against tiktoken's own."""
    if name not in BUNDLED_ENCODINGS:
        raise FtopsError(
            f"unknown encoding '{name}'", hint=f"ftops supports {', '.join(BUNDLED_ENCODINGS)}"
        )
    constructor = tiktoken_ext.openai_public.ENCODING_CONSTRUCTORS[name]
    # Run tiktoken's constructor as written, with its file loader bound to the bundled copy.
    offline = types.FunctionType(
        constructor.__code__,
        {**constructor.__globals__, "load_tiktoken_bpe": _load_bundled},
        constructor.__name__,
        constructor.__defaults__,
        constructor.__closure__,
    )
    return tiktoken.Encoding(**offline())


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class TokenCounter:
    """Counts text and chat messages with one encoding, remembering repeated strings."""

    def __init__(self, encoding: tiktoken.Encoding) -> None:
        self.encoding = encoding
        self._encode: Callable[[str], list[int]] = encoding.encode_ordinary
        self._known: dict[str, int] = {}

    def text(self, text: str) -> int:
        count = self._known.get(text)
        if count is None:
            count = len(self._encode(text))
            if len(text) <= _CACHE_MAX_CHARS:
                if len(self._known) >= _CACHE_ENTRIES:
                    self._known.clear()
                self._known[text] = count
        return count

    def messages(
        self,
        messages: Iterable[Mapping[str, Any]],
        *,
        tools: Any = None,
        functions: Any = None,
    ) -> int:
        """Tokens of one conversation by the rule in the module docstring."""
        total = REPLY_PRIMING_TOKENS
        known = self._known  # roles and repeated prompts: skip the call on the common hit
        for message in messages:
            total += TOKENS_PER_MESSAGE
            for key, value in message.items():
                if isinstance(value, str):
                    count = known.get(value)
                    total += self.text(value) if count is None else count
                    if key == "name":
                        total += TOKENS_PER_NAME
                elif key == "content" and isinstance(value, list):
                    total += self._parts(value)
                elif key in ("tool_calls", "function_call") and value:
                    total += self.text(_compact(value))
        if tools:
            total += self.text(_compact(tools))
        if functions:
            total += self.text(_compact(functions))
        return total

    def _parts(self, parts: list[Any]) -> int:
        total = 0
        for part in parts:
            if part.get("type") == "image_url":
                total += IMAGE_TOKENS
            elif isinstance(part.get("text"), str):
                total += self.text(part["text"])
        return total
