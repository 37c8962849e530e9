"""After a scheduled run: compare it with the schedule's previous completed run, and alert.

An alert is raised when the mean score falls by more than the schedule's `max_score_drop`
share of the previous mean (default 10%), or when the pass rate falls at all.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.db.models import Schedule, TestRun
from gateway.testsuites.alerts import AlertStore

__all__ = ["DegradationCheck", "degradation"]


def _rate(run: TestRun) -> float | None:
    return run.passed / run.completed if run.completed else None


def degradation(current: TestRun, previous: TestRun, max_drop: float) -> list[str]:
    """Why `current` is worse than `previous` (empty: it is not)."""
    reasons = []
    if current.mean_score is not None and previous.mean_score is not None:
        floor = previous.mean_score * (1 - max_drop)
        if current.mean_score < floor:
            share = (
                (previous.mean_score - current.mean_score) / previous.mean_score
                if previous.mean_score
                else 0.0
            )
            reasons.append(
                f"mean score fell from {previous.mean_score:.3f} to {current.mean_score:.3f} "
                f"({share:.0%}, more than the {max_drop:.0%} allowed)"
            )
    now, before = _rate(current), _rate(previous)
    if now is not None and before is not None and now < before:
        reasons.append(f"pass rate fell from {before:.0%} to {now:.0%}")
    return reasons


class DegradationCheck:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], alerts: AlertStore) -> None:
        self._sessions = sessions
        self._alerts = alerts

    async def after_run(self, run: TestRun) -> None:
        if run.schedule_id is None:
            return
        async with self._sessions.begin() as session:
            schedule = await session.get(Schedule, run.schedule_id)
            if schedule is None:
                return
            await session.execute(
                update(Schedule)
                .where(Schedule.id == schedule.id)
                .values(last_run_id=run.id, last_run_at=run.created_at)
            )
            previous = await session.scalar(
                select(TestRun)
                .where(
                    TestRun.schedule_id == run.schedule_id,
                    TestRun.status == "completed",
                    TestRun.id < run.id,
                )
                .order_by(TestRun.id.desc())
                .limit(1)
            )
        if run.status == "failed":
            await self._alerts.add(
                "test_run_failed",
                f"Scheduled test run {run.id} of '{run.prompt_slug}' failed: {run.error}",
                prompt=run.prompt_slug,
                schedule_id=run.schedule_id,
                run_id=run.id,
            )
            return
        if run.status != "completed" or previous is None:
            return
        reasons = degradation(run, previous, schedule.max_score_drop)
        if not reasons:
            return
        await self._alerts.add(
            "degradation",
            f"'{run.prompt_slug}' v{run.version} degraded in scheduled run {run.id}: "
            + "; ".join(reasons)
            + ".",
            prompt=run.prompt_slug,
            schedule_id=run.schedule_id,
            run_id=run.id,
            details={
                "previous_run_id": previous.id,
                "mean_score": run.mean_score,
                "previous_mean_score": previous.mean_score,
                "pass_rate": _rate(run),
                "previous_pass_rate": _rate(previous),
                "max_score_drop": schedule.max_score_drop,
            },
        )
