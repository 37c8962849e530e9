"""Admin: schedules — run a prompt's suite on a cron expression (UTC); trigger one now."""

from __future__ import annotations

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from admin.auth import require_admin
from admin.pagination import Page, decode_cursor, make_page, page_limit
from gateway.testsuites.records import RunRecord, ScheduleRecord
from gateway.testsuites.schedules import ScheduleService
from gateway.testsuites.specs import ScheduleCreate, SchedulePatch

__all__ = ["ScheduleController"]


class ScheduleController(Controller):
    path = "/admin/schedules"
    tags = ["admin: schedules"]
    guards = [require_admin]

    @post("/", summary="Schedule a prompt's suite")
    async def create(
        self, data: JSONBody[ScheduleCreate], schedule_service: NamedDependency[ScheduleService]
    ) -> ScheduleRecord:
        return await schedule_service.create(data)

    @get("/", summary="Schedules, oldest first")
    async def list_schedules(
        self,
        schedule_service: NamedDependency[ScheduleService],
        prompt: FromQuery[str | None] = None,
        limit: FromQuery[int | None] = None,
        cursor: FromQuery[str | None] = None,
    ) -> Page[ScheduleRecord]:
        size = page_limit(limit)
        rows = await schedule_service.list_schedules(
            limit=size + 1, after=decode_cursor(cursor), prompt=prompt
        )
        return make_page(rows, size)

    @get("/{schedule_id:str}", summary="One schedule, with its last and next run")
    async def get_schedule(
        self, schedule_id: FromPath[str], schedule_service: NamedDependency[ScheduleService]
    ) -> ScheduleRecord:
        return await schedule_service.get(schedule_id)

    @patch("/{schedule_id:str}", summary="Change a schedule (enable, disable, cron, ...)")
    async def update(
        self,
        schedule_id: FromPath[str],
        data: JSONBody[SchedulePatch],
        schedule_service: NamedDependency[ScheduleService],
    ) -> ScheduleRecord:
        return await schedule_service.update(schedule_id, data)

    @delete("/{schedule_id:str}", status_code=200, summary="Delete a schedule (its runs stay)")
    async def remove(
        self, schedule_id: FromPath[str], schedule_service: NamedDependency[ScheduleService]
    ) -> ScheduleRecord:
        return await schedule_service.delete(schedule_id)

    @post("/{schedule_id:str}/trigger", status_code=202, summary="Run the schedule's suite now")
    async def trigger(
        self, schedule_id: FromPath[str], schedule_service: NamedDependency[ScheduleService]
    ) -> RunRecord:
        return await schedule_service.trigger(schedule_id)
