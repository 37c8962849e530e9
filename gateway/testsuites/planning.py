"""Turning a run request into a run: check everything, estimate the cost, hold it, write it.

Before a run exists: the prompt and version resolve (a label is fixed to its version now), the
suite has cases and the selection matches some, every case's variables render the version,
the model has a route, and the budgets that will apply hold the run's worst case. Any failure
is a 4xx and nothing is written; a 402 names the run's estimate.

The estimate is the budgets' own worst case per request (`gateway.budgets.estimate`: exact
prompt tokens, plus the output cap at the output price). The hold is one reservation per case
through the budget stage, so concurrent traffic cannot spend the run's room; the engine
releases a case's hold just before it sends the case, and the request path then reserves it
again as for any request.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.budgets.estimate import estimate_chat
from gateway.budgets.money import from_ticks
from gateway.budgets.scopes import Scope, parse_tag
from gateway.budgets.service import BudgetService
from gateway.db.base import utcnow
from gateway.db.models import Prompt, TestCase, TestResult, TestRun
from gateway.errors import (
    BudgetExceeded,
    InvalidRequest,
    ModelNotFound,
    PromptNotFound,
    SluiceError,
    VersionNotFound,
)
from gateway.ids import new_id
from gateway.keys.service import KeyInfo
from gateway.prompts.cache import PromptCache
from gateway.prompts.compiled import CompiledVersion
from gateway.proxy.context import CallContext, PromptSelector
from gateway.proxy.stages import Reservation
from gateway.testsuites.cases import prompt_by_slug
from gateway.testsuites.specs import CaseSelection, RunRequest
from gateway.upstream.routing import ModelRouter, Route

__all__ = ["TEST_RUNNER_KEY", "PlannedRun", "RunPlanner", "RunStamp"]

TEST_RUNNER_KEY = KeyInfo(
    id="sluice-test-runs", name="sluice test runs (internal)", prefix="", created_at=utcnow()
)
"""The identity test traffic is logged under: no key row, never accepted from outside."""


@dataclass(frozen=True, slots=True)
class RunStamp:
    """What every request of a run carries so that the run's budget applies to it."""

    user: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"user": self.user, "tags": dict(self.tags)}


@dataclass(slots=True)
class PlannedRun:
    run: TestRun
    holds: dict[int, Reservation]
    """The budget hold of each case, by position."""
    route: Route


def call_context(slug: str, version: int | None, stamp: RunStamp, **selector: Any) -> CallContext:
    """A call as the request path would build it for one case of a run."""
    call = CallContext(
        request_id=new_id(),
        started=time.perf_counter(),
        created_at=utcnow(),
        key=TEST_RUNNER_KEY,
        user=stamp.user,
        tags=dict(stamp.tags),
        test_run=True,
    )
    call.prompt = PromptSelector(slug=slug, version=version, **selector)
    return call


class RunPlanner:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        cache: PromptCache,
        router: ModelRouter,
        budgets: BudgetService | None,
        default_max_tokens: int,
    ) -> None:
        self._sessions = sessions
        self._cache = cache
        self._router = router
        self._budgets = budgets
        self._default_max_tokens = default_max_tokens

    async def plan(self, request: RunRequest, *, schedule_id: str | None = None) -> PlannedRun:
        if request.version is not None and request.label is not None:
            raise InvalidRequest("Give a version or a label, not both.", param="label")
        async with self._sessions() as session:
            prompt = await prompt_by_slug(session, request.prompt)
            cases = await _selected_cases(session, prompt, request.tests or CaseSelection())
        head = await self._version(request)
        model = request.model_override or head.model
        if not model:
            raise InvalidRequest(
                f"Version {head.version} of '{request.prompt}' sets no model: pass model_override.",
                param="model_override",
            )
        try:
            route = self._router.resolve(model)
        except ModelNotFound as exc:
            exc.param = "model_override" if request.model_override else "version"
            raise
        stamp = await self._stamp(request)
        run_id = new_id()
        now = utcnow()
        results, bodies = [], []
        for position, case in enumerate(cases):
            body: dict[str, Any] = {"model": route.model}
            body["messages"] = self._render(head, case) + list(case.messages)
            body.update(head.params)
            bodies.append(body)
            results.append(
                TestResult(
                    id=new_id(),
                    run_id=run_id,
                    test_case_id=case.id,
                    position=position,
                    case_name=case.name,
                    variables=dict(case.variables),
                    messages=list(case.messages),
                    expected_output=case.expected_output,
                    status="pending",
                    attempts=0,
                    evaluations=[],
                )
            )
        estimate = self._estimate(route, bodies)
        holds = await self._hold(
            run_id, request.prompt, head.version, route, bodies, stamp, estimate
        )
        run = TestRun(
            id=run_id,
            prompt_id=prompt.id,
            prompt_slug=prompt.slug,
            version=head.version,
            prompt_version_id=head.id,
            label=request.label,
            model=model,
            model_override=request.model_override,
            selection={
                **(msgspec_dict(request.tests) if request.tests else {}),
                "stamp": stamp.as_json(),
            },
            concurrency=request.concurrency,
            budget_id=request.budget_id,
            schedule_id=schedule_id,
            status="pending",
            total=len(results),
            completed=0,
            passed=0,
            failed=0,
            errored=0,
            cost_usd=Decimal(0),
            estimate_usd=estimate,
            cancel_requested=False,
            starts=0,
            created_at=now,
        )
        try:
            async with self._sessions.begin() as session:
                session.add(run)
                await session.flush()
                session.add_all(results)
        except BaseException:
            await self.release(holds, route)
            raise
        return PlannedRun(run, holds, route)

    async def _version(self, request: RunRequest) -> CompiledVersion:
        """The version the run tests: pinned, labelled, else `production`, else the latest.

        (Never an A/B variant: a run tests one version.)"""
        snapshot = await self._cache.snapshot(request.prompt)
        if snapshot is None or snapshot.archived:
            raise PromptNotFound(f"No prompt with slug '{request.prompt}'.", param="prompt")
        number: int | None
        if request.version is not None:
            number = request.version
        elif request.label is not None and request.label != "latest":
            number = snapshot.labels.get(request.label)
            if number is None:
                known = ", ".join(["latest", *sorted(snapshot.labels)])
                raise VersionNotFound(
                    f"Prompt '{request.prompt}' has no label '{request.label}' (labels: {known}).",
                    param="label",
                )
        else:
            number = snapshot.labels.get("production") if request.label is None else None
            number = number or snapshot.latest
        compiled = None if number is None else await self._cache.version(snapshot, number)
        if compiled is None:
            raise VersionNotFound(
                f"Prompt '{request.prompt}' has no version {number or ''}".rstrip() + ".",
                param="version",
            )
        return compiled

    @staticmethod
    def _render(version: CompiledVersion, case: TestCase) -> list[dict[str, Any]]:
        try:
            return version.render(case.variables)
        except SluiceError as exc:
            exc.message = (
                f"Test case '{case.name}' ({case.id}) does not fit version {version.version}: "
                + exc.message
            )
            exc.param = "tests"
            raise

    async def _stamp(self, request: RunRequest) -> RunStamp:
        if request.budget_id is None:
            return RunStamp()
        if self._budgets is None:
            raise InvalidRequest("This gateway has no budgets enabled.", param="budget_id")
        budget = await self._budgets.registry.get(request.budget_id)
        if budget.scope is Scope.GLOBAL:
            return RunStamp()
        if budget.scope is Scope.USER:
            return RunStamp(user=budget.scope_value)
        if budget.scope is Scope.PROMPT and budget.scope_value == request.prompt:
            return RunStamp()
        if budget.scope is Scope.TAG and budget.scope_value is not None:
            tag = parse_tag(budget.scope_value)
            if tag is not None:
                return RunStamp(tags={tag[0]: tag[1]})
        raise InvalidRequest(
            f"Budget {budget.label} cannot apply to a test run of '{request.prompt}': charge "
            "runs to a global, user, tag, or this prompt's budget.",
            param="budget_id",
        )

    def _estimate(self, route: Route, bodies: list[dict[str, Any]]) -> Decimal:
        if self._budgets is None:
            return Decimal(0)
        price = self._budgets.pricing.price_for(route.model)
        if price is None:
            return Decimal(0)  # unpriced: nothing to hold, and the report says "0"
        ticks = 0
        for body in bodies:
            ticks += estimate_chat(
                route.model, copy.deepcopy(body), price, self._default_max_tokens
            ).cost_ticks
        return from_ticks(ticks)

    async def _hold(
        self,
        run_id: str,
        slug: str,
        version: int,
        route: Route,
        bodies: list[dict[str, Any]],
        stamp: RunStamp,
        estimate: Decimal,
    ) -> dict[int, Reservation]:
        holds: dict[int, Reservation] = {}
        if self._budgets is None:
            return holds
        try:
            for position, body in enumerate(bodies):
                call = call_context(slug, version, stamp)
                call.request_id = f"testrun:{run_id}:{position}:hold"
                held = await self._budgets.reserve(
                    call, route, copy.deepcopy(body), "chat.completions"
                )
                if held is not None:
                    holds[position] = held
        except BudgetExceeded as exc:
            await self.release(holds, route)
            raise BudgetExceeded(
                f"This run of {len(bodies)} cases could cost up to "
                f"${estimate.normalize():f} and its budgets cannot hold it: {exc.message}",
                headers={"x-sluice-estimated-cost-usd": f"{estimate.normalize():f}"},
            ) from None
        except BaseException:
            await self.release(holds, route)
            raise
        return holds

    async def release(self, holds: dict[int, Reservation], route: Route) -> None:
        if self._budgets is None:
            return
        for position in list(holds):
            await self._budgets.settle(holds.pop(position), route, None)


def msgspec_dict(selection: CaseSelection) -> dict[str, Any]:
    return {"ids": list(selection.ids), "tags": list(selection.tags)}


async def _selected_cases(
    session: AsyncSession, prompt: Prompt, selection: CaseSelection
) -> list[TestCase]:
    rows = list(
        (
            await session.scalars(
                select(TestCase).where(TestCase.prompt_id == prompt.id).order_by(TestCase.id)
            )
        ).all()
    )
    if not rows:
        raise InvalidRequest(
            f"Prompt '{prompt.slug}' has no test cases: add some with "
            f"POST /admin/prompts/{prompt.slug}/tests.",
            param="prompt",
        )
    if selection.everything:
        return rows
    known = {row.id for row in rows}
    unknown = [case_id for case_id in selection.ids if case_id not in known]
    if unknown:
        raise InvalidRequest(
            f"Not test cases of '{prompt.slug}': {', '.join(unknown[:10])}.", param="tests.ids"
        )
    ids, tags = set(selection.ids), set(selection.tags)
    chosen = [row for row in rows if row.id in ids or tags.intersection(row.tags)]
    if not chosen:
        raise InvalidRequest(
            f"No test case of '{prompt.slug}' has any of the tags {', '.join(sorted(tags))}.",
            param="tests.tags",
        )
    return chosen
