"""Scoring logged responses: the inline pass after a response is logged, and queued jobs.

Both paths load the owner's plan, build the evaluator input from the response's facts and run
the plan. The inline pass, in the gateway, only scores: its results travel in the response's
job, and the worker (or the embedded one) writes one row per spec that ran or was skipped,
together with the queued specs' results. Jobs are handled in batches: the responses and their
stored results are read in two queries, jobs whose remaining specs are all cheap run one after
another and are written together, and jobs that wait on I/O (a judge call) run concurrently and
are written one by one, so a slow judge never holds back cheap results.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence

from evaluators import EvaluationResult, EvaluatorSpec, SpecOutcome, should_sample
from evaluators.base import error_result
from gateway.evaluations.inputs import ResponseFacts, build_input
from gateway.evaluations.judge import judged_request
from gateway.evaluations.metrics import EvaluationMetrics
from gateway.evaluations.plans import OwnerPlan, PlanCache, VersionCatalog
from gateway.evaluations.queue import Delivery
from gateway.evaluations.records import InlineResult, Job
from gateway.evaluations.store import EvaluationStore
from gateway.requestlog.entry import LogEntry

__all__ = ["Done", "EvaluationProcessor"]

Done = Callable[[Sequence[Delivery], str | None], Awaitable[None]]
"""Told which deliveries finished, with None (written) or the error that failed them."""

YIELD_EVERY = 10
NOT_LOGGED = (
    "the response body was not logged (X-Sluice-No-Log), so it cannot be evaluated after the fact"
)


class EvaluationProcessor:
    def __init__(
        self,
        *,
        store: EvaluationStore,
        plans: PlanCache,
        versions: VersionCatalog,
        metrics: EvaluationMetrics,
        attempts: int,
        timeout: float,
    ) -> None:
        self.store = store
        self.plans = plans
        self.versions = versions
        self.metrics = metrics
        self._attempts = attempts
        self._timeout = timeout

    # -- inline --------------------------------------------------------------------------

    async def evaluate_logged(self, items: Sequence[tuple[LogEntry, str | None]]) -> list[Job]:
        """Run the inline specs of responses just logged; the jobs that store their results
        (and run the queued specs). Nothing is written here: the gateway's event loop serves
        requests, and writing a row costs more than scoring it."""
        outcomes: list[SpecOutcome] = []
        jobs = []
        for position, (entry, text) in enumerate(items, start=1):
            if position % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # cheap evaluators never await: let requests through
            facts = ResponseFacts.from_entry(entry, text)
            if not facts.is_production:
                continue
            assert facts.prompt_version_id is not None
            owner = await self.plans.for_version(facts.prompt_version_id)
            if owner is None:
                continue
            ran: list[SpecOutcome] = []
            if owner.plan is not None and any(
                s.enabled and s.run_mode == "inline" for s in owner.specs
            ):
                ran = await self._run(owner, facts, {}, run_mode="inline")
                outcomes += ran
            if ran or owner.plan is None or owner.wants_worker(facts.request_id):
                inline = [
                    InlineResult(
                        o.spec.id,
                        o.result.score,
                        o.result.passed,
                        o.result.skipped,
                        o.result.error,
                        dict(o.result.details),
                        round(o.duration_ms, 3),
                    )
                    for o in ran
                ]
                jobs.append(Job(request_log_id=facts.log_id, inline=inline))
        self.metrics.record(outcomes)
        return jobs

    # -- jobs ----------------------------------------------------------------------------

    async def run_jobs(self, deliveries: Sequence[Delivery], done: Done) -> None:
        """Run a batch of jobs; `done` hears about every delivery exactly once."""
        log_ids = list({d.job.request_log_id for d in deliveries if d.job.request_log_id})
        facts_by_id = await self.store.responses(log_ids)
        prior_by_id = await self.store.prior_results(log_ids)
        cheap_rows: list[dict[str, object]] = []
        cheap_outcomes: list[SpecOutcome] = []
        cheap: list[Delivery] = []
        slow: list[asyncio.Task[None]] = []
        for position, delivery in enumerate(deliveries, start=1):
            if position % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # the embedded worker shares the gateway's event loop
            log_id = delivery.job.request_log_id
            facts = facts_by_id.get(log_id)
            if facts is None:
                why = "malformed job" if not log_id else f"no logged response with id '{log_id}'"
                await done([delivery], why)
                continue
            owner = None
            if facts.is_production:
                assert facts.prompt_version_id is not None
                owner = await self.plans.for_version(facts.prompt_version_id)
            if owner is None:  # test traffic, an error response, or nothing monitors it now
                cheap.append(delivery)
                continue
            prior = dict(prior_by_id.get(log_id, {}))
            carried = _carried(owner, delivery.job, prior)
            prior.update((o.spec.id, o.result) for o in carried)
            if _waits_on_io(owner, facts, prior):
                task = self._run_one(delivery, owner, facts, prior, carried, done)
                slow.append(asyncio.create_task(task))
                continue
            ran = await self._run(owner, facts, prior, run_mode=None)
            cheap_rows += self.store.rows_for(facts, owner, [*carried, *ran])
            cheap_outcomes += ran
            cheap.append(delivery)
        try:
            await self.store.insert(cheap_rows)
        except Exception as exc:
            await done(cheap, f"could not store evaluations: {type(exc).__name__}: {exc}")
        else:
            self.metrics.record(cheap_outcomes)
            await done(cheap, None)
        if slow:
            await asyncio.gather(*slow)

    async def _run_one(
        self,
        delivery: Delivery,
        owner: OwnerPlan,
        facts: ResponseFacts,
        prior: Mapping[str, EvaluationResult],
        carried: Sequence[SpecOutcome],
        done: Done,
    ) -> None:
        judged_request.set(facts.request_id)  # this task's own context: names the judge's log row
        try:
            ran = await self._run(owner, facts, prior, run_mode=None)
            await self.store.insert(self.store.rows_for(facts, owner, [*carried, *ran]))
        except Exception as exc:
            await done([delivery], f"{type(exc).__name__}: {exc}")
            return
        self.metrics.record(ran)
        await done([delivery], None)

    # -- test runs -----------------------------------------------------------------------

    async def evaluate_test_response(
        self, log_id: str, test_case_id: str, *, expected: str | None, test_run_id: str
    ) -> list[SpecOutcome]:
        """Score a test run's response with its test case's configs (context `test_run`)."""
        facts = (await self.store.responses([log_id])).get(log_id)
        owner = await self.plans.for_test_case(test_case_id)
        if facts is None or owner is None:
            return []
        prior = (await self.store.prior_results([log_id]))[log_id]
        judged_request.set(facts.request_id)
        ran = await self._run(owner, facts, prior, run_mode=None, expected=expected)
        rows = self.store.rows_for(facts, owner, ran, context="test_run", test_run_id=test_run_id)
        await self.store.insert(rows)
        self.metrics.record(ran)
        return ran

    # -- running -------------------------------------------------------------------------

    async def _run(
        self,
        owner: OwnerPlan,
        facts: ResponseFacts,
        prior: Mapping[str, EvaluationResult],
        *,
        run_mode: str | None,
        expected: str | None = None,
    ) -> list[SpecOutcome]:
        if owner.plan is None or facts.output_text is None:
            reason = owner.problem if owner.plan is None else NOT_LOGGED
            return [
                SpecOutcome(spec, error_result(reason or "the evaluators cannot run"), 0.0)
                for spec in _due(owner, facts, prior)
            ]
        version = None
        if facts.prompt_version_id is not None:
            version = await self.versions.get(facts.prompt_version_id)
        data = build_input(facts, version, expected=expected)
        # Every evaluator gets the deadline, inline ones too: the CPU-bound ones (regex,
        # json_schema, levenshtein, rouge_l) move large inputs to a thread, where the deadline
        # ends the wait; small inputs finish in microseconds. Overrunning it records an error
        # result, stored like any other, so neither a retry nor the sweep runs it again.
        return await owner.plan.run(
            data,
            request_id=facts.request_id,
            run_mode="inline" if run_mode == "inline" else None,
            prior=prior,
            max_attempts=self._attempts,
            timeout_s=self._timeout,
        )


def _carried(
    owner: OwnerPlan, job: Job, prior: Mapping[str, EvaluationResult]
) -> list[SpecOutcome]:
    """The inline results a job carries, for specs that still exist and have no stored result."""
    specs = {spec.id: spec for spec in owner.specs}
    carried = []
    for item in job.inline:
        spec = specs.get(item.spec_id)
        if spec is None or item.spec_id in prior:
            continue
        try:
            result = EvaluationResult(
                score=item.score,
                passed=item.passed,
                details=item.details,
                skipped=item.skipped,
                error=item.error,
            )
        except ValueError:
            continue  # not a result the gateway made: the spec runs again here instead
        carried.append(SpecOutcome(spec, result, item.duration_ms))
    return carried


def _due(
    owner: OwnerPlan, facts: ResponseFacts, prior: Mapping[str, EvaluationResult]
) -> list[EvaluatorSpec]:
    return [
        spec
        for spec in owner.specs
        if spec.enabled
        and spec.id not in prior
        and should_sample(facts.request_id, spec.id, spec.sampling_rate)
    ]


def _waits_on_io(
    owner: OwnerPlan, facts: ResponseFacts, prior: Mapping[str, EvaluationResult]
) -> bool:
    if owner.plan is None or facts.output_text is None:
        return False
    due = {spec.id for spec in _due(owner, facts, prior)}
    return any(step.evaluator.awaits_io for step in owner.plan.steps if step.spec.id in due)
