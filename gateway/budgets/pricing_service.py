"""The live price table: shipped defaults, SLUICE_CONFIG, then prices set through the admin API.

Admin prices are stored in `pricing_overrides`; a change publishes a notice on the `pricing`
topic and every replica rebuilds its table. `price_for` applies the SLUICE_UNPRICED_MODELS
policy: with `fallback`, an unlisted model gets the "*" price; with `refuse`, it gets none.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.budgets.pricing import (
    ModelPrice,
    PriceTable,
    check_model_name,
    check_price,
    shipped_prices,
)
from gateway.changes import ChangeFeed
from gateway.db.base import utcnow
from gateway.db.models import PricingOverride
from gateway.errors import InvalidRequest

__all__ = ["TOPIC", "PricingService"]

log = logging.getLogger("sluice.budgets")

TOPIC = "pricing"


def _price(row: PricingOverride) -> ModelPrice:
    return ModelPrice(
        row.input, row.output, row.cached_input, row.max_output_tokens, source="admin"
    )


def _check(model: str, price: ModelPrice | None) -> None:
    where = f"models.{model}"
    if (problem := check_model_name(model)) is not None:
        raise InvalidRequest(f"{where}: {problem}.", param="models")
    if price is None:
        return
    fields = {
        "input": price.input,
        "cached_input": price.cached_input,
        "output": price.output,
        "max_output_tokens": price.max_output_tokens,
    }
    _, problems = check_price(where, fields)
    if problems:
        raise InvalidRequest(problems[0] + ".", param=where)


class PricingService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        changes: ChangeFeed,
        *,
        configured: Mapping[str, ModelPrice],
        use_fallback: bool,
    ) -> None:
        self._sessions = sessions
        self._changes = changes
        self._layers = (shipped_prices(), dict(configured))
        self.use_fallback = use_fallback
        self.table = PriceTable(self._layers)
        self._reload: asyncio.Task[None] | None = None
        changes.subscribe(TOPIC, self._on_change)

    def price_for(self, model: str) -> ModelPrice | None:
        """The price a request to `model` is charged at, or None: it has none."""
        price = self.table.lookup(model)
        if price is None and self.use_fallback:
            return self.table.fallback
        return price

    async def load(self) -> None:
        async with self._sessions() as session:
            rows = (await session.scalars(select(PricingOverride))).all()
        self.table = PriceTable([*self._layers, {row.model: _price(row) for row in rows}])
        if self.use_fallback and self.table.fallback is None:
            log.warning(
                'SLUICE_UNPRICED_MODELS=fallback but no "*" price is set (SLUICE_CONFIG '
                '[pricing."*"] or PUT /admin/pricing): unpriced models are refused meanwhile'
            )

    def _on_change(self, _payload: str) -> None:
        if self._reload is None or self._reload.done():
            with contextlib.suppress(RuntimeError):  # no running loop: shutting down
                self._reload = asyncio.get_running_loop().create_task(self._reload_now())

    async def _reload_now(self) -> None:
        try:
            await self.load()
        except Exception as exc:
            log.warning("could not reload prices (%s); keeping the previous table", exc)

    async def put(self, models: Mapping[str, ModelPrice | None]) -> PriceTable:
        """Set admin prices (None removes a model's admin price) and return the new table."""
        for model, price in models.items():
            _check(model, price)
        now = utcnow()
        async with self._sessions.begin() as session:
            removed = [model for model, price in models.items() if price is None]
            if removed:
                await session.execute(
                    delete(PricingOverride).where(PricingOverride.model.in_(removed))
                )
            for model, price in models.items():
                if price is None:
                    continue
                await session.merge(
                    PricingOverride(
                        model=model,
                        input=price.input,
                        cached_input=price.cached_input,
                        output=price.output,
                        max_output_tokens=price.max_output_tokens,
                        updated_at=now,
                    )
                )
        await self.load()
        await self._changes.publish(TOPIC, "*")
        return self.table

    def effective(self) -> dict[str, ModelPrice]:
        """Every listed price, "*" included, sorted by model name."""
        return {name: self.table.prices[name] for name in sorted(self.table.prices)}

    async def close(self) -> None:
        if self._reload is not None:
            self._reload.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reload
