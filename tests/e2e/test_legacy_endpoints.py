"""Legacy completions and moderations through the gateway with the official openai SDK, and the
404 every other /v1 path gets."""

from __future__ import annotations

import uuid

import httpx
import openai
import pytest

from gateway.tokens.counting import count_embedding_input, count_text
from sluice_devtools.fake_upstream import FakeUpstreamThread
from tests.conftest import RunningGateway
from tests.e2e.budgets_support import create_budget, expected_cost, settled_budget, usd

MODEL = "gpt-4o-mini"


def test_a_completion_is_answered_billed_and_logged(gateway: RunningGateway) -> None:
    budget = create_budget(
        gateway.admin, scope="user", scope_value="old", period="daily", limit_usd=1
    )
    client = gateway.openai()
    prompt = f"Say {uuid.uuid4().hex[:8]} #words=4"
    raw = client.completions.with_raw_response.create(
        model=MODEL, prompt=prompt, extra_headers={"X-Sluice-User": "old"}
    )
    completion = raw.parse()
    assert completion.choices[0].text == "w1 w2 w3 w4"
    prompt_tokens = count_embedding_input(MODEL, prompt)
    output = count_text(MODEL, "w1 w2 w3 w4")
    assert completion.usage is not None and completion.usage.prompt_tokens == prompt_tokens
    cost = expected_cost(prompt_tokens, output)
    assert raw.headers["x-sluice-cost-usd"] == str(cost.normalize())
    [row] = gateway.wait_for_rows(1, user="old")
    assert (row["endpoint"], row["status_code"], row["streamed"]) == ("completions", 200, False)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (prompt_tokens, output)
    assert usd(row["cost_usd"]) == cost
    assert row["request_body"]["prompt"] == prompt
    assert row["response_body"]["choices"][0]["text"] == "w1 w2 w3 w4"
    assert usd(settled_budget(gateway.admin, budget["id"])["spent_usd"]) == cost


def test_a_streamed_completion_relays_chunks_and_bills_from_usage(
    gateway: RunningGateway, fake_upstream: FakeUpstreamThread
) -> None:
    client = gateway.openai()
    prompts = [f"one {uuid.uuid4().hex[:8]} #words=3", "two #words=3"]
    chunks = list(
        client.completions.create(
            model=MODEL, prompt=prompts, stream=True, extra_headers={"X-Sluice-User": "oldstream"}
        )
    )
    assert all(chunk.choices for chunk in chunks)  # the usage chunk was ours, not the client's
    texts = ["".join(c.choices[0].text for c in chunks if c.choices[0].index == i) for i in (0, 1)]
    assert texts == ["w1 w2 w3", "w1 w2 w3"]
    [sent] = [r for r in fake_upstream.requests if prompts[0] in str(r.body)]
    assert sent.body["stream_options"] == {"include_usage": True}
    [row] = gateway.wait_for_rows(1, user="oldstream")
    assert row["streamed"] is True and row["usage_estimated"] is False
    assert row["prompt_tokens"] == count_embedding_input(MODEL, prompts)
    assert row["completion_tokens"] == 2 * count_text(MODEL, "w1 w2 w3")
    assert row["response_body"]["object"] == "text_completion"


def test_the_reservation_counts_the_default_sixteen_tokens_for_every_candidate(
    sqlite_gateway: RunningGateway, fake_upstream: FakeUpstreamThread
) -> None:
    gateway = sqlite_gateway
    # 16 output tokens x n=5 x 2 prompts = 160 tokens x $0.60/M = $0.000096 > the limit
    create_budget(
        gateway.admin, scope="user", scope_value="tiny", period="daily", limit_usd=0.00009
    )
    client = gateway.openai()
    marker = uuid.uuid4().hex
    with pytest.raises(openai.APIStatusError) as caught:
        client.completions.create(
            model=MODEL, prompt=[marker, "b"], n=5, extra_headers={"X-Sluice-User": "tiny"}
        )
    assert caught.value.status_code == 402
    assert not [r for r in fake_upstream.requests if marker in str(r.body)]
    assert client.completions.create(
        model=MODEL, prompt=marker, extra_headers={"X-Sluice-User": "tiny"}
    ).choices


def test_a_prompt_header_on_a_completion_is_refused(sqlite_gateway: RunningGateway) -> None:
    client = sqlite_gateway.openai()
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(
            model=MODEL, prompt="hi", extra_headers={"X-Sluice-Prompt": "any"}
        )
    assert "X-Sluice-Prompt" in caught.value.message


def test_a_moderation_is_answered_and_logged(gateway: RunningGateway) -> None:
    client = gateway.openai()
    result = client.moderations.create(
        input=["fine", "rude #flag"], extra_headers={"X-Sluice-User": "moderated"}
    )
    assert [r.flagged for r in result.results] == [False, True]
    assert result.results[1].categories.harassment is True
    [row] = gateway.wait_for_rows(1, user="moderated")
    assert (row["endpoint"], row["status_code"]) == ("moderations", 200)
    assert row["model_requested"] == "omni-moderation-latest"
    assert row["request_body"]["input"] == ["fine", "rude #flag"]
    assert row["response_body"]["results"][1]["flagged"] is True
    assert row["cost_usd"] is None


def test_a_moderation_needs_a_key(sqlite_gateway: RunningGateway) -> None:
    client = sqlite_gateway.openai("sk-sluice-not-a-key")
    with pytest.raises(openai.AuthenticationError):
        client.moderations.create(input="hello")


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/audio/speech"), ("GET", "/v1/files"), ("POST", "/v1/images/generations")],
)
def test_other_v1_paths_are_a_404_naming_what_is_served(
    sqlite_gateway: RunningGateway, method: str, path: str
) -> None:
    response = httpx.request(method, sqlite_gateway.base_url + path, json={})
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "not_found" and error["type"] == "invalid_request_error"
    assert path in error["message"]
    for served in ("/v1/chat/completions", "/v1/responses", "/v1/completions", "/v1/moderations"):
        assert served in error["message"]


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/responses", {"model": MODEL, "input": 5}, "input"),
        ("/v1/responses", {"model": MODEL, "input": [5]}, "input"),
        ("/v1/responses", {"input": "hi"}, "model"),
        ("/v1/responses", {"model": MODEL, "input": "x", "stream": "yes"}, "stream"),
        ("/v1/completions", {"model": MODEL}, "prompt"),
        ("/v1/moderations", {"model": "omni-moderation-latest"}, "input"),
        ("/v1/chat/completions", {"model": MODEL, "messages": [1]}, "messages[0]"),
    ],
)
def test_malformed_bodies_on_the_new_endpoints_are_400_naming_the_field(
    sqlite_gateway: RunningGateway, path: str, body: dict[str, object], param: str
) -> None:
    response = sqlite_gateway.http.post(
        path, json=body, headers={"Authorization": f"Bearer {sqlite_gateway.create_key()}"}
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_request", param)
