"""What an evaluator sees for a logged response, and which specs a response is due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from evaluators import EvaluatorSpec, should_sample, validate_specs
from gateway.db.models import PromptVersion, RequestLog
from gateway.errors import InvalidRequest
from gateway.evaluations.feedback import ManualEvaluation, manual_row
from gateway.evaluations.inputs import ResponseFacts, build_input, output_text_of
from gateway.evaluations.plans import OwnerPlan, VersionInfo
from gateway.prompts.compiled import CompiledVersion
from gateway.requestlog.entry import LogEntry

NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)


def _version(**fields: Any) -> VersionInfo:
    row = PromptVersion(
        id="v1",
        prompt_id="p1",
        version=3,
        messages=[{"role": "system", "content": "You answer about {{topic}}."}],
        model=fields.get("model"),
        params=fields.get("params", {}),
        variables=["topic"],
        variables_schema=None,
        response_schema={"type": "object"},
    )
    return VersionInfo("v1", CompiledVersion.from_row(row, "faq"), row.response_schema)


def _entry(**fields: Any) -> LogEntry:
    base: dict[str, Any] = {
        "id": "row-1",
        "request_id": "req-1",
        "created_at": NOW,
        "endpoint": "chat.completions",
        "status_code": 200,
        "prompt_slug": "faq",
        "prompt_version": 3,
        "prompt_version_id": "v1",
        "variables": {"topic": "tides"},
        "request_body": {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "Q"}],
            "temperature": 1,
        },
        "latency_ms": 12.5,
        "cost_usd": Decimal("0.001"),
        "prompt_tokens": 10,
        "completion_tokens": 3,
    }
    return LogEntry(**{**base, **fields})


def test_the_rendered_request_is_rebuilt_as_the_proxy_built_it() -> None:
    version = _version(model="gpt-4o", params={"temperature": 0})
    data = build_input(ResponseFacts.from_entry(_entry(), '{"a": 1}'), version)
    assert data.request["messages"] == [
        {"role": "system", "content": "You answer about tides."},
        {"role": "user", "content": "Q"},
    ]
    assert (data.request["model"], data.request["temperature"]) == ("gpt-4o", 0)
    assert data.response_json == {"a": 1} and data.response_schema == {"type": "object"}
    assert (data.latency_ms, data.cost_usd, data.prompt_tokens) == (12.5, Decimal("0.001"), 10)
    assert data.variables == {"topic": "tides"} and data.expected is None
    prose = build_input(ResponseFacts.from_entry(_entry(request_body=None), "Hi."), None)
    assert prose.request == {} and prose.response_json is None and prose.response_text == "Hi."


def test_facts_from_a_row_read_the_logged_output() -> None:
    row = RequestLog(
        **{**_entry().as_row(), "response_body": {"choices": [{"message": {"content": "Hi"}}]}}
    )
    facts = ResponseFacts.from_row(row)
    assert facts.output_text == "Hi" and facts.is_production
    assert output_text_of(None) is None
    assert output_text_of({"choices": [{"message": {"content": None}}]}) == ""
    assert output_text_of({"data": []}) is None
    for changes in ({"is_test_run": True}, {"status_code": 500}, {"prompt_version_id": None}):
        assert not ResponseFacts.from_entry(_entry(**changes), "x").is_production


def test_a_responses_request_is_rebuilt_the_responses_way_and_its_output_read() -> None:
    version = _version(params={"max_tokens": 9})
    body = {"model": "gpt-4o-mini", "input": "Q", "instructions": "Mine."}
    data = build_input(ResponseFacts.from_entry(_entry(request_body=body), "A"), version)
    assert data.request["instructions"] == "You answer about tides.\n\nMine."
    assert data.request["input"] == [{"role": "user", "content": "Q"}]
    assert data.request["max_output_tokens"] == 9 and "messages" not in data.request
    part = {"type": "output_text", "text": "Hi", "annotations": []}
    answer = {"object": "response", "output": [{"type": "message", "content": [part]}]}
    assert output_text_of(answer) == "Hi"
    assert output_text_of({"object": "text_completion", "choices": [{"text": "t"}]}) == "t"


def _plan(*specs: EvaluatorSpec, created: datetime = NOW) -> OwnerPlan:
    return OwnerPlan(
        owner="v1",
        specs=specs,
        versions={s.id: "1" for s in specs},
        created_at={s.id: created for s in specs},
        plan=validate_specs(specs),
    )


def test_a_response_is_due_the_enabled_sampled_specs_older_than_it() -> None:
    plan = _plan(
        EvaluatorSpec(id="always", evaluator_key="json_valid"),
        EvaluatorSpec(id="half", evaluator_key="json_valid", sampling_rate=0.5),
        EvaluatorSpec(id="off", evaluator_key="json_valid", enabled=False),
        EvaluatorSpec(
            id="judge",
            evaluator_key="llm_judge",
            run_mode="queued",
            sampling_rate=0.5,
            config={"rubric": "r", "model": "m"},
        ),
    )
    for i in range(50):
        request_id = f"req-{i}"
        due = plan.expected_ids(request_id, NOW)
        assert "always" in due and "off" not in due
        assert ("half" in due) == should_sample(request_id, "half", 0.5)
        assert plan.wants_worker(request_id) == should_sample(request_id, "judge", 0.5)
    assert plan.expected_ids("req-1", NOW - timedelta(seconds=1)) == set()


@pytest.mark.parametrize(
    ("body", "score", "passed", "key"),
    [
        ({"thumbs": "up"}, 1.0, True, "feedback"),
        ({"thumbs": "down"}, 0.0, False, "feedback"),
        ({"rating": 1}, 0.0, False, "feedback"),
        ({"rating": 3}, 0.5, True, "feedback"),
        ({"rating": 5, "score": 0.2}, 0.2, False, "manual"),
        ({"passed": True}, None, True, "manual"),
        ({"comment": "hm", "name": "tone"}, None, None, "tone"),
    ],
)
def test_feedback_becomes_a_manual_evaluation(
    body: dict[str, Any], score: float | None, passed: bool | None, key: str
) -> None:
    row = RequestLog(**_entry().as_row())
    made = manual_row(row, ManualEvaluation(**body))
    assert (made["score"], made["passed"], made["evaluator_key"]) == (score, passed, key)
    assert made["context"] == "manual" and made["evaluator_config_id"] is None
    assert made["request_log_id"] == "row-1" and made["prompt_version"] == 3


def test_empty_feedback_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        manual_row(RequestLog(**_entry().as_row()), ManualEvaluation(author="x"))
