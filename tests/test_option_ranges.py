"""The values each open-weight provider takes are spec errors at their file:line, naming the
provider and what it takes, from the one table (``ftops.methods.RANGES``) the provider modules
send from; the emulator dialects (the test doubles of the providers) and the README agree."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from ftops import methods
from ftops.emulator import fireworks_jobs, nebius_jobs, together_jobs
from ftops.providers import fireworks, nebius, together
from ftops.spec import collect_specs
from tests.conftest import make_chat_jsonl, run_cli

BASES = {"nebius": "meta-llama/Llama-3.1-8B-Instruct",
         "together": "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference",
         "fireworks": "accounts/fireworks/models/qwen3-8b"}
PROVIDERS = {"nb": {"type": "nebius"}, "tg": {"type": "together"},
             "fw": {"type": "fireworks", "account": "acme"}}


def write(root: Path, bot: dict[str, Any]) -> Path:
    """A spec directory (no repository: the checks are offline) with one model ``bot``."""
    (root / "data").mkdir(parents=True)
    (root / "data" / "train.jsonl").write_bytes(make_chat_jsonl(10, tag="t"))
    (root / "data" / "prefs.jsonl").write_bytes(
        b'{"input": {"messages": [{"role": "user", "content": "hi"}]}, "preferred_output": '
        b'[{"role": "assistant", "content": "a"}], "non_preferred_output": '
        b'[{"role": "assistant", "content": "b"}]}\n' * 10)
    kind = PROVIDERS[bot["provider"]]["type"]
    spec = {"datasets": {"train": {"path": "data/train.jsonl"},
                         "prefs": {"path": "data/prefs.jsonl", "format": "preference"}},
            "providers": PROVIDERS,
            "models": {"bot": {"base": BASES[kind], "training": "train", **bot}}}
    (root / "ftops.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return root


def problems(root: Path) -> list[str]:
    return [str(d) for d in collect_specs(root)[1]]


@pytest.mark.parametrize(("bot", "expected"), [
    ({"provider": "nb", "hyperparameters": {"batch_size": 64}},
     "models.bot.hyperparameters.batch_size: provider nb (nebius) takes an integer from 8 to "
     "32, not 64"),
    ({"provider": "nb", "options": {"lora_r": 512}},
     "models.bot.options.lora_r: provider nb (nebius) takes an integer from 1 to 128, not 512"),
    ({"provider": "nb", "options": {"lora": "yes"}},
     "models.bot.options.lora: provider nb (nebius) takes true or false, not \"yes\""),
    ({"provider": "nb", "options": {"context_length": 2048.5}},
     "provider nb (nebius) takes an integer from 1024 to 131072, not 2048.5"),
    ({"provider": "tg", "options": {"lora_dropout": 1}},
     "models.bot.options.lora_dropout: provider tg (together) takes a number in [0, 1), not 1"),
    ({"provider": "tg", "options": {"warmup_ratio": -0.5}},
     "provider tg (together) takes a number from 0 to 1, not -0.5"),
    ({"provider": "tg", "hyperparameters": {"n_epochs": 30}},
     "provider tg (together) takes an integer from 1 to 20, not 30"),
    ({"provider": "tg", "options": {"n_evals": True}},
     "provider tg (together) takes an integer from 0 to 100, not true"),
    ({"provider": "tg", "method": "dpo", "training": "prefs", "options": {"rpo_alpha": -1}},
     "models.bot.options.rpo_alpha: provider tg (together) takes a number >= 0, not -1"),
    ({"provider": "fw", "options": {"lora_rank": 128}},
     "models.bot.options.lora_rank: provider fw (fireworks) takes an integer from 4 to 64, "
     "not 128"),
    ({"provider": "fw", "options": {"learning_rate": "fast"}},
     "provider fw (fireworks) takes a number from 1e-07 to 1, not \"fast\""),
])
def test_a_value_the_provider_does_not_take_is_an_error_at_its_line(
        tmp_path: Path, bot: dict[str, Any], expected: str) -> None:
    found = problems(write(tmp_path / "specs", bot))
    assert len(found) == 1 and expected in found[0], found
    (key,) = bot.get("options") or bot["hyperparameters"]
    line = next(i for i, text in enumerate((tmp_path / "specs" / "ftops.yaml").read_text()
                                           .splitlines(), 1) if text.strip().startswith(key))
    assert f"/ftops.yaml:{line}: models.bot." in found[0], found


@pytest.mark.parametrize("bot", [
    {"provider": "nb", "hyperparameters": {"batch_size": 16, "n_epochs": "auto"},
     "options": {"lora": True, "lora_r": 128, "learning_rate": 1, "context_length": "auto"}},
    {"provider": "tg", "options": {"lora_dropout": 0.99, "train_on_inputs": "auto",
                                   "max_grad_norm": 1e6, "learning_rate": 0.00001}},
    {"provider": "tg", "method": "dpo", "training": "prefs",
     "hyperparameters": {"beta": 0.1}, "options": {"simpo_gamma": 0}},
    {"provider": "fw", "hyperparameters": {"n_epochs": 50}, "options": {"lora_rank": 4}},
])
def test_values_in_range_and_auto_pass(tmp_path: Path, bot: dict[str, Any]) -> None:
    assert problems(write(tmp_path / "specs", bot)) == []


def test_validate_and_plan_stop_at_the_line_with_exit_1(tmp_path: Path) -> None:
    specs = write(tmp_path / "specs", {"provider": "nb", "options": {"lora_alpha": 1000}})
    for command in ("validate", "plan"):
        result = run_cli(specs, command)
        assert result.exit_code == 1, result.output
        assert ("ftops.yaml:21: models.bot.options.lora_alpha: provider nb (nebius) takes an "
                "integer from 1 to 256, not 1000") in result.output, result.output


def test_the_provider_modules_send_the_tables_wire_names() -> None:
    for kind, module in (("nebius", nebius), ("together", together),
                         ("fireworks", fireworks)):
        table: dict[str, dict[str, tuple[str, Any]]] = module.HYPERPARAMETERS
        assert {m: {k: w for k, (w, _) in keys.items()} for m, keys in table.items()} == {
            m: {k: a.wire for k, a in keys.items()} for m, keys in methods.RANGES[kind].items()}


def test_the_table_agrees_with_the_emulators_nebius_and_fireworks() -> None:
    for key, allowed in methods.RANGES["nebius"]["supervised"].items():
        kind, low, high, _ = nebius_jobs.HYPERPARAMETERS[allowed.wire]
        assert allowed.kind == {bool: "boolean", int: "integer", float: "number"}[kind], key
        if kind is not bool:
            assert (allowed.low, allowed.high) == (low, high), key
    for key, allowed in methods.RANGES["fireworks"]["supervised"].items():
        integer, low, high = fireworks_jobs.NUMBERS[allowed.wire]
        assert (allowed.kind == "integer", allowed.low, allowed.high) == (integer, low, high), key


def test_the_table_is_no_stricter_than_the_together_emulator() -> None:
    sft = methods.RANGES["together"]["supervised"]
    assert (sft["n_epochs"].high, sft["n_checkpoints"].high, sft["n_evals"].high) == (
        together_jobs.MAX_EPOCHS, together_jobs.MAX_CHECKPOINTS, together_jobs.MAX_EVALS)
    lowest = min(limits[1] for limits in together_jobs.BASES.values())
    assert sft["batch_size"].admits(lowest) and sft["learning_rate"].admits(
        together_jobs.LEARNING_RATE[0])
    assert math.isinf(sft["max_grad_norm"].high) and sft["warmup_ratio"].high == 1


def test_the_readme_shows_the_table() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert methods.markdown() in readme


def test_a_together_suffix_leaves_room_for_the_repository_tag(tmp_path: Path) -> None:
    """Together takes 40 characters and ftops appends "-<tag>": a longer suffix is refused at
    its file:line, before any upload (the provider module refuses it at the create too)."""
    assert problems(write(tmp_path / "ok", {"provider": "tg", "suffix": "s" * 31})) == []
    [line] = problems(write(tmp_path / "long", {"provider": "tg", "suffix": "s" * 32}))
    assert line.endswith("models.bot.suffix: provider tg (together) takes a suffix of at most 31 "
                         "characters (ftops appends the repository's tag), not 32"), line
    assert ":" in line.split(" ")[0]  # file:line first
    assert problems(write(tmp_path / "nb", {"provider": "nb", "suffix": "s" * 32})) == []
