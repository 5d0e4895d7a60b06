"""Fine-tuning job endpoints and the settling of jobs that reached their terminal state.

What a create request may contain is checked in ``jobspec``; how a job progresses is ``timeline``.
"""

from __future__ import annotations

import heapq
from dataclasses import replace

from werkzeug.wrappers import Request

from ftops.emulator import jobspec, timeline
from ftops.emulator.chat import training_blob
from ftops.emulator.common import ApiError, Ctx, Reply, invalid, page_after, query_limit
from ftops.emulator.files import add_file
from ftops.emulator.store import JobRec, ModelRec, Store


# settling --------------------------------------------------------------------------------------
def schedule(store: Store, job: JobRec) -> None:
    when = timeline.due(job)
    if when is not None:
        heapq.heappush(store.due, (when, job.id))


def settle(ctx: Ctx) -> None:
    """Finalises every job whose terminal time has passed: model, result file, counters."""
    while ctx.store.due and ctx.store.due[0][0] <= ctx.now:
        _, job_id = heapq.heappop(ctx.store.due)
        job = ctx.store.jobs[job_id]
        when = timeline.due(job)
        if when is None or when > ctx.now:  # stale entry: the job was paused or cancelled
            continue
        if job.failure:
            ctx.store.put_job(replace(job, final_status="failed", finished_at=int(when)))
            continue
        results = add_file(
            replace(ctx, now=when),
            chunks=iter([timeline.results_csv(job)]),
            filename="step_metrics.csv",
            purpose="fine-tune-results",
        )
        model_id = timeline.fine_tuned_model_id(job)
        ctx.store.put_model(ModelRec(model_id, int(when), job.organization_id))
        finished = replace(
            job,
            final_status="succeeded",
            finished_at=int(when),
            fine_tuned_model=model_id,
            trained_tokens=job.tokens_per_epoch * int(job.resolved["n_epochs"]),
            result_files=(results.id,),
        )
        ctx.store.put_job(finished)


# create ----------------------------------------------------------------------------------------
def create_job(ctx: Ctx, request: Request) -> Reply:
    checked = jobspec.parse(ctx, request)
    # Azure's job id is 32 hex digits, and its fine-tuned model reuses them (``azure_jobs``).
    key = ctx.store.new_hex() if checked.training_type else None
    job = JobRec(
        id=f"ftjob-{key}" if key else ctx.store.new_id("ftjob-"),
        created_at=ctx.now,
        duration=ctx.job_seconds,
        model=checked.model,
        root_model=checked.root_model,
        model_key=key or ctx.store.new_id("", 8),
        organization_id=ctx.org_id,
        org_slug=ctx.org_slug,
        training_file=checked.training_file,
        validation_file=checked.validation_file,
        method_type=checked.method_type,
        hyperparameters=checked.hyperparameters,
        resolved=timeline.resolve_hyperparameters(
            checked.hyperparameters, checked.method_type, checked.examples
        ),
        grader=checked.grader,
        suffix=checked.suffix,
        seed=checked.seed,
        metadata=checked.metadata,
        integrations=checked.integrations,
        examples=checked.examples,
        # What the service bills per epoch, counted as ``ftops validate`` estimates it.
        tokens_per_epoch=timeline.billable_tokens(
            ctx.store.blob_path(checked.training_file), checked.method_type, checked.root_model
        ),
        failure=checked.failure,
        training_type=checked.training_type,
    )
    ctx.store.put_job(job)
    ctx.store.keep_blob(checked.training_file, training_blob(job.id))
    schedule(ctx.store, job)
    return Reply(timeline.job_json(job, ctx.now, initial=True))


# read ------------------------------------------------------------------------------------------
def _job(ctx: Ctx, job_id: str) -> JobRec:
    job = ctx.store.jobs.get(job_id)
    if job is None:
        raise ApiError(
            404,
            f"Could not find fine-tuning job: {job_id}",
            param="fine_tuning_job_id",
            code="fine_tuning_job_not_found",
        )
    return job


def _metadata_filter(request: Request) -> dict[str, str] | None:
    """``metadata[k]=v`` pairs; an empty dict means ``metadata=null`` (jobs without metadata)."""
    pairs = {
        key[len("metadata[") : -1]: value
        for key, value in request.args.items()
        if key.startswith("metadata[") and key.endswith("]")
    }
    plain = request.args.get("metadata")
    if plain is not None and (plain != "null" or pairs):
        raise invalid(
            "Invalid 'metadata' filter: use metadata[key]=value pairs, or metadata=null alone.",
            "metadata",
        )
    if plain == "null":
        return {}
    return pairs or None


def list_jobs(ctx: Ctx, request: Request) -> Reply:
    limit = query_limit(request, 20, 100)
    if not ctx.metadata_filter and any(k.startswith("metadata") for k in request.args):
        raise invalid("Unrecognized request argument supplied: metadata", "metadata")
    wanted = _metadata_filter(request)
    after = request.args.get("after")
    order = ctx.store.job_order
    position = len(order)
    if after:
        if after not in ctx.store.job_index:
            raise invalid(f"Invalid 'after': no fine-tuning job with id '{after}'.", "after")
        position = ctx.store.job_index[after]
    found: list[JobRec] = []
    # Newest first: walk back from the cursor and stop one past the page to learn has_more.
    for index in range(position - 1, -1, -1):
        job = ctx.store.jobs[order[index]]
        if wanted is not None:
            metadata = job.metadata or {}
            # All wanted pairs present; or, for metadata=null (empty filter), no metadata.
            if not (metadata.items() >= wanted.items() if wanted else not metadata):
                continue
        found.append(job)
        if len(found) > limit:
            break
    return Reply(
        {
            "object": "list",
            "data": [timeline.job_json(j, ctx.now) for j in found[:limit]],
            "has_more": len(found) > limit,
        }
    )


def retrieve_job(ctx: Ctx, request: Request, job_id: str) -> Reply:
    return Reply(timeline.job_json(_job(ctx, job_id), ctx.now))


def list_events(ctx: Ctx, request: Request, job_id: str) -> Reply:
    job = _job(ctx, job_id)
    limit = query_limit(request, 20, 100)
    newest_first = [timeline.event_json(job, e) for e in reversed(timeline.events(job, ctx.now))]
    data, more = page_after(newest_first, lambda e: e["id"], request.args.get("after"), limit)
    return Reply({"object": "list", "data": data, "has_more": more})


def list_checkpoints(ctx: Ctx, request: Request, job_id: str) -> Reply:
    job = _job(ctx, job_id)
    limit = query_limit(request, 10, 100)
    newest_first = list(reversed(timeline.checkpoints(job, ctx.now)))
    data, more = page_after(newest_first, lambda c: c["id"], request.args.get("after"), limit)
    return Reply(
        {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": more,
        }
    )


# state changes ---------------------------------------------------------------------------------
def _refuse(job: JobRec, action: str, status: str) -> ApiError:
    return invalid(f"Cannot {action} fine-tuning job {job.id}: its status is {status}.")


def cancel_job(ctx: Ctx, request: Request, job_id: str) -> Reply:
    job = _job(ctx, job_id)
    status = timeline.status(job, ctx.now)
    if status in timeline.TERMINAL:
        raise _refuse(job, "cancel", status)
    pauses = job.pauses
    if timeline.is_paused(job):
        pauses = (*pauses[:-1], (pauses[-1][0], pauses[-1][1], ctx.now))
    job = replace(
        job,
        pauses=pauses,
        cancelled_at=ctx.now,
        final_status="cancelled",
        finished_at=int(ctx.now),
    )
    ctx.store.put_job(job)
    return Reply(timeline.job_json(job, ctx.now))


def pause_job(ctx: Ctx, request: Request, job_id: str) -> Reply:
    job = _job(ctx, job_id)
    status = timeline.status(job, ctx.now)
    if status != "running":
        raise _refuse(job, "pause", status)
    job = replace(job, pauses=(*job.pauses, (timeline.effective(job, ctx.now), ctx.now, None)))
    ctx.store.put_job(job)
    return Reply(timeline.job_json(job, ctx.now))


def resume_job(ctx: Ctx, request: Request, job_id: str) -> Reply:
    job = _job(ctx, job_id)
    status = timeline.status(job, ctx.now)
    if status != "paused":
        raise _refuse(job, "resume", status)
    at, start, _ = job.pauses[-1]
    job = replace(job, pauses=(*job.pauses[:-1], (at, start, ctx.now)))
    ctx.store.put_job(job)
    schedule(ctx.store, job)
    return Reply(timeline.job_json(job, ctx.now))
