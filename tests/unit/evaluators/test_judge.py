"""llm_judge with a scripted JudgeClient standing in for the upstream model."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from evaluators.base import EvaluationInput, EvaluatorConfigError
from evaluators.judge import (
    MAX_SECTION_CHARS,
    JudgeConfig,
    JudgeReply,
    JudgeReplyError,
    LlmJudge,
    build_judge_messages,
    last_user_message,
)
from evaluators.registry import builtin_registry
from evaluators.runner import EvaluatorSpec, run_specs

RUBRIC = "The answer names the capital of France and nothing else."


class ScriptedJudge:
    """Replies with the given texts in turn, each costing 0.0002 USD, and records the calls."""

    def __init__(self, *texts: str) -> None:
        self.texts = list(texts)
        self.calls: list[dict[str, Any]] = []

    async def complete(
        self, model: str, messages: list[dict[str, Any]], *, response_format: dict[str, Any]
    ) -> JudgeReply:
        self.calls.append(
            {"model": model, "messages": messages, "response_format": response_format}
        )
        return JudgeReply(
            self.texts.pop(0), cost_usd=Decimal("0.0002"), prompt_tokens=120, completion_tokens=15
        )


def given(response: str = "Paris", expected: str | None = None) -> EvaluationInput:
    request = {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "What is the capital of Italy?"},
            {"role": "assistant", "content": "Rome."},
            {"role": "user", "content": "And of France?"},
        ],
    }
    return EvaluationInput(request=request, response_text=response, expected=expected)


CONFIG = {"rubric": RUBRIC, "model": "gpt-4o-mini"}


async def test_good_reply_is_normalised_to_the_unit_interval() -> None:
    client = ScriptedJudge('{"score": 4, "reason": "Correct and terse."}')
    judge = LlmJudge(client)
    result = await judge.evaluate(judge.validate_config(CONFIG), given())
    assert (result.score, result.passed, result.error) == (0.75, True, None)
    assert result.cost_usd == Decimal("0.0002")
    assert result.details == {
        "judge_score": 4.0,
        "reason": "Correct and terse.",
        "model": "gpt-4o-mini",
        "prompt_tokens": 120,
        "completion_tokens": 15,
    }
    call = client.calls[0]
    assert call["model"] == "gpt-4o-mini"
    assert call["response_format"] == {"type": "json_object"}


async def test_prompt_carries_rubric_last_user_message_response_and_expected() -> None:
    client = ScriptedJudge('{"score": 5, "reason": "ok"}')
    judge = LlmJudge(client)
    await judge.evaluate(judge.validate_config(CONFIG), given("Paris", expected="Paris"))
    system, user = client.calls[0]["messages"]
    assert system["role"] == "system"
    assert '{"score": <a number from 1 to 5>, "reason":' in system["content"]
    assert user["role"] == "user"
    content = user["content"]
    assert f"<rubric>\n{RUBRIC}\n</rubric>" in content
    assert "<request>\nAnd of France?\n</request>" in content
    assert "Italy" not in content  # only the last user message
    assert "<response>\nParis\n</response>" in content
    assert "<expected>\nParis\n</expected>" in content


async def test_prompt_omits_expected_when_there_is_none() -> None:
    config = JudgeConfig(RUBRIC, "m", 0, 10)
    messages = build_judge_messages(config, given())
    assert "<expected>" not in messages[1]["content"]
    assert "from 0 to 10" in messages[0]["content"]


def test_long_sections_are_cut() -> None:
    messages = build_judge_messages(JudgeConfig(RUBRIC, "m", 1, 5), given("x" * 25_000))
    content = messages[1]["content"]
    assert "x" * MAX_SECTION_CHARS + "\n[… 5000 characters cut]" in content
    assert "x" * (MAX_SECTION_CHARS + 1) not in content


def test_last_user_message_reads_a_responses_input() -> None:
    assert last_user_message({"input": "plain"}) == "plain"
    items = [{"role": "user", "content": [{"type": "input_text", "text": "asked"}]}]
    assert last_user_message({"input": items}) == "asked"


def test_last_user_message_reads_text_parts() -> None:
    request = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this picture?"},
                    {"type": "image_url", "image_url": {"url": "data:..."}},
                ],
            }
        ]
    }
    assert last_user_message(request) == "What is in this picture?\n[image_url]"
    assert last_user_message({"messages": [{"role": "system", "content": "x"}]}) is None
    assert last_user_message({}) is None


@pytest.mark.parametrize(
    ("reply", "score"),
    [
        ('```json\n{"score": 2, "reason": "meh"}\n```', 0.25),
        ('{"score": "3", "reason": "fine"}', 0.5),
        ('{"score": 1}', 0.0),
        ('{"score": 4.5, "reason": "close"}', 0.875),
    ],
)
async def test_lenient_but_valid_replies(reply: str, score: float) -> None:
    judge = LlmJudge(ScriptedJudge(reply))
    result = await judge.evaluate(judge.validate_config(CONFIG), given())
    assert result.score == score


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        ("The answer is good, 5/5.", "reply is not JSON (Expecting value: line 1 column 1"),
        ('{"score": 7, "reason": "great"}', "score 7 is outside the scale 1..5"),
        ('{"score": 0}', "score 0 is outside the scale 1..5"),
        ('{"reason": "no score"}', "score is null, not a number"),
        ('{"score": true}', "score is a boolean, not a number"),
        ('{"score": "high"}', "score 'high' is not a number"),
        ("[4]", "reply is an array, not an object"),
    ],
)
async def test_unusable_reply_raises_retryable_error_carrying_the_result(
    reply: str, why: str
) -> None:
    judge = LlmJudge(ScriptedJudge(reply))
    with pytest.raises(JudgeReplyError) as caught:
        await judge.evaluate(judge.validate_config(CONFIG), given())
    result = caught.value.result
    assert result.error is not None
    assert result.error.startswith(f"judge reply is not a valid score: {why}")
    assert result.details["raw_reply"] == reply
    assert result.cost_usd == Decimal("0.0002")  # the failed call is still billed
    assert (result.score, result.passed) == (0.0, False)


async def test_runner_retries_a_bad_reply_and_bills_both_calls() -> None:
    client = ScriptedJudge("not json", '{"score": 5, "reason": "right"}')
    registry = builtin_registry(judge_client=client)
    spec = EvaluatorSpec(id="judge", evaluator_key="llm_judge", config=CONFIG)
    [outcome] = await run_specs([spec], given(), request_id="r1", registry=registry)
    assert (outcome.result.score, outcome.result.passed) == (1.0, True)
    assert outcome.result.cost_usd == Decimal("0.0004")
    assert outcome.result.details["attempts"] == 2
    assert len(client.calls) == 2


async def test_runner_records_the_error_when_every_attempt_fails() -> None:
    client = ScriptedJudge("nope", '{"score": 9}', "still nope")
    registry = builtin_registry(judge_client=client)
    spec = EvaluatorSpec(id="judge", evaluator_key="llm_judge", config=CONFIG)
    [outcome] = await run_specs([spec], given(), request_id="r1", registry=registry, max_attempts=3)
    result = outcome.result
    assert result.error == "judge reply is not a valid score: reply is not JSON " + (
        "(Expecting value: line 1 column 1 (char 0))"
    )
    assert result.details["raw_reply"] == "still nope"
    assert result.details["attempts"] == 3
    assert result.cost_usd == Decimal("0.0006")
    assert not result.passed


async def test_without_a_client_the_result_is_an_error() -> None:
    judge = LlmJudge()
    result = await judge.evaluate(judge.validate_config(CONFIG), given())
    assert result.error == "no judge client is configured for llm_judge"


@pytest.mark.parametrize(
    ("config", "field", "fragment"),
    [
        ({"model": "m"}, "rubric", "is required"),
        ({"rubric": "  ", "model": "m"}, "rubric", "is required"),
        ({"rubric": "r"}, "model", "is required"),
        ({**CONFIG, "scale": [5, 1]}, "scale", "min (5) must be less than max (1)"),
        ({**CONFIG, "scale": [1]}, "scale", "expected [min, max], two numbers, got [1]"),
        ({**CONFIG, "scale": ["1", "5"]}, "scale", "expected [min, max], two numbers"),
        ({**CONFIG, "temperature": 0}, "temperature", "unknown config field 'temperature'"),
    ],
)
def test_config_errors(config: dict[str, Any], field: str, fragment: str) -> None:
    with pytest.raises(EvaluatorConfigError) as caught:
        LlmJudge().validate_config(config)
    assert caught.value.field == field
    assert fragment in caught.value.message


def test_scale_config_is_read() -> None:
    config = LlmJudge().validate_config({**CONFIG, "scale": [0, 10]})
    assert (config.scale_min, config.scale_max) == (0.0, 10.0)
