# SPDX-License-Identifier: AGPL-3.0-only
"""The ``clients`` section: static OAuth 2.0 clients and MAS's per-method checks."""

from __future__ import annotations

import logging
from typing import Any

from mas_twisted.config.clients import ClientsConfig, StaticClient
from tests.config._helpers import FIXTURES, assert_config_error, read_section

CLIENT_ID = "01M89BQ1ETN8RC4EH849N8832K"
OTHER_ID = "01M89BQ1ETN8RC4EH849N8832M"

RSA_JWK = {
    "kty": "RSA",
    "e": "AQAB",
    "n": "3YAxTe4C04muHufDXoEOMTc7ioPnUoxafSKSBiCHUI-xhKlNhErIiJh-hXF-bugj8fcWApu_jGSuawZTaArEcSVp_cXDmyLlkvFnt",
}


def clients(*items: dict[str, Any]) -> ClientsConfig:
    return read_section(ClientsConfig, list(items))


def client(**keys: Any) -> StaticClient:
    keys.setdefault("client_id", CLIENT_ID)
    return clients(keys).clients[0]


def test_absent_section_means_no_clients() -> None:
    assert read_section(ClientsConfig, None).clients == []


def test_public_client() -> None:
    c = client(
        client_auth_method="none",
        client_name="My App",
        client_uri="https://app.example.com/",
        redirect_uris=[
            "https://app.example.com/cb",
            "com.example.app:/oauth2redirect",
            "http://localhost:3000/cb",
        ],
    )
    assert c == StaticClient(
        client_id=CLIENT_ID,
        client_auth_method="none",
        client_name="My App",
        client_uri="https://app.example.com/",
        redirect_uris=(
            "https://app.example.com/cb",
            "com.example.app:/oauth2redirect",
            "http://localhost:3000/cb",
        ),
    )
    assert not c.uses_secret


def test_lowercase_ulid_is_accepted_and_normalised() -> None:
    assert client(client_id=CLIENT_ID.lower(), client_auth_method="none").client_id == CLIENT_ID


def test_secret_methods() -> None:
    for method in ("client_secret_basic", "client_secret_post", "client_secret_jwt"):
        c = client(client_auth_method=method, client_secret="s3cr3t")
        assert c.client_secret == "s3cr3t"
        assert c.uses_secret


def test_client_secret_file_is_trimmed() -> None:
    path = str(FIXTURES / "client-secret.txt")
    c = client(client_auth_method="client_secret_post", client_secret_file=path)
    assert c.client_secret == "client-secret-from-file"
    assert c.client_secret_file == path


def test_private_key_jwt_with_jwks_or_jwks_uri() -> None:
    c = client(client_auth_method="private_key_jwt", jwks={"keys": [RSA_JWK]})
    assert c.jwks == {"keys": [RSA_JWK]}
    c = client(client_auth_method="private_key_jwt", jwks_uri="https://app.example.com/jwks.json")
    assert c.jwks_uri == "https://app.example.com/jwks.json"
    assert c.jwks is None


def test_clients_keep_their_order_and_repeated_ids_are_allowed(caplog) -> None:
    with caplog.at_level(logging.WARNING):
        config = clients(
            {"client_id": CLIENT_ID, "client_auth_method": "none", "client_name": "first"},
            {"client_id": OTHER_ID, "client_auth_method": "none"},
            {"client_id": CLIENT_ID, "client_auth_method": "none", "client_name": "second"},
        )
    assert [c.client_id for c in config.clients] == [CLIENT_ID, OTHER_ID, CLIENT_ID]
    assert config.get(CLIENT_ID).client_name == "second"
    assert config.get("01M89BQ1ETN8RC4EH849N8832Z") is None
    assert CLIENT_ID in caplog.text


def test_section_must_be_a_list() -> None:
    assert_config_error(
        lambda: read_section(ClientsConfig, {"client_id": CLIENT_ID}), ("clients",), "a mapping"
    )


def test_bad_ulid() -> None:
    assert_config_error(
        lambda: client(client_id="not-a-ulid", client_auth_method="none"),
        ("clients", 0, "client_id"),
        "'not-a-ulid'",
    )


def test_ulid_with_excluded_letter() -> None:
    # Crockford base32 has no I, L, O or U.
    bad = "01M89BQ1ETN8RC4EH849N8832U"
    assert_config_error(
        lambda: client(client_id=bad, client_auth_method="none"), ("clients", 0, "client_id"), bad
    )


def test_error_names_the_right_list_index() -> None:
    assert_config_error(
        lambda: clients(
            {"client_id": CLIENT_ID, "client_auth_method": "none"},
            {"client_id": "nope", "client_auth_method": "none"},
        ),
        ("clients", 1, "client_id"),
        "'nope'",
    )


def test_client_id_is_required() -> None:
    assert_config_error(
        lambda: clients({"client_auth_method": "none"}), ("clients", 0, "client_id"), "missing"
    )


def test_auth_method_is_required() -> None:
    assert_config_error(lambda: client(), ("clients", 0, "client_auth_method"), "missing")


def test_unknown_auth_method() -> None:
    assert_config_error(
        lambda: client(client_auth_method="tls_client_auth"),
        ("clients", 0, "client_auth_method"),
        "'tls_client_auth'",
    )


def test_secret_methods_need_a_secret() -> None:
    for method in ("client_secret_basic", "client_secret_post", "client_secret_jwt"):
        assert_config_error(
            lambda: client(client_auth_method=method), ("clients", 0, "client_auth_method"), method
        )


def test_secret_methods_refuse_jwks() -> None:
    assert_config_error(
        lambda: client(client_auth_method="client_secret_basic", client_secret="s", jwks={"keys": [RSA_JWK]}),
        ("clients", 0, "jwks"),
        "client_secret_basic",
    )
    assert_config_error(
        lambda: client(
            client_auth_method="client_secret_post", client_secret="s", jwks_uri="https://x.example/j"
        ),
        ("clients", 0, "jwks_uri"),
        "https://x.example/j",
    )


def test_none_refuses_secret_and_keys() -> None:
    assert_config_error(
        lambda: client(client_auth_method="none", client_secret="s"),
        ("clients", 0, "client_secret"),
        "'none'",
    )
    path = str(FIXTURES / "client-secret.txt")
    assert_config_error(
        lambda: client(client_auth_method="none", client_secret_file=path),
        ("clients", 0, "client_secret_file"),
        "'none'",
    )
    assert_config_error(
        lambda: client(client_auth_method="none", jwks={"keys": [RSA_JWK]}), ("clients", 0, "jwks"), "'none'"
    )
    assert_config_error(
        lambda: client(client_auth_method="none", jwks_uri="https://x.example/j"),
        ("clients", 0, "jwks_uri"),
        "'none'",
    )


def test_private_key_jwt_rules() -> None:
    assert_config_error(
        lambda: client(client_auth_method="private_key_jwt"),
        ("clients", 0, "client_auth_method"),
        "private_key_jwt",
    )
    assert_config_error(
        lambda: client(
            client_auth_method="private_key_jwt", jwks={"keys": [RSA_JWK]}, jwks_uri="https://x.example/j"
        ),
        ("clients", 0, "jwks"),
        "https://x.example/j",
    )
    assert_config_error(
        lambda: client(
            client_auth_method="private_key_jwt", jwks_uri="https://x.example/j", client_secret="s"
        ),
        ("clients", 0, "client_secret"),
        "private_key_jwt",
    )


def test_secret_and_secret_file_are_exclusive() -> None:
    path = str(FIXTURES / "client-secret.txt")
    assert_config_error(
        lambda: client(client_auth_method="client_secret_basic", client_secret="s", client_secret_file=path),
        ("clients", 0, "client_secret"),
        "client_secret_file",
    )


def test_missing_secret_file() -> None:
    assert_config_error(
        lambda: client(client_auth_method="client_secret_basic", client_secret_file="/nonexistent/secret"),
        ("clients", 0, "client_secret_file"),
        "/nonexistent/secret",
    )


def test_bad_redirect_uris() -> None:
    assert_config_error(
        lambda: client(client_auth_method="none", redirect_uris=["https://ok.example/cb", "not a url"]),
        ("clients", 0, "redirect_uris", 1),
        "'not a url'",
    )
    assert_config_error(
        lambda: client(client_auth_method="none", redirect_uris=["https://"]),
        ("clients", 0, "redirect_uris", 0),
        "'https://'",
    )
    assert_config_error(
        lambda: client(client_auth_method="none", redirect_uris="https://ok.example/cb"),
        ("clients", 0, "redirect_uris"),
        "'https://ok.example/cb'",
    )


def test_bad_client_uri() -> None:
    assert_config_error(
        lambda: client(client_auth_method="none", client_uri="example.com"),
        ("clients", 0, "client_uri"),
        "'example.com'",
    )


def test_bad_jwks() -> None:
    def pkj(jwks: Any) -> StaticClient:
        return client(client_auth_method="private_key_jwt", jwks=jwks)

    assert_config_error(
        lambda: pkj({"keys": [{"kty": "oct", "k": "abc"}]}), ("clients", 0, "jwks", "keys", 0, "kty"), "'oct'"
    )
    assert_config_error(
        lambda: pkj({"keys": [{"kty": "RSA", "e": "AQAB"}]}),
        ("clients", 0, "jwks", "keys", 0, "n"),
        "missing",
    )
    assert_config_error(
        lambda: pkj({"keys": [{"kty": "EC", "crv": "P-192", "x": "AA", "y": "AA"}]}),
        ("clients", 0, "jwks", "keys", 0, "crv"),
        "'P-192'",
    )
    assert_config_error(
        lambda: pkj({"keys": [dict(RSA_JWK, n="not base64!")]}),
        ("clients", 0, "jwks", "keys", 0, "n"),
        "'not base64!'",
    )
    assert_config_error(
        lambda: pkj({"keys": [dict(RSA_JWK, use="auth")]}), ("clients", 0, "jwks", "keys", 0, "use"), "'auth'"
    )
    assert_config_error(lambda: pkj({"key": []}), ("clients", 0, "jwks", "keys"), "missing")
    assert_config_error(lambda: pkj([RSA_JWK]), ("clients", 0, "jwks"), "a list")


def test_post_logout_redirect_uris() -> None:
    # Ours (OpenID Connect RP-Initiated Logout), read like redirect_uris and dumped back.
    parsed = client(client_auth_method="none", post_logout_redirect_uris=["https://app.example/bye"])
    assert parsed.post_logout_redirect_uris == ("https://app.example/bye",)
    assert parsed.to_dict()["post_logout_redirect_uris"] == ["https://app.example/bye"]
    assert "post_logout_redirect_uris" not in client(client_auth_method="none").to_dict()
    assert_config_error(
        lambda: client(client_auth_method="none", post_logout_redirect_uris=["not a url"]),
        ("clients", 0, "post_logout_redirect_uris", 0),
        "'not a url'",
    )
