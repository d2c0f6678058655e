"""banditrec.client against the real service, including retries through a proxy that loses
responses: a decision retried after its answer was lost is the logged one, logged once."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import closing

import httpx
import pytest

from banditrec.client import AsyncClient, Client, RetryPolicy, ServiceError
from banditrec.eventlog import EventLog
from tests.plugins.ray_cluster import ServiceUnderTest, example_request


class LosingProxy:
    """A TCP proxy to the service that forwards each request but, while `lose` > 0, drops
    the connection instead of passing the response back: the service did the work, the
    client never hears of it."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.lose = 0
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._back, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with closing(src), closing(dst):
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass

    def _back(self, upstream: socket.socket, client: socket.socket) -> None:
        with closing(upstream), closing(client):
            try:
                while data := upstream.recv(65536):
                    if self.lose > 0:
                        self.lose -= 1
                        client.shutdown(socket.SHUT_RDWR)
                        return
                    client.sendall(data)
            except OSError:
                pass

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def proxy(banditrec_service: ServiceUnderTest) -> Iterator[LosingProxy]:
    p = LosingProxy(int(banditrec_service.url.rsplit(":", 1)[1]))
    yield p
    p.close()


FAST = RetryPolicy(attempts=4, backoff_s=0.01)


def test_decide_reward_batch_and_admin(banditrec_service: ServiceUnderTest) -> None:
    svc = banditrec_service
    with Client(svc.url, app="content", api_key=svc.keys["admin"]) as c:
        body = example_request("content", 1)
        d = c.decide(body["context"], body["actions"])
        assert d.action_id == d.ranking[0].id
        assert d.probability == pytest.approx(d.ranking[0].probability)
        assert c.reward(d.event_id, 1.0) == "accepted"
        batch = c.decide_batch([example_request("content", i) for i in range(50)])
        assert len({x.event_id for x in batch}) == 50
        outcomes = c.rewards([(x.event_id, 0.0) for x in batch[:10]])
        assert outcomes == ["accepted"] * 10
        journey = c.decide(
            **{k: v for k, v in example_request("journey", 2).items()}, app="journey"
        )
        assert journey.slots is not None
        assert [s.slot for s in journey.slots] == ["content", "channel", "send_time"]
        assert "content" in c.apps()
        assert c.app_info()["name"] == "content"


def test_errors_raise_with_the_services_detail(banditrec_service: ServiceUnderTest) -> None:
    svc = banditrec_service
    with Client(svc.url, app="content", api_key=svc.keys["decide"], retry=FAST) as c:
        with pytest.raises(ServiceError) as err:
            c.decide({}, [{"id": "a"}, {"id": "a"}])
        assert err.value.status == 422
        assert "duplicate action id" in str(err.value)
        with pytest.raises(ServiceError) as err:
            c.reward("e", 1.0)
        assert err.value.status == 403
    with (
        Client(svc.url, app="content", api_key="", retry=FAST) as c,
        pytest.raises(ServiceError) as err,
    ):
        c.decide({}, ["a", "b"])
    assert err.value.status == 401


def test_a_decision_whose_answer_was_lost_is_retried_and_logged_once(
    banditrec_service: ServiceUnderTest, proxy: LosingProxy, service_event_log: EventLog
) -> None:
    before = service_event_log.joined.stats("channel")
    body = example_request("channel", 3)
    with Client(proxy.url, app="channel", api_key=banditrec_service.keys["admin"], retry=FAST) as c:
        proxy.lose = 1
        d = c.decide(body["context"], body["actions"])
    assert proxy.lose == 0  # the first answer really was lost
    after = service_event_log.joined.stats("channel")
    assert after["decisions"] - before.get("decisions", 0) == 1
    assert after["repeated_event_ids"] - before.get("repeated_event_ids", 0) == 1
    logged = service_event_log.decisions.get("channel", d.event_id)
    assert logged is not None
    assert logged["_banditrec"]["action_ids"][logged["_labelIndex"]] == d.action_id


def test_a_reward_whose_answer_was_lost_is_not_sent_twice(
    banditrec_service: ServiceUnderTest, proxy: LosingProxy, service_event_log: EventLog
) -> None:
    key = banditrec_service.keys["admin"]
    with Client(banditrec_service.url, app="channel", api_key=key) as direct:
        d = direct.decide(**example_request("channel", 4))
    before = service_event_log.joined.stats("channel").get("rewards", 0)
    with Client(proxy.url, app="channel", api_key=key, retry=FAST) as c:
        proxy.lose = 1
        with pytest.raises(httpx.RemoteProtocolError):
            c.reward(d.event_id, 1.0)
    assert service_event_log.joined.stats("channel")["rewards"] - before == 1


def test_connection_refused_is_retried_then_raised() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nobody listens there
    with (
        Client(f"http://127.0.0.1:{port}", app="x", retry=FAST) as c,
        pytest.raises(httpx.ConnectError),
    ):
        c.decide({}, ["a"])


def test_async_client(banditrec_service: ServiceUnderTest) -> None:
    svc = banditrec_service

    async def scenario() -> None:
        async with AsyncClient(svc.url, app="send_time", api_key=svc.keys["admin"]) as c:
            decisions = await asyncio.gather(
                *(c.decide(**example_request("send_time", i)) for i in range(20))
            )
            assert len({d.event_id for d in decisions}) == 20
            again = await c.decide(
                **example_request("send_time", 0), event_id=decisions[0].event_id
            )
            assert again == decisions[0]
            assert await c.rewards([(d.event_id, 1.0) for d in decisions]) == ["accepted"] * 20
            batch = await c.decide_batch([example_request("send_time", i) for i in range(5)])
            assert len(batch) == 5
            deferred = await c.decide(**example_request("send_time", 1), deferred=True)
            assert await c.activate(deferred.event_id)
            assert (await c.app_info())["name"] == "send_time"
            with pytest.raises(ServiceError) as err:
                await c.patch_app({"min_probability": 5})
            assert err.value.status == 422

    asyncio.run(scenario())


def test_both_clients_send_every_endpoint_built_once() -> None:
    """Each endpoint is written once (banditrec.endpoints); each client has its method."""
    import doctest
    import inspect

    from banditrec import endpoints

    assert doctest.testmod(endpoints).failed == 0
    for name in endpoints.ENDPOINTS:
        assert not inspect.iscoroutinefunction(getattr(Client, name)), name
        assert inspect.iscoroutinefunction(getattr(AsyncClient, name)), name
    with pytest.raises(ValueError, match="name the app"):
        endpoints.Endpoints.app_info(endpoints.Scope())
    call = endpoints.Endpoints.reward(endpoints.Scope("content"), "e1", 1.0, slot="s")
    assert (call.method, call.path, call.idempotent) == ("POST", "/v1/apps/content/rewards", False)
    assert call.body == {"rewards": [{"event_id": "e1", "value": 1.0, "slot": "s"}]}
    assert call.read({"outcomes": [{"outcome": "accepted"}]}) == "accepted"
