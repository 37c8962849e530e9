"""Evaluator configs through the admin API: lifecycle, copies, defaults and every bad input."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import RunningGateway
from tests.e2e.evaluations_support import attach, monitored_prompt
from tests.e2e.prompts_support import make_prompt, system

SCHEMA = {"type": "object", "required": ["answer"]}


def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


def test_attach_list_change_copy_and_remove(gateway: RunningGateway) -> None:
    make_prompt(gateway, "faq", system("A"), system("B"))
    valid = attach(gateway, "faq", 1, {"evaluator_key": "json_valid"})
    schema = attach(
        gateway,
        "faq",
        1,
        {
            "evaluator_key": "json_schema",
            "config": {"schema": SCHEMA},
            "weight": 2,
            "threshold": 1,
            "sampling_rate": 0.5,
            "depends_on": ["json_valid"],  # an evaluator key names the version's config
        },
    )
    assert schema["depends_on"] == [valid["id"]]
    assert (schema["prompt"], schema["version"], schema["run_mode"]) == ("faq", 1, "inline")
    assert schema["evaluator_version"] == "1" and schema["enabled"] is True

    listed = gateway.admin.get("/admin/prompts/faq/versions/1/evaluators").json()
    assert [c["id"] for c in listed["data"]] == [valid["id"], schema["id"]]
    assert gateway.admin.get("/admin/prompts/faq/versions/2/evaluators").json()["data"] == []
    assert gateway.admin.get(f"/admin/evaluators/{schema['id']}").json() == schema

    changed = gateway.admin.patch(
        f"/admin/evaluators/{schema['id']}", json={"threshold": None, "enabled": False}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["threshold"] is None and changed.json()["enabled"] is False
    assert changed.json()["weight"] == 2  # untouched fields stay

    # A copy depends on the target's own config with the same key, not the source's.
    missing = gateway.admin.post(
        f"/admin/evaluators/{schema['id']}/copy", json={"prompt": "faq", "version": 2}
    )
    assert _error(missing, 400)["param"] == "depends_on"
    target_valid = gateway.admin.post(
        f"/admin/evaluators/{valid['id']}/copy", json={"prompt": "faq", "version": 2}
    ).json()
    copied = gateway.admin.post(
        f"/admin/evaluators/{schema['id']}/copy", json={"prompt": "faq", "version": 2}
    )
    assert copied.status_code == 201, copied.text
    assert copied.json()["version"] == 2 and copied.json()["depends_on"] == [target_valid["id"]]
    case = gateway.admin.post("/admin/prompts/faq/tests", json={"name": "refund"})
    assert case.status_code == 201, case.text
    case_id = case.json()["id"]
    to_case = gateway.admin.post(
        f"/admin/evaluators/{valid['id']}/copy", json={"test_case_id": case_id}
    )
    assert to_case.status_code == 201, to_case.text
    assert to_case.json()["test_case_id"] == case_id and to_case.json()["prompt"] is None
    no_case = gateway.admin.post(
        f"/admin/evaluators/{valid['id']}/copy", json={"test_case_id": "ghost"}
    )
    assert _error(no_case, 404)["param"] == "test_case_id"

    # A config others depend on cannot go first.
    blocked = gateway.admin.delete(f"/admin/evaluators/{valid['id']}")
    assert _error(blocked, 409)["param"] == "id"
    assert gateway.admin.delete(f"/admin/evaluators/{schema['id']}").status_code == 200
    assert gateway.admin.delete(f"/admin/evaluators/{valid['id']}").status_code == 200
    assert gateway.admin.get(f"/admin/evaluators/{valid['id']}").status_code == 404


def test_run_mode_defaults_to_queued_for_evaluators_that_call_out(
    sqlite_gateway: RunningGateway,
) -> None:
    judge, contains = monitored_prompt(
        sqlite_gateway,
        "modes",
        {"evaluator_key": "llm_judge", "config": {"rubric": "Polite.", "model": "gpt-4o-mini"}},
        {"evaluator_key": "contains", "config": {"value": "x"}},
    )
    assert judge["run_mode"] == "queued" and contains["run_mode"] == "inline"


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({"evaluator_key": "nope"}, "evaluator_key", "unknown evaluator 'nope'"),
        ({"evaluator_key": "regex", "config": {"pattern": "(unclosed"}}, "config.pattern", ""),
        (
            {"evaluator_key": "json_schema", "config": {"schema": {"type": "nonsense"}}},
            "config.schema",
            "not a valid JSON Schema",
        ),
        ({"evaluator_key": "json_schema"}, "config.schema", "response_schema"),
        ({"evaluator_key": "contains", "config": {"valu": "x"}}, "config.valu", "did you mean"),
        (
            {"evaluator_key": "contains", "config": {"value": "x"}, "threshold": 1.5},
            "threshold",
            "",
        ),
        ({"evaluator_key": "json_valid", "sampling_rate": -0.1}, "sampling_rate", ""),
        ({"evaluator_key": "json_valid", "depends_on": ["ghost"]}, "depends_on", "not defined"),
        ({"evaluator_key": "word_overlap"}, "config.expected", "expected output"),
        (
            {
                "evaluator_key": "llm_judge",
                "config": {"rubric": "r", "model": "m"},
                "run_mode": "inline",
            },
            "run_mode",
            "queued",
        ),
        ({"evaluator_key": "llm_judge", "config": {"model": "gpt-4o-mini"}}, "config.rubric", ""),
        ({"evaluator_key": "json_valid", "colour": "red"}, "data", "colour"),
    ],
)
def test_bad_configs_are_400s_naming_the_field(
    sqlite_gateway: RunningGateway, body: dict[str, Any], param: str, words: str
) -> None:
    make_prompt(sqlite_gateway, "bad", system("A"))
    response = sqlite_gateway.admin.post("/admin/prompts/bad/versions/1/evaluators", json=body)
    error = _error(response, 400)
    assert error["param"] == param, error
    assert words in error["message"]
    assert sqlite_gateway.admin.get("/admin/prompts/bad/versions/1/evaluators").json()["data"] == []


def test_dependency_cycles_unknown_owners_and_bad_copies(sqlite_gateway: RunningGateway) -> None:
    gateway = sqlite_gateway
    first, second = monitored_prompt(
        gateway,
        "cycle",
        {"evaluator_key": "json_valid"},
        {"evaluator_key": "contains", "config": {"value": "a"}, "depends_on": ["json_valid"]},
    )
    cycle = gateway.admin.patch(
        f"/admin/evaluators/{first['id']}", json={"depends_on": [second["id"]]}
    )
    error = _error(cycle, 400)
    assert error["param"] == "depends_on" and "cycle" in error["message"]
    assert gateway.admin.get(f"/admin/evaluators/{first['id']}").json()["depends_on"] == []

    twice = attach(gateway, "cycle", 1, {"evaluator_key": "contains", "config": {"value": "b"}})
    ambiguous = gateway.admin.post(
        "/admin/prompts/cycle/versions/1/evaluators",
        json={"evaluator_key": "json_valid", "depends_on": ["contains"]},
    )
    assert "several evaluators" in _error(ambiguous, 400)["message"]
    by_id = attach(
        gateway, "cycle", 1, {"evaluator_key": "json_valid", "depends_on": [twice["id"]]}
    )
    assert by_id["depends_on"] == [twice["id"]]

    assert (
        _error(
            gateway.admin.post(
                "/admin/prompts/ghost/versions/1/evaluators", json={"evaluator_key": "json_valid"}
            ),
            404,
        )["code"]
        == "prompt_not_found"
    )
    assert (
        _error(
            gateway.admin.post(
                "/admin/prompts/cycle/versions/9/evaluators", json={"evaluator_key": "json_valid"}
            ),
            404,
        )["code"]
        == "version_not_found"
    )
    assert (
        gateway.admin.patch("/admin/evaluators/ghost", json={"enabled": False}).status_code == 404
    )
    assert (
        gateway.admin.post("/admin/evaluators/ghost/copy", json={"test_case_id": "x"}).status_code
        == 404
    )
    both = gateway.admin.post(
        f"/admin/evaluators/{first['id']}/copy",
        json={"prompt": "cycle", "version": 1, "test_case_id": "x"},
    )
    assert _error(both, 400)["param"] == "test_case_id"
    half = gateway.admin.post(f"/admin/evaluators/{first['id']}/copy", json={"prompt": "cycle"})
    assert _error(half, 400)["param"] == "version"
    assert (
        gateway.admin.get(
            "/admin/prompts/cycle/versions/1/evaluators", headers={"Authorization": "Bearer wrong"}
        ).status_code
        == 401
    )
