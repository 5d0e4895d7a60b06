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

Counting does not build the token ids: ``count_function`` uses the Rust tokenizer of the same
``bpe-openai`` package, which gives tiktoken's counts (a property test in ``tests/test_tokens.py``
holds the two equal on arbitrary text, for both encodings) in about half tiktoken's CPU, and
linear time on long strings without spaces, where tiktoken is quadratic. Its tables load in
~0.05 s, so a command that only counts never builds tiktoken's encoding (~0.2 s).

Preference (DPO) and reinforcement examples are counted by ``ftops.formats`` with this rule.
"""

from __future__ import annotations

import binascii
import gzip
import hashlib
import importlib.util
import json
import sys
import types
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftops.errors import FtopsError

if TYPE_CHECKING:
    import tiktoken

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


def _known_encoding(name: str) -> None:
    if name not in BUNDLED_ENCODINGS:
        raise FtopsError(
            f"unknown encoding '{name}'", hint=f"ftops supports {', '.join(BUNDLED_ENCODINGS)}"
        )


def _bindings() -> types.ModuleType:
    """bpe-openai's Rust extension, loaded by itself: the package's own ``__init__`` imports
    its tiktoken-compatible layer, which costs about 0.3 s and is not used."""
    import importlib.machinery

    name = "bpe_openai._bindings"
    if name in sys.modules:
        return sys.modules[name]
    folder = _bundled_dir().parent
    found = next((folder / f"_bindings{suffix}" for suffix in importlib.machinery.EXTENSION_SUFFIXES
                  if (folder / f"_bindings{suffix}").is_file()), None)
    if found is None:
        raise FtopsError("the bpe-openai package has no tokenizer extension",
                         hint="reinstall it: pip install --force-reinstall bpe-openai")
    loader = importlib.machinery.ExtensionFileLoader(name, str(found))
    spec = importlib.util.spec_from_file_location(name, found, loader=loader)
    assert spec is not None  # a file location with a loader always gives a spec
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    sys.modules[name] = module
    return module


@cache
def count_function(name: str) -> Callable[[str], int]:
    """The number of tokens ``name`` encodes a text into, as ``len(encode_ordinary(text))``."""
    _known_encoding(name)
    count: Callable[[str], int] = _bindings().tokenizer_for_encoding(name).count

    def counted(text: str) -> int:
        try:
            return count(text)
        except UnicodeEncodeError:
            # A lone surrogate (JSON allows "\ud800"): tiktoken's encode_ordinary replaces it
            # with U+FFFD the same way before it encodes.
            return count(text.encode("utf-16", "surrogatepass").decode("utf-16", "replace"))

    return counted


@cache
def get_encoding(name: str) -> tiktoken.Encoding:
    """The tiktoken encoding ``name``, built offline; the hash is checked against tiktoken's own."""
    _known_encoding(name)
    import tiktoken  # only a caller that needs token ids (the emulator's replies) builds one
    import tiktoken_ext.openai_public

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
    """Counts text and chat messages with one encoding (given by name or as tiktoken's),
    remembering repeated strings."""

    def __init__(self, encoding: tiktoken.Encoding | str) -> None:
        self.name = encoding if isinstance(encoding, str) else encoding.name
        self._count = count_function(self.name)
        self._known: dict[str, int] = {}

    @property
    def encoding(self) -> tiktoken.Encoding:
        """tiktoken's encoding, for callers that need the token ids (built on first use)."""
        return get_encoding(self.name)

    def text(self, text: str) -> int:
        count = self._known.get(text)
        if count is None:
            count = self._count(text)
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
