"""Admin: test runs — start (202), progress, per-case results, cancel, compare two runs."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from admin.auth import require_admin
from admin.pagination import Page, decode_cursor, encode_cursor, page_limit
from gateway.errors import InvalidRequest
from gateway.testsuites.records import Comparison, RunRecord, TestResultRecord
from gateway.testsuites.runs import TestRunService
from gateway.testsuites.specs import RunRequest

__all__ = ["TestRunController"]

_STATUSES = ("pending", "running", "completed", "failed", "cancelled")


class TestRunController(Controller):
    path = "/admin/test-runs"
    tags = ["admin: test runs"]
    guards = [require_admin]

    @post("/", status_code=202, summary="Start a test run; answers at once with its id")
    async def start(
        self, data: JSONBody[RunRequest], test_run_service: NamedDependency[TestRunService]
    ) -> RunRecord:
        return await test_run_service.start(data)

    @get("/", summary="Test runs, newest first")
    async def list_runs(
        self,
        test_run_service: NamedDependency[TestRunService],
        prompt: FromQuery[str | None] = None,
        status: FromQuery[str | None] = None,
        schedule_id: FromQuery[str | None] = None,
        limit: FromQuery[int | None] = None,
        cursor: FromQuery[str | None] = None,
    ) -> Page[RunRecord]:
        if status is not None and status not in _STATUSES:
            raise InvalidRequest(f"status must be one of {', '.join(_STATUSES)}.", param="status")
        size = page_limit(limit)
        rows = await test_run_service.list_runs(
            limit=size + 1,
            after=decode_cursor(cursor),
            prompt=prompt,
            status=status,
            schedule_id=schedule_id,
        )
        data = rows[:size]
        more = len(rows) > size and data
        return Page(data=data, next_cursor=encode_cursor(data[-1].id) if more else None)

    @get("/{run_id:str}", summary="A run's status and aggregates (compare_to: a baseline run)")
    async def get_run(
        self,
        run_id: FromPath[str],
        test_run_service: NamedDependency[TestRunService],
        compare_to: FromQuery[str | None] = None,
    ) -> RunRecord:
        return await test_run_service.get(run_id, compare_to=compare_to)

    @get("/{run_id:str}/results", summary="Per-case results in suite order")
    async def results(
        self,
        run_id: FromPath[str],
        test_run_service: NamedDependency[TestRunService],
        limit: FromQuery[int | None] = None,
        cursor: FromQuery[str | None] = None,
    ) -> Page[TestResultRecord]:
        size = page_limit(limit, default=500)
        after = decode_cursor(cursor)
        if after is not None and not after.isdigit():
            raise InvalidRequest("cursor is not one this API returned.", param="cursor")
        rows = await test_run_service.results(
            run_id, limit=size + 1, after=int(after) if after is not None else None
        )
        data = rows[:size]
        more = len(rows) > size and data
        return Page(data=data, next_cursor=encode_cursor(str(data[-1].position)) if more else None)

    @post("/{run_id:str}/cancel", status_code=200, summary="Cancel a pending or running run")
    async def cancel(
        self, run_id: FromPath[str], test_run_service: NamedDependency[TestRunService]
    ) -> RunRecord:
        return await test_run_service.cancel(run_id)

    @get("/{run_id:str}/compare/{baseline_id:str}", summary="Case-by-case diff and the gate")
    async def compare(
        self,
        run_id: FromPath[str],
        baseline_id: FromPath[str],
        test_run_service: NamedDependency[TestRunService],
    ) -> Comparison:
        return await test_run_service.compare(run_id, baseline_id)
