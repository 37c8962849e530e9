"""Every endpoint family, on SQLite and Postgres, fed what an attacker sends: JSON nested 100k
deep, bodies over the limit, integers past 32 and 64 bits, NUL and control characters. Each
answer is a 4xx in the OpenAI error shape, never a 500."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec
import pytest

from tests.conftest import GatewayFactory, RunningGateway

MAX_BODY = 300_000
DEEP = b"[" * 100_000 + b"]" * 100_000  # 200 kB: under the limit, far over any depth bound
HUGE = 99999999999999999999  # past 64 bits
BIG = 2**40  # fits 64 bits, not the INTEGER columns


def _nested(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = {"a": value}
    return value


# Every family that takes a body: (method, path, a body that would otherwise be accepted).
WRITES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/v1/chat/completions",
     {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}),
    ("POST", "/v1/embeddings", {"model": "text-embedding-3-small", "input": "x"}),
    ("POST", "/admin/keys", {"name": "k"}),
    ("POST", "/admin/prompts", {"slug": "p2", "description": "d"}),
    ("PATCH", "/admin/prompts/p1", {"description": "d"}),
    ("POST", "/admin/prompts/p1/versions",
     {"messages": [{"role": "system", "content": "hi"}], "note": "n"}),
    ("PUT", "/admin/prompts/p1/labels/staging", {"version": 1}),
    ("POST", "/admin/prompts/p1/versions/1/evaluators",
     {"evaluator_key": "contains", "config": {"value": "x"}}),
    ("PATCH", "/admin/evaluators/ev_missing", {"weight": 1.0}),
    ("POST", "/admin/prompts/p1/tests", {"name": "t", "variables": {}}),
    ("PATCH", "/admin/tests/tc_missing", {"name": "t"}),
    ("POST", "/admin/test-runs", {"prompt": "p1", "version": 1}),
    ("POST", "/admin/schedules", {"prompt": "p1", "cron": "0 * * * *"}),
    ("POST", "/admin/budgets",
     {"scope": "user", "scope_value": "u", "period": "daily", "limit_usd": 1}),
    ("PATCH", "/admin/budgets/b_missing", {"limit_usd": 2}),
    ("PUT", "/admin/pricing", {"models": {"m": {"input": 1, "output": 1}}}),
    ("POST", "/admin/responses/r_missing/evaluations", {"score": 1.0, "name": "human"}),
    ("POST", "/admin/ab-tests",
     {"prompt": "p1", "variants": [{"name": "a", "version": 1, "weight": 1}]}),
    ("POST", "/admin/prompts:import", {"prompts": [{"slug": "p3", "versions": []}]}),
]  # fmt: skip

# Every family that lists or reads: the query parameters it filters by.
READS: list[tuple[str, dict[str, str]]] = [
    ("/admin/keys", {}),
    ("/admin/prompts", {"tag": "t"}),
    ("/admin/prompts/p1/versions", {}),
    ("/admin/prompts/p1/versions/1/evaluators", {}),
    ("/admin/prompts/p1/tests", {"tag": "t"}),
    ("/admin/test-runs", {}),
    ("/admin/schedules", {}),
    ("/admin/budgets", {}),
    ("/admin/responses", {"user": "u", "session": "s", "prompt": "p1"}),
    ("/admin/evaluations", {"prompt": "p1", "evaluator_key": "contains"}),
    ("/admin/ab-tests", {}),
    ("/admin/alerts", {}),
    ("/admin/analytics/models", {}),
    ("/admin/prompts:export", {"prompt": "p1"}),
]


def _error(response: httpx.Response, where: str) -> dict[str, Any]:
    assert 400 <= response.status_code < 500, f"{where}: {response.status_code} {response.text}"
    body = response.json()
    assert set(body) == {"error"}, where
    assert set(body["error"]) == {"message", "type", "param", "code"}, where
    assert body["error"]["message"], where
    return body["error"]  # type: ignore[no-any-return]


def _send(
    gateway: RunningGateway, key: str, method: str, path: str, content: bytes
) -> httpx.Response:
    if path.startswith("/v1/"):
        return gateway.http.request(
            method, path, content=content, headers={"Authorization": f"Bearer {key}"}
        )
    return gateway.admin.request(
        method, path, content=content, headers={"Content-Type": "application/json"}
    )


@pytest.fixture
def bounded_gateway(start_gateway: GatewayFactory, database_url: str) -> RunningGateway:
    gateway = start_gateway(database_url, SLUICE_MAX_BODY_BYTES=str(MAX_BODY))
    gateway.admin.post("/admin/prompts", json={"slug": "p1"}).raise_for_status()
    gateway.admin.post(
        "/admin/prompts/p1/versions", json={"messages": [{"role": "system", "content": "hi"}]}
    ).raise_for_status()
    return gateway


def test_json_nested_100k_deep_is_a_400_everywhere(bounded_gateway: RunningGateway) -> None:
    key = bounded_gateway.create_key()
    for method, path, _ in WRITES:
        response = _send(bounded_gateway, key, method, path, DEEP)
        error = _error(response, path)
        assert response.status_code == 400, path
        assert error["code"] == "invalid_request", path
        assert "nested more than 64 levels" in error["message"], path
    cell = "[" * 20_000 + "]" * 20_000  # a CSV field holds at most 128 KiB
    for fmt, text in (("jsonl", DEEP.decode()), ("csv", f'name,variables\nt,"{cell}"')):
        response = bounded_gateway.admin.post(
            "/admin/prompts/p1/tests/import", params={"format": fmt}, content=text.encode()
        )
        assert "nested more than 64" in _error(response, f"import {fmt}")["message"]


def test_json_over_the_depth_bound_is_refused_even_when_valid(
    bounded_gateway: RunningGateway,
) -> None:
    key = bounded_gateway.create_key()
    for method, path, body in WRITES:
        deep = dict(body, extra=_nested(70))
        response = _send(bounded_gateway, key, method, path, msgspec.json.encode(deep))
        assert response.status_code == 400, path
        assert "nested more than 64 levels" in _error(response, path)["message"], path
    shallow = {"name": "shallow", "variables": {"v": _nested(40)}}
    response = bounded_gateway.admin.post("/admin/prompts/p1/tests", json=shallow)
    assert response.status_code == 201, response.text


def test_bodies_over_the_limit_are_413_everywhere(bounded_gateway: RunningGateway) -> None:
    key = bounded_gateway.create_key()
    filler = b'{"pad": "' + b"x" * (MAX_BODY + 10) + b'"}'
    for method, path, _ in [*WRITES, ("POST", "/admin/prompts/p1/tests/import", {})]:
        response = _send(bounded_gateway, key, method, path, filler)
        assert response.status_code == 413, path
        assert _error(response, path)["code"] == "request_too_large", path


def test_out_of_range_integers_are_400_naming_the_param(bounded_gateway: RunningGateway) -> None:
    admin = bounded_gateway.admin
    for path, params in (
        ("/admin/responses", {"status": str(HUGE)}),
        ("/admin/responses", {"version": str(HUGE)}),
        ("/admin/responses", {"status": str(BIG)}),
        ("/admin/evaluations", {"version": str(BIG)}),
        ("/admin/keys", {"limit": str(HUGE)}),
        ("/admin/analytics/models", {"days": str(HUGE)}),
    ):
        [name] = params
        response = admin.get(path, params=params)
        assert response.status_code == 400, (path, params)
        assert _error(response, path)["param"] == name, (path, params)
    for path in (
        f"/admin/prompts/p1/versions/{HUGE}",
        f"/admin/prompts/p1/versions/{BIG}/evaluators",
    ):
        response = admin.get(path)
        assert response.status_code == 400, path
        assert _error(response, path)["param"] == "number", path
    for method, path, body, param in (
        ("PUT", "/admin/prompts/p1/labels/staging", {"version": BIG}, "version"),
        ("POST", "/admin/test-runs", {"prompt": "p1", "version": BIG}, "version"),
        ("POST", "/admin/ab-tests",
         {"prompt": "p1", "variants": [{"name": "a", "version": 1, "weight": BIG}]},
         "variants[0].weight"),
        ("PUT", "/admin/pricing",
         {"models": {"m": {"input": 1, "output": 1, "max_output_tokens": BIG}}},
         "models.m.max_output_tokens"),
        ("POST", "/admin/keys", {"name": "k", "rpm_limit": BIG}, "rpm_limit"),
    ):  # fmt: skip
        response = admin.request(method, path, json=body)
        assert response.status_code == 400, path
        assert _error(response, path)["param"] == param, path
    response = admin.put(
        "/admin/prompts/p1/labels/staging", content=b'{"version": 1e999}',
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert response.status_code == 400
    assert "number too large" in _error(response, "label HUGE")["message"]
    for fmt, text, param in (
        ("jsonl", f'{{"name": "t", "variables": {{"n": {BIG}}}}}', "variables.n"),
        ("csv", f"name,var.n\nt,{BIG}\n", "variables.n"),
    ):
        response = admin.post(
            "/admin/prompts/p1/tests/import", params={"format": fmt}, content=text
        )
        assert response.status_code == 400, fmt
        assert _error(response, fmt)["param"] == param, fmt
    key = bounded_gateway.create_key()
    for extra in ({"sluice": {"prompt": "p1", "version": BIG}},):
        response = bounded_gateway.http.post(
            "/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], **extra},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert response.status_code == 400
        assert _error(response, "sluice.version")["param"] == "sluice.version"
    response = bounded_gateway.http.post(
        "/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]},
        headers={
            "Authorization": f"Bearer {key}",
            "X-Sluice-Prompt": "p1",
            "X-Sluice-Prompt-Version": str(HUGE),
        },
    )
    assert response.status_code == 400
    assert _error(response, "header version")["param"] == "x-sluice-prompt-version"


_NUL_FIELDS: list[tuple[str, str, dict[str, Any], str]] = [
    ("POST", "/admin/keys", {"name": "a\x00b"}, "name"),
    ("POST", "/admin/prompts", {"slug": "p4", "description": "a\x00b"}, "description"),
    ("PATCH", "/admin/prompts/p1", {"tags": ["a\x00b"]}, "tags[0]"),
    ("POST", "/admin/prompts/p1/versions",
     {"messages": [{"role": "system", "content": "hi\x00"}]}, "messages[0].content"),
    ("POST", "/admin/prompts/p1/versions",
     {"messages": [{"role": "system", "content": "hi"}], "note": "a\x01b"}, "note"),
    ("POST", "/admin/prompts/p1/versions/1/evaluators",
     {"evaluator_key": "contains", "config": {"value": "a\x00"}}, "config.value"),
    ("POST", "/admin/prompts/p1/tests", {"name": "a\x00b", "variables": {}}, "name"),
    ("POST", "/admin/test-runs", {"prompt": "p1", "label": "a\x00"}, "label"),
    ("POST", "/admin/schedules", {"prompt": "p1", "cron": "0 * * * *", "name": "\x00"},
     "name"),
    ("POST", "/admin/budgets",
     {"scope": "user", "scope_value": "a\x00b", "period": "daily", "limit_usd": 1},
     "scope_value"),
    ("PUT", "/admin/pricing", {"models": {"m\x00": {"input": 1, "output": 1}}},
     "a field name in models"),
    ("POST", "/admin/responses/r_missing/evaluations", {"score": 1.0, "comment": "a\x00"},
     "comment"),
    ("POST", "/admin/ab-tests",
     {"prompt": "p1", "variants": [{"name": "a\x00", "version": 1, "weight": 1}]},
     "variants[0].name"),
    ("POST", "/admin/prompts:import",
     {"prompts": [{"slug": "p3", "description": "a\x00", "versions": []}]},
     "prompts[0].description"),
]  # fmt: skip


def test_nul_and_control_characters_are_400_naming_the_field(
    bounded_gateway: RunningGateway,
) -> None:
    admin = bounded_gateway.admin
    for method, path, body, param in _NUL_FIELDS:
        response = admin.request(method, path, json=body)
        assert response.status_code == 400, (path, param, response.text)
        assert _error(response, path)["param"] == param, (path, response.text)
    for fmt, text, param in (
        ("jsonl", '{"name": "a\\u0000b"}', "name"),
        ("csv", 'name,expected_output\nt,"a\x00b"\n', "expected_output"),
    ):
        response = admin.post(
            "/admin/prompts/p1/tests/import", params={"format": fmt}, content=text
        )
        assert response.status_code == 400, (fmt, response.text)
        assert _error(response, fmt)["param"] == param, fmt
    for path, params in READS:
        for name in [*params, "cursor"]:
            response = admin.get(path, params={**params, name: "a\x00b"})
            assert response.status_code == 400, (path, name)
            assert _error(response, path)["param"] == name, (path, name)
    for path in ("/admin/prompts/a%00b", "/admin/budgets/a%00b", "/admin/keys/a%0Ab"):
        response = admin.get(path)
        assert response.status_code == 400, path
        _error(response, path)
    # Slugs become file names in `sluice prompts pull`: both ways in refuse a path.
    for slug in ("../../x", "/tmp/x", "a/b", "A"):
        response = admin.post("/admin/prompts", json={"slug": slug})
        assert _error(response, slug)["param"] == "slug", slug
        response = admin.post("/admin/prompts:import", json={"prompts": [{"slug": slug}]})
        assert _error(response, slug)["param"] == "prompts[0].slug", slug
    # A tab or newline is text in a prompt, but never part of a slug or a label.
    response = admin.post("/admin/prompts", json={"slug": "p5\n"})
    assert _error(response, "slug newline")["param"] == "slug"
    response = admin.put("/admin/prompts/p1/labels/prod%0A", json={"version": 1})
    assert response.status_code == 400
    ok = admin.post(
        "/admin/prompts/p1/versions",
        json={"messages": [{"role": "system", "content": "line one\n\tline two\r\n"}]},
    )
    assert ok.status_code == 201, ok.text


def test_client_identifier_fields_refuse_control_characters(
    bounded_gateway: RunningGateway,
) -> None:
    key = bounded_gateway.create_key()
    message = {"role": "user", "content": "x"}
    for sluice, param in (
        ({"user": "a\x00b"}, "sluice.user"),
        ({"session": "a\nb"}, "sluice.session"),
        ({"tags": {"team": "a\x00b"}}, "sluice.tags.team"),
        ({"prompt": "p1\x00"}, "sluice.prompt"),
    ):
        response = bounded_gateway.http.post(
            "/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [message], "sluice": sluice},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert response.status_code == 400, param
        assert _error(response, param)["param"] == param
    # Content is the client's business: a NUL in a message goes to the upstream as sent.
    reply = bounded_gateway.openai(key).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "nul\x00inside"}]
    )
    assert reply.choices[0].message.content
