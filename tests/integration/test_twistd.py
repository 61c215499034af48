# SPDX-License-Identifier: AGPL-3.0-only
"""End to end: the real ``twistd mas`` process, on TCP, a unix socket, systemd socket
activation and TLS, on SQLite and PostgreSQL, answering discovery, the JWKS and health."""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import socket
import ssl
import subprocess
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.integration._harness import (
    PostgresDatabase,
    TwistdProcess,
    base_config,
    free_port,
    mas_cli,
    request,
    run_sql,
    venv_script,
)

PRIVATE_JWK_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


def _listener(binds: list[dict]) -> dict:
    return {
        "name": "web",
        "resources": [{"name": "discovery"}, {"name": "oauth"}, {"name": "health"}],
        "binds": binds,
    }


def _check_service(public_base: str, **conn) -> None:
    """What a client sees: discovery, the public keys, health."""
    discovery = request("GET", "/.well-known/openid-configuration", **conn)
    assert discovery.status == 200, discovery.body
    assert discovery.headers["content-type"].startswith("application/json")
    doc = discovery.json()
    assert doc["issuer"] == public_base
    assert doc["jwks_uri"] == public_base + "oauth2/keys.json"

    keys = request("GET", "/oauth2/keys.json", **conn)
    assert keys.status == 200, keys.body
    jwks = keys.json()["keys"]
    assert {k["kty"] for k in jwks} == {"RSA", "EC"}
    assert {k["crv"] for k in jwks if k["kty"] == "EC"} == {"P-256", "P-384", "secp256k1"}
    for key in jwks:
        assert not PRIVATE_JWK_MEMBERS & set(key), key
        assert key["kid"]
    assert set(doc["id_token_signing_alg_values_supported"]) >= {"RS256", "ES256", "ES384", "ES256K"}

    health = request("GET", "/health", **conn)
    assert health.status == 200
    assert health.body == b"ok"


@pytest.fixture(params=["sqlite", "postgres"], name="database_uri")
def _database_uri(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'mas.db'}"
    else:
        db = PostgresDatabase()
        try:
            yield db.uri
        finally:
            db.drop()


def test_tcp_listener(tmp_path: Path, database_uri: str) -> None:
    port = free_port()
    config = base_config(tmp_path, database_uri=database_uri)
    public_base = f"http://127.0.0.1:{port}/"
    config["http"] = {
        "public_base": public_base,
        "listeners": [_listener([{"host": "127.0.0.1", "port": port}])],
    }
    proc = TwistdProcess(tmp_path, config).start()
    try:
        proc.wait_until(lambda: request("GET", "/health", port=port))
        _check_service(public_base, port=port)
    finally:
        assert proc.stop() == 0, proc.output()
    assert "Traceback" not in proc.output()


def test_unix_socket_listener(tmp_path: Path, database_uri: str) -> None:
    sock = str(tmp_path / "mas.sock")
    config = base_config(tmp_path, database_uri=database_uri)
    public_base = "https://auth.example.test/"
    # MAS's spelling: octal digits as a string (a YAML number is refused, as MAS refuses it).
    config["http"] = {"public_base": public_base, "listeners": [_listener([{"socket": sock, "mode": "660"}])]}
    proc = TwistdProcess(tmp_path, config).start()
    try:
        proc.wait_until(lambda: request("GET", "/health", unix=sock))
        _check_service(public_base, unix=sock)
        assert (Path(sock).stat().st_mode & 0o777) == 0o660
    finally:
        assert proc.stop() == 0, proc.output()


def test_systemd_socket_activation(tmp_path: Path) -> None:
    activate = shutil.which("systemd-socket-activate")
    assert activate, "systemd-socket-activate is missing (Debian package systemd)"
    port = free_port()
    config = base_config(tmp_path)
    public_base = f"http://127.0.0.1:{port}/"
    # fd 0 is the first socket passed by the service manager (file descriptor 3), as in MAS.
    config["http"] = {"public_base": public_base, "listeners": [_listener([{"fd": 0, "kind": "tcp"}])]}
    proc = TwistdProcess(tmp_path, config, wrapper=[activate, "-l", f"127.0.0.1:{port}"]).start()
    try:
        proc.wait_until(lambda: request("GET", "/health", port=port))
        _check_service(public_base, port=port)
    finally:
        proc.stop()


def _self_signed(tmp_path: Path, password: bytes) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
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
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = tmp_path / "cert.pem"
    key_path = tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(password),
        )
    )
    return cert_path, key_path


def test_tls_listener(tmp_path: Path) -> None:
    cert_path, key_path = _self_signed(tmp_path, b"hunter2")
    port = free_port()
    config = base_config(tmp_path)
    public_base = f"https://localhost:{port}/"
    listener = _listener([{"host": "127.0.0.1", "port": port}])
    listener["tls"] = {"certificate_file": str(cert_path), "key_file": str(key_path), "password": "hunter2"}
    config["http"] = {"public_base": public_base, "listeners": [listener]}
    context = ssl.create_default_context(cafile=str(cert_path))
    proc = TwistdProcess(tmp_path, config).start()
    try:
        proc.wait_until(lambda: request("GET", "/health", port=port, tls_context=context, host="localhost"))
        _check_service(public_base, port=port, tls_context=context, host="localhost")
        # Plain HTTP on a TLS listener gets no HTTP answer.
        with pytest.raises(Exception):
            request("GET", "/health", port=port)
    finally:
        assert proc.stop() == 0, proc.output()


def test_bad_config_is_one_line_and_nonzero(tmp_path: Path) -> None:
    config = base_config(tmp_path)
    config["http"] = {"listeners": [_listener([{"host": "127.0.0.1", "port": "eighty"}])]}
    proc = TwistdProcess(tmp_path, config).start()
    assert proc.proc is not None
    code = proc.proc.wait(timeout=60)
    proc.stop()
    output = proc.output()
    assert code != 0
    assert "http.listeners[0].binds[0].port" in output
    assert "'eighty'" in output
    assert "Traceback" not in output


def test_plugin_is_listed_by_twistd(tmp_path: Path) -> None:
    out = subprocess.run(
        [venv_script("twistd"), "--help"], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert out.returncode == 0
    assert "mas" in out.stdout.split()


def _one_line_failure(proc: TwistdProcess, timeout: float = 60) -> str:
    """Wait for ``proc`` to exit; it must exit non-zero with one ``twistd mas:`` line and no traceback."""
    assert proc.proc is not None
    code = proc.proc.wait(timeout=timeout)
    proc.stop()
    output = proc.output()
    assert code not in (0, None), output
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if line.startswith("twistd mas: ")]
    assert len(lines) == 1, output
    return lines[0]


def test_socket_mode_as_a_yaml_number_is_refused(tmp_path: Path) -> None:
    config = base_config(tmp_path)
    config["http"] = {
        "public_base": "https://auth.example.test/",
        "listeners": [_listener([{"socket": str(tmp_path / "mas.sock"), "mode": 0o660}])],
    }
    line = _one_line_failure(TwistdProcess(tmp_path, config).start())
    assert "http.listeners[0].binds[0].mode" in line and "quote" in line, line
    assert not (tmp_path / "mas.sock").exists()


def test_no_migrate_refuses_a_database_newer_than_the_code(tmp_path: Path, database_uri: str) -> None:
    config = base_config(tmp_path, database_uri=database_uri)
    port = free_port()
    config["http"] = {
        "public_base": f"http://127.0.0.1:{port}/",
        "listeners": [_listener([{"host": "127.0.0.1", "port": port}])],
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    migrated = mas_cli(tmp_path, "database", "migrate", "-c", str(tmp_path / "config.yaml"))
    assert migrated.returncode == 0, migrated.stderr
    run_sql(database_uri, "UPDATE schema_version SET compat_version = 999")
    proc = TwistdProcess(tmp_path, config, args=["--no-migrate"]).start()
    line = _one_line_failure(proc)
    assert "schema version 999 or later" in line, line


def test_no_migrate_refuses_an_unmigrated_database_and_serves_a_migrated_one(
    tmp_path: Path, database_uri: str
) -> None:
    config = base_config(tmp_path, database_uri=database_uri)
    port = free_port()
    config["http"] = {
        "public_base": f"http://127.0.0.1:{port}/",
        "listeners": [_listener([{"host": "127.0.0.1", "port": port}])],
    }
    line = _one_line_failure(TwistdProcess(tmp_path, config, args=["--no-migrate"]).start())
    assert "no schema yet" in line and "mas-cli database migrate" in line, line

    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    migrated = mas_cli(tmp_path, "database", "migrate", "-c", str(tmp_path / "config.yaml"))
    assert migrated.returncode == 0, migrated.stderr
    proc = TwistdProcess(tmp_path, config, args=["--no-migrate"]).start()
    try:
        proc.wait_until(lambda: request("GET", "/health", port=port))
        assert request("GET", "/health", port=port).status == 200
    finally:
        assert proc.stop() == 0, proc.output()


def test_unreachable_database_is_one_line(tmp_path: Path) -> None:
    config = base_config(tmp_path, database_uri="sqlite:////proc/mas.db")
    for args in ([], ["--no-migrate"]):
        line = _one_line_failure(TwistdProcess(tmp_path, config, args=args).start())
        assert "SQLite database /proc/mas.db" in line and "unable to open database file" in line, line


def test_busy_port_stops_with_status_1_and_removes_the_pidfile(tmp_path: Path) -> None:
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    busy = taken.getsockname()[1]
    free = free_port()
    config = base_config(tmp_path)
    config["http"] = {
        "public_base": f"http://127.0.0.1:{free}/",
        "listeners": [
            {
                "name": "internal",
                "resources": [{"name": "health"}],
                "binds": [{"host": "127.0.0.1", "port": free}],
            },
            _listener([{"host": "127.0.0.1", "port": busy}]),
        ],
    }
    pidfile = tmp_path / "twistd.pid"
    try:
        proc = TwistdProcess(tmp_path, config, pidfile=str(pidfile)).start()
        line = _one_line_failure(proc)
    finally:
        taken.close()
    assert (
        line
        == f"twistd mas: could not start listener web: could not bind 127.0.0.1:{busy}: Address already in use"
    )
    assert proc.proc is not None and proc.proc.returncode == 1
    # twistd shut down in order: its pidfile is gone and the other listener's port is free.
    assert not pidfile.exists()
    assert "Server Shut Down." in proc.output()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as check:
        check.bind(("127.0.0.1", free))
