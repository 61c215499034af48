# SPDX-License-Identifier: AGPL-3.0-only
"""Client authentication (RFC 6749 §2.3, RFC 7523 §2.2/§3): extraction as MAS's
``client_authorization.rs`` and verification of secrets and the twelve JWS algorithms."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from jwcrypto import jwk, jws

from mas_twisted.api.errors import InvalidClientError, InvalidGrantError, InvalidRequestError
from mas_twisted.oauth2.credentials import (
    ASYMMETRIC_ALGORITHMS,
    JWT_BEARER_CLIENT_ASSERTION,
    SIGNING_ALGORITHMS,
    CredentialsKind,
    extract_credentials,
    verify_credentials,
)

TOKEN_ENDPOINT = "https://auth.example.com/oauth2/token"
ISSUER = "https://auth.example.com/"
NOW = 1_700_000_000


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _claims(client_id: str = "client-id", **overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": TOKEN_ENDPOINT,
        "jti": "aabbcc",
        "iat": NOW - 10,
        "exp": NOW + 300,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _hs_jwt(secret: str, alg: str, claims: dict[str, Any]) -> str:
    header = _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims).encode())
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    signature = hmac.new(secret.encode(), f"{header}.{payload}".encode(), digest).digest()
    return f"{header}.{payload}.{_b64(signature)}"


def _signed(key: jwk.JWK, alg: str, claims: dict[str, Any], kid: str | None = None) -> str:
    token = jws.JWS(json.dumps(claims).encode())
    header: dict[str, Any] = {"alg": alg}
    if kid:
        header["kid"] = kid
    token.allowed_algs = [alg]
    token.add_signature(key, alg=alg, protected=json.dumps(header))
    return token.serialize(compact=True)


def _assertion_form(jwt: str, **extra: str) -> dict[str, str]:
    return {"client_assertion_type": JWT_BEARER_CLIENT_ASSERTION, "client_assertion": jwt, **extra}


# -- extraction --------------------------------------------------------------------------------------
def test_none() -> None:
    auth = extract_credentials(None, {"client_id": "client-id", "foo": "bar"})
    assert auth.credentials.kind is CredentialsKind.NONE
    assert auth.credentials.client_id == "client-id"
    assert dict(auth.form) == {"foo": "bar"}


def test_client_secret_basic() -> None:
    auth = extract_credentials("Basic Y2xpZW50LWlkOmNsaWVudC1zZWNyZXQ=", {"foo": "bar"})
    assert auth.credentials.kind is CredentialsKind.CLIENT_SECRET_BASIC
    assert (auth.credentials.client_id, auth.credentials.client_secret) == ("client-id", "client-secret")
    assert dict(auth.form) == {"foo": "bar"}
    # The same client_id may also be in the body.
    again = extract_credentials("Basic Y2xpZW50LWlkOmNsaWVudC1zZWNyZXQ=", {"client_id": "client-id"})
    assert again.credentials.client_id == "client-id"
    # The scheme name is case-insensitive.
    assert (
        extract_credentials("basic Y2xpZW50LWlkOmNsaWVudC1zZWNyZXQ=", {}).credentials.client_secret
        == "client-secret"
    )


def test_client_secret_basic_is_url_decoded() -> None:
    # RFC 6749 §2.3.1: form-encode, then base64.
    auth = extract_credentials(_basic("my%3Aclient", "p%40ss+word%2B"), {})
    assert auth.credentials.client_id == "my:client"
    assert auth.credentials.client_secret == "p@ss word+"


def test_client_id_mismatch_is_invalid_grant() -> None:
    with pytest.raises(InvalidGrantError) as info:
        extract_credentials("Basic Y2xpZW50LWlkOmNsaWVudC1zZWNyZXQ=", {"client_id": "mismatch-id"})
    assert info.value.code == 400
    assert "mismatch-id" in info.value.description


@pytest.mark.parametrize(
    "header",
    ["Basic invalid", "Basic " + base64.b64encode(b"no-colon").decode(), "Digest abc", "Bearer ", "Bearer"],
)
def test_invalid_authorization_header(header: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        extract_credentials(header, {"foo": "bar"})
    assert info.value.description == "Invalid Authorization header"


def test_client_secret_post() -> None:
    auth = extract_credentials(
        None, {"client_id": "client-id", "client_secret": "client-secret", "foo": "bar"}
    )
    assert auth.credentials.kind is CredentialsKind.CLIENT_SECRET_POST
    assert auth.credentials.client_secret == "client-secret"
    assert dict(auth.form) == {"foo": "bar"}


def test_client_assertion_from_mas_test() -> None:
    # MAS's own test vector: HS256 with the secret "client-secret".
    jwt = (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJjbGllbnQtaWQiLCJzdWIiOiJjbGllbnQtaWQiLCJhdWQiOiJodHRwczovL2V4"
        "YW1wbGUuY29tL29hdXRoMi9pbnRyb3NwZWN0IiwianRpIjoiYWFiYmNjIiwiZXhwIjoxNTE2MjM5MzIyLCJpYXQiOjE1MTYyMzkwMjJ9."
        "XTaACG_Rww0GPecSZvkbem-AczNy9LLNBueCLCiQajU"
    )
    auth = extract_credentials(None, _assertion_form(jwt, foo="bar"))
    assert auth.credentials.kind is CredentialsKind.CLIENT_ASSERTION
    assert auth.credentials.client_id == "client-id"
    assert dict(auth.form) == {"foo": "bar"}
    assert auth.credentials.assertion is not None and auth.credentials.assertion.jti == "aabbcc"
    verify_credentials(
        auth.credentials,
        method="client_secret_jwt",
        client_secret="client-secret",
        audiences=["https://example.com/oauth2/introspect"],
        now_s=1516239100,
    )


def test_bearer() -> None:
    auth = extract_credentials("Bearer token", {"foo": "bar"})
    assert auth.credentials.kind is CredentialsKind.BEARER
    assert auth.credentials.bearer_token == "token"
    assert auth.credentials.client_id is None


def test_missing_and_conflicting_credentials() -> None:
    with pytest.raises(InvalidRequestError) as info:
        extract_credentials(None, {"foo": "bar"})
    assert info.value.description == "No credentials were presented"
    # Several methods at once.
    for header, form in [
        ("Basic Y2xpZW50LWlkOmNsaWVudC1zZWNyZXQ=", {"client_secret": "x"}),
        ("Bearer token", {"client_id": "client-id"}),
        (None, {"client_secret": "only-a-secret"}),
        (
            None,
            {
                "client_id": "a",
                "client_secret": "b",
                "client_assertion_type": JWT_BEARER_CLIENT_ASSERTION,
                "client_assertion": "x",
            },
        ),
        (None, {"client_id": "a", "client_assertion_type": "urn:other", "client_assertion": "x"}),
    ]:
        with pytest.raises(InvalidRequestError):
            extract_credentials(header, form)


def test_unsupported_and_invalid_assertions() -> None:
    with pytest.raises(InvalidRequestError) as info:
        extract_credentials(None, {"client_assertion_type": "urn:other", "client_assertion": "x"})
    assert info.value.description == "Unsupported client_assertion_type: urn:other"
    for bad in (
        "not-a-jwt",
        "a.b.c",
        _b64(b'{"alg":"HS256"}') + "." + _b64(b'{"iss":"x"}') + "." + _b64(b"sig"),
    ):
        with pytest.raises(InvalidRequestError) as info:
            extract_credentials(None, _assertion_form(bad))
        assert info.value.description == "Invalid client_assertion"
    jwt = _hs_jwt("secret", "HS256", _claims("client-id"))
    with pytest.raises(InvalidGrantError):
        extract_credentials(None, _assertion_form(jwt, client_id="someone-else"))
    assert (
        extract_credentials(None, _assertion_form(jwt, client_id="client-id")).credentials.client_id
        == "client-id"
    )


# -- verification ------------------------------------------------------------------------------------
def _verify(header: str | None, form: dict[str, str], **kwargs: Any) -> None:
    credentials = extract_credentials(header, form).credentials
    kwargs.setdefault("audiences", [TOKEN_ENDPOINT, ISSUER])
    kwargs.setdefault("now_s", NOW)
    verify_credentials(credentials, **kwargs)


def test_secret_methods() -> None:
    _verify(_basic("c", "s3cret"), {}, method="client_secret_basic", client_secret="s3cret")
    _verify(
        None,
        {"client_id": "c", "client_secret": "s3cret"},
        method="client_secret_post",
        client_secret="s3cret",
    )
    _verify(None, {"client_id": "c"}, method="none")
    with pytest.raises(InvalidClientError) as info:
        _verify(_basic("c", "wrong"), {}, method="client_secret_basic", client_secret="s3cret")
    assert info.value.headers() == [("WWW-Authenticate", 'Basic realm="mas"')]
    with pytest.raises(InvalidClientError) as info:
        _verify(
            None,
            {"client_id": "c", "client_secret": "wrong"},
            method="client_secret_post",
            client_secret="s3cret",
        )
    assert info.value.headers() == []


@pytest.mark.parametrize(
    "header,form,method",
    [
        (None, {"client_id": "c", "client_secret": "s"}, "client_secret_basic"),
        (_basic("c", "s"), {}, "client_secret_post"),
        (None, {"client_id": "c"}, "client_secret_basic"),
        (_basic("c", "s"), {}, "none"),
        (_basic("c", "s"), {}, "private_key_jwt"),
    ],
)
def test_method_must_be_the_registered_one(header: str | None, form: dict[str, str], method: str) -> None:
    with pytest.raises(InvalidClientError):
        _verify(header, form, method=method, client_secret="s", jwks={"keys": []})


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_client_secret_jwt_with_a_mas_sized_secret(alg: str) -> None:
    secret = "abcdefghij0123456789"  # 20 alphanumerics, as MAS generates
    jwt = _hs_jwt(secret, alg, _claims("c"))
    _verify(None, _assertion_form(jwt), method="client_secret_jwt", client_secret=secret)
    with pytest.raises(InvalidClientError):
        _verify(None, _assertion_form(jwt), method="client_secret_jwt", client_secret="another-secret-000000")
    with pytest.raises(InvalidClientError):
        _verify(
            None, _assertion_form(jwt), method="client_secret_jwt", client_secret=secret, expected_alg="RS256"
        )


_KEYS: dict[str, jwk.JWK] = {}


def _key_for(alg: str) -> jwk.JWK:
    kind = alg[:2] if alg[:2] in ("RS", "PS") else alg
    if kind not in _KEYS:
        if kind in ("RS", "PS"):
            _KEYS[kind] = _KEYS.setdefault("RSA", jwk.JWK.generate(kty="RSA", size=2048))
        else:
            crv = {"ES256": "P-256", "ES384": "P-384", "ES256K": "secp256k1"}[alg]
            _KEYS[kind] = jwk.JWK.generate(kty="EC", crv=crv)
    return _KEYS[kind]


def _public_jwks(*keys: tuple[jwk.JWK, dict[str, Any]]) -> dict[str, Any]:
    out = []
    for key, extra in keys:
        public = key.export_public(as_dict=True)
        public.update(extra)
        out.append(public)
    return {"keys": out}


def test_twelve_algorithms() -> None:
    assert SIGNING_ALGORITHMS == (
        "HS256",
        "HS384",
        "HS512",
        "RS256",
        "RS384",
        "RS512",
        "PS256",
        "PS384",
        "PS512",
        "ES256",
        "ES384",
        "ES256K",
    )


@pytest.mark.parametrize("alg", ASYMMETRIC_ALGORITHMS)
def test_private_key_jwt(alg: str) -> None:
    key = _key_for(alg)
    jwks = _public_jwks((key, {"kid": "k1"}))
    jwt = _signed(key, alg, _claims("c"), kid="k1")
    _verify(None, _assertion_form(jwt), method="private_key_jwt", jwks=jwks)
    # No kid in the header: every key that can use the algorithm is tried.
    _verify(None, _assertion_form(_signed(key, alg, _claims("c"))), method="private_key_jwt", jwks=jwks)
    # A key of the client with another kid is not used.
    with pytest.raises(InvalidClientError):
        _verify(
            None,
            _assertion_form(_signed(key, alg, _claims("c"), kid="other")),
            method="private_key_jwt",
            jwks=jwks,
        )
    # Signed by a key that is not the client's.
    if alg.startswith("ES"):
        stranger = jwk.JWK.generate(kty="EC", crv=key.export_public(as_dict=True)["crv"])
    else:
        stranger = jwk.JWK.generate(kty="RSA", size=2048)
    other_jwks = _public_jwks((stranger, {"kid": "k1"}))
    with pytest.raises(InvalidClientError):
        _verify(None, _assertion_form(jwt), method="private_key_jwt", jwks=other_jwks)


def test_private_key_jwt_key_alg_must_match() -> None:
    key = _key_for("RS256")
    jwt = _signed(key, "PS256", _claims("c"))
    with pytest.raises(InvalidClientError):
        _verify(
            None, _assertion_form(jwt), method="private_key_jwt", jwks=_public_jwks((key, {"alg": "RS256"}))
        )
    _verify(None, _assertion_form(jwt), method="private_key_jwt", jwks=_public_jwks((key, {"alg": "PS256"})))


def test_private_key_jwt_refuses_hmac_and_none() -> None:
    key = _key_for("RS256")
    jwks = _public_jwks((key, {}))
    with pytest.raises(InvalidClientError):
        _verify(
            None,
            _assertion_form(_hs_jwt("secret", "HS256", _claims("c"))),
            method="private_key_jwt",
            jwks=jwks,
        )
    unsigned = _b64(b'{"alg":"none"}') + "." + _b64(json.dumps(_claims("c")).encode()) + "."
    with pytest.raises(InvalidClientError):
        _verify(None, _assertion_form(unsigned), method="private_key_jwt", jwks=jwks)


@pytest.mark.parametrize(
    "overrides,ok",
    [
        ({}, True),
        ({"aud": ISSUER}, True),
        ({"aud": ["https://other.example.com/", TOKEN_ENDPOINT]}, True),
        ({"aud": "https://other.example.com/"}, False),
        ({"aud": None}, False),
        ({"iss": "someone-else"}, False),
        ({"exp": None}, False),
        ({"exp": "tomorrow"}, False),
        ({"exp": NOW - 61}, False),
        ({"exp": NOW - 30}, True),
        ({"nbf": NOW + 3600}, False),
        ({"nbf": NOW}, True),
        ({"jti": None}, True),
        ({"jti": 42}, False),
    ],
)
def test_rfc7523_claims(overrides: dict[str, Any], ok: bool) -> None:
    claims = _claims("c", **{k: v for k, v in overrides.items() if v is not None})
    for key, value in overrides.items():
        if value is None:
            claims.pop(key, None)
    jwt = _hs_jwt("s3cret", "HS256", claims)
    if ok:
        _verify(None, _assertion_form(jwt), method="client_secret_jwt", client_secret="s3cret")
    else:
        with pytest.raises(InvalidClientError):
            _verify(None, _assertion_form(jwt), method="client_secret_jwt", client_secret="s3cret")


def test_missing_server_side_material_is_not_a_client_error() -> None:
    with pytest.raises(ValueError):
        _verify(_basic("c", "s"), {}, method="client_secret_basic", client_secret=None)
    with pytest.raises(ValueError):
        _verify(
            None, _assertion_form(_hs_jwt("s", "HS256", _claims("c"))), method="private_key_jwt", jwks=None
        )
