"""The open-weight providers through ftops end to end: one spec with models on openai, azure,
nebius, together and fireworks plans in one run, applies, waits, evals and re-plans clean, each
provider through its own SDK against its own emulator dialect; their rules are spec errors at
file:line; a missing SDK is one line naming the extra."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ftops import methods
from ftops.providers import fireworks, nebius, together
from tests.conftest import make_chat_jsonl, run_cli
from tests.test_engine import Project

pytest.importorskip("together")
pytest.importorskip("fireworks")

BASES = {"openai": "gpt-4o-mini-2024-07-18", "azure": "gpt-4.1-mini-2025-04-14",
         "nebius": "meta-llama/Llama-3.1-8B-Instruct",
         "together": "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference",
         "fireworks": "accounts/fireworks/models/qwen3-8b"}
PROVIDERS: dict[str, dict[str, Any]] = {
    "oai": {"type": "openai"},
    "az": {"type": "azure", "endpoint": "https://example-resource.openai.azure.com"},
    "nb": {"type": "nebius"},
    "tg": {"type": "together"},
    "fw": {"type": "fireworks", "account": "acme"},
}
TYPES = {name: p["type"] for name, p in PROVIDERS.items()}


def write(root: Path, models: dict[str, Any], providers: dict[str, Any] | None = None,
          evals: dict[str, Any] | None = None) -> Project:
    project = Project(root)
    specs = project.specs
    (specs / "data").mkdir(parents=True, exist_ok=True)
    (specs / "data" / "train.jsonl").write_bytes(make_chat_jsonl(20, tag="t"))
    (specs / "data" / "held.jsonl").write_bytes(make_chat_jsonl(10, tag="h"))
    spec = {"datasets": {"train": {"path": "data/train.jsonl"},
                         "held": {"path": "data/held.jsonl"}},
            "providers": providers or PROVIDERS,
            "evals": {"held-out": {"dataset": "held", "checks": ["contains"],
                                   "compare_with": "none", "min_score": 0}, **(evals or {})},
            "models": models}
    (specs / "ftops.yaml").write_text(yaml.safe_dump(spec, sort_keys=True))
    project.commit()
    return project


def model(provider: str, **extra: Any) -> dict[str, Any]:
    return {"base": BASES[TYPES[provider]], "training": "train", "provider": provider,
            "suffix": f"{provider}-bot", **extra}


def actions(project: Project) -> dict[str, str]:
    result = run_cli(project.specs, "plan", "--emulator", "--json")
    assert result.exit_code == 0, result.output
    return {a["address"]: a["action"] for a in json.loads(result.stdout)["actions"]}


def test_one_spec_on_five_providers_plans_applies_waits_evals_and_replans_clean(
        tmp_path: Path) -> None:
    models = {
        "bot-oai": model("oai", eval="held-out"),
        "bot-az": model("az"),
        "bot-nb": model("nb", eval="held-out", options={"learning_rate": 0.0001, "lora_r": 8}),
        "bot-tg": model("tg", eval="vs-openai", options={"learning_rate": 0.00001}),
        "bot-fw": {**model("fw", eval="held-out"), "suffix": None},
    }
    # An eval may compare with a model on another provider.
    vs_openai = {"vs-openai": {"dataset": "held", "checks": ["contains"],
                               "compare_with": "bot-oai", "min_improvement": -1}}
    project = write(tmp_path / "repo", models, evals=vs_openai)
    assert run_cli(project.specs, "validate").exit_code == 0
    planned = actions(project)
    assert {k: v for k, v in planned.items() if k.startswith("model.")} == {
        f"model.{name}[{m['provider']}]": "train" for name, m in models.items()}
    applied = run_cli(project.specs, "apply", "--emulator", "--auto-approve", "--wait")
    assert applied.exit_code == 0, applied.output
    assert "5 started" in applied.output
    status = run_cli(project.specs, "status", "--emulator")
    assert status.exit_code == 0, status.output
    assert all(name in status.output for name in models)
    evaluated = run_cli(project.specs, "eval", "--emulator", "--json")
    assert evaluated.exit_code == 0, evaluated.output
    results = {r["model"]: r for r in json.loads(evaluated.stdout)["evals"]}
    assert results["bot-tg"]["compare_with"] == "bot-oai"
    assert results["bot-tg"]["comparison"]["model_id"].startswith("ft:gpt-4o-mini")
    exported = run_cli(project.specs, "export", "--emulator", "--out", str(tmp_path / "out"))
    assert exported.exit_code == 0, exported.output
    assert {p.name for p in (tmp_path / "out").iterdir()} >= set(models)
    assert actions(project) == {f"model.{name}[{m['provider']}]": "ok"
                                for name, m in models.items()}
    lock = yaml.safe_load((project.root / "ftops.lock").read_text())["models"]
    assert {name: entry["status"] for name, entry in lock.items()} == dict.fromkeys(
        models, "succeeded")


def test_an_option_change_is_a_visible_replace(tmp_path: Path) -> None:
    project = write(tmp_path / "repo", {"bot": model("nb", options={"lora_r": 8})})
    assert run_cli(project.specs, "apply", "--emulator", "--auto-approve", "--wait").exit_code == 0
    changed = write(tmp_path / "repo", {"bot": model("nb", options={"lora_r": 16})})
    assert actions(changed) == {"model.bot[nb]": "replace"}


@pytest.mark.parametrize(("provider", "change", "expected"), [
    ("tg", {"hyperparameters": {"learning_rate_multiplier": 2}},
     "provider tg (together) takes no learning_rate_multiplier (it takes an absolute "
     "learning_rate under options)"),
    ("nb", {"method": "dpo"}, "provider nb (nebius) does not offer method dpo"),
    ("fw", {"seed": 7}, "provider fw (fireworks) takes no seed"),
    ("fw", {"options": {"lora_r": 8}}, "provider fw (fireworks) takes no option lora_r"),
    ("oai", {"options": {"lora_r": 8}}, "options: only for providers of type nebius"),
])
def test_provider_rules_are_spec_errors_at_file_line(tmp_path: Path, provider: str,
                                                     change: dict[str, Any],
                                                     expected: str) -> None:
    project = write(tmp_path / "repo", {"bot": {**model(provider), **change}})
    result = run_cli(project.specs, "validate")
    assert result.exit_code == 1, result.output
    assert expected in result.output and "ftops.yaml:" in result.output, result.output


def test_fireworks_needs_an_account(tmp_path: Path) -> None:
    project = write(tmp_path / "repo", {"bot": model("fw")},
                    {"fw": {"type": "fireworks"}})
    result = run_cli(project.specs, "validate")
    assert result.exit_code == 1
    assert "missing required key 'account' (type fireworks)" in result.output


def test_a_missing_sdk_is_one_line_naming_the_extra(tmp_path: Path) -> None:
    project = write(tmp_path / "repo", {"bot": model("tg")})
    code = ("import sys; sys.modules['together'] = None; from ftops.cli import main; "
            f"main(['plan', '--specs', {str(project.specs)!r}])")
    env = {"TOGETHER_API_KEY": "tk", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False, env=env)
    assert done.returncode == 1, done.stderr
    assert "pip install 'ftops[together]'" in done.stderr and "Traceback" not in done.stderr


def test_the_spec_tables_agree_with_each_provider_module() -> None:
    for name, module in (("nebius", nebius), ("together", together),
                         ("fireworks", fireworks)):
        assert set(methods.KEYS[name]) == set(module.HYPERPARAMETERS)
        for method, keys in methods.KEYS[name].items():
            assert set(keys) == set(module.HYPERPARAMETERS[method]), (name, method)


def test_validate_and_plan_use_the_providers_price_and_say_estimate(tmp_path: Path) -> None:
    project = write(tmp_path / "repo", {"bot": model("tg")})
    validated = run_cli(project.specs, "validate")
    assert validated.exit_code == 0, validated.output
    assert "token counts are an estimate" in validated.output
    assert "estimated cost unknown" not in validated.output  # Together publishes a price
    planned = run_cli(project.specs, "plan", "--emulator")
    assert "tokens and cost are an estimate" in planned.output, planned.output


def test_openai_does_not_take_an_open_weight_base(tmp_path: Path) -> None:
    project = write(tmp_path / "repo", {"bot": {**model("oai"), "base": BASES["together"]}})
    result = run_cli(project.specs, "plan", "--emulator")
    assert result.exit_code == 1, result.output
    assert "models.bot.base" in result.output


def test_plan_v_shows_the_options_apart_from_the_hyperparameters(tmp_path: Path) -> None:
    project = write(tmp_path / "repo", {"bot": model(
        "nb", hyperparameters={"n_epochs": 2}, options={"lora_r": 8})})
    shown = run_cli(project.specs, "plan", "--emulator", "-v")
    assert shown.exit_code == 0, shown.output
    lines = [line.strip() for line in shown.output.splitlines()]
    assert any(line.startswith("options") and "lora_r" in line for line in lines), lines
    assert any(line.startswith("hyperparameters") and "lora_r" not in line
               and "n_epochs" in line for line in lines), lines
