# SPDX-License-Identifier: AGPL-3.0-only
"""The ``http`` section (MAS's ``crates/config/src/sections/http.rs``) and the Twisted
endpoint descriptions its binds become."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from twisted.internet.endpoints import TCP4ServerEndpoint, UNIXServerEndpoint, serverFromString
from twisted.internet.testing import MemoryReactor

from mas_twisted.api.errors import ConfigError, format_path
from mas_twisted.config.http import (
    DEFAULT_TRUSTED_PROXIES,
    AddressBind,
    FdBind,
    ListenBind,
    ResourceConfig,
    UnixBind,
    bind_to_endpoint,
    current_umask,
    normalize_url,
)
from mas_twisted.config.root import RootConfig
from tests.app._helpers import http_section, read_http, root_config_tree, self_signed


def listener(**overrides: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": "web", "resources": [{"name": "health"}], "binds": [{"port": 8080}]}
    entry.update(overrides)
    return entry


def expect_error(value: Any, path: tuple, *fragments: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        read_http(value)
    text = str(info.value)
    assert "\n" not in text, text
    assert info.value.path == path, text
    assert format_path(path) in text, text
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in {text!r}"
    return info.value


# -- defaults ---------------------------------------------------------------------------------


def test_absent_section_gives_mas_default_listeners() -> None:
    http = read_http(None, present=False)
    assert not http.configured
    assert [(l.name, l.resource_names) for l in http.listeners] == [
        ("web", ("discovery", "human", "oauth", "compat", "graphql", "assets")),
        ("internal", ("health",)),
    ]
    assert http.listeners[0].binds == (AddressBind("[::]:8080", "::", 8080),)
    assert http.listeners[1].binds == (ListenBind("localhost", 8081),)
    assert http.listeners[0].resources[-1] == ResourceConfig("assets", path="./share/assets/")
    assert http.public_base == "http://[::]:8080/"
    assert http.issuer == "http://[::]:8080/"
    assert [str(n) for n in http.trusted_proxies] == [
        "192.168.0.0/16",
        "172.16.0.0/12",
        "10.0.0.0/10",
        "127.0.0.0/8",
        "fd00::/8",
        "::1/128",
    ]


def test_present_section_needs_public_base_and_has_no_default_listeners() -> None:
    expect_error({"listeners": [listener()]}, ("http", "public_base"), "missing required value")
    http = read_http({"public_base": "https://auth.example.com"})
    # MAS's listener list defaults to empty once the section exists.
    assert http.listeners == []
    assert http.configured


def test_public_base_and_issuer_are_spelled_as_mas_prints_urls() -> None:
    http = read_http({"public_base": "HTTPS://Auth.Example.COM:443"})
    assert http.public_base == "https://auth.example.com/"
    assert http.issuer == "https://auth.example.com/"
    http = read_http({"public_base": "http://127.0.0.1:8080/auth/", "issuer": "https://example.com"})
    assert http.public_base == "http://127.0.0.1:8080/auth/"
    assert http.issuer == "https://example.com/"
    assert normalize_url("http://[::1]:80") == "http://[::1]/"


@pytest.mark.parametrize(
    "value, fragment",
    [
        ("ftp://example.com/", "http or https"),
        ("https://example.com/?a=1", "query"),
        ("https://example.com/#top", "fragment"),
        ("https://user:pw@example.com/", "credentials"),
        ("example.com", "absolute URL"),
    ],
)
def test_public_base_rejects_what_mas_url_builder_refuses(value: str, fragment: str) -> None:
    expect_error({"public_base": value}, ("http", "public_base"), fragment)


def test_trusted_proxies() -> None:
    http = read_http({"public_base": "https://a.example/", "trusted_proxies": ["10.1.2.3", "2001:db8::/32"]})
    assert http.trusted_proxies == [
        ipaddress.ip_network("10.1.2.3/32"),
        ipaddress.ip_network("2001:db8::/32"),
    ]
    # A present section without trusted_proxies gets MAS's default_trusted_proxies(), in its
    # order (10.0.0.0/10 and 127.0.0.1/8 exactly as MAS writes them).
    defaults = read_http({"public_base": "https://a.example/"}).trusted_proxies
    assert defaults == [
        ipaddress.ip_network("192.168.0.0/16"),
        ipaddress.ip_network("172.16.0.0/12"),
        ipaddress.ip_network("10.0.0.0/10"),
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("fd00::/8"),
        ipaddress.ip_network("::1/128"),
    ]
    assert DEFAULT_TRUSTED_PROXIES == (
        "192.168.0.0/16",
        "172.16.0.0/12",
        "10.0.0.0/10",
        "127.0.0.1/8",
        "fd00::/8",
        "::1/128",
    )
    assert (
        ipaddress.ip_address("10.63.255.255") in defaults[2]
        and ipaddress.ip_address("10.64.0.0") not in defaults[2]
    )
    expect_error(
        {"public_base": "https://a.example/", "trusted_proxies": ["10.0.0.0/8", "not-an-ip"]},
        ("http", "trusted_proxies", 1),
        "'not-an-ip'",
    )


# -- listeners and resources ------------------------------------------------------------------


def test_every_resource_name_as_mas_spells_it() -> None:
    names = [
        "health",
        "prometheus",
        "discovery",
        "human",
        "graphql",
        "oauth",
        "compat",
        "assets",
        "adminapi",
        "connection-info",
    ]
    http = read_http(http_section(listener(resources=[{"name": n} for n in names])))
    assert http.listeners[0].resource_names == tuple(names)


def test_resource_options() -> None:
    http = read_http(
        http_section(
            listener(
                resources=[
                    {"name": "assets", "path": "/srv/assets/"},
                    {"name": "graphql", "playground": True, "undocumented_oauth2_access": True},
                    {"name": "assets"},
                ]
            )
        )
    )
    resources = http.listeners[0].resources
    assert resources[0] == ResourceConfig("assets", path="/srv/assets/")
    assert resources[1] == ResourceConfig("graphql", playground=True, undocumented_oauth2_access=True)
    assert resources[2].path == "./share/assets/"


def test_unknown_resource_names_its_path_and_value() -> None:
    expect_error(
        http_section(listener(resources=[{"name": "health"}, {"name": "connection_info"}])),
        ("http", "listeners", 0, "resources", 1, "name"),
        "'connection_info'",
        "connection-info",
    )
    expect_error(
        http_section(listener(resources=[{"path": "x"}])), ("http", "listeners", 0, "resources", 0, "name")
    )
    expect_error(
        http_section(listener(resources=["health"])), ("http", "listeners", 0, "resources", 0), "mapping"
    )
    expect_error(
        http_section(listener(resources=[{"name": "graphql", "playground": "yes"}])),
        ("http", "listeners", 0, "resources", 0, "playground"),
        "'yes'",
    )


def test_listener_needs_resources_and_binds() -> None:
    expect_error(
        http_section(listener(resources=[])),
        ("http", "listeners", 0, "resources"),
        "listener has no resources",
    )
    expect_error(
        http_section(listener(binds=[])), ("http", "listeners", 0, "binds"), "does not bind to any address"
    )
    entry = listener()
    del entry["binds"]
    expect_error(http_section(entry), ("http", "listeners", 0, "binds"), "missing required value")


def test_listener_name_prefix_and_proxy_protocol() -> None:
    http = read_http(
        {
            "public_base": "https://a.example/",
            "listeners": [
                listener(prefix="/auth/", proxy_protocol=True),
                {"resources": [{"name": "health"}], "binds": [{"port": 1}], "prefix": "/"},
            ],
        }
    )
    first, second = http.listeners
    assert (first.name, first.configured_name, first.prefix, first.proxy_protocol) == (
        "web",
        "web",
        "/auth",
        True,
    )
    # An unnamed listener still gets a unique name (service names, log names).
    assert (second.name, second.configured_name, second.prefix, second.proxy_protocol) == (
        "listener-1",
        None,
        "",
        False,
    )
    expect_error(http_section(listener(prefix="auth")), ("http", "listeners", 0, "prefix"), "'auth'")
    expect_error(
        http_section(listener(proxy_protocol="on")), ("http", "listeners", 0, "proxy_protocol"), "'on'"
    )


# -- binds ------------------------------------------------------------------------------------


def binds_of(*binds: dict[str, Any]) -> tuple:
    return read_http(http_section(listener(binds=list(binds)))).listeners[0].binds


def test_every_bind_kind() -> None:
    assert binds_of(
        {"host": "127.0.0.1", "port": 8080},
        {"port": 8081},
        {"address": "[::1]:8082"},
        {"address": "0.0.0.0:8083"},
        {"socket": "/run/mas.sock", "mode": "660"},
        {"socket": "/run/mas2.sock"},
        {"fd": 1, "kind": "unix"},
        {"fd": 2},
        {},
    ) == (
        ListenBind("127.0.0.1", 8080),
        ListenBind(None, 8081),
        AddressBind("[::1]:8082", "::1", 8082),
        AddressBind("0.0.0.0:8083", "0.0.0.0", 8083),
        UnixBind("/run/mas.sock", 0o660),
        UnixBind("/run/mas2.sock", None),
        FdBind(1, "unix"),
        FdBind(2, "tcp"),
        # An empty mapping is MAS's FileDescriptor variant with its defaults.
        FdBind(0, "tcp"),
    )


def load_yaml_config(tmp_path: Path, http_yaml: str) -> RootConfig:
    """Load an ``http`` section written as YAML text, through the loader MAS's files go through."""
    rest = yaml.safe_dump(dict(root_config_tree(None).items()))
    path = tmp_path / "config.yaml"
    path.write_text(rest + http_yaml)
    return RootConfig.load([str(path)], environ={})


def socket_yaml(mode: str) -> str:
    return f"""\
http:
  public_base: https://auth.example.com/
  listeners:
    - name: web
      resources:
        - name: health
      binds:
        - socket: /run/mas.sock
          mode: {mode}
"""


@pytest.mark.parametrize(
    "spelling, expected",
    [('"660"', 0o660), ("'0600'", 0o600), ('"400"', 0o400), ('"0o755"', 0o755), ('"2770"', 0o2770)],
)
def test_socket_mode_is_octal_text(tmp_path: Path, spelling: str, expected: int) -> None:
    # MAS parses the string in base 8 (u32::from_str_radix(mode, 8)).
    bind = load_yaml_config(tmp_path, socket_yaml(spelling)).http.listeners[0].binds[0]
    assert bind.mode == expected
    assert bind_to_endpoint(bind) == f"unix:address=/run/mas.sock:mode={expected:o}:lockfile=0"


@pytest.mark.parametrize("spelling", ["400", "0660", "660", "0o400", "0x1b0", "6.6"])
def test_socket_mode_as_a_yaml_number_is_refused(tmp_path: Path, spelling: str) -> None:
    # MAS's mode is a string and its loader refuses a number. A number cannot be read safely:
    # YAML 1.2 gives 660 for both `660` and `0660`, and 256 for `0o400`, whose digits would
    # mean mode 256 (rw-r-xrw-) if taken as octal text; `400` as raw bits would be 0o620.
    with pytest.raises(ConfigError) as info:
        load_yaml_config(tmp_path, socket_yaml(spelling))
    text = str(info.value)
    assert "\n" not in text
    assert info.value.path == ("http", "listeners", 0, "binds", 0, "mode")
    assert "quote" in text and "number" in text, text


@pytest.mark.parametrize("spelling", ['"rw-rw----"', '"680"', '""', '"17777"', "true"])
def test_socket_mode_errors_name_path_and_value(tmp_path: Path, spelling: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_yaml_config(tmp_path, socket_yaml(spelling))
    assert info.value.path == ("http", "listeners", 0, "binds", 0, "mode")
    assert "octal permissions" in str(info.value)


@pytest.mark.parametrize(
    "bind, key, fragment",
    [
        ({"host": "127.0.0.1", "port": "eighty"}, "port", "'eighty'"),
        ({"port": 70000}, "port", "70000"),
        ({"port": -1}, "port", "-1"),
        ({"host": "localhost"}, "port", "host needs a port"),
        ({"address": "localhost:8080"}, "address", "'localhost:8080'"),
        ({"address": "[::1]8080"}, "address", "'[::1]8080'"),
        ({"address": "127.0.0.1:99999"}, "address", "'127.0.0.1:99999'"),
        ({"address": "127.0.0.1"}, "address", "'127.0.0.1'"),
        ({"fd": -1}, "fd", "-1"),
        ({"fd": 0, "kind": "udp"}, "kind", "'udp'"),
        ({"socket": ""}, "socket", "must not be empty"),
    ],
)
def test_bind_errors_name_path_and_value(bind: dict[str, Any], key: str, fragment: str) -> None:
    expect_error(
        http_section(listener(binds=[{"port": 1}, bind])), ("http", "listeners", 0, "binds", 1, key), fragment
    )


def test_bind_with_unknown_keys_only() -> None:
    expect_error(
        http_section(listener(binds=[{"path": "/x"}])),
        ("http", "listeners", 0, "binds", 0),
        "port, address, socket or fd",
        "path",
    )


def test_bind_to_endpoint_descriptions() -> None:
    assert bind_to_endpoint(ListenBind("127.0.0.1", 8080)) == "tcp:port=8080:interface=127.0.0.1"
    assert bind_to_endpoint(ListenBind(None, 8080)) == "tcp:port=8080:interface=\\:\\:"
    assert bind_to_endpoint(AddressBind("[::1]:443", "::1", 443)) == "tcp:port=443:interface=\\:\\:1"
    assert (
        bind_to_endpoint(UnixBind("/run/mas.sock", 0o660)) == "unix:address=/run/mas.sock:mode=660:lockfile=0"
    )
    assert (
        bind_to_endpoint(UnixBind("/run/a:b\\c.sock", 0o600))
        == "unix:address=/run/a\\:b\\\\c.sock:mode=600:lockfile=0"
    )
    umask_mode = 0o777 & ~current_umask()
    assert bind_to_endpoint(UnixBind("/s", None)) == f"unix:address=/s:mode={umask_mode:o}:lockfile=0"
    # Index 0 is file descriptor 3, SD_LISTEN_FDS_START, as in MAS.
    assert bind_to_endpoint(FdBind(0, "tcp")) == "systemd:domain=INET:index=0"
    assert bind_to_endpoint(FdBind(2, "unix")) == "systemd:domain=UNIX:index=2"
    assert (
        bind_to_endpoint(ListenBind("127.0.0.1", 80), proxy_protocol=True)
        == "haproxy:tcp:port=80:interface=127.0.0.1"
    )


def test_bind_descriptions_parse_back_to_the_same_endpoint() -> None:
    reactor = MemoryReactor()
    tcp = serverFromString(reactor, bind_to_endpoint(AddressBind("[::1]:8443", "::1", 8443)))
    assert isinstance(tcp, TCP4ServerEndpoint)
    assert (tcp._port, tcp._interface) == (8443, "::1")
    unix = serverFromString(reactor, bind_to_endpoint(UnixBind("/tmp/odd:name=x.sock", 0o640)))
    assert isinstance(unix, UNIXServerEndpoint)
    assert (unix._address, unix._mode, unix._wantPID) == ("/tmp/odd:name=x.sock", 0o640, False)
    proxied = serverFromString(
        reactor, bind_to_endpoint(UnixBind("/tmp/a:b.sock", 0o600), proxy_protocol=True)
    )
    assert proxied._wrappedEndpoint._address == "/tmp/a:b.sock"


# -- TLS --------------------------------------------------------------------------------------


def tls_listener(tls: dict[str, Any]) -> dict[str, Any]:
    return http_section(listener(tls=tls))


def test_tls_inline_and_from_files_with_password(tmp_path: Path) -> None:
    cert_pem, key_pem, key = self_signed()
    http = read_http(tls_listener({"certificate": cert_pem, "key": key_pem}))
    tls = http.listeners[0].tls
    assert tls is not None and len(tls.certificate_chain) == 1
    assert http.listeners[0].scheme == "https"

    cert_file = tmp_path / "cert.pem"
    key_file = tmp_path / "key.pem"
    password_file = tmp_path / "password"
    other_cert, _, _ = self_signed("other")
    cert_file.write_text(cert_pem + other_cert)  # a chain of two
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"s3cret"),
        )
    )
    password_file.write_bytes(b"s3cret")
    http = read_http(
        tls_listener(
            {
                "certificate_file": str(cert_file),
                "key_file": str(key_file),
                "password_file": str(password_file),
            }
        )
    )
    assert len(http.listeners[0].tls.certificate_chain) == 2


def test_tls_errors(tmp_path: Path) -> None:
    cert_pem, key_pem, _ = self_signed()
    _, encrypted_pem, _ = self_signed(password=b"hunter2")
    _, other_key_pem, _ = self_signed()
    at = ("http", "listeners", 0, "tls")
    expect_error(tls_listener({"key": key_pem}), at + ("certificate",), "missing a certificate")
    expect_error(tls_listener({"certificate": cert_pem}), at + ("key",), "missing a private key")
    expect_error(
        tls_listener({"certificate": cert_pem, "certificate_file": "/x", "key": key_pem}),
        at + ("certificate",),
        "only one of",
    )
    expect_error(
        tls_listener({"certificate": cert_pem, "key": key_pem, "key_file": "/x"}),
        at + ("key",),
        "only one of",
    )
    expect_error(
        tls_listener({"certificate": cert_pem, "key": key_pem, "password": "a", "password_file": "/x"}),
        at + ("password",),
        "not both",
    )
    expect_error(
        tls_listener({"certificate": "garbage", "key": key_pem}), at + ("certificate",), "empty (or invalid)"
    )
    expect_error(tls_listener({"certificate": cert_pem, "key": "garbage"}), at + ("key",), "could not decode")
    expect_error(
        tls_listener({"certificate": cert_pem, "key": encrypted_pem}),
        at + ("key",),
        "no password was provided",
    )
    expect_error(
        tls_listener({"certificate": cert_pem, "key": encrypted_pem, "password": "wrong"}),
        at + ("key",),
        "wrong password",
    )
    expect_error(
        tls_listener({"certificate": cert_pem, "key": key_pem, "password": "x"}),
        at + ("key",),
        "not encrypted",
    )
    expect_error(
        tls_listener({"certificate": cert_pem, "key": other_key_pem}), at + ("key",), "does not match"
    )
    # The keystore's loader decides which keys are usable, as MAS's does: no P-521.
    p521_pem = (
        ec.generate_private_key(ec.SECP521R1())
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )
    expect_error(
        tls_listener({"certificate": cert_pem, "key": p521_pem}), at + ("key",), "unsupported elliptic curve"
    )
    # An inline key is PEM (MAS reads DER from key_file only).
    expect_error(
        tls_listener({"certificate": cert_pem, "key": "MIIE"}), at + ("key",), "expected a PEM document"
    )
    missing = str(tmp_path / "nope.pem")
    expect_error(
        tls_listener({"certificate_file": missing, "key": key_pem}), at + ("certificate_file",), missing
    )


# -- the whole configuration ------------------------------------------------------------------


def test_root_config_reads_the_section() -> None:
    config = RootConfig(root_config_tree(http_section(listener())))
    assert config.http.listeners[0].binds == (ListenBind(None, 8080),)
    assert RootConfig(root_config_tree(None)).http.listeners[1].name == "internal"


def test_generated_section_loads_as_mas_defaults() -> None:
    import yaml

    from mas_twisted.config.http import HttpConfig

    generated = yaml.safe_load(HttpConfig.generate_config_section())["http"]
    http = read_http(generated)
    default = read_http(None, present=False)
    assert [(l.name, l.resources, l.binds) for l in http.listeners] == [
        (l.name, l.resources, l.binds) for l in default.listeners
    ]
    assert (http.trusted_proxies, http.public_base, http.issuer) == (
        default.trusted_proxies,
        default.public_base,
        default.issuer,
    )


def test_umask_is_left_unchanged() -> None:
    before = os.umask(0o027)
    try:
        assert current_umask() == 0o027
        assert current_umask() == 0o027
    finally:
        os.umask(before)
