"""Config changes are all or nothing, over real HTTP: a PATCH whose policy VW cannot run is
a 422 with VW's message and stores nothing; a replica meeting an unusable stored config
serves the last good one, says so (app info, /healthz, /readyz, metrics), and keeps
reloading its keys."""

from __future__ import annotations

import re

import httpx

from banditrec.eventlog import EventLog, connect
from banditrec.serving.auth import append_key, create_key
from tests import polling
from tests.plugins.ray_cluster import ServiceUnderTest, example_request

APP = "content"


def test_a_patch_vw_cannot_run_is_a_422_and_stores_nothing(
    banditrec_service: ServiceUnderTest,
) -> None:
    svc = banditrec_service
    with httpx.Client(base_url=svc.url, headers=svc.headers(), timeout=60) as http:
        before = http.get(f"/v1/apps/{APP}").json()
        for extra_args, needle in [
            (["--bogus_flag"], "unrecognised option '--bogus_flag'"),
            (["--bag", "-3"], "VW cannot run with"),
            (["--interactions", "用u"], "ASCII"),
            (["--data=/etc/passwd"], "controls files or I/O"),
        ]:
            r = http.patch(
                f"/v1/apps/{APP}", json={"policy": {"kind": "vw", "extra_args": extra_args}}
            )
            assert r.status_code == 422, r.text
            assert needle in r.text, r.text
        after = http.get(f"/v1/apps/{APP}").json()
        assert after["config_version"] == before["config_version"]
        assert after["config"] == before["config"] and after["config_error"] is None
        assert http.get("/readyz").status_code == 200
        assert http.post(f"/v1/apps/{APP}/decisions", json=example_request(APP)).status_code == 200


def test_an_unusable_stored_config_leaves_the_last_good_one_serving(
    banditrec_service: ServiceUnderTest,
) -> None:
    svc = banditrec_service
    log = EventLog(connect(svc.redis_url))
    good = log.configs.get(APP)
    assert good is not None
    # Stored by something that did not check it (an older version, a hand-made write).
    bad = good.model_copy(
        update={"policy": good.policy.model_copy(update={"extra_args": ["--bogus_flag"]})}
    )
    log.configs.put(bad)
    try:
        with httpx.Client(base_url=svc.url, headers=svc.headers(), timeout=10) as http:

            def stale() -> bool:
                return http.get(f"/v1/apps/{APP}").json()["config_error"] is not None

            polling.wait_for(stale, 30, "the replica to report its last good config")
            assert "--bogus_flag" in http.get(f"/v1/apps/{APP}").json()["config_error"]
            assert (
                http.post(f"/v1/apps/{APP}/decisions", json=example_request(APP)).status_code == 200
            )
            ready = http.get("/readyz")
            assert ready.status_code == 200 and APP in ready.json()["stale_configs"]
            assert APP in http.get("/healthz").json()["stale_configs"]
            polling.wait_for(
                lambda: re.search(  # labelled with the replica that answers
                    rf'banditrec_config_stale\{{app="{APP}",replica="[^"]*"\}} 1\.0',
                    http.get("/metrics").text,
                ),
                30,
                "the stale-config metric",
            )
            # The keys file is still read: a key added now is accepted.
            assert svc.keys_file is not None
            key, record = create_key([APP], ["decide"], note="added while stale")
            append_key(svc.keys_file, record)
            headers = {"Authorization": f"Bearer {key}"}
            polling.wait_for(
                lambda: (
                    http.post(
                        f"/v1/apps/{APP}/decisions", json=example_request(APP), headers=headers
                    ).status_code
                    == 200
                ),
                30,
                "the key added while the config is stale",
            )
    finally:
        log.configs.put(good)
    with httpx.Client(base_url=svc.url, headers=svc.headers(), timeout=10) as http:
        polling.wait_for(
            lambda: http.get(f"/v1/apps/{APP}").json()["config_error"] is None,
            30,
            "the good config back",
        )
        assert "stale_configs" not in http.get("/healthz").json()
