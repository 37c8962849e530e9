"""Admin: model prices in USD per million input, cached-input and output tokens."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import msgspec
from litestar import Controller, get, put
from litestar.di import NamedDependency
from litestar.params import JSONBody

from admin.auth import require_admin
from gateway.budgets.pricing import ModelPrice
from gateway.budgets.pricing_service import PricingService

__all__ = ["PricingController"]


class PriceSpec(msgspec.Struct, forbid_unknown_fields=True):
    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None
    max_output_tokens: Annotated[int, msgspec.Meta(ge=1)] | None = None


class PutPricing(msgspec.Struct, forbid_unknown_fields=True):
    models: Annotated[dict[str, PriceSpec | None], msgspec.Meta(min_length=1, max_length=1000)]
    """Prices to set; null removes a model's admin price (SLUICE_CONFIG or the default shows)."""


class PriceView(msgspec.Struct):
    input: float
    cached_input: float | None
    output: float
    max_output_tokens: int | None
    source: str
    """default (shipped with Sluice), config (SLUICE_CONFIG) or admin (this API)."""


class PricingView(msgspec.Struct):
    models: dict[str, PriceView]
    """"*" is the price of unlisted models when unpriced_models is fallback."""
    unpriced_models: str


def _view(service: PricingService) -> PricingView:
    return PricingView(
        models={
            name: PriceView(
                input=float(price.input),
                cached_input=None if price.cached_input is None else float(price.cached_input),
                output=float(price.output),
                max_output_tokens=price.max_output_tokens,
                source=price.source,
            )
            for name, price in service.effective().items()
        },
        unpriced_models="fallback" if service.use_fallback else "refuse",
    )


class PricingController(Controller):
    path = "/admin/pricing"
    tags = ["admin: pricing"]
    guards = [require_admin]

    @get("/", summary="The price table in effect")
    async def get_pricing(self, pricing_service: NamedDependency[PricingService]) -> PricingView:
        return _view(pricing_service)

    @put("/", summary="Set (or, with null, remove) the admin price of models")
    async def put_pricing(
        self, data: JSONBody[PutPricing], pricing_service: NamedDependency[PricingService]
    ) -> PricingView:
        service = pricing_service
        await service.put(
            {
                model: None
                if spec is None
                else ModelPrice(
                    spec.input, spec.output, spec.cached_input, spec.max_output_tokens, "admin"
                )
                for model, spec in data.models.items()
            }
        )
        return _view(service)
