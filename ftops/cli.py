"""The command line: parse options into one ``commands.<name>`` options object, call its
``run``, render the result and map it to an exit code. Failures are ``ftops.handler``'s."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from ftops import __version__
from ftops.errors import ExitCode, FtopsError
from ftops.handler import report

_F = TypeVar("_F", bound=Callable[..., Any])  # a command's function, under its decorators


class _Group(click.Group):
    """The one error handler: every failure becomes a short message on stderr and an exit code
    that means one thing (see ExitCode), never a traceback on the terminal."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **extra: Any) -> Any:
        if not standalone_mode:  # the caller handles errors itself: click's behaviour, as is
            return super().main(args, prog_name, complete_var, standalone_mode=False,
                                windows_expand_args=windows_expand_args, **extra)
        # click's standalone mode would exit 2 on usage errors, but 2 means "changes pending"
        # for `plan --detailed-exitcode`; so run click non-standalone and map every outcome
        # here. SystemExit (a command's own exit code) is not caught: it passes through.
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False,
                              windows_expand_args=windows_expand_args, **extra)
        except (Exception, KeyboardInterrupt) as exc:
            # Chained, so an in-process caller (CliRunner) can still reach the original.
            raise SystemExit(int(report(exc))) from exc
        # Non-standalone, click returns the code of a click Exit (--help, --version, or
        # ctx.exit) or else the command's return value, which no ftops command uses.
        sys.exit(rv if isinstance(rv, int) else int(ExitCode.OK))


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="ftops")
def main() -> None:
    """GitOps for OpenAI fine-tuning: validate, plan and apply fine-tuning specs kept in git."""


_specs_option = click.option("--specs", "specs_dir", default="specs", show_default=True,
                             type=click.Path(path_type=Path), help="Spec directory or file.")


@main.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@_specs_option
@click.option("--format", "fmt", default="chat", show_default=True,
              type=click.Choice(["chat", "preference", "reinforcement"]),
              help="Format of .jsonl files given as PATH.")
@click.option("--model", default="gpt-4o-mini-2024-07-18", show_default=True,
              help="Base model whose encoding, token limit and price apply to .jsonl PATHs.")
@click.option("--max-errors", default=50, show_default=True, type=click.IntRange(min=1),
              help="Errors listed per dataset.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def validate_command(
    paths: tuple[Path, ...], specs_dir: Path, fmt: str, model: str, max_errors: int, as_json: bool
) -> None:
    """Check specs and datasets: every problem with file:line, token counts, cost, budgets.

    Each PATH is a .jsonl dataset (checked alone) or a spec file or directory.
    """
    from ftops.commands import validate
    from ftops.render import progress

    with progress.shown(sys.stderr, as_json=as_json):  # big files: a bar on a terminal
        result = validate.run(validate.ValidateOptions(paths, specs_dir, fmt, model, max_errors))
    click.echo(result.to_json() if as_json else result.to_text())
    sys.exit(ExitCode.OK if result.ok else ExitCode.ERROR)


@main.command("schema")
def schema_command() -> None:
    """Print the JSON Schema of spec files (for editors: see schema/ftops.schema.json)."""
    from ftops.commands import schema

    click.echo(schema.run(), nl=False)


@main.command("emulator")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0 picks a free one).")
@click.option("--state", "state_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Keep the account's state in this file (and blobs beside it) across restarts.")
@click.option("--job-seconds", default=5.0, show_default=True, type=click.FloatRange(min=0),
              help="Seconds from job creation to its terminal state (0: on the next read).")
@click.option("--fault-rate", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="Share of API requests that fail with an injected fault.")
@click.option("--faults", default="429,500,503,drop,500-after-create", show_default=True,
              help="Comma-separated fault modes to draw from.")
@click.option("--retry-after", default=1.0, show_default=True, type=click.FloatRange(min=0),
              metavar="SECONDS", help="Retry-After of injected 429/503; 0: SDKs retry at once.")
@click.option("--latency-ms", default=0.0, show_default=True, type=click.FloatRange(min=0),
              help="Delay added to every API request.")
@click.option("--seed", default=0, show_default=True, type=int,
              help="Seed for ids and faults: the same requests see the same faults.")
@click.option("--flavor", default="openai", show_default=True,
              type=click.Choice(["openai", "azure", "nebius", "together", "fireworks"]),
              help="API dialect: that provider's API (azure: /openai with api-version).")
@click.option("--no-metadata-filter", is_flag=True, help="Refuse job listings' metadata filter.")
@click.option("--log-size", default=10_000, show_default=True, type=click.IntRange(min=0),
              help="Latest requests kept by /_emulator/requests (/_emulator/stats counts all).")
@click.option("--drop-metadata", is_flag=True, help="Accept job metadata, never keep it.")
def emulator_command(no_metadata_filter: bool, **options: Any) -> None:
    """Serve an OpenAI-compatible fine-tuning API locally until interrupted."""
    from ftops.commands import emulator

    # The remaining options are named as EmulatorOptions' fields.
    emulator.run(emulator.EmulatorOptions(**options, metadata_filter=not no_metadata_filter),
                 echo=click.echo)


_emulator_option = click.option("--emulator", is_flag=True,
                                help="Use the embedded emulator (state under .ftops/), no key.")
_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
_prune_options = [
    click.option("--prune", is_flag=True,
                 help="Also cancel and delete what ftops made that is no longer declared."),
    click.option("--allow-delete-models", is_flag=True,
                 help="With --prune: also delete fine-tuned models no longer declared."),
]


def _with(options: Sequence[Callable[[_F], _F]]) -> Callable[[_F], _F]:
    def decorate(fn: _F) -> _F:
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


@main.command("plan")
@_specs_option
@_emulator_option
@_json_option
@_with(_prune_options)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Save the plan here for `ftops apply PLAN`.")
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 0 when nothing changes, 2 when changes are pending, 1 on error.")
@click.option("--comment", is_flag=True, help="In GitHub Actions: post or edit the PR comment.")
@click.option("--check", is_flag=True, help="In GitHub Actions: write the `ftops plan` check.")
@click.option("-v", "--verbose", is_flag=True, help="Also show all each job is created with.")
def plan_command(specs_dir: Path, as_json: bool, detailed_exitcode: bool,
                 **options: Any) -> None:
    """Show what apply would change. Makes no change to the account."""
    from ftops import render
    from ftops.commands import plan

    # The remaining options are named as PlanOptions' fields.
    run = plan.run(plan.PlanOptions(specs=specs_dir, **options))
    if run.plan is None:
        assert run.validation is not None
        click.echo("Pull request from a fork without OPENAI_API_KEY: the account cannot be "
                   "read; validated offline instead.")
        click.echo(run.validation.to_text(), nl=False)
        sys.exit(0 if run.validation.ok else 1)
    result = run.plan
    click.echo(render.render_json(result) if as_json else render.render_text(result), nl=False)
    if run.details and not as_json:
        click.echo("\n" + run.details, nl=False)
    if run.comment is not None:
        click.echo(f"Plan comment {'posted' if run.comment.created else 'updated'}: "
                   f"{run.comment.url}")
    if run.check is not None and run.check.warning:
        click.echo(f"Warning: {run.check.warning}", err=True)
    elif run.check is not None:
        click.echo(f"Check run `ftops plan` {'created' if run.check.created else 'updated'}")
    if result.errors:
        sys.exit(ExitCode.ERROR)
    if detailed_exitcode and result.needs_attention:  # changes, or a retired model
        sys.exit(ExitCode.CHANGES)


@main.command("apply")
@click.argument("plan_file", required=False, type=click.Path(exists=True, dir_okay=False,
                                                             path_type=Path))
@_specs_option
@_emulator_option
@_with(_prune_options)
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation.")
@click.option("--wait", is_flag=True, help="Follow jobs until they end; train chains.")
@click.option("--timeout", type=click.FloatRange(min=0), help="Seconds --wait may take.")
@click.option("--parallel", default=4, show_default=True, type=click.IntRange(min=1),
              help="Requests in flight at once, all counted: reads of the account, uploads "
                   "and their parts, job creations, looks and polls.")
@click.option("--allow-dirty", is_flag=True, help="Apply even with uncommitted specs or data.")
@click.option("--commit-lock", is_flag=True, help="Commit the updated ftops.lock (git).")
@click.option("--allow-plan-changed", is_flag=True,
              help="In GitHub Actions: apply even if the plan differs from the reviewed one.")
def apply_command(specs_dir: Path, auto_approve: bool, **options: Any) -> None:
    """Upload missing datasets and start jobs; safe to re-run. PLAN_FILE: a saved plan."""
    from ftops import stop
    from ftops.commands import apply
    from ftops.project import LOCK_FILE
    from ftops.render import progress

    # SIGINT/SIGTERM: stop starting work, settle, write the lock, 130/143; big files read or
    # uploaded show a bar on a terminal.
    with stop.handling(), progress.shown(sys.stderr):
        # The remaining options are named as ApplyOptions' fields.
        run = apply.run(apply.ApplyOptions(
            specs=specs_dir, auto_approve=auto_approve, **options,
            # As in Terraform, a plan with nothing to change needs no approval.
            confirm=lambda plan: _confirm(auto_approve) if plan.has_changes else None,
            report=click.echo))
    outcome = run.outcome
    for line in outcome.deduplicated:
        click.echo(f"removed duplicate {line}")
    for line in outcome.deployed:
        click.echo(line)
    for name, reason in sorted(outcome.deferred.items()):
        click.echo(f"model {name}: not started: {reason}")
    for name, error in sorted(outcome.failed.items()):
        click.echo(f"model {name}: FAILED: {error}", err=True)
    click.echo(f"Apply complete: {len(outcome.uploaded)} uploaded, {len(outcome.started)} "
               f"started, {len(outcome.pruned)} pruned. Lock: {LOCK_FILE}")
    for name, entry in sorted(run.lock.models.items()):
        if entry.fine_tuned_model:
            click.echo(f"  {name}: {entry.fine_tuned_model}")
    for alias, entry in sorted(run.lock.aliases.items()):
        click.echo(f"  alias {alias}: {entry.get('model_id') if isinstance(entry, dict) else '-'}")
    if run.lock_commit:
        click.echo(f"Committed {LOCK_FILE} as {run.lock_commit[:12]}")
    if not outcome.ok or not all(r.passed for r in run.eval_results):
        sys.exit(ExitCode.ERROR)


def _confirm(auto_approve: bool) -> None:
    if auto_approve:
        return
    if not sys.stdin.isatty():
        raise FtopsError("apply needs confirmation: not on a terminal",
                         hint="review the plan and pass --auto-approve")
    if not click.confirm("Apply these changes?", default=False):
        raise FtopsError("apply cancelled; nothing was changed")


@main.command("status")
@_specs_option
@_emulator_option
@_json_option
@click.option("--markdown", is_flag=True,
              help="Print markdown: a table and each trained model's loss chart.")
def status_command(specs_dir: Path, emulator: bool, as_json: bool, markdown: bool) -> None:
    """Each declared model's state, job and model id; updates ftops.lock."""
    import json

    from ftops.commands import status

    run = status.run(status.StatusOptions(specs=specs_dir, emulator=emulator, markdown=markdown))
    if as_json:
        click.echo(json.dumps({"models": run.rows, "as_of": run.as_of or None,
                               "warnings": [w.to_dict() for w in run.warnings]},
                              indent=2, sort_keys=True))
        return
    if markdown:
        click.echo(run.markdown, nl=False)
        return
    click.echo(status.status_text(run), nl=False)


@main.command("wait")
@click.argument("names", nargs=-1)
@_specs_option
@_emulator_option
@click.option("--timeout", type=click.FloatRange(min=0), help="Give up after this many seconds.")
@click.option("--all", "all_events", is_flag=True, help="Print every event, also earlier ones.")
def wait_command(names: tuple[str, ...], specs_dir: Path, emulator: bool,
                 timeout: float | None, all_events: bool) -> None:
    """Follow the named models' jobs (all by default) until they end."""
    from ftops import stop
    from ftops.commands import wait

    with stop.handling():
        run = wait.run(wait.WaitOptions(names=names, specs=specs_dir, emulator=emulator,
                                        timeout=timeout, report=click.echo,
                                        all_events=all_events))
    for name, job in run.jobs.items():
        click.echo(f"{name}: {job.status} {job.fine_tuned_model or ''}".rstrip())
    if not run.ok:
        sys.exit(ExitCode.ERROR)


@main.command("eval")
@click.argument("names", nargs=-1)
@_specs_option
@_emulator_option
@_json_option
@click.option("--parallel", default=4, show_default=True, type=click.IntRange(min=1),
              help="Chat requests at once.")
def eval_command(names: tuple[str, ...], specs_dir: Path, emulator: bool, as_json: bool,
                 parallel: int) -> None:
    """Run the named models' evals (all by default); exit 1 when a gate fails."""
    from ftops import evals, stop
    from ftops.commands import eval as eval_

    with stop.handling():
        results = eval_.run(eval_.EvalOptions(names=names, specs=specs_dir, emulator=emulator,
                                              parallel=parallel,
                                              report=lambda line: click.echo(line, err=True)))
    click.echo(evals.results_json(results) if as_json else evals.results_text(results), nl=False)
    if not all(r.passed for r in results):
        sys.exit(ExitCode.ERROR)


@main.command("export")
@click.argument("names", nargs=-1)
@_specs_option
@_emulator_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Bundle directory (default: ftops-export/ at the repository root).")
def export_command(names: tuple[str, ...], specs_dir: Path, emulator: bool,
                   out: Path | None) -> None:
    """Write a self-contained bundle per trained model (all by default): datasets by hash, a
    spec reproducing its fingerprint, the job's configuration and metrics, its lock entry."""
    from ftops.commands import export

    run = export.run(export.ExportOptions(names=names, specs=specs_dir, out=out,
                                          emulator=emulator))
    for name, folder in sorted(run.bundles.items()):
        click.echo(f"exported {name} to {folder}")
    for name, reason in sorted(run.skipped.items()):
        click.echo(f"skipped {name}: {reason}")
    if names and run.skipped:
        sys.exit(ExitCode.ERROR)


@main.command("import")
@click.argument("job_ids", nargs=-1, required=True)
@_specs_option
@_emulator_option
@click.option("--name", "names", multiple=True, help="Model name for each job, in order.")
@click.option("--provider", default="openai", show_default=True, help="The jobs' providers entry.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Spec file to write (default: imported.yaml in the spec directory).")
def import_command(job_ids: tuple[str, ...], specs_dir: Path, emulator: bool,
                   names: tuple[str, ...], provider: str, out: Path | None) -> None:
    """Adopt jobs ftops did not create (by id): download their files and write spec entries
    whose plan is `ok`, without retraining."""
    from ftops.commands import import_

    run = import_.run(import_.ImportOptions(job_ids=job_ids, names=names, specs=specs_dir,
                                            provider=provider, out=out, emulator=emulator))
    for name, job_id in sorted(run.models.items()):
        click.echo(f"adopted {job_id} as model {name}")
    click.echo(f"wrote {run.spec_file}; review and commit it with its datasets")


@main.command("migrate")
@click.argument("models", nargs=-1, required=True)
@_specs_option
@click.option("--to", required=True, help="The providers entry (or provider type) to move to.")
@click.option("--base", required=True, help="The base model there (one the catalog lists).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="New spec file.")
@click.option("--eval", help="Eval (or chat dataset) to compare on with the original.")
@click.option("--name", help="The successor's name (with one MODEL).")
@click.option("--dry-run", is_flag=True, help="Print the file instead of writing it.")
def migrate_command(models: tuple[str, ...], specs_dir: Path, **options: Any) -> None:
    """Write successors of MODELs elsewhere into a NEW spec file, each gated by an eval."""
    from ftops.commands import migrate

    run = migrate.run(migrate.MigrateOptions(models, specs=specs_dir, **options))
    click.echo(run.to_text(), nl=False)


@main.command("demo")
@click.option("--job-seconds", default=1.0, show_default=True, type=click.FloatRange(min=0),
              help="How long each fine-tuning job takes on the emulator.")
@click.option("--specs", "specs_dir", type=click.Path(path_type=Path),
              help="Spec directory to try [default: ./specs, else the demo specs ftops ships].")
def demo_command(job_seconds: float, specs_dir: Path | None) -> None:
    """Try ftops with no API key: validate, plan and apply the demo specs on the emulator."""
    from ftops.commands import demo

    demo.run(demo.DemoOptions(specs=specs_dir, job_seconds=job_seconds, echo=click.echo))


@main.command("init")
@click.argument("directory", required=False, default=".",
                type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite files that exist (not .gitignore).")
def init_command(directory: Path, force: bool) -> None:
    """Start an ftops project in DIRECTORY (default: here): example specs and dataset, the JSON
    Schema, three GitHub workflows, a pre-commit hook, .ftops/ in .gitignore. Runs `git init`
    if DIRECTORY is in no repository; never overwrites a file without --force."""
    from ftops.commands import init

    click.echo(init.run(init.InitOptions(directory=directory, force=force)).to_text(), nl=False)
