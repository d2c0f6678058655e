"""API keys and bad input, over real HTTP: 4xx that say what to fix, never a 500 or a dead replica."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from banditrec.serving.auth import KeyRing, append_key, create_key, credential_from_headers
from banditrec.serving.errors import ApiError
from tests import polling
from tests.plugins.ray_cluster import ServiceUnderTest, example_request

DECIDE = "/v1/apps/content/decisions"


def _post(svc: ServiceUnderTest, path: str, role: str | None = "admin", **kw) -> httpx.Response:
    headers = kw.pop("headers", {}) | (svc.headers(role) if role else {})
    return httpx.post(svc.url + path, headers=headers, timeout=10, **kw)


# --- keys, without HTTP --------------------------------------------------------------


def test_keys_are_stored_hashed_and_checked_by_app_and_scope() -> None:
    key, record = create_key(["news"], ["decide"])
    assert key.split("_", 2)[2] not in record.model_dump_json()  # never the secret itself
    ring = KeyRing([record])
    assert ring.authorize(key, "news", "decide") == record
    for credential, app, scope, status in [
        (None, "news", "decide", 401),
        ("brk_nothing", "news", "decide", 401),
        (key[:-1] + ("A" if key[-1] != "A" else "B"), "news", "decide", 401),  # wrong secret
        ("brk_000000000000_" + key.split("_", 2)[2], "news", "decide", 401),  # unknown id
        (key, "sports", "decide", 403),
        (key, "news", "reward", 403),
    ]:
        with pytest.raises(ApiError) as err:
            ring.authorize(credential, app, scope)
        assert err.value.status == status


def test_admin_scope_implies_the_others_and_star_every_app() -> None:
    key, record = create_key(["*"], ["admin"])
    ring = KeyRing([record])
    for scope in ("decide", "reward", "admin"):
        assert ring.authorize(key, "anything", scope) == record


def test_credential_from_either_header() -> None:
    assert credential_from_headers("Bearer abc", None) == "abc"
    assert credential_from_headers("bearer abc ", None) == "abc"
    assert credential_from_headers(None, "xyz") == "xyz"
    assert credential_from_headers("Bearer abc", "abc") == "abc"  # the same key twice
    for authorization, x_api_key, status in [
        ("Basic abc", None, 401),  # a scheme we cannot read is not "no key"
        ("Bearer", None, 401),
        ("Basic abc", "abc", 401),
        ("Bearer garbage", "abc", 400),  # two different keys: which one is meant?
    ]:
        with pytest.raises(ApiError) as err:
            credential_from_headers(authorization, x_api_key)
        assert err.value.status == status


# --- keys over HTTP -------------------------------------------------------------------


def test_garbage_authorization_next_to_a_valid_x_api_key_is_refused(
    banditrec_service: ServiceUnderTest,
) -> None:
    svc = banditrec_service
    body = example_request("content")
    valid = svc.keys["decide"]
    for headers, status in [
        ({"Authorization": "Bearer garbage", "X-API-Key": valid}, 400),
        ({"Authorization": "garbage", "X-API-Key": valid}, 401),
        ({"Authorization": f"Bearer {valid}", "X-API-Key": "garbage"}, 400),
    ]:
        r = _post(svc, DECIDE, role=None, json=body, headers=headers)
        assert r.status_code == status, (headers, r.text)
        assert "header" in r.text
    same = {"Authorization": f"Bearer {valid}", "X-API-Key": valid}
    assert _post(svc, DECIDE, role=None, json=body, headers=same).status_code == 200


def test_no_key_is_401_and_wrong_app_or_scope_is_403(banditrec_service: ServiceUnderTest) -> None:
    svc = banditrec_service
    body = example_request("content")
    missing = _post(svc, DECIDE, role=None, json=body)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in missing.json()["detail"][0]["msg"]
    bad = _post(svc, DECIDE, role=None, json=body, headers={"X-API-Key": "brk_0123456789ab_x"})
    assert bad.status_code == 401
    assert _post(svc, DECIDE, role="decide", json=body).status_code == 200
    assert _post(svc, DECIDE, role="reward", json=body).status_code == 403  # wrong scope
    wrong_app = _post(
        svc, "/v1/apps/channel/decisions", role="decide", json=example_request("channel")
    )
    assert wrong_app.status_code == 403
    assert "not valid for app 'channel'" in wrong_app.json()["detail"][0]["msg"]
    assert (
        _post(
            svc, "/v1/apps/content/rewards", role="decide", json={"event_id": "e", "value": 1}
        ).status_code
        == 403
    )
    admin_only = httpx.get(svc.url + "/v1/apps/content", headers=svc.headers("decide"))
    assert admin_only.status_code == 403


def test_a_key_added_to_the_keys_file_is_accepted_live(banditrec_service: ServiceUnderTest) -> None:
    svc = banditrec_service
    assert svc.keys_file is not None
    key, record = create_key(["content"], ["decide"], note="added live")
    body = example_request("content")
    headers = {"Authorization": f"Bearer {key}"}
    assert _post(svc, DECIDE, role=None, json=body, headers=headers).status_code == 401
    append_key(svc.keys_file, record)
    polling.wait_for(
        lambda: _post(svc, DECIDE, role=None, json=body, headers=headers).status_code == 200,
        10.0,
        "the new key to be accepted",
    )


def test_keys_never_reach_the_logs(banditrec_service: ServiceUnderTest) -> None:
    svc = banditrec_service
    secret_used = svc.keys["decide"]
    wrong = "brk_0123456789ab_" + "s3cr3t" * 7
    _post(svc, DECIDE, role="decide", json=example_request("content"))
    _post(svc, DECIDE, role=None, json=example_request("content"), headers={"X-API-Key": wrong})
    _post(svc, DECIDE, role="decide", content=b"{not json")
    import ray

    logs = Path(ray._private.worker._global_node.get_session_dir_path()) / "logs"
    assert logs.is_dir()
    for path in logs.rglob("*"):
        if path.is_file() and path.stat().st_size < 50_000_000:
            text = path.read_bytes()
            assert secret_used.encode() not in text, path
            assert wrong.encode() not in text, path


# --- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b"{not json", 400, "malformed JSON"),
        (b'{"context": {"u": {"x": NaN}}, "actions": [{"id": "a"}]}', 400, "malformed JSON"),
        (b'{"context": {"u": {"x": 1e400}}, "actions": [{"id": "a"}]}', 400, "malformed JSON"),
        (b"", 400, "malformed JSON"),
        (b"[]", 422, "invalid request"),
        (b'{"actions": "a"}', 422, "actions"),
        (b'{"actions": [{"id": 3}]}', 422, "actions[0].id"),
        (b'{"actions": [{"id": "a"}], "context": {"u": {"x": [1]}}}', 422, "context.u.x"),
        (b'{"actions": [{"id": "a"}], "context": {"_u": {"x": 1}}}', 422, "namespace"),
        (b'{"actions": [{"id": "a"}, {"id": "a"}]}', 422, "duplicate action id"),
        (
            b'{"actions": [{"id": "a"}], "slots": [{"id": "s", "actions": [{"id": "a"}]}]}',
            422,
            "either",
        ),
        (b'{"actions": [{"id": "a"}], "surprise": 1}', 422, "surprise"),
        (b'{"actions": [{"id": "a"}], "event_id": "has space"}', 422, "event_id"),
        (b'{"slots": [{"id": "nope", "actions": [{"id": "a"}]}]}', 422, "does not serve"),
        (b'{"actions": [{"id": "a"}], "exploration": {"epsilon": 3}}', 422, "exploration.epsilon"),
    ],
)
def test_bad_decision_requests_are_4xx_naming_the_problem(
    banditrec_service: ServiceUnderTest, body: bytes, status: int, needle: str
) -> None:
    r = _post(banditrec_service, DECIDE, content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert needle in r.text
    if status == 422:  # every problem points somewhere: a field, or the body as a whole
        assert all(d["loc"] for d in r.json()["detail"]), r.text


def test_limits_on_actions_features_batch_and_body(banditrec_service: ServiceUnderTest) -> None:
    svc = banditrec_service
    many_actions = {"actions": [{"id": f"a{i}"} for i in range(257)]}
    r = _post(svc, DECIDE, json=many_actions)
    assert r.status_code == 422
    assert "257 actions; the limit is 256" in r.text
    many_features = {"context": {"u": {f"f{i}": 1 for i in range(2100)}}, "actions": [{"id": "a"}]}
    r = _post(svc, DECIDE, json=many_features)
    assert r.status_code == 422
    assert "the limit is 2048" in r.text
    batch = {"requests": [{"actions": [{"id": "a"}]}] * 1001}
    r = _post(svc, "/v1/apps/content/decisions:batch", json=batch)
    assert r.status_code == 422
    assert "between 1 and 1000" in r.text
    huge = b'{"actions": [{"id": "' + b"x" * (1 << 20) + b'"}]}'
    r = _post(svc, DECIDE, content=huge)
    assert r.status_code == 413
    assert r.json()["error"] == "request too large"


def test_batch_errors_name_the_request_index(banditrec_service: ServiceUnderTest) -> None:
    requests = [example_request("content", 0), {"actions": []}, example_request("content", 1)]
    r = _post(banditrec_service, "/v1/apps/content/decisions:batch", json={"requests": requests})
    assert r.status_code == 422
    assert [d["loc"] for d in r.json()["detail"]] == ["requests[1].actions"]


def test_bad_rewards_and_unknown_apps(banditrec_service: ServiceUnderTest) -> None:
    svc = banditrec_service
    for body, status, needle in [
        (b'{"event_id": "e", "value": Infinity}', 400, "malformed JSON"),
        (b'{"event_id": "e", "value": "high"}', 422, "value"),
        (b'{"event_id": "e", "value": "1"}', 422, "valid number"),  # strict: no numeric strings
        (b'{"event_id": "e", "value": true}', 422, "valid number"),
        (b'{"event_id": "e", "value": NaN}', 400, "malformed JSON"),
        (b'{"event_id": "e", "value": 1e999}', 400, "malformed JSON"),
        (b'{"event_id": "e", "value": 1, "slot": 3}', 422, "slot"),
        (b'{"event_id": "e"}', 422, "value"),
        (
            b'{"rewards": [{"event_id": "e", "value": 1}, {"event_id": "e"}]}',
            422,
            "rewards[1].value",
        ),
        (b'{"rewards": [], "extra": 1}', 422, "extra"),
    ]:
        r = _post(svc, "/v1/apps/content/rewards", content=body)
        assert r.status_code == status, (body, r.text)
        assert needle in r.text, (body, r.text)
    r = _post(svc, "/v1/apps/no-such-app/decisions", json=example_request("content"))
    assert r.status_code == 404
    assert r.json() == {
        "error": "unknown app",
        "detail": [{"loc": "app", "msg": "no app named 'no-such-app'"}],
    }
    assert httpx.get(svc.url + "/v1/nothing").status_code == 404
    assert httpx.put(svc.url + DECIDE, headers=svc.headers()).status_code == 405


def test_a_reward_slot_with_separators_and_lua_magic_breaks_nothing(
    banditrec_service: ServiceUnderTest,
) -> None:
    svc = banditrec_service
    event_id = f"lua-{uuid.uuid4().hex}"
    reward = {"event_id": event_id, "value": 1, "slot": "a|b%[(^$.*+-?\n"}
    r = _post(svc, "/v1/apps/content/rewards", json=reward)
    assert r.json()["outcome"] == "early", r.text
    first = _post(svc, DECIDE, json=example_request("content", event_id=event_id))
    assert first.status_code == 200, first.text
    retry = _post(svc, DECIDE, json=example_request("content", event_id=event_id))
    assert retry.json() == first.json()


def test_the_replica_still_serves_after_all_that(banditrec_service: ServiceUnderTest) -> None:
    svc = banditrec_service
    for _ in range(20):
        _post(svc, DECIDE, content=b"\xff\xfe garbage")
    r = _post(svc, DECIDE, json=example_request("content", 3))
    assert r.status_code == 200
    assert httpx.get(svc.url + "/healthz").status_code == 200
    metrics = httpx.get(svc.url + "/metrics").text
    assert 'banditrec_errors_total{app="content",status="400"}' in metrics
    assert 'status="500"' not in metrics
