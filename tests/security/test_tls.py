"""TLS is verified by default; an untrusted certificate says so and how to trust it (ca_bundle)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fieldtui.config import FleetBackend
from fieldtui.connectors.registry import build_connector
from fieldtui.core.errors import ConnectionError_

DEVICE = (
    Path(__file__).parents[1] / "connectors" / "fixtures" / "fleet" / "device_response.json"
).read_bytes()


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fieldtui test server")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "server.pem", directory / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


class _Fleet(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(DEVICE)))
        self.end_headers()
        self.wfile.write(DEVICE)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    cert, key = _self_signed(tmp_path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Fleet)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/v0", cert
    finally:
        server.shutdown()
        server.server_close()


async def test_an_untrusted_certificate_is_a_clear_connection_error(https_server: tuple[str, Path]) -> None:
    url, _cert = https_server
    connector = build_connector("fleet", FleetBackend(kind="fleet", url=url), "token")
    async with connector:
        with pytest.raises(ConnectionError_) as caught:
            await connector.get_device("ABCD1234")
    text = str(caught.value)
    assert "certificate is not trusted" in text
    assert "ca_bundle" in text
    assert caught.value.transient  # it is not the action's fault: queued, not failed


async def test_the_same_server_is_trusted_when_ca_bundle_names_its_certificate(
    https_server: tuple[str, Path],
) -> None:
    url, cert = https_server
    connector = build_connector("fleet", FleetBackend(kind="fleet", url=url, ca_bundle=str(cert)), "token")
    async with connector:
        device = await connector.get_device("ABCD1234")
    assert device.backend == "fleet" and device.id
