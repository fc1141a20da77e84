"""The stack comes up healthy and says so per dependency."""

from __future__ import annotations

from tests.harness import RunningStack


def test_health_reports_each_dependency_with_latency(stack: RunningStack) -> None:
    with stack.client() as http:
        response = http.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    for name in ("temporal", "database", "object_store"):
        assert body["checks"][name]["status"] == "ok"
        assert body["checks"][name]["latency_ms"] >= 0


def test_no_token_is_401_and_a_bad_token_is_401(stack: RunningStack) -> None:
    with stack.client() as http:
        assert http.get("/v1/me").status_code == 401
    with stack.client("wp_not-a-real-token") as http:
        response = http.get("/v1/me")
    assert response.status_code == 401
    assert "token" in response.json()["detail"]


def test_a_role_that_is_not_the_callers_is_403(stack: RunningStack) -> None:
    _, provider_token = stack.create_user("provider")
    with stack.client(provider_token) as http:
        response = http.post(
            "/v1/contracts",
            json={"provider_id": "00000000-0000-0000-0000-000000000000", "title": "x", "rate_cents": 100},
        )
    assert response.status_code == 403
