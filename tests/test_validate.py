from __future__ import annotations

import json
import re
import shutil
import textwrap
from pathlib import Path
from typing import Any

import git
import pytest
import yaml
from click.testing import CliRunner, Result

from ftops import spec
from ftops.cli import main
from ftops.cost import format_usd
from ftops.tokens import get_encoding
from ftops.validate import validate

REPO = Path(__file__).resolve().parent.parent


def chat_lines(n: int, tag: str) -> list[str]:
    return [
        json.dumps(
            {
                "messages": [
                    {"role": "user", "content": f"{tag} question {i}"},
                    {"role": "assistant", "content": f"{tag} answer {i}"},
                ]
            }
        )
        for i in range(n)
    ]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git work tree holding data/train.jsonl and data/val.jsonl, and the current directory."""
    git.Repo.init(tmp_path).close()
    write(tmp_path / "data" / "train.jsonl", "\n".join(chat_lines(12, "train")) + "\n")
    write(tmp_path / "data" / "val.jsonl", "\n".join(chat_lines(10, "val")) + "\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args: str) -> Result:
    result = CliRunner().invoke(main, ["validate", *args])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result


DATASETS = """
    datasets:
      train:
        path: ../data/train.jsonl
      val:
        path: ../data/val.jsonl
"""


def test_demo_specs_validate_with_the_json_contract(repo: Path) -> None:
    shutil.copytree(REPO / "specs", repo / "specs")
    result = run("--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert list(report) == ["ok", "errors", "datasets", "models"]
    assert report["ok"] is True and report["errors"] == []
    names = [d["name"] for d in report["datasets"]]
    assert names == ["support-tone", "support-train", "support-val"]
    for entry in report["datasets"]:
        assert list(entry) == [
            "name",
            "path",
            "sha256",
            "format",
            "examples",
            "tokens",
            "errors",
            "error_count",
            "warnings",
        ]
        assert list(entry["tokens"]) == ["total", "min", "max", "mean"]
        assert (entry["format"], entry["errors"], entry["error_count"], entry["warnings"]) == (
            "chat",
            [],
            0,
            [],
        )
        assert entry["path"] == f"specs/data/{entry['name']}.jsonl"
    train = report["datasets"][1]
    assert train["examples"] >= 12 and report["datasets"][2]["examples"] >= 10
    tone = report["datasets"][0]
    assert report["models"] == [
        {
            "name": "support-bot",
            "base": "gpt-4o-mini-2024-07-18",
            "n_epochs": 3,
            "billed_tokens": 3 * train["tokens"]["total"],
            "estimated_cost_usd": 3 * train["tokens"]["total"] * 3.0 / 1e6,
        },
        {
            "name": "support-bot-tone",
            "base": "gpt-4o-mini-2024-07-18",
            "n_epochs": 9,
            "billed_tokens": 9 * tone["tokens"]["total"],
            "estimated_cost_usd": 9 * tone["tokens"]["total"] * 3.0 / 1e6,
        },
    ]
    assert (repo / ".ftops" / "cache").is_dir()


def test_text_report_shows_stats_epochs_and_cost(repo: Path) -> None:
    write(
        repo / "specs" / "a.yaml",
        DATASETS
        + """
    models:
      bot:
        base: gpt-4o
        training: train
        validation: val
        hyperparameters: {n_epochs: 2}
        max_cost_usd: 10
    """,
    )
    report = validate(specs=Path("specs"))
    tokens = report.datasets[0].report.tokens
    result = run()
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "dataset train: data/train.jsonl (chat)"
    assert lines[1].startswith("  12 examples, ")
    assert lines[2] == (
        f"  tokens: min {tokens.min}, mean {tokens.mean:.1f}, max {tokens.max}, "
        f"total {tokens.total}"
    )
    assert lines[3] == "  errors: none"
    billed = 2 * tokens.total
    assert "model bot (base gpt-4o)" in lines
    assert (
        f"  2 epochs x {tokens.total} billable tokens = {billed} billed tokens, estimated "
        f"cost ${billed * 25 / 1e6:.2f} (budget $10.00)"  # >= $0.01: cents
    ) in lines
    assert lines[-1] == "Valid: 2 datasets, 1 model, no errors."


FLAT = textwrap.dedent(DATASETS).lstrip("\n")  # five lines
BAD_SPECS = [
    ("syntax", "models:\n  m:\n    base: x\n   training: y\n", 4, "invalid YAML: "),
    (
        "type",
        FLAT + "models:\n  m:\n    base: gpt-4o\n    training: train\n    seed: x\n",
        10,
        "models.m.seed: input should be a valid integer",
    ),
    (
        "duplicate",
        "base_models:\n  a: gpt-4o\n  a: gpt-4o-mini\n",
        3,
        "duplicate key 'a' (first defined at line 2)",
    ),
    (
        "escape",
        "datasets:\n  d:\n    path: ../../../x.jsonl\n",
        3,
        "datasets.d.path: '../../../x.jsonl' leaves the repository root",
    ),
    (
        "cycle",
        FLAT + "models:\n  a:\n    base: b\n    training: train\n  b:\n    base: a\n"
        "    training: train\n",
        8,
        "models.a.base: models form a cycle: a -> b -> a",
    ),
    (
        "unknown",
        FLAT + "models:\n  m:\n    base: gpt-4o\n    training: train\n    validaton: val\n",
        10,
        "models.m: unknown key 'validaton' (did you mean 'validation'?)",
    ),
    (
        "reference",
        FLAT + "models:\n  m:\n    base: gpt-4o\n    training: trainn\n",
        9,
        "models.m.training: no dataset named 'trainn' (did you mean 'train'?)",
    ),
]


@pytest.mark.parametrize(
    ("case", "text", "line", "message"), BAD_SPECS, ids=[c[0] for c in BAD_SPECS]
)
def test_bad_specs_fail_with_file_and_line(
    repo: Path, case: str, text: str, line: int, message: str
) -> None:
    write(repo / "specs" / "a.yaml", text)
    result = run()
    assert result.exit_code == 1
    assert f"specs/a.yaml:{line}: {message}" in result.output
    as_json = run("--json")
    assert as_json.exit_code == 1
    report = json.loads(as_json.output)
    assert report["ok"] is False
    first = report["errors"][0]
    assert (first["file"], first["line"]) == ("specs/a.yaml", line)
    assert first["message"].startswith(message)
    # a cycle is reported on each of its models; everything else exactly once
    assert len(report["errors"]) == (2 if case == "cycle" else 1)


def test_name_defined_in_two_files_and_every_problem_in_one_run(repo: Path) -> None:
    write(repo / "specs" / "a.yaml", DATASETS)
    write(
        repo / "specs" / "b.yaml",
        """
    datasets:
      train:
        path: ../data/train.jsonl
    models:
      m:
        base: gpt-4o
        training: val
        sufix: x
    """,
    )
    write(repo / "specs" / "c.yaml", "models: {n: {base: gpt-4o, training: nope}}\n")
    result = run()
    assert result.exit_code == 1
    assert result.output.splitlines()[:3] == [
        "specs/b.yaml:2: dataset 'train' is defined twice (specs/a.yaml:2 and specs/b.yaml:2)",
        "specs/b.yaml:8: models.m: unknown key 'sufix' (did you mean 'suffix'?)",
        "specs/c.yaml:1: models.n.training: no dataset named 'nope'",
    ]


def test_budget_guard_pricing_override_and_chained_root_price(repo: Path) -> None:
    text = (
        DATASETS
        + """
    models:
      parent:
        base: gpt-4o
        training: train
        hyperparameters: {n_epochs: 1}
        max_cost_usd: 0.000001
      child:
        base: parent
        training: val
        hyperparameters: {n_epochs: 2}
    """
    )
    write(repo / "specs" / "a.yaml", text)
    report = validate(specs=Path("specs"))
    train, val = (d.report for d in report.datasets)
    assert [
        (m.name, m.base, m.n_epochs, m.billed_tokens, m.estimated_cost_usd) for m in report.models
    ] == [
        ("parent", "gpt-4o", 1, train.billable_tokens, train.billable_tokens * 25 / 1e6),
        ("child", "gpt-4o", 2, 2 * val.billable_tokens, 2 * val.billable_tokens * 25 / 1e6),
    ]
    assert not report.ok
    assert [(e.path, e.line, e.code) for e in report.errors] == [
        ("specs/a.yaml", 12, "budget_exceeded")
    ]
    cost = train.billable_tokens * 25 / 1e6
    assert report.errors[0].message == (
        f"models.parent.max_cost_usd: estimated cost {format_usd(cost)} exceeds the budget "
        "$0.000001 "
        f"(1 epochs x {train.billable_tokens} tokens)"
    )
    assert run().exit_code == 1

    write(
        repo / "specs" / "a.yaml",
        text + "pricing:\n      gpt-4o-2024-08-06: {training_usd_per_1m: 0}\n",
    )
    report = validate(specs=Path("specs"))
    assert report.ok and [m.estimated_cost_usd for m in report.models] == [0.0, 0.0]
    assert run().exit_code == 0


def test_budget_needs_a_price_for_unknown_base_models(repo: Path) -> None:
    text = (
        DATASETS
        + """
    models:
      custom:
        base: my-lab-model
        training: train
        max_cost_usd: 1
    """
    )
    write(repo / "specs" / "a.yaml", text)
    report = validate(specs=Path("specs"))
    assert [(m.name, m.estimated_cost_usd) for m in report.models] == [("custom", None)]
    assert [(e.line, e.code) for e in report.errors] == [(11, "no_price")]
    write(
        repo / "specs" / "a.yaml",
        text + "pricing:\n      my-lab-model: {training_usd_per_1m: 1}\n",
    )
    report = validate(specs=Path("specs"))
    assert report.ok
    (model,) = report.models
    assert model.estimated_cost_usd == model.billed_tokens / 1e6


def test_overlapping_validation_and_eval_data_warn_without_failing(repo: Path) -> None:
    train = chat_lines(12, "train")
    write(repo / "data" / "val.jsonl", "\n".join([*chat_lines(9, "val"), train[4]]) + "\n")
    write(repo / "data" / "eval.jsonl", "\n".join([train[0], *chat_lines(9, "eval")]) + "\n")
    write(
        repo / "specs" / "a.yaml",
        DATASETS
        + """
      held:
        path: ../data/eval.jsonl
    models:
      m:
        base: gpt-4o
        training: train
        validation: val
        eval: q
    evals:
      q: {dataset: held, checks: [exact_match]}
    """,
    )
    result = run("--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    warnings = {d["name"]: d["warnings"] for d in report["datasets"]}
    assert warnings["train"] == []
    assert [(w["line"], w["code"]) for w in warnings["val"]] == [(10, "train_validation_overlap")]
    assert [(w["line"], w["code"]) for w in warnings["held"]] == [(1, "train_validation_overlap")]
    text = run().output
    assert "data/val.jsonl:10: train_validation_overlap: same example as line 5" in text

    # --max-errors also caps the overlap warnings listed; one more line counts the rest.
    write(repo / "data" / "val.jsonl", "\n".join([*chat_lines(8, "val"), *train[4:6]]) + "\n")
    capped = json.loads(run("--json", "--max-errors", "1").output)
    val = next(d for d in capped["datasets"] if d["name"] == "val")
    assert [(w["line"], w["code"], w["message"]) for w in val["warnings"]] == [
        (9, "train_validation_overlap",
         "same example as line 5 of train.jsonl; validation data should be held out"),
        (0, "train_validation_overlap", "1 more example(s) also appear in train.jsonl"),
    ]


def test_dataset_errors_stay_in_their_dataset(repo: Path) -> None:
    lines = chat_lines(12, "train")
    lines[2] = "{not json"
    lines[6] = json.dumps({"messages": [{"role": "user", "content": "no answer"}]})
    write(repo / "data" / "train.jsonl", "\n".join(lines) + "\n")
    write(repo / "specs" / "a.yaml", DATASETS)
    result = run("--json", "--max-errors", "1")
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["errors"] == []
    train = report["datasets"][0]
    assert train["error_count"] == 2
    assert [(e["line"], e["code"]) for e in train["errors"]] == [(3, "invalid_json")]
    text = run("--max-errors", "1").output
    assert "    data/train.jsonl:3: invalid_json: " in text
    assert "    ... and 1 more (raise --max-errors to see them)" in text
    assert (
        text.splitlines()[-1] == "Invalid: 0 spec errors, 2 dataset errors (2 datasets, 0 models)."
    )


def test_a_jsonl_file_alone_uses_format_and_model(repo: Path) -> None:
    long = {
        "messages": [
            {"role": "user", "content": "word " * 20000},
            {"role": "assistant", "content": "ok"},
        ]
    }
    path = write(repo / "long.jsonl", "\n".join([json.dumps(long), *chat_lines(9, "x")]) + "\n")
    small = validate([path], model="gpt-4o-mini-2024-07-18", cache_dir=repo / "cache")
    old = validate([path], model="gpt-3.5-turbo-0125", cache_dir=repo / "cache")
    (small_result,), (old_result,) = small.datasets, old.datasets
    assert small.ok and old.ok and small.models == old.models == ()
    assert small_result.warnings == ()
    assert [(w.line, w.code) for w in old_result.warnings] == [(1, "example_too_long")]
    assert old_result.report.billable_tokens < small_result.report.billable_tokens

    result = run("long.jsonl", "--model", "gpt-3.5-turbo-0125", "--json")
    assert result.exit_code == 0
    report = json.loads(result.output)
    assert (report["datasets"][0]["name"], report["datasets"][0]["path"]) == (
        "long.jsonl",
        "long.jsonl",
    )
    billable = old_result.report.billable_tokens
    encoding = get_encoding("cl100k_base")
    short = sum(  # the cookbook's count of the 9 short examples
        3 + sum(3 + sum(len(encoding.encode(v)) for v in m.values()) for m in example["messages"])
        for example in map(json.loads, chat_lines(9, "x"))
    )
    assert billable == short + 16_385  # the long example is cut at gpt-3.5-turbo's limit
    # 10 examples: 10 * 3 < 100, so 100 // 10 = 10 epochs; gpt-3.5-turbo trains at $8 per 1M.
    assert report["models"] == [
        {
            "name": "long.jsonl",
            "base": "gpt-3.5-turbo-0125",
            "n_epochs": 10,
            "billed_tokens": 10 * billable,
            "estimated_cost_usd": 10 * billable * 8 / 1e6,
        }
    ]
    text = run("long.jsonl").output
    assert text.splitlines()[0] == "dataset long.jsonl (chat)"
    assert any(
        line.startswith("  on gpt-4o-mini-2024-07-18: 10 epochs x ") for line in text.splitlines()
    )

    as_preference = run("long.jsonl", "--format", "preference")
    assert as_preference.exit_code == 1
    assert "long.jsonl:1: " in as_preference.output

    unknown = run("long.jsonl", "--model", "gpt-9")
    assert unknown.exit_code == 1
    assert "unknown model 'gpt-9' for --model" in unknown.output


def test_missing_paths_are_errors_not_tracebacks(repo: Path) -> None:
    result = run("nope.jsonl", "--json")
    assert result.exit_code == 1
    assert json.loads(result.output)["errors"] == [
        {"file": "nope.jsonl", "line": None, "code": "file_not_found", "message": "no such file"}
    ]
    result = run("--specs", "missing")
    assert result.exit_code == 1
    assert "missing: no such file or directory" in result.output
    write(repo / "specs" / "bin.yaml", "")
    (repo / "specs" / "bin.yaml").write_bytes(b"\xff\xfe\x00bad")
    result = run()
    assert result.exit_code == 1
    assert "specs/bin.yaml: cannot read the file: " in result.output
    long = "a" * 300  # the OS refuses such a name: still one line, not a traceback
    for args in ([f"{long}.jsonl"], ["--specs", long]):
        result = run(*args)
        assert result.exit_code == 1
        assert f"{args[-1]}: unusable path: File name too long" in result.output


def test_spec_paths_as_arguments_replace_the_default(repo: Path) -> None:
    write(repo / "specs" / "broken.yaml", "models: [\n")
    write(repo / "other" / "ok.yaml", DATASETS)
    assert run("other/ok.yaml").exit_code == 0
    assert run("other").exit_code == 0
    assert run().exit_code == 1
    both = run("other", "data/val.jsonl", "--json")
    assert [d["name"] for d in json.loads(both.output)["datasets"]] == [
        "data/val.jsonl",
        "train",
        "val",
    ]


def test_schema_command_prints_the_repository_schema() -> None:
    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0
    assert result.output == (REPO / spec.SCHEMA_PATH).read_text(encoding="utf-8")
    assert json.loads(result.output)["title"] == "ftops spec"


def test_pre_commit_hook_runs_validate() -> None:
    hooks: list[dict[str, Any]] = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    (hook,) = hooks
    assert (hook["id"], hook["entry"], hook["language"], hook["pass_filenames"]) == (
        "ftops-validate",
        "ftops validate",
        "python",
        False,
    )
    pattern = re.compile(hook["files"])
    assert all(pattern.search(p) for p in ("specs/a.yaml", "x.yml", "data/t.jsonl"))
    assert not any(pattern.search(p) for p in ("README.md", "a.json", "yaml.py"))
