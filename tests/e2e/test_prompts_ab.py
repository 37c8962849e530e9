"""A/B tests through the gateway: splits by weight, stickiness, results, promotion, bad input."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import pytest

from tests.conftest import RunningGateway
from tests.e2e.prompts_support import echo, make_prompt, set_label, system, system_text

USERS = 100
VARIANTS = [
    {"name": "control", "version": 1, "weight": 1},
    {"name": "treatment", "version": 2, "weight": 3},
]


def _ab_test(gateway: RunningGateway, **body: Any) -> dict[str, Any]:
    response = gateway.admin.post(
        "/admin/ab-tests", json={"prompt": "split", "variants": VARIANTS, **body}
    )
    assert response.status_code == 201, response.text
    test: dict[str, Any] = response.json()
    return test


def _two_versions(gateway: RunningGateway) -> None:
    make_prompt(gateway, "split", system("A"), system("B"))
    set_label(gateway, "split", "production", 1)


def test_split_follows_weights_and_sticks_per_user(gateway: RunningGateway) -> None:
    _two_versions(gateway)
    test = _ab_test(gateway, start=True)
    assert test["status"] == "running"
    client = gateway.openai()
    n = 300
    seen: dict[str, str] = {}
    for i in range(n):
        received, raw = echo(client, {"X-Sluice-Prompt": "split", "X-Sluice-User": f"user-{i}"})
        variant = raw.headers["x-sluice-ab-variant"]
        assert system_text(received) == {"control": "A", "treatment": "B"}[variant]
        assert raw.headers["x-sluice-prompt-version"] == f"split@{1 if variant == 'control' else 2}"
        seen[f"user-{i}"] = variant
    counts = Counter(seen.values())
    # Five standard deviations of a binomial(300, 0.75): a fair split fails once in millions.
    assert abs(counts["treatment"] - n * 0.75) <= 5 * math.sqrt(n * 0.75 * 0.25)
    # The same user gets the same variant every time.
    for user in ("user-1", "user-2", "user-3"):
        again = {
            echo(client, {"X-Sluice-Prompt": "split", "X-Sluice-User": user})[1].headers[
                "x-sluice-ab-variant"
            ]
            for _ in range(5)
        }
        assert again == {seen[user]}
    # Without a user: random per request, still by weight.
    anonymous = Counter(
        echo(client, {"X-Sluice-Prompt": "split"})[1].headers["x-sluice-ab-variant"]
        for _ in range(150)
    )
    assert abs(anonymous["treatment"] - 112.5) <= 5 * math.sqrt(150 * 0.75 * 0.25)
    # Pinning a version or a label steps out of the test.
    received, raw = echo(
        client, {"X-Sluice-Prompt": "split", "X-Sluice-Prompt-Label": "production"}
    )
    assert system_text(received) == "A" and "x-sluice-ab-variant" not in raw.headers
    _, raw = echo(
        client,
        {
            "X-Sluice-Prompt": "split",
            "X-Sluice-Prompt-Version": "2",
            "X-Sluice-Request-Id": "pinned",
        },
    )
    assert "x-sluice-ab-variant" not in raw.headers
    rows = gateway.wait_for_rows(n + 15 + 150 + 2, prompt="split")
    by_request = {row["request_id"]: row for row in rows}
    assert by_request["pinned"]["ab_test_id"] is None
    in_test = [row for row in rows if row["ab_test_id"] == test["id"]]
    assert len(in_test) == n + 15 + 150
    assert {row["ab_variant"] for row in in_test} == {"control", "treatment"}


def test_results_and_promotion(gateway: RunningGateway) -> None:
    _two_versions(gateway)
    # Users are hashed with the (random) test id and control has a quarter of the weight:
    # 100 users leave control under 5 requests about once in 10^7 runs (60 users and a
    # minimum of 10 failed about once in 20).
    test = _ab_test(gateway, min_samples=5)
    assert test["status"] == "draft"
    client = gateway.openai()
    received, raw = echo(client, {"X-Sluice-Prompt": "split", "X-Sluice-User": "u"})
    assert (
        "x-sluice-ab-variant" not in raw.headers and system_text(received) == "A"
    )  # a draft splits nothing
    started = gateway.admin.post(f"/admin/ab-tests/{test['id']}/start")
    assert started.status_code == 200 and started.json()["status"] == "running"

    variant_of: dict[str, str] = {}
    for i in range(USERS):
        _, raw = echo(client, {"X-Sluice-Prompt": "split", "X-Sluice-User": f"u{i}"})
        variant_of[f"u{i}"] = raw.headers["x-sluice-ab-variant"]
    # Every treatment user hits an upstream error once: treatment is clearly worse.
    failing = [user for user, variant in variant_of.items() if variant == "treatment"]
    for user in failing:
        response = client.chat.completions.with_raw_response
        with pytest.raises(Exception):  # noqa: B017 - the SDK's 500 error class varies
            response.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "#fault=500"}],
                extra_headers={"X-Sluice-Prompt": "split", "X-Sluice-User": user},
            )
    # Test traffic is not counted.
    echo(client, {"X-Sluice-Prompt": "split", "X-Sluice-User": "u0", "X-Sluice-Test-Run": "true"})
    gateway.wait_for_rows(USERS + len(failing) + 2, prompt="split")

    detail = gateway.admin.get(f"/admin/ab-tests/{test['id']}").json()
    results = {v["name"]: v for v in detail["results"]["variants"]}
    controls = USERS - len(failing)
    assert results["control"]["requests"] == controls and results["control"]["errors"] == 0
    assert results["treatment"]["requests"] == 2 * len(failing)
    assert results["treatment"]["errors"] == len(failing)
    assert results["treatment"]["error_rate"] == pytest.approx(0.5)
    assert results["control"]["mean_latency_ms"] > 0
    assert results["control"]["scores"] == {}  # no evaluations yet
    comparison = next(c for c in detail["results"]["comparisons"] if c["metric"] == "error_rate")
    assert comparison["test"] == "two_proportion_z" and comparison["significant"] is True
    latency = next(c for c in detail["results"]["comparisons"] if c["metric"] == "latency_ms")
    assert latency["test"] == "welch_t" and 0 <= latency["p_value"] <= 1
    assert detail["results"]["min_sample_reached"] is True
    assert detail["results"]["leader"] == "control" and detail["results"]["conclusive"] is True

    listed = gateway.admin.get(
        "/admin/ab-tests", params={"prompt": "split", "status": "running"}
    ).json()
    assert [t["id"] for t in listed["data"]] == [test["id"]]

    set_label(gateway, "split", "production", 2)
    promoted = gateway.admin.post(f"/admin/ab-tests/{test['id']}/promote")  # the leader wins
    assert promoted.status_code == 200
    assert promoted.json()["status"] == "stopped" and promoted.json()["winner"] == "control"
    assert gateway.admin.get("/admin/prompts/split").json()["labels"]["production"] == 1
    received, raw = echo(client, {"X-Sluice-Prompt": "split", "X-Sluice-User": "u1"})
    assert system_text(received) == "A" and "x-sluice-ab-variant" not in raw.headers
    assert gateway.admin.post(f"/admin/ab-tests/{test['id']}/start").status_code == 409


def test_promote_by_name_and_lifecycle_errors(gateway: RunningGateway) -> None:
    _two_versions(gateway)
    test = _ab_test(gateway)
    assert (
        gateway.admin.post(f"/admin/ab-tests/{test['id']}/stop").status_code == 409
    )  # not running
    assert (
        gateway.admin.post(
            f"/admin/ab-tests/{test['id']}/promote", json={"variant": "treatment"}
        ).status_code
        == 409
    )
    gateway.admin.post(f"/admin/ab-tests/{test['id']}/start")
    undecided = gateway.admin.post(f"/admin/ab-tests/{test['id']}/promote")
    assert (
        undecided.status_code == 409
        and "name the one to promote" in undecided.json()["error"]["message"]
    )
    unknown = gateway.admin.post(f"/admin/ab-tests/{test['id']}/promote", json={"variant": "nope"})
    assert unknown.status_code == 400
    promoted = gateway.admin.post(
        f"/admin/ab-tests/{test['id']}/promote", json={"variant": "treatment"}
    )
    assert promoted.json()["winner"] == "treatment"
    received, _ = echo(gateway.openai(), {"X-Sluice-Prompt": "split"})
    assert system_text(received) == "B"
    assert gateway.admin.get("/admin/ab-tests/nope").status_code == 404


def test_bad_ab_tests_are_refused_and_nothing_is_written(gateway: RunningGateway) -> None:
    _two_versions(gateway)
    admin = gateway.admin
    bad = [
        (
            {
                "variants": [
                    {"name": "a", "version": 1, "weight": 0},
                    {"name": "b", "version": 2, "weight": 0},
                ]
            },
            400,
            "positive",
        ),
        (
            {"variants": [{"name": "a", "version": 1, "weight": -1}, {"name": "b", "version": 2}]},
            400,
            "weight",
        ),
        (
            {"variants": [{"name": "a", "version": 1}, {"name": "a", "version": 2}]},
            400,
            "appears twice",
        ),
        ({"variants": [{"name": "a", "version": 1}]}, 400, "variants"),
        (
            {"variants": [{"name": "a", "version": 1}, {"name": "b", "version": 9}]},
            404,
            "no version 9",
        ),
        ({"prompt": "nope", "variants": VARIANTS}, 404, "nope"),
    ]
    for body, status, text in bad:
        response = admin.post("/admin/ab-tests", json={"prompt": "split", **body})
        assert response.status_code == status, response.text
        assert text in response.text
    assert admin.get("/admin/ab-tests").json()["data"] == []
    first = _ab_test(gateway, start=True)
    second = admin.post(
        "/admin/ab-tests", json={"prompt": "split", "variants": VARIANTS, "start": True}
    )
    assert second.status_code == 409 and first["id"] in second.text
    draft = _ab_test(gateway)
    assert admin.post(f"/admin/ab-tests/{draft['id']}/start").status_code == 409
    assert len(admin.get("/admin/ab-tests").json()["data"]) == 2  # the refused one was not kept
    admin.post(f"/admin/ab-tests/{first['id']}/stop")
    assert admin.post(f"/admin/ab-tests/{draft['id']}/start").json()["status"] == "running"
