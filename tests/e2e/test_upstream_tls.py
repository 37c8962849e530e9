"""An HTTPS upstream whose certificate does not verify, on both HTTP clients: a 502 that says it
was the certificate, the same line in the gateway's log, and SSL_CERT_FILE as the documented fix.

The upstream is the fake served over TLS with a self-signed certificate made for this test by
the `openssl` CLI (valid from now, so no date is built in)."""

from __future__ import annotations

import logging
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from sluice_devtools.fake_upstream import FakeUpstreamThread
from tests.conftest import GatewayFactory

CLIENTS = ["lean", "aiohttp"]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=sluice-test-private-ca",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-addext", "keyUsage=critical,digitalSignature,keyCertSign"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def https_upstream(certificate: tuple[Path, Path]) -> Iterator[FakeUpstreamThread]:
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(*certificate)
    with FakeUpstreamThread(tls=server) as fake:
        assert fake.base_url.startswith("https://")
        yield fake


def _ask(client: openai.OpenAI, stream: bool) -> object:
    return client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "#words=3"}], stream=stream
    )


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("stream", [False, True])
def test_an_unverifiable_certificate_is_a_502_that_names_it(
    start_gateway: GatewayFactory,
    sqlite_url: str,
    https_upstream: FakeUpstreamThread,
    caplog: pytest.LogCaptureFixture,
    client: str,
    stream: bool,
) -> None:
    gateway = start_gateway(
        sqlite_url, SLUICE_UPSTREAM_BASE_URL=https_upstream.base_url, SLUICE_UPSTREAM_CLIENT=client
    )
    with (
        caplog.at_level(logging.ERROR, "sluice.upstream"),
        pytest.raises(openai.APIStatusError) as info,
    ):
        _ask(gateway.openai(), stream)
    assert info.value.status_code == 502
    assert info.value.code == "upstream_error"
    message = info.value.message
    assert "TLS certificate could not be verified" in message
    assert "self-signed" in message or "self signed" in message
    assert "SSL_CERT_FILE" in message
    logged = [r.getMessage() for r in caplog.records if r.name == "sluice.upstream"]
    assert any("TLS certificate could not be verified" in line for line in logged), logged


@pytest.mark.parametrize("client", CLIENTS)
def test_ssl_cert_file_trusts_a_private_ca(
    start_gateway: GatewayFactory,
    sqlite_url: str,
    https_upstream: FakeUpstreamThread,
    certificate: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    client: str,
) -> None:
    """What README.md tells operators to do works on both clients."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    gateway = start_gateway(
        sqlite_url, SLUICE_UPSTREAM_BASE_URL=https_upstream.base_url, SLUICE_UPSTREAM_CLIENT=client
    )
    answer = _ask(gateway.openai(), False)
    assert answer.choices[0].message.content == "w1 w2 w3"  # type: ignore[attr-defined]
