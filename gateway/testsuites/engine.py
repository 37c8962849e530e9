"""Running a test run: each pending case through the gateway's own request path, then scored.

A case is sent with `ProxyService.internal_chat` exactly as a client's request would be (same
rendering, routing, budgets and logging), marked `X-Sluice-Test-Run: true` so it is never
evaluated as production. Once its log row is written, the case's evaluators score it through
the evaluation processor (context `test_run`), and the result row is written. Upstream
failures (5xx, 429, timeouts) are retried with exponential backoff; a case that still fails is
recorded as an error and the run goes on.

The process that runs a run owns it (`owner`) and proves it alive with a heartbeat that also
writes the progress counts. A run whose heartbeat goes stale is taken over by another process
(`supervisor`); a process that stops cleanly hands its runs back at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec
from sqlalchemy import bindparam, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from evaluators import SpecOutcome, overall_score
from gateway.db.base import utcnow
from gateway.db.models import TestResult, TestRun
from gateway.errors import SluiceError
from gateway.evaluations.processor import EvaluationProcessor
from gateway.proxy.service import ProxyResult, ProxyService
from gateway.proxy.stages import Reservation
from gateway.requestlog.buffer import RequestLogBuffer
from gateway.settings import TestRunSettings
from gateway.testsuites.planning import TEST_RUNNER_KEY
from gateway.upstream.routing import Route

__all__ = ["CaseOutcome", "RunEngine", "default_owner"]

log = logging.getLogger("sluice.testing")

Finished = Callable[[TestRun], Awaitable[None]]
RETRYABLE = frozenset({429, 500, 502, 503, 504})


def default_owner() -> str:
    return f"{socket.gethostname()[:60]}-{os.getpid()}-{os.urandom(3).hex()}"


@dataclass(slots=True)
class CaseOutcome:
    status: str
    output: str | None = None
    score: float | None = None
    passed: bool | None = None
    latency_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: Decimal | None = None
    attempts: int = 0
    error: str | None = None
    request_id: str | None = None
    evaluations: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class _Active:
    task: asyncio.Task[None]
    cancel: asyncio.Event
    holds: dict[int, Reservation]
    route: Route | None


class _Completion(msgspec.Struct):
    choices: list[dict[str, Any]] = []
    usage: dict[str, Any] | None = None


_decode_completion = msgspec.json.Decoder(_Completion).decode


class RunEngine:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        proxy: ProxyService,
        log_buffer: RequestLogBuffer,
        processor: EvaluationProcessor | None,
        settings: TestRunSettings,
        release: Callable[[dict[int, Reservation], Route], Awaitable[None]],
        owner: str | None = None,
    ) -> None:
        self._sessions = sessions
        self._proxy = proxy
        self._log_buffer = log_buffer
        self._processor = processor
        self._settings = settings
        self._release = release
        self.owner = owner or default_owner()
        self._active: dict[str, _Active] = {}
        self.on_finished: list[Finished] = []

    # -- ownership -----------------------------------------------------------------------

    async def claim(self, run_id: str, *, stale_before: Any = None) -> TestRun | None:
        """Take the run if it is pending and unowned, or running with a stale heartbeat."""
        now = utcnow()
        takeable = (TestRun.status == "pending") & TestRun.owner.is_(None)
        if stale_before is not None:
            takeable = takeable | (
                (TestRun.status.in_(("pending", "running"))) & (TestRun.heartbeat_at < stale_before)
            )
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(TestRun)
                .where(TestRun.id == run_id, takeable)
                .values(
                    owner=self.owner,
                    status="running",
                    heartbeat_at=now,
                    starts=TestRun.starts + 1,
                    started_at=func.coalesce(TestRun.started_at, now),
                )
                .execution_options(synchronize_session=False)
            )
            if getattr(result, "rowcount", 0) != 1:
                return None
            return await session.get(TestRun, run_id)

    def start(
        self, run: TestRun, holds: dict[int, Reservation] | None = None, route: Route | None = None
    ) -> None:
        """Run `run` (claimed by this engine) in the background."""
        cancel = asyncio.Event()
        task = asyncio.get_running_loop().create_task(
            self._execute(run, cancel), name=f"sluice-test-run-{run.id}"
        )
        self._active[run.id] = _Active(task, cancel, holds or {}, route)

    def is_running(self, run_id: str) -> bool:
        return run_id in self._active

    def cancel_local(self, run_id: str) -> bool:
        active = self._active.get(run_id)
        if active is None:
            return False
        active.cancel.set()
        return True

    async def wait(self, run_id: str) -> None:
        active = self._active.get(run_id)
        if active is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(active.task)

    async def close(self) -> None:
        """Stop every run and hand it back (pending, unowned) for the next process."""
        for active in self._active.values():
            active.task.cancel()
        for active in list(self._active.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await active.task
        async with self._sessions.begin() as session:
            await session.execute(
                update(TestRun)
                .where(TestRun.owner == self.owner, TestRun.status == "running")
                .values(status="pending", owner=None)
            )

    # -- running -------------------------------------------------------------------------

    async def _execute(self, run: TestRun, cancel: asyncio.Event) -> None:
        try:
            if run.starts > self._settings.max_starts:
                await self._finish(
                    run,
                    "failed",
                    f"The run was taken up {run.starts - 1} times and its process stopped each "
                    "time; it is not resumed again.",
                )
                return
            if run.cancel_requested:
                await self._finish(run, "cancelled", None)
                return
            await self._run_cases(run, cancel)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("test run %s failed", run.id)
            await self._finish(run, "failed", f"{type(exc).__name__}: {exc}")
        finally:
            active = self._active.pop(run.id, None)
            if active is not None and active.holds and active.route is not None:
                with contextlib.suppress(Exception):
                    await self._release(active.holds, active.route)

    async def _run_cases(self, run: TestRun, cancel: asyncio.Event) -> None:
        async with self._sessions() as session:
            pending = list(
                (
                    await session.scalars(
                        select(TestResult)
                        .where(TestResult.run_id == run.id, TestResult.status == "pending")
                        .order_by(TestResult.position)
                    )
                ).all()
            )
        queue: asyncio.Queue[TestResult] = asyncio.Queue()
        for item in pending:
            queue.put_nowait(item)
        lost = asyncio.Event()  # another process took the run: stop at once
        heartbeat = asyncio.create_task(self._heartbeat(run, cancel, lost))
        writer = _ResultWriter(self._sessions, batch=run.concurrency)
        workers = [
            asyncio.create_task(self._worker(run, queue, cancel, lost, writer))
            for _ in range(min(run.concurrency, max(len(pending), 1)))
        ]
        try:
            await asyncio.gather(*workers)
            await writer.flush()
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            for worker in workers:
                worker.cancel()
        if lost.is_set():
            return
        if cancel.is_set() or await self._cancel_requested(run.id):
            await self._finish(run, "cancelled", None)
        else:
            await self._finish(run, "completed", None)

    async def _worker(
        self,
        run: TestRun,
        queue: asyncio.Queue[TestResult],
        cancel: asyncio.Event,
        lost: asyncio.Event,
        writer: _ResultWriter,
    ) -> None:
        while not cancel.is_set() and not lost.is_set():
            try:
                item = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            outcome = await self._run_case(run, item)
            await writer.add(item, outcome)

    async def _run_case(self, run: TestRun, item: TestResult) -> CaseOutcome:
        active = self._active.get(run.id)
        if active is not None and active.route is not None:
            held = active.holds.pop(item.position, None)
            if held is not None:  # the request path reserves it again in a moment
                await self._release({item.position: held}, active.route)
        body = msgspec.json.encode(
            {
                "model": run.model,
                "messages": item.messages,
                "sluice": {"variables": item.variables, **_stamp(run)},
            }
        )
        headers = [
            (b"x-sluice-prompt", run.prompt_slug.encode()),
            (b"x-sluice-prompt-version", str(run.version).encode()),
            (b"x-sluice-test-run", b"true"),
            (b"x-sluice-tag-sluice.test-run", run.id.encode()),
        ]
        attempts = 0
        while True:
            attempts += 1
            started = asyncio.get_running_loop().time()
            try:
                result = await self._proxy.internal_chat(
                    body,
                    caller=TEST_RUNNER_KEY,
                    headers=headers,
                    model_override=run.model_override,
                )
                status, error = result.status, None if result.status == 200 else _error(result)
            except SluiceError as exc:
                result, status, error = None, exc.status_code, exc.message
            latency = (asyncio.get_running_loop().time() - started) * 1000
            if status == 200 or status not in RETRYABLE or attempts >= self._settings.attempts:
                break
            await asyncio.sleep(self._settings.backoff * 2 ** (attempts - 1))
        if result is None or status != 200:
            return CaseOutcome(
                "error",
                attempts=attempts,
                latency_ms=latency,
                error=f"HTTP {status}: {error}"
                + (f" (after {attempts} attempts)" if attempts > 1 else ""),
                request_id=result.headers.get("x-sluice-request-id") if result else None,
            )
        return await self._score(run, item, result, latency, attempts)

    async def _score(
        self, run: TestRun, item: TestResult, result: ProxyResult, latency: float, attempts: int
    ) -> CaseOutcome:
        request_id = result.headers.get("x-sluice-request-id")
        completion = _decode_completion(result.body)
        output = _output_text(completion)
        usage = completion.usage or {}
        cost = result.headers.get("x-sluice-cost-usd")
        outcome = CaseOutcome(
            "passed",
            output=output,
            latency_ms=latency,
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            cost_usd=Decimal(cost) if cost else None,
            attempts=attempts,
            request_id=request_id,
            passed=True,
        )
        if self._processor is None or item.test_case_id is None or request_id is None:
            return outcome
        # The evaluations point at the log row: it must be written first.
        if not await self._log_buffer.flush():
            outcome.status, outcome.passed = "error", False
            outcome.error = "the request log could not be written, so the case was not scored"
            return outcome
        ran = await self._processor.evaluate_test_response(
            request_id, item.test_case_id, expected=item.expected_output, test_run_id=run.id
        )
        outcome.evaluations = [_summary(o) for o in ran]
        outcome.score = overall_score(ran)
        outcome.passed = all(o.result.passed for o in ran)
        outcome.status = "passed" if outcome.passed else "failed"
        return outcome

    # -- progress ------------------------------------------------------------------------

    async def _heartbeat(self, run: TestRun, cancel: asyncio.Event, lost: asyncio.Event) -> None:
        while True:
            await asyncio.sleep(self._settings.heartbeat)
            try:
                values = await self._aggregates(run.id)
                async with self._sessions.begin() as session:
                    result = await session.execute(
                        update(TestRun)
                        .where(TestRun.id == run.id, TestRun.owner == self.owner)
                        .values(heartbeat_at=utcnow(), **values)
                    )
                    if getattr(result, "rowcount", 0) != 1:
                        log.warning("test run %s was taken over by another process", run.id)
                        lost.set()
                        return
                    wanted = await session.scalar(
                        select(TestRun.cancel_requested).where(TestRun.id == run.id)
                    )
                if wanted:
                    cancel.set()
            except Exception as exc:  # a missed beat is retried; the run goes on
                log.warning("test run %s heartbeat failed: %s", run.id, exc)

    async def _aggregates(self, run_id: str) -> dict[str, Any]:
        done = TestResult.status.in_(("passed", "failed", "error"))
        query = select(
            func.count(case((done, 1))),
            func.count(case((TestResult.status == "passed", 1))),
            func.count(case((TestResult.status.in_(("failed", "error")), 1))),
            func.count(case((TestResult.status == "error", 1))),
            func.avg(TestResult.score),
            func.sum(TestResult.cost_usd),
        ).where(TestResult.run_id == run_id)
        async with self._sessions() as session:
            completed, passed, failed, errored, mean, cost = (await session.execute(query)).one()
        return {
            "completed": completed,
            "passed": passed,
            "failed": failed,
            "errored": errored,
            "mean_score": float(mean) if mean is not None else None,
            "cost_usd": Decimal(cost or 0),
        }

    async def _cancel_requested(self, run_id: str) -> bool:
        async with self._sessions() as session:
            return bool(
                await session.scalar(select(TestRun.cancel_requested).where(TestRun.id == run_id))
            )

    async def _finish(self, run: TestRun, status: str, error: str | None) -> None:
        values = await self._aggregates(run.id)
        now = utcnow()
        async with self._sessions.begin() as session:
            if status != "completed":
                await session.execute(
                    update(TestResult)
                    .where(TestResult.run_id == run.id, TestResult.status == "pending")
                    .values(status="cancelled", finished_at=now)
                )
            await session.execute(
                update(TestRun)
                .where(TestRun.id == run.id)
                .values(status=status, error=error, finished_at=now, heartbeat_at=now, **values)
            )
            finished = await session.get(TestRun, run.id, populate_existing=True)
        if finished is None:
            return
        for hook in self.on_finished:
            try:
                await hook(finished)
            except Exception:
                log.exception("after-run hook failed for test run %s", run.id)


class _ResultWriter:
    """Writes finished cases in batches: one transaction per `batch` cases, not per case.

    A case finished but not yet written when the process dies is pending again and is sent
    again on resume; nothing is lost, at worst one batch is paid for twice."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, batch: int) -> None:
        self._sessions = sessions
        self._batch = max(batch, 1)
        self._rows: list[dict[str, Any]] = []
        self._lock = asyncio.Lock()

    async def add(self, item: TestResult, outcome: CaseOutcome) -> None:
        self._rows.append(
            {
                "rid": item.id,
                "status": outcome.status,
                "output": outcome.output,
                "score": outcome.score,
                "passed": outcome.passed if outcome.status != "error" else False,
                "latency_ms": outcome.latency_ms,
                "prompt_tokens": outcome.prompt_tokens,
                "completion_tokens": outcome.completion_tokens,
                "cost_usd": outcome.cost_usd,
                "attempts": outcome.attempts,
                "error": outcome.error,
                "request_id": outcome.request_id,
                "evaluations": outcome.evaluations,
                "finished_at": utcnow(),
            }
        )
        if len(self._rows) >= self._batch:
            await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            rows, self._rows = self._rows, []
            if not rows:
                return
            statement = (
                update(TestResult.__table__)  # type: ignore[arg-type]
                .where(TestResult.__table__.c.id == bindparam("rid"))
                .values({name: bindparam(name) for name in rows[0] if name != "rid"})
            )
            async with self._sessions.begin() as session:
                await session.execute(statement, rows)


def _stamp(run: TestRun) -> dict[str, Any]:
    stamp = (run.selection or {}).get("stamp") or {}
    fields: dict[str, Any] = {}
    if stamp.get("user"):
        fields["user"] = stamp["user"]
    if stamp.get("tags"):
        fields["tags"] = dict(stamp["tags"])
    return fields


def _output_text(completion: _Completion) -> str | None:
    try:
        content = completion.choices[0]["message"].get("content")
    except (IndexError, KeyError, AttributeError, TypeError):
        return None
    return content if isinstance(content, str) else None


def _error(result: ProxyResult) -> str:
    try:
        body = msgspec.json.decode(result.body)
        return str(body["error"]["message"])[:500]
    except (msgspec.DecodeError, KeyError, TypeError):
        return result.body[:500].decode("utf-8", "replace")


def _summary(outcome: SpecOutcome) -> dict[str, Any]:
    result = outcome.result
    return {
        "evaluator_config_id": outcome.spec.id,
        "evaluator_key": outcome.spec.evaluator_key,
        "score": None if result.skipped or result.error else result.score,
        "passed": result.passed,
        "threshold": outcome.spec.threshold,
        "skipped": result.skipped,
        "error": result.error,
    }
