"""Malformed input gets a clear OpenAI-shaped error, and nothing a client sends moves the
upstream or leaks a secret."""

from __future__ import annotations

import csv
import io
import socket
from pathlib import Path

import openai
import pytest

from sluice_devtools.fake_upstream import FakeUpstreamThread
from tests.conftest import UPSTREAM_KEY, GatewayFactory, RunningGateway


def _error(response: object) -> dict[str, object]:
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"]
    return body["error"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        (b"{not json", "invalid_request", None),
        (b"[1, 2]", "invalid_request", None),
        (b"", "invalid_request", None),
        (b'{"model": 42, "messages": []}', "invalid_request", "model"),
        (b'{"model": "gpt-4o-mini", "messages": "hi"}', "invalid_request", "messages"),
        (b'{"model": "gpt-4o-mini", "messages": [], "stream": "yes"}', "invalid_request", "stream"),
        (b'{"messages": [{"role": "user", "content": "x"}]}', "invalid_request", "model"),
        (b'{"model": "gpt-4o-mini", "messages": [{"role":"user","content":"x"}], "sluice": 3}',
         "invalid_request", "sluice"),
    ],
)  # fmt: skip
def test_malformed_bodies_are_400(
    sqlite_gateway: RunningGateway, body: bytes, code: str, param: str | None
) -> None:
    response = sqlite_gateway.http.post(
        "/v1/chat/completions",
        content=body,
        headers={"Authorization": f"Bearer {sqlite_gateway.create_key()}"},
    )
    assert response.status_code == 400
    error = _error(response)
    assert error["code"] == code
    assert error["param"] == param
    assert "Traceback" not in str(error["message"])


def test_body_over_the_limit_is_413(start_gateway: GatewayFactory, sqlite_url: str) -> None:
    gateway = start_gateway(sqlite_url, SLUICE_MAX_BODY_BYTES="1000")
    response = gateway.http.post(
        "/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x" * 2000}]},
        headers={"Authorization": f"Bearer {gateway.create_key()}"},
    )
    assert response.status_code == 413
    assert _error(response)["code"] == "request_too_large"


def _raw_request(port: int, header_line: bytes, key: str) -> bytes:
    body = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}'
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
        + f"Authorization: Bearer {key}\r\n".encode()
        + header_line
        + b"\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_non_utf8_and_control_bytes_in_tag_headers_are_400(sqlite_gateway: RunningGateway) -> None:
    key = sqlite_gateway.create_key()
    port = sqlite_gateway.server.port
    answer = _raw_request(port, b"X-Sluice-Tag-Team: caf\xe9", key)
    assert answer.startswith(b"HTTP/1.1 400")
    assert b"not valid UTF-8" in answer
    answer = _raw_request(port, b"X-Sluice-Tag-Team: a\x01b", key)
    assert answer.startswith(b"HTTP/1.1 400")
    # HTTP lets a tab through to the gateway; an identifier has no use for one.
    for header in (b"X-Sluice-User", b"X-Sluice-Session", b"X-Sluice-Tag-Team"):
        answer = _raw_request(port, header + b": a\tb", key)
        assert answer.startswith(b"HTTP/1.1 400"), header
        assert b'"param":"' + header.lower() + b'"' in answer, header
    # A bare CR or LF can't even get through the HTTP parser: still a 400, never a 500.
    answer = _raw_request(port, b"X-Sluice-Tag-Team: a\rInjected: yes", key)
    assert answer.startswith(b"HTTP/1.1 400")


def test_bad_tag_name_and_no_log_value_are_400(sqlite_gateway: RunningGateway) -> None:
    key = sqlite_gateway.create_key()
    for header, value in (("X-Sluice-Tag-Bad!", "x"), ("X-Sluice-No-Log", "everything")):
        response = sqlite_gateway.http.post(
            "/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]},
            headers={"Authorization": f"Bearer {key}", header: value},
        )
        assert response.status_code == 400, header
        assert _error(response)["param"] == header.lower()


def test_body_fields_and_headers_cannot_redirect_the_upstream(
    sqlite_gateway: RunningGateway, fake_upstream: FakeUpstreamThread
) -> None:
    evil = "http://169.254.169.254/latest"
    client = sqlite_gateway.openai()
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "redirect-attempt"}],
        extra_body={"api_base": evil, "base_url": evil, "api_key": "sk-attacker", "user": "u1"},
        extra_headers={"X-Upstream-Url": evil, "OpenAI-Organization": "org-x", "Host": "evil"},
    )
    [received] = [r for r in fake_upstream.requests if "redirect-attempt" in str(r.body)]
    assert received.api_key == UPSTREAM_KEY
    for field in ("api_base", "base_url", "api_key"):
        assert field not in received.body
    assert received.body["user"] == "u1"  # unknown-but-legitimate OpenAI fields pass through
    assert "x-upstream-url" not in received.headers
    assert "openai-organization" not in received.headers
    [row] = sqlite_gateway.wait_for_rows(1)
    assert "sk-attacker" not in str(row["request_body"])  # not even logged


def test_no_log_header_keeps_bodies_out(sqlite_gateway: RunningGateway) -> None:
    client = sqlite_gateway.openai()
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "secret stuff"}],
        extra_headers={"X-Sluice-No-Log": "all"},
    )
    [row] = sqlite_gateway.wait_for_rows(1)
    assert row["request_body"] is None
    assert row["response_body"] is None
    assert row["total_tokens"] > 0


def test_routing_config_sends_models_to_their_upstream_and_404s_the_rest(
    start_gateway: GatewayFactory,
    sqlite_url: str,
    fake_upstream: FakeUpstreamThread,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SECOND_UPSTREAM_KEY", "sk-second-upstream")
    config = tmp_path / "sluice.toml"
    config.write_text(
        f"""
[upstreams.second]
base_url = "{fake_upstream.base_url}"
api_key_env = "SECOND_UPSTREAM_KEY"

[[routes]]
models = ["gpt-4o*"]

[[routes]]
models = ["house-model"]
upstream = "second"
target_model = "fake-chat"
"""
    )
    gateway = start_gateway(sqlite_url, SLUICE_CONFIG=str(config))
    client = gateway.openai()
    reply = client.chat.completions.create(
        model="house-model", messages=[{"role": "user", "content": "routed?"}]
    )
    assert reply.model == "fake-chat"
    [received] = [r for r in fake_upstream.requests if "routed?" in str(r.body)]
    assert received.api_key == "sk-second-upstream"
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(
            model="claude-3", messages=[{"role": "user", "content": "x"}]
        )
    assert info.value.code == "model_not_found"
    listed = {m.id for m in client.models.list()}
    assert "house-model" in listed
    assert "claude-3" not in listed
    rows = gateway.wait_for_rows(2)
    routed = next(r for r in rows if r["status_code"] == 200)
    assert routed["upstream"] == "second"
    assert routed["model_requested"] == "house-model"
    assert routed["model_served"] == "fake-chat"


def test_unknown_endpoint_and_admin_without_token(sqlite_gateway: RunningGateway) -> None:
    assert _error(sqlite_gateway.http.get("/v1/nothing"))["code"] == "not_found"
    response = sqlite_gateway.http.get("/admin/keys")
    assert response.status_code == 401
    assert _error(response)["code"] == "invalid_admin_token"
    response = sqlite_gateway.http.get("/admin/keys", headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401


def test_admin_payload_errors_name_the_field(sqlite_gateway: RunningGateway) -> None:
    response = sqlite_gateway.admin.post("/admin/keys", json={"name": ""})
    assert response.status_code == 400
    assert "name" in str(_error(response)["message"])
    response = sqlite_gateway.admin.get("/admin/responses", params={"since": "yesterday"})
    assert _error(response)["param"] == "since"
    response = sqlite_gateway.admin.get("/admin/responses", params={"limit": 0})
    assert _error(response)["param"] == "limit"
    response = sqlite_gateway.admin.get("/admin/responses", params={"colour": "red"})
    assert _error(response)["param"] == "colour"


def test_sdk_sees_unknown_model_as_not_found_error(sqlite_gateway: RunningGateway) -> None:
    # Without a routing config every model goes to the default upstream, whose 404 passes on.
    with pytest.raises(openai.APIStatusError):
        sqlite_gateway.openai().chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "#fault=404"}]
        )


def test_an_oversized_csv_field_is_a_400_naming_the_limit(sqlite_gateway: RunningGateway) -> None:
    admin = sqlite_gateway.admin
    admin.post("/admin/prompts", json={"slug": "sheet"}).raise_for_status()
    body = 'name,expected_output\nbig,"' + "x" * 1_900_000 + '"\n'
    response = admin.post(
        "/admin/prompts/sheet/tests/import", params={"format": "csv"}, content=body
    )
    assert response.status_code == 400
    error = _error(response)
    assert error["param"] == "body"
    assert "at most 131072 characters" in str(error["message"])


def test_csv_export_neutralises_formula_cells(sqlite_gateway: RunningGateway) -> None:
    admin = sqlite_gateway.admin
    admin.post("/admin/prompts", json={"slug": "sheet"}).raise_for_status()
    evil = ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "\rCR"]
    for number, text in enumerate(evil):
        response = admin.post(
            "/admin/prompts/sheet/tests",
            json={"name": f"{text} {number}", "variables": {}, "expected_output": text},
        )
        assert response.status_code == 201, response.text
    admin.post(
        "/admin/prompts/sheet/tests",
        json={"name": "plain", "variables": {}, "expected_output": "2026 is fine"},
    ).raise_for_status()
    exported = admin.get("/admin/prompts/sheet/tests/export", params={"format": "csv"}).text
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert len(rows) == len(evil) + 1
    for row in rows[:-1]:
        for column in ("name", "expected_output"):
            assert row[column].startswith("'"), (column, row[column])
    assert rows[-1]["name"] == "plain"
    assert rows[-1]["expected_output"] == "2026 is fine"
    # The guard comes back off on import: an exported suite imports unchanged.
    admin.post("/admin/prompts", json={"slug": "copy"}).raise_for_status()
    imported = admin.post(
        "/admin/prompts/copy/tests/import", params={"format": "csv"}, content=exported
    )
    assert imported.status_code == 201, imported.text
    outputs = {c["name"]: c["expected_output"] for c in imported.json()["data"]}
    assert outputs == {
        **{f"{text} {number}": text for number, text in enumerate(evil)},
        "plain": "2026 is fine",
    }
