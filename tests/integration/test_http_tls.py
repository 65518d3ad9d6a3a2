"""HTTPS through the guard: the connection goes to the checked address while the TLS server name
and the certificate check use the host name, so a certificate for another name is refused."""

from __future__ import annotations

import datetime
import http.server
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from blocks.http_client import Fetcher, HttpFailed
from blocks.net_guard import NetGuard


def self_signed(folder: Path, name: str) -> tuple[Path, Path]:
    """A certificate for `name` that is its own CA, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


class _Handler(http.server.BaseHTTPRequestHandler):
    seen: dict[str, Any] = {}

    def do_GET(self) -> None:
        self.seen["host"] = self.headers["Host"]
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Path, dict[str, Any]]]:
    """An HTTPS server on loopback with a certificate for `api.test`: (port, CA file, what it saw)."""
    cert_file, key_file = self_signed(tmp_path, "api.test")
    seen: dict[str, Any] = {}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), type("H", (_Handler,), {"seen": seen}))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    context.sni_callback = lambda sock, name, ctx: seen.setdefault("sni", []).append(name)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], cert_file, seen
    server.shutdown()
    server.server_close()


def test_https_is_verified_against_the_name_while_connecting_to_the_checked_address(
        tls_server: tuple[int, Path, dict[str, Any]]) -> None:
    port, ca_file, seen = tls_server
    guard = NetGuard(allow=["api.test", "other.test"], resolver=lambda host, p: ["127.0.0.1"])
    fetcher = Fetcher(guard, timeout_s=5, retries=0, verify=ssl.create_default_context(cafile=str(ca_file)))
    fetched = fetcher.fetch("GET", httpx.URL(f"https://api.test:{port}/"), {}, None, {})
    assert fetched.status == 200 and fetched.content == b"ok"
    assert seen["sni"] == ["api.test"] and seen["host"] == f"api.test:{port}"
    with pytest.raises(HttpFailed, match="CERTIFICATE_VERIFY_FAILED"):
        fetcher.fetch("GET", httpx.URL(f"https://other.test:{port}/"), {}, None, {})
    assert seen["sni"] == ["api.test", "other.test"]
