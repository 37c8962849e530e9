"""The prompt admin API: prompts, immutable versions, labels, archiving and bad input."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import RunningGateway
from tests.e2e.prompts_support import echo, make_prompt, set_label, system, system_text


def _error(response: object) -> dict[str, str]:
    body = response.json()  # type: ignore[attr-defined]
    error: dict[str, str] = body["error"]
    return error


def test_prompt_crud_and_listing(gateway: RunningGateway) -> None:
    admin = gateway.admin
    created = admin.post(
        "/admin/prompts", json={"slug": "b-prompt", "description": "d", "tags": ["x"]}
    )
    assert created.status_code == 201
    assert created.json()["latest_version"] is None and created.json()["labels"] == {}
    admin.post("/admin/prompts", json={"slug": "a-prompt"})
    admin.post("/admin/prompts", json={"slug": "c-prompt", "tags": ["x"]})
    page = admin.get("/admin/prompts", params={"limit": 2}).json()
    assert [p["slug"] for p in page["data"]] == ["a-prompt", "b-prompt"]
    rest = admin.get("/admin/prompts", params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [p["slug"] for p in rest["data"]] == ["c-prompt"] and rest["next_cursor"] is None
    tagged = admin.get("/admin/prompts", params={"tag": "x"}).json()["data"]
    assert [p["slug"] for p in tagged] == ["b-prompt", "c-prompt"]
    page = admin.get("/admin/prompts", params={"tag": "x", "limit": 1}).json()
    assert [p["slug"] for p in page["data"]] == ["b-prompt"]
    params = {"tag": "x", "limit": 1, "cursor": page["next_cursor"]}
    assert [p["slug"] for p in admin.get("/admin/prompts", params=params).json()["data"]] == [
        "c-prompt"
    ]
    patched = admin.patch("/admin/prompts/a-prompt", json={"description": "new", "tags": ["y"]})
    assert patched.status_code == 200 and patched.json()["description"] == "new"
    assert admin.get("/admin/prompts/a-prompt").json()["tags"] == ["y"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"slug": "Has-Caps"}, "slug"),
        ({"slug": "under_score"}, "slug"),
        ({"slug": "-lead"}, "slug"),
        ({"slug": "a" * 101}, "slug"),
        ({"slug": "ok", "surprise": 1}, None),
        ({"slug": "ok", "tags": "x"}, "tags"),
    ],
)
def test_bad_prompt_payloads_are_400s(
    sqlite_gateway: RunningGateway, body: dict[str, object], param: str | None
) -> None:
    response = sqlite_gateway.admin.post("/admin/prompts", json=body)
    assert response.status_code == 400
    if param:
        assert param in response.text


def test_duplicate_slug_is_409(gateway: RunningGateway) -> None:
    gateway.admin.post("/admin/prompts", json={"slug": "dup"})
    response = gateway.admin.post("/admin/prompts", json={"slug": "dup"})
    assert response.status_code == 409
    assert _error(response)["code"] == "conflict"


def test_versions_are_numbered_immutable_and_checked(gateway: RunningGateway) -> None:
    admin = gateway.admin
    make_prompt(gateway, "ver", system("v1 {{x}}", variables=["x"], note="first", created_by="ann"))
    bad_cases = [
        (system("{{x}} {{y}}", variables=["x"]), "{{y}}"),
        (system("{{x}}", variables=["x", "unused"]), "unused"),
        (
            system("{{x}}", variables=["x"], variables_schema={"type": "nonsense"}),
            "variables_schema",
        ),
        (system("x", params={"model": "other"}), "params.model"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "system", "content": "x"}], "extra": 1}, "extra"),
    ]
    for body, expected in bad_cases:
        response = admin.post("/admin/prompts/ver/versions", json=body)
        assert response.status_code == 400, response.text
        assert expected in response.text
    # nothing half-written: the failed attempts used no version numbers
    second = admin.post("/admin/prompts/ver/versions", json=system("v2"))
    assert second.status_code == 201 and second.json()["version"] == 2
    one = admin.get("/admin/prompts/ver/versions/1").json()
    assert one["note"] == "first" and one["created_by"] == "ann" and one["variables"] == ["x"]
    assert admin.put("/admin/prompts/ver/versions/1", json=system("changed")).status_code == 405
    assert admin.patch("/admin/prompts/ver/versions/1", json={"note": "x"}).status_code == 405
    assert admin.get("/admin/prompts/ver/versions/9").json()["error"]["code"] == "version_not_found"
    listed = admin.get("/admin/prompts/ver/versions", params={"limit": 1}).json()
    assert [v["version"] for v in listed["data"]] == [2]
    older = admin.get(
        "/admin/prompts/ver/versions", params={"limit": 1, "cursor": listed["next_cursor"]}
    )
    assert [v["version"] for v in older.json()["data"]] == [1]
    missing = admin.post("/admin/prompts/nope/versions", json=system("x"))
    assert missing.status_code == 404 and _error(missing)["code"] == "prompt_not_found"


def test_labels(gateway: RunningGateway) -> None:
    admin = gateway.admin
    make_prompt(gateway, "lab", system("one"), system("two"))
    set_label(gateway, "lab", "production", 1)
    set_label(gateway, "lab", "staging", 2)
    labels = admin.get("/admin/prompts/lab/labels").json()
    assert [(label["label"], label["version"]) for label in labels] == [
        ("production", 1),
        ("staging", 2),
    ]
    assert admin.get("/admin/prompts/lab").json()["labels"] == {"production": 1, "staging": 2}
    assert admin.get("/admin/prompts/lab/versions/2").json()["labels"] == ["staging"]
    nowhere = admin.put("/admin/prompts/lab/labels/production", json={"version": 7})
    assert nowhere.status_code == 404 and _error(nowhere)["code"] == "version_not_found"
    latest = admin.put("/admin/prompts/lab/labels/latest", json={"version": 1})
    assert latest.status_code == 400 and "latest" in _error(latest)["message"]
    assert admin.put("/admin/prompts/lab/labels/Bad%20Name", json={"version": 1}).status_code == 400
    assert admin.put("/admin/prompts/lab/labels/x", json={"version": "one"}).status_code == 400
    assert admin.delete("/admin/prompts/lab/labels/staging").status_code == 204
    assert admin.delete("/admin/prompts/lab/labels/staging").status_code == 404
    received, _ = echo(gateway.openai(), {"X-Sluice-Prompt": "lab"})
    assert system_text(received) == "one"


def test_delete_without_history_removes_and_with_history_archives(gateway: RunningGateway) -> None:
    admin = gateway.admin
    make_prompt(gateway, "fresh", system("x"))
    gone = admin.delete("/admin/prompts/fresh").json()
    assert gone == {"slug": "fresh", "deleted": True, "archived": False}
    assert admin.get("/admin/prompts/fresh").status_code == 404

    make_prompt(gateway, "used", system("used v1"))
    client = gateway.openai()
    echo(client, {"X-Sluice-Prompt": "used"})
    gateway.wait_for_rows(1, prompt="used")
    kept = admin.delete("/admin/prompts/used").json()
    assert kept == {"slug": "used", "deleted": False, "archived": True}
    assert admin.get("/admin/prompts/used").json()["archived_at"] is not None
    assert admin.get("/admin/prompts/used/versions/1").status_code == 200  # history stays
    assert [p["slug"] for p in admin.get("/admin/prompts").json()["data"]] == []
    assert [
        p["slug"] for p in admin.get("/admin/prompts", params={"archived": "true"}).json()["data"]
    ] == ["used"]
    with pytest.raises(openai.NotFoundError) as info:
        echo(client, {"X-Sluice-Prompt": "used"})
    assert "archived" in info.value.message
    again = admin.post("/admin/prompts", json={"slug": "used"})
    assert again.status_code == 409 and "archived" in _error(again)["message"]
    assert admin.post("/admin/prompts/used/versions", json=system("v2")).status_code == 409
    restored = admin.patch("/admin/prompts/used", json={"archived": False})
    assert restored.json()["archived_at"] is None
    received, _ = echo(client, {"X-Sluice-Prompt": "used"})
    assert system_text(received) == "used v1"


def test_admin_needs_the_token(gateway: RunningGateway) -> None:
    for method, path in (
        ("GET", "/admin/prompts"),
        ("POST", "/admin/prompts:import"),
        ("GET", "/admin/ab-tests"),
    ):
        response = gateway.http.request(method, path, json={})
        assert response.status_code == 401
