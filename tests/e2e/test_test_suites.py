"""Test cases through the admin API: CRUD, evaluators copied both ways, import and export."""

from __future__ import annotations

from tests.conftest import RunningGateway
from tests.e2e.evaluations_support import attach
from tests.e2e.testing_support import add_case, error_of, suite_prompt

CONTAINS = {"evaluator_key": "contains", "config": {"value": "Paris"}, "threshold": 1.0}


def test_case_lifecycle_and_evaluator_copies(gateway: RunningGateway) -> None:
    suite_prompt(gateway, "qa")
    case = add_case(
        gateway,
        "qa",
        "capital",
        "#reply=Paris",
        expected_output="Paris",
        tags=["geo", "geo"],
        evaluators=[{"evaluator_key": "exact_match"}],
    )
    assert case["tags"] == ["geo"] and case["prompt"] == "qa"
    [exact] = case["evaluators"]
    assert (exact["test_case_id"], exact["evaluator_key"]) == (case["id"], "exact_match")
    # exact_match needs no config.value on a case: the case's expected output is the reference.

    assert error_of(gateway.admin.post("/admin/prompts/qa/tests", json={"name": "capital"}), 409)
    bad_evaluator = {
        "name": "other",
        "evaluators": [{"evaluator_key": "regex", "config": {"pattern": "("}}],
    }
    assert error_of(gateway.admin.post("/admin/prompts/qa/tests", json=bad_evaluator), 400)
    assert [c["name"] for c in gateway.admin.get("/admin/prompts/qa/tests").json()["data"]] == [
        "capital"
    ]  # the refused case left nothing behind
    assert error_of(gateway.admin.post("/admin/prompts/nope/tests", json={"name": "x"}), 404)
    assert error_of(gateway.admin.post("/admin/prompts/qa/tests", json={"name": ""}), 400)

    # A version's evaluator copied to the case, and the case's copied to a version.
    on_version = attach(gateway, "qa", 1, CONTAINS)
    copied = gateway.admin.post(
        f"/admin/evaluators/{on_version['id']}/copy", json={"test_case_id": case["id"]}
    )
    assert copied.status_code == 201, copied.text
    back = gateway.admin.post(
        f"/admin/evaluators/{copied.json()['id']}/copy", json={"prompt": "qa", "version": 1}
    )
    assert back.status_code == 201 and back.json()["config"] == CONTAINS["config"]
    unknown = gateway.admin.post(
        f"/admin/evaluators/{on_version['id']}/copy", json={"test_case_id": "nope"}
    )
    assert error_of(unknown, 404)["param"] == "test_case_id"
    shown = gateway.admin.get(f"/admin/tests/{case['id']}").json()
    assert [e["evaluator_key"] for e in shown["evaluators"]] == ["exact_match", "contains"]

    changed = gateway.admin.patch(
        f"/admin/tests/{case['id']}", json={"name": "capital city", "tags": ["geo", "smoke"]}
    )
    assert changed.status_code == 200 and changed.json()["name"] == "capital city"
    assert changed.json()["expected_output"] == "Paris"  # untouched
    other = add_case(gateway, "qa", "other", "#reply=x")
    clash = gateway.admin.patch(f"/admin/tests/{other['id']}", json={"name": "capital city"})
    assert error_of(clash, 409)
    tagged = gateway.admin.get("/admin/prompts/qa/tests", params={"tag": "smoke"}).json()
    assert [c["id"] for c in tagged["data"]] == [case["id"]]

    deleted = gateway.admin.delete(f"/admin/tests/{case['id']}")
    assert deleted.status_code == 200
    assert error_of(gateway.admin.get(f"/admin/tests/{case['id']}"), 404)
    assert error_of(gateway.admin.get(f"/admin/evaluators/{copied.json()['id']}"), 404)
    assert error_of(gateway.admin.delete(f"/admin/tests/{case['id']}"), 404)


def test_import_and_export_jsonl_and_csv(gateway: RunningGateway) -> None:
    suite_prompt(gateway, "qa")
    add_case(
        gateway,
        "qa",
        "one",
        "#reply=a",
        expected_output="a",
        tags=["x"],
        variables={"n": 1},
        evaluators=[
            {"evaluator_key": "json_valid"},
            {"evaluator_key": "exact_match", "depends_on": ["json_valid"]},
        ],
    )
    add_case(gateway, "qa", "two", "#reply=b")
    jsonl = gateway.admin.get("/admin/prompts/qa/tests/export", params={"format": "jsonl"})
    assert jsonl.status_code == 200 and jsonl.headers["content-type"].startswith(
        "application/x-ndjson"
    )
    csv_text = gateway.admin.get("/admin/prompts/qa/tests/export", params={"format": "csv"}).text
    assert csv_text.splitlines()[0] == "name,expected_output,tags,messages,evaluators,variables"

    suite_prompt(gateway, "copy")
    imported = gateway.admin.post(
        "/admin/prompts/copy/tests/import", params={"format": "jsonl"}, content=jsonl.text
    )
    assert imported.status_code == 201, imported.text
    first = imported.json()["data"][0]
    assert (first["name"], first["variables"], first["tags"]) == ("one", {"n": 1}, ["x"])
    keys = {e["evaluator_key"]: e for e in first["evaluators"]}
    assert keys["exact_match"]["depends_on"] == [keys["json_valid"]["id"]]
    again = gateway.admin.post("/admin/prompts/copy/tests/import", content=jsonl.text)
    assert error_of(again, 409)  # names taken: nothing imported twice

    suite_prompt(gateway, "sheet")
    sheet = 'name,var.city,tags,expected_output\nparis,Paris,geo;smoke,Paris\nrome,"""Rome""",,\n'
    imported = gateway.admin.post(
        "/admin/prompts/sheet/tests/import", params={"format": "csv"}, content=sheet
    )
    assert imported.status_code == 201, imported.text
    rows = {c["name"]: c for c in imported.json()["data"]}
    assert rows["paris"]["variables"] == {"city": "Paris"} and rows["paris"]["tags"] == [
        "geo",
        "smoke",
    ]
    assert rows["rome"]["variables"] == {"city": "Rome"} and rows["rome"]["expected_output"] is None
    csv_again = gateway.admin.post(
        "/admin/prompts/copy/tests/import",
        params={"format": "csv"},
        content=csv_text.replace("one", "uno").replace("two", "dos"),
    )
    assert csv_again.status_code == 201, csv_again.text

    for body, fmt in (
        ("{not json}\n", "jsonl"),
        ('{"name": 1}\n', "jsonl"),
        ("", "jsonl"),
        ("title\nx\n", "csv"),
        ("name,bogus\nx,y\n", "csv"),
        ('{"name":"a"}\n{"name":"a"}\n', "jsonl"),
        ('{"name":"ok1"}\n{"name":"bad","evaluators":[{"evaluator_key":"nope"}]}\n', "jsonl"),
    ):
        response = gateway.admin.post(
            "/admin/prompts/sheet/tests/import", params={"format": fmt}, content=body
        )
        assert response.status_code == 400, (body, response.text)
    names = [c["name"] for c in gateway.admin.get("/admin/prompts/sheet/tests").json()["data"]]
    assert names == ["paris", "rome"]  # all or nothing
