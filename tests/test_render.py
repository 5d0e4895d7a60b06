from __future__ import annotations

import datetime as dt
import hashlib

from ftops.errors import Diagnostic
from ftops.identity import dataset_filename, fingerprints
from ftops.plan import (
    Action,
    ActionType,
    Change,
    DatasetRef,
    Display,
    Kind,
    Plan,
    Training,
    Upload,
)
from ftops.planner import plan
from ftops.render import render_json, render_markdown, render_text
from ftops.state import Actual, Desired, DesiredDataset, Job, JobError, ResolvedModel

SHA_A = hashlib.sha256(b"a").hexdigest()
SHA_B = hashlib.sha256(b"b").hexdigest()


def _training(fingerprint: str, base: str | None, parent: str | None = None) -> Training:
    return Training(fingerprint=fingerprint, base=base, parent=parent,
                    training=DatasetRef("support", SHA_A, None), validation=None,
                    method="supervised", hyperparameters={"n_epochs": 3}, suffix=None, seed=None,
                    metadata={"ftops_model": "x"})


def sample_plan() -> Plan:
    upload = Upload(path="data/support.jsonl", sha256=SHA_A, size=1_234_567,
                    filename=dataset_filename(SHA_A), datasets=("support", "support-copy"))
    actions = (
        Action(ActionType.UPLOAD, Kind.DATASET, "support", upload=upload),
        Action(ActionType.TRAIN, Kind.MODEL, "bot", depends_on=("dataset.support",),
               training=_training("1" * 64, "gpt-4o-mini-2024-07-18"),
               display=Display(cost_usd=1.5)),
        Action(ActionType.REPLACE, Kind.MODEL, "classifier", job_id="ftjob-7",
               training=_training("2" * 64, "gpt-4.1-nano-2025-04-14"),
               changes=(Change("hyperparameters.n_epochs", 2, 3),
                        Change("training", SHA_B, SHA_A)),
               display=Display(cost_usd=4.0, note="replaces job ftjob-7")),
        Action(ActionType.RETRY, Kind.MODEL, "flaky", job_id="ftjob-8",
               training=_training("3" * 64, "gpt-4.1-nano-2025-04-14"),
               display=Display(status="failed", error="invalid_file: row 3 | col 2")),
        Action(ActionType.OK, Kind.MODEL, "done", job_id="ftjob-1",
               display=Display(status="succeeded", model_id="ft:gpt-4o-mini:acme:done:1")),
        Action(ActionType.PENDING, Kind.MODEL, "busy", job_id="ftjob-2",
               display=Display(status="running")),
        Action(ActionType.BLOCKED, Kind.MODEL, "child", depends_on=("model.bot",),
               training=_training("4" * 64, None, "bot"),
               display=Display(cost_usd=0.25, note="waits for model.bot (train)")),
        Action(ActionType.CANCEL, Kind.JOB, "ftjob-3", job_id="ftjob-3",
               display=Display(status="queued", note="model old is no longer declared")),
        Action(ActionType.DELETE, Kind.FILE, "file-9",
               display=Display(note="dataset file ftops-3e23e8160039… is not used by any "
                               "declared model")),
    )
    return Plan(
        actions=actions,
        warnings=(Diagnostic("warning", "provider_closing",
                             "stops accepting new fine-tuning jobs on 2027-01-06 (in 42 days)",
                             subject="provider.openai"),),
    )


def test_text_reads_like_terraform() -> None:
    assert render_text(sample_plan()) == """\
  + upload   dataset.support   sha256 ca978112ca1b, 1.2 MB; also support-copy
  + train    model.bot         from gpt-4o-mini-2024-07-18; est. $1.50
  ~ replace  model.classifier  replaces job ftjob-7; est. $4.00
      hyperparameters.n_epochs: 2 -> 3
      training: 3e23e8160039 -> ca978112ca1b
  ~ retry    model.flaky       job ftjob-8 failed: invalid_file: row 3 | col 2; cost unknown
  = ok       model.done        ft:gpt-4o-mini:acme:done:1
  * pending  model.busy        running (ftjob-2)
  # blocked  model.child       waits for model.bot (train); est. $0.25
  - cancel   job.ftjob-3       model old is no longer declared
  - delete   file.file-9       dataset file ftops-3e23e8160039… is not used by any declared model

Warnings:
  ! provider.openai: stops accepting new fine-tuning jobs on 2027-01-06 (in 42 days)

Plan: 1 to upload, 1 to train, 1 to replace, 1 to delete, 1 to retry, 1 to cancel, 1 blocked. \
Estimated cost: $5.75 + unknown.
"""


def test_text_without_changes_and_with_errors() -> None:
    quiet = Plan(actions=(Action(ActionType.OK, Kind.MODEL, "done",
                                 display=Display(model_id="ft:x")),))
    assert render_text(quiet) == (
        "  = ok       model.done  ft:x\n\nNo changes. The account matches the specs.\n")
    failing = Plan(actions=(), errors=(
        Diagnostic("error", "over_budget", "too expensive", subject="model.bot"),))
    assert render_text(failing) == (
        "Errors:\n  x model.bot: too expensive\n\n"
        "No changes. The account matches the specs.\n"
        "The plan has 1 error(s); apply will refuse it.\n")


def test_markdown_for_pull_requests() -> None:
    p = sample_plan()
    md = render_markdown(p)
    lines = md.splitlines()
    assert lines[0] == "#### ftops plan"
    assert lines[2] == ("**Plan: 1 to upload, 1 to train, 1 to replace, 1 to delete, 1 to retry, "
                        "1 to cancel, 1 blocked** · estimated cost **$5.75 + unknown**")
    assert "| ➕ | upload | `dataset.support` | sha256 ca978112ca1b, 1.2 MB; also support-copy |" \
        in lines
    # A pipe in an API error must not split the table row.
    assert ("| 🔁 | retry | `model.flaky` | job ftjob-8 failed: invalid_file: row 3 \\| col 2; "
            "cost unknown |") in lines
    assert "| ✅ | ok | `model.done` | ft:gpt-4o-mini:acme:done:1 |" in lines
    assert ("<details><summary><code>model.classifier</code> (replace): the job it creates; "
            "2 field(s) differ</summary>") in lines
    assert "| `hyperparameters.n_epochs` | `2` | `3` |" in lines
    assert "| `training` | `3e23e8160039` | `ca978112ca1b` |" in lines
    assert ("- ⚠️ `provider.openai`: stops accepting new fine-tuning jobs on 2027-01-06 "
            "(in 42 days)") in lines
    assert lines[-1] == f"<sub>plan_hash <code>{p.plan_hash}</code></sub>"
    assert "Errors" not in md


def test_markdown_escapes_html_and_says_when_apply_will_refuse() -> None:
    p = Plan(actions=(), errors=(
        Diagnostic("error", "x", "<script>alert(1)</script>", subject="model.a"),))
    md = render_markdown(p)
    assert "<script>" not in md
    assert "- ❌ `model.a`: &lt;script&gt;alert(1)&lt;/script&gt;" in md.splitlines()
    assert "**1 error(s): apply will refuse this plan.**" in md
    assert "**No changes.** The account matches the specs." in md


def test_rendered_plans_never_carry_keys() -> None:
    key = "sk-proj-" + "A1b2C3d4" * 6
    d = Desired(datasets=(DesiredDataset("t", "t.jsonl", SHA_A, 10),),
                models=(ResolvedModel("bot", training="t", base_model="gpt-4.1-nano-2025-04-14"),))
    failed = Job("ftjob-1", "failed", "gpt-4.1-nano-2025-04-14", "file-1", 1,
                 error=JobError("auth", f"Incorrect API key provided: {key}"),
                 metadata={"ftops_model": "bot",
                           "ftops_fingerprint": fingerprints(d)["bot"]})
    p = plan(d, Actual(jobs=(failed,)), today=dt.date(2026, 6, 1))
    for text in (render_text(p), render_markdown(p), render_json(p)):
        assert key not in text
        assert "sk-***" in text


def test_json_view_is_the_plan_document() -> None:
    p = sample_plan()
    assert render_json(p) == p.to_json()
    assert Plan.from_json(render_json(p)) == p
