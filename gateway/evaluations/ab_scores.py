"""Evaluation scores per A/B variant, for the prompt registry's A/B results.

The registry compares variants on the scores a `ScoreProvider` gives it; this one reads the
production evaluations recorded for the test's responses, one sample per evaluation that
produced a score, newest first up to `max_samples` per variant and evaluator.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.db.models import Evaluation
from gateway.prompts.records import AbTestRecord
from gateway.prompts.results import ScoreSample, ScoreSamples

__all__ = ["AbTestScores"]


class AbTestScores:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, max_samples: int = 50_000
    ) -> None:
        self._sessions = sessions
        self._max_samples = max_samples

    async def __call__(self, test: AbTestRecord) -> ScoreSamples:
        query = (
            select(
                Evaluation.ab_variant, Evaluation.evaluator_key, Evaluation.score, Evaluation.passed
            )
            .where(
                Evaluation.ab_test_id == test.id,
                Evaluation.context == "production",
                Evaluation.score.is_not(None),
                Evaluation.error.is_(None),
                Evaluation.skipped.is_(False),
            )
            .order_by(Evaluation.id.desc())
        )
        samples: ScoreSamples = {}
        async with self._sessions() as session:
            for variant, key, score, passed in await session.execute(query):
                if variant is None or score is None:
                    continue
                by_key = samples.setdefault(variant, {}).setdefault(key, [])
                if len(by_key) < self._max_samples:
                    by_key.append(ScoreSample(score=score, passed=passed))
        return samples
