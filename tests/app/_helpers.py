# SPDX-License-Identifier: AGPL-3.0-only
"""Helpers of the listener tests: configs, certificates, raw HTTP clients, log capture."""

from __future__ import annotations

import datetime
import ipaddress
import logging
import socket
import ssl
from typing import Any, Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mas_twisted.config._base import Reader
from mas_twisted.config.http import HttpConfig

ENCRYPTION_KEY = "0123456789abcdef" * 4

_ec_key_pem: list[str] = []


def ec_key_pem() -> str:
    """One P-256 signing key per process (cheap to make, unlike RSA)."""
    if not _ec_key_pem:
        key = ec.generate_private_key(ec.SECP256R1())
        _ec_key_pem.append(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ).decode("ascii")
        )
    return _ec_key_pem[0]


def root_config_tree(http: dict[str, Any] | None) -> dict[str, Any]:
    """A complete configuration tree with ``http`` as given (``None``: no http section)."""
    raw: dict[str, Any] = {
        "database": {"uri": "sqlite:///:memory:"},
        "secrets": {"encryption": ENCRYPTION_KEY, "keys": [{"kid": "test-ec", "key": ec_key_pem()}]},
        "matrix": {"homeserver": "example.com", "secret": "shared", "endpoint": "http://matrix.example.com/"},
    }
    if http is not None:
        raw["http"] = http
    return raw


def read_http(value: Any, *, present: bool = True) -> HttpConfig:
    """Read an ``http`` section on its own, as ``RootConfig`` does."""
    section = HttpConfig(None)
    raw = {"http": value} if present else {}
    section.read_config(Reader(value if present else None, ("http",)), raw)
    return section


def http_section(listener: dict[str, Any], **extra: Any) -> dict[str, Any]:
    section = {"public_base": "https://auth.example.com/", "listeners": [listener]}
    section.update(extra)
    return section


def self_signed(common_name: str = "localhost", *, password: bytes | None = None) -> tuple[str, str, Any]:
    """A self-signed certificate for ``common_name`` and 127.0.0.1: ``(cert_pem, key_pem, key)``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(common_name), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    encryption = (
        serialization.BestAvailableEncryption(password)
        if password is not None
        else serialization.NoEncryption()
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii"), key_pem.decode("ascii"), key


class Response:
    def __init__(self, raw: bytes):
        head, _, body = raw.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split(" ")[1])
        self.headers: dict[str, str] = {}
        for line in lines:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self.body = body

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.body[:200]!r}>"


def raw_exchange(
    connect_to: Any,
    request: bytes,
    *,
    family: int = socket.AF_INET,
    preamble: bytes = b"",
    tls_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    timeout: float = 10.0,
) -> bytes:
    """Blocking: connect, send ``preamble`` (a PROXY header), then TLS if asked, then
    ``request``; return every byte until the server closes. Run it in a thread."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(connect_to)
        if preamble:
            sock.sendall(preamble)
        conn: socket.socket = sock
        if tls_context is not None:
            conn = tls_context.wrap_socket(sock, server_hostname=server_hostname)
        conn.sendall(request)
        chunks = []
        while True:
            data = conn.recv(65536)
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)
    finally:
        sock.close()


def http_get(path: str, *, host: str = "localhost", headers: dict[str, str] | None = None) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class CapturingHandler(logging.Handler):
    """Collects the records of one logger (and below) for assertions."""

    def __init__(self, logger_name: str):
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._logger = logging.getLogger(logger_name)
        self._previous_level = self._logger.level

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def __enter__(self) -> Self:
        self._logger.addHandler(self)
        self._logger.setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc: object) -> None:
        self._logger.removeHandler(self)
        self._logger.setLevel(self._previous_level)

    def messages(self) -> list[str]:
        return [record.getMessage() for record in self.records]
