"""The sweep: production responses of monitored versions that never got their evaluations.

A job can be lost after the response was logged (the gateway stopped before the inline pass,
Redis was flushed, a queue write failed). The database knows better: a response older than
`grace` that lacks a result for a config that was in place when it was logged and sampled it,
is enqueued again. Writes are idempotent, so a response enqueued twice is scored once.
`lookback` bounds how far back a sweep reads; `max_jobs` bounds one sweep's work.

A response whose job is in the dead-letter list is not enqueued again: that job already
failed `max_failures` times (a worker crashing on it, say), and sending it round again every
sweep would retry it forever. `requeue` on the dead letter is the way to try it once more.
An evaluator that overruns its time budget is not a failed job at all: it records an error
result, which counts as evaluated here.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.db.base import utcnow
from gateway.db.models import Evaluation, EvaluatorConfig, RequestLog
from gateway.evaluations.metrics import EvaluationMetrics
from gateway.evaluations.plans import PlanCache, VersionCatalog
from gateway.evaluations.queue import EvaluationQueue
from gateway.evaluations.records import Job

__all__ = ["Sweeper"]

PAGE = 1000
DEAD_LETTERS_READ = 10_000
"""The newest dead letters a sweep reads to skip their responses; older ones are long past
`lookback` in any real deployment."""


class Sweeper:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        plans: PlanCache,
        versions: VersionCatalog,
        queue: EvaluationQueue,
        metrics: EvaluationMetrics,
        *,
        grace: float,
        lookback: float,
        max_jobs: int = 10_000,
    ) -> None:
        self._sessions = sessions
        self._plans = plans
        self._versions = versions
        self._queue = queue
        self._metrics = metrics
        self._grace = timedelta(seconds=grace)
        self._lookback = timedelta(seconds=lookback)
        self._max_jobs = max_jobs

    async def sweep(self) -> int:
        """Enqueue every lost response found; how many."""
        now = utcnow()
        async with self._sessions() as session:
            monitored = (
                await session.execute(
                    select(EvaluatorConfig.prompt_version_id, func.min(EvaluatorConfig.created_at))
                    .where(
                        EvaluatorConfig.prompt_version_id.is_not(None),
                        EvaluatorConfig.enabled.is_(True),
                    )
                    .group_by(EvaluatorConfig.prompt_version_id)
                )
            ).all()
        if not monitored:
            return 0
        buried = await self._buried()
        jobs: list[Job] = []
        for version_id, first_config_at in monitored:
            if len(jobs) >= self._max_jobs:
                break
            assert version_id is not None
            since = max(now - self._lookback, first_config_at)
            found = await self._lost(version_id, since, now - self._grace)
            jobs += [job for job in found if job.request_log_id not in buried]
        jobs = jobs[: self._max_jobs]
        await self._queue.enqueue(jobs)
        if jobs:
            self._metrics.enqueued.labels("sweep").inc(len(jobs))
        return len(jobs)

    async def _buried(self) -> set[str]:
        """Request log ids of the dead-lettered jobs (the newest DEAD_LETTERS_READ)."""
        ids: set[str] = set()
        before: str | None = None
        read = 0
        while read < DEAD_LETTERS_READ:
            letters = await self._queue.dead_letters(limit=PAGE, before=before)
            if not letters:
                break
            ids.update(letter.job.request_log_id for letter in letters)
            read += len(letters)
            before = letters[-1].id
        return ids

    async def _lost(self, version_id: str, since: datetime, until: datetime) -> list[Job]:
        owner = await self._plans.for_version(version_id)
        version = await self._versions.get(version_id)
        if owner is None or version is None:
            return []
        # By slug and number first: that is what the request log's index covers.
        slug, number = version.compiled.slug, version.compiled.version
        config_ids = [spec.id for spec in owner.specs]
        lost: list[Job] = []
        after = ""
        while len(lost) < self._max_jobs:
            async with self._sessions() as session:
                rows = (
                    await session.execute(
                        select(RequestLog.id, RequestLog.request_id, RequestLog.created_at)
                        .where(
                            RequestLog.prompt_slug == slug,
                            RequestLog.prompt_version == number,
                            RequestLog.prompt_version_id == version_id,
                            RequestLog.created_at >= since,
                            RequestLog.created_at < until,
                            RequestLog.is_test_run.is_(False),
                            RequestLog.status_code >= 200,
                            RequestLog.status_code < 300,
                            RequestLog.id > after,
                        )
                        .order_by(RequestLog.id)
                        .limit(PAGE)
                    )
                ).all()
                if not rows:
                    break
                done: dict[str, set[str]] = {row.id: set() for row in rows}
                found = await session.execute(
                    select(Evaluation.request_log_id, Evaluation.evaluator_config_id).where(
                        Evaluation.request_log_id.in_(list(done)),
                        Evaluation.evaluator_config_id.in_(config_ids),
                    )
                )
                for log_id, config_id in found:
                    done[log_id].add(str(config_id))
            for row in rows:
                if owner.expected_ids(row.request_id, row.created_at) - done[row.id]:
                    lost.append(Job(request_log_id=row.id, enqueued_by="sweep"))
            after = rows[-1].id
        return lost
