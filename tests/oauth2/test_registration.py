# SPDX-License-Identifier: AGPL-3.0-only
"""Dynamic client registration metadata (RFC 7591), ported from MAS's
``oauth2-types/src/registration`` and ``handlers/src/oauth2/registration.rs`` tests."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from mas_twisted.api.errors import InvalidClientMetadataError, InvalidRedirectUriError, InvalidRequestError
from mas_twisted.oauth2.registration import (
    ClientMetadata,
    Localized,
    check_public_suffixes,
    host_is_public_suffix,
    is_language_tag,
    metadata_digest,
    parse_client_metadata,
    parse_client_metadata_json,
    policy_denial_error,
    prepare_registration,
    validate_client_metadata,
)
from mas_twisted.oauth2.requests import ResponseType

JWKS = {
    "keys": [
        {
            "alg": "RS256",
            "kty": "RSA",
            "n": "tCwhHOxX_ylh5kVwfVqW7QIBTIsPjkjCjVCppDrynuF_3msEdtEaG64eJUz84ODFNMCC0BQ57G7wrKQVWkdSDxWUEqGk2BixBiHJRWZdofz1WOBTdPVicvHW5Zl_aIt7uXWMdOp_SODw-O2y2f05EqbFWFnR2-1y9K8KbiOp82CD72ny1Jbb_3PxTs2Z0F4ECAtTzpDteaJtjeeueRjr7040JAjQ-5fpL5D1g8x14LJyVIo-FL_y94NPFbMp7UCi69CIfVHXFO8WYFz949og-47mWRrID5lS4zpx-QLuvNhUb_lSqmylUdQB3HpRdOcYdj3xwy4MHJuu7tTaf0AmCQ",
            "use": "sig",
            "kid": "d98f49bc6ca4581eae8dfadd494fce10ea23aab0",
            "e": "AQAB",
        }
    ]
}


def _valid() -> ClientMetadata:
    return ClientMetadata(redirect_uris=("http://localhost/oidc",))


def _rt(value: str) -> tuple[ResponseType, ...]:
    return (ResponseType.parse(value),)


def _ok(metadata: ClientMetadata) -> None:
    validate_client_metadata(metadata)


def _metadata_error(metadata: ClientMetadata) -> str:
    with pytest.raises(InvalidClientMetadataError) as info:
        validate_client_metadata(metadata)
    return info.value.description


# -- ClientMetadata::validate ------------------------------------------------------------------------
def test_validate_required_metadata() -> None:
    _ok(_valid())


def test_validate_redirect_uris() -> None:
    with pytest.raises(InvalidRedirectUriError):
        validate_client_metadata(ClientMetadata())
    with pytest.raises(InvalidRedirectUriError):
        validate_client_metadata(
            ClientMetadata(redirect_uris=("http://localhost/", "http://localhost/#fragment"))
        )
    _ok(
        ClientMetadata(
            redirect_uris=(
                "http://localhost/",
                "http://localhost/oidc",
                "http://localhost/?oidc",
                "http://localhost/my-client?oidc",
            )
        )
    )
    # Not needed without authorization_code or implicit.
    _ok(ClientMetadata(grant_types=("client_credentials",)))


# (grant types, response type, coherent?) from MAS's validate_response_types.
RESPONSE_TYPE_CASES = [
    ((None), "code", True),
    ((None), "code id_token", False),
    ((None), "code id_token token", False),
    ((None), "code token", False),
    ((None), "id_token", False),
    ((None), "id_token token", False),
    ((None), "token", False),
    ((None), "none", True),
    (("implicit",), "code", False),
    (("implicit",), "code id_token", False),
    (("implicit",), "code id_token token", False),
    (("implicit",), "code token", False),
    (("implicit",), "id_token", True),
    (("implicit",), "id_token token", True),
    (("implicit",), "token", True),
    (("implicit",), "none", True),
    (("authorization_code", "implicit"), "code", True),
    (("authorization_code", "implicit"), "code id_token", True),
    (("authorization_code", "implicit"), "code id_token token", True),
    (("authorization_code", "implicit"), "code token", True),
    (("authorization_code", "implicit"), "id_token", True),
    (("authorization_code", "implicit"), "id_token token", True),
    (("authorization_code", "implicit"), "token", True),
    (("authorization_code", "implicit"), "none", True),
    (("refresh_token", "client_credentials"), "code", False),
    (("refresh_token", "client_credentials"), "code id_token", False),
    (("refresh_token", "client_credentials"), "code id_token token", False),
    (("refresh_token", "client_credentials"), "code token", False),
    (("refresh_token", "client_credentials"), "id_token", False),
    (("refresh_token", "client_credentials"), "id_token token", False),
    (("refresh_token", "client_credentials"), "token", False),
    (("refresh_token", "client_credentials"), "none", True),
]


@pytest.mark.parametrize("grant_types,response_type,coherent", RESPONSE_TYPE_CASES)
def test_validate_response_types(
    grant_types: tuple[str, ...] | None, response_type: str, coherent: bool
) -> None:
    metadata = attrs.evolve(_valid(), grant_types=grant_types, response_types=_rt(response_type))
    if coherent:
        _ok(metadata)
    else:
        assert _metadata_error(metadata) == f"'{response_type}' response type not compatible with grant types"


def test_validate_jwks() -> None:
    _ok(attrs.evolve(_valid(), jwks_uri="http://localhost/jwks"))
    assert (
        _metadata_error(attrs.evolve(_valid(), jwks_uri="http://localhost/jwks", jwks=JWKS))
        == "jwks_uri and jwks are mutually exclusive"
    )
    _ok(attrs.evolve(_valid(), jwks=JWKS))


def test_validate_sector_identifier_uri() -> None:
    assert (
        _metadata_error(attrs.evolve(_valid(), sector_identifier_uri="http://localhost/"))
        == "sector_identifier_uri's URL doesn't use a https scheme: http://localhost/"
    )
    _ok(attrs.evolve(_valid(), sector_identifier_uri="https://localhost/"))


def test_validate_token_endpoint_auth_method() -> None:
    metadata = attrs.evolve(_valid(), token_endpoint_auth_signing_alg="none")
    assert _metadata_error(metadata) == "none signing alg unauthorized for token_endpoint"

    metadata = attrs.evolve(
        metadata, token_endpoint_auth_method="private_key_jwt", token_endpoint_auth_signing_alg="RS256"
    )
    assert _metadata_error(metadata) == "missing JWK Set for token auth method"
    _ok(attrs.evolve(metadata, jwks_uri="https://localhost/jwks"))
    metadata = attrs.evolve(metadata, jwks=JWKS)
    _ok(metadata)

    metadata = attrs.evolve(metadata, token_endpoint_auth_signing_alg=None)
    assert _metadata_error(metadata) == "token_endpoint missing auth signing algorithm"

    metadata = attrs.evolve(metadata, token_endpoint_auth_method="client_secret_jwt", jwks=None)
    assert _metadata_error(metadata) == "token_endpoint missing auth signing algorithm"
    _ok(attrs.evolve(metadata, token_endpoint_auth_signing_alg="RS256"))


def test_validate_id_token_signed_response_alg() -> None:
    metadata = attrs.evolve(
        _valid(), id_token_signed_response_alg="none", grant_types=("authorization_code", "implicit")
    )
    for response_type in ("code id_token", "code id_token token", "id_token", "id_token token"):
        assert (
            _metadata_error(attrs.evolve(metadata, response_types=_rt(response_type)))
            == "ID Token signing alg is none"
        )
    _ok(
        attrs.evolve(
            metadata,
            response_types=tuple(ResponseType.parse(v) for v in ("code", "code token", "token", "none")),
        )
    )


@pytest.mark.parametrize(
    "enc_field,alg_field,label",
    [
        ("id_token_encrypted_response_enc", "id_token_encrypted_response_alg", "id_token"),
        ("userinfo_encrypted_response_enc", "userinfo_encrypted_response_alg", "userinfo"),
        ("request_object_encryption_enc", "request_object_encryption_alg", "request_object"),
        ("introspection_encrypted_response_enc", "introspection_encrypted_response_alg", "introspection"),
    ],
)
def test_validate_encryption_needs_alg(enc_field: str, alg_field: str, label: str) -> None:
    metadata = attrs.evolve(_valid(), **{enc_field: "A128CBC-HS256"})
    assert _metadata_error(metadata) == f"{label} missing encryption alg value"
    _ok(attrs.evolve(metadata, **{alg_field: "RSA-OAEP"}))


def test_validate_initiate_login_uri() -> None:
    assert (
        _metadata_error(attrs.evolve(_valid(), initiate_login_uri="http://localhost/"))
        == "initiate_login_uri's URL doesn't use a https scheme: http://localhost/"
    )
    _ok(attrs.evolve(_valid(), initiate_login_uri="https://localhost/"))


def test_defaults() -> None:
    metadata = ClientMetadata()
    assert [str(rt) for rt in metadata.effective_response_types] == ["code"]
    assert metadata.effective_grant_types == ("authorization_code",)
    assert metadata.effective_application_type == "web"
    assert metadata.effective_token_endpoint_auth_method == "client_secret_basic"
    assert metadata.effective_id_token_signed_response_alg == "RS256"
    assert metadata.require_auth_time_or_default is False
    # MAS only generates a secret for an explicit secret-based method.
    assert not metadata.generates_client_secret
    for method in ("client_secret_basic", "client_secret_post", "client_secret_jwt"):
        assert ClientMetadata(token_endpoint_auth_method=method).generates_client_secret
    for method in ("none", "private_key_jwt"):
        assert not ClientMetadata(token_endpoint_auth_method=method).generates_client_secret


# -- parsing -----------------------------------------------------------------------------------------
def test_localized_fields() -> None:
    metadata = parse_client_metadata(
        {
            "redirect_uris": ["http://localhost/oidc"],
            "client_name": "Postbox",
            "client_name#fr": "Bo\u00eete \u00e0 lettres",
            "client_uri": "https://localhost/",
            "client_uri#fr": "https://localhost/fr",
            "client_uri#de": "https://localhost/de",
        }
    )
    assert metadata.client_name is not None
    assert metadata.client_name.get(None) == "Postbox"
    assert metadata.client_name.get("fr") == "Bo\u00eete \u00e0 lettres"
    assert metadata.client_name.get("de") is None
    assert metadata.client_uri == Localized(
        "https://localhost/", (("fr", "https://localhost/fr"), ("de", "https://localhost/de"))
    )
    # Serialised in MAS's order: plain fields, then each localised field with its variants.
    assert list(metadata.to_json()) == [
        "redirect_uris",
        "client_name",
        "client_name#fr",
        "client_uri",
        "client_uri#fr",
        "client_uri#de",
    ]
    # A round trip gives the same metadata.
    assert parse_client_metadata(metadata.to_json()) == metadata


@pytest.mark.parametrize(
    "body",
    [
        {"client_uri": "this is not a uri"},
        {"redirect_uris": "https://example.com/"},
        {"redirect_uris": ["not a url"]},
        {"grant_types": [1]},
        {"require_auth_time": "yes"},
        {"default_max_age": 1.5},
        {"client_name#fr": "Exemple"},
        {"client_name": None},
        {"client_name": "x", "client_name#": "y"},
        {"unknown#not a tag!": 1},
        {"response_types": [""]},
        {"jwks": {"keys": [{"kty": "oct", "k": "abc"}]}},
        {"jwks": {"keys": [{"kty": "EC", "crv": "P-256", "x": "!!", "y": "AA"}]}},
        {"jwks": {"keys": [{"kty": "EC", "crv": "P-999", "x": "AA", "y": "AA"}]}},
        {"jwks": {"keys": [{"kty": "RSA", "n": "AQAB"}]}},
        {"jwks": []},
        ["not", "an", "object"],
    ],
)
def test_invalid_client_metadata(body: Any) -> None:
    with pytest.raises(InvalidClientMetadataError):
        parse_client_metadata(body)


def test_unknown_fields_and_nulls_are_ignored() -> None:
    metadata = parse_client_metadata({"foo": "bar", "software_id": None, "client_name": "x", "extra#en": 1})
    assert metadata == ClientMetadata(client_name=Localized("x"))


def test_malformed_json_is_invalid_request() -> None:
    with pytest.raises(InvalidRequestError):
        parse_client_metadata_json(b"this is not a json")
    assert parse_client_metadata_json(b'{"client_uri": "https://example.com"}').client_uri == Localized(
        "https://example.com/"
    )


def test_language_tags() -> None:
    for tag in (
        "fr",
        "fr-FR",
        "zh-Hant-TW",
        "de-CH-1901",
        "en-US-x-twain",
        "x-private",
        "i-klingon",
        "sgn-BE-FR",
    ):
        assert is_language_tag(tag), tag
    for tag in ("", "f", "fr_FR", "toolongtag", "fr-", "-fr", "en-a"):
        assert not is_language_tag(tag), tag


# -- public suffixes ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url,expected",
    [
        ("https://.com", True),
        ("https://.com.", True),
        ("https://co.uk", True),
        ("https://github.io", True),
        ("https://example.com", False),
        ("https://example.com.", False),
        ("https://x.com", False),
        ("https://x.com.", False),
        ("https://matrix-org.github.io", False),
        ("http://localhost", False),
        ("org.matrix:/callback", False),
        ("http://somerandominternaldomain", False),
        ("http://127.0.0.1/", False),
        ("http://[::1]/", False),
    ],
)
def test_public_suffix_list(url: str, expected: bool) -> None:
    assert host_is_public_suffix(url) is expected


def test_check_public_suffixes() -> None:
    check_public_suffixes(ClientMetadata(client_uri=Localized("https://example.com/")))
    with pytest.raises(InvalidClientMetadataError) as info:
        check_public_suffixes(
            ClientMetadata(client_uri=Localized("https://example.com/", (("fr-FR", "https://github.io/"),)))
        )
    assert info.value.description == "client_uri is not using a valid domain"
    for field in ("logo_uri", "policy_uri", "tos_uri"):
        with pytest.raises(InvalidClientMetadataError) as info:
            check_public_suffixes(ClientMetadata(**{field: Localized("https://co.uk/x")}))
        assert info.value.description == f"{field} is not using a valid domain"
    with pytest.raises(InvalidClientMetadataError) as info:
        check_public_suffixes(ClientMetadata(initiate_login_uri="https://github.io/"))
    assert info.value.description == "initiate_login_uri is not using a valid domain"
    with pytest.raises(InvalidRedirectUriError) as info:
        check_public_suffixes(ClientMetadata(redirect_uris=("https://example.com/", "https://github.io/")))
    assert info.value.description == "redirect_uri is not using a valid domain"


# -- the pipeline (MAS's registration handler tests, minus storage) ----------------------------------
def _error(body: Any, **kwargs: Any) -> tuple[str, str | None]:
    kwargs.setdefault("device_code_grant_enabled", True)
    with pytest.raises((InvalidClientMetadataError, InvalidRedirectUriError)) as info:
        prepare_registration(body, **kwargs)
    return info.value.error, info.value.description


def test_registration_errors() -> None:
    assert _error({"client_uri": "this is not a uri"})[0] == "invalid_client_metadata"
    assert (
        _error({"application_type": "web", "client_uri": "https://example.com/"})[0] == "invalid_redirect_uri"
    )
    assert (
        _error(
            {
                "client_uri": "https://example.com/",
                "redirect_uris": ["https://example.com/"],
                "response_types": ["id_token"],
                "grant_types": ["authorization_code"],
            }
        )[0]
        == "invalid_client_metadata"
    )
    assert _error(
        {
            "client_uri": "https://github.io/",
            "redirect_uris": ["https://github.io/"],
            "response_types": ["code"],
            "grant_types": ["authorization_code"],
            "token_endpoint_auth_method": "client_secret_basic",
        }
    ) == ("invalid_client_metadata", "client_uri is not using a valid domain")
    assert _error(
        {
            "client_uri": "https://example.com/",
            "client_uri#fr-FR": "https://github.io/",
            "redirect_uris": ["https://example.com/"],
            "response_types": ["code"],
            "grant_types": ["authorization_code"],
            "token_endpoint_auth_method": "client_secret_basic",
        }
    ) == ("invalid_client_metadata", "client_uri is not using a valid domain")


DEDUPE = {
    "client_uri": "https://example.com/",
    "client_name": "Example",
    "client_name#en": "Example",
    "client_name#fr": "Exemple",
    "client_name#de": "Beispiel",
    "redirect_uris": ["https://example.com/", "https://example.com/callback"],
    "response_types": ["code"],
    "grant_types": ["authorization_code", "urn:ietf:params:oauth:grant-type:device_code"],
    "token_endpoint_auth_method": "none",
}


def test_digest_ignores_order() -> None:
    first = prepare_registration(DEDUPE, device_code_grant_enabled=True)
    reordered = {
        "client_uri": "https://example.com",
        "client_name": "Example",
        "client_name#de": "Beispiel",
        "client_name#fr": "Exemple",
        "client_name#en": "Example",
        "redirect_uris": ["https://example.com/callback", "https://EXAMPLE.com/"],
        "response_types": ["code"],
        "grant_types": ["urn:ietf:params:oauth:grant-type:device_code", "authorization_code"],
        "token_endpoint_auth_method": "none",
    }
    assert prepare_registration(reordered, device_code_grant_enabled=True).digest == first.digest
    assert len(first.digest) == 64
    assert first.digest == metadata_digest(parse_client_metadata(DEDUPE))
    different = dict(DEDUPE, client_name="Another")
    assert prepare_registration(different, device_code_grant_enabled=True).digest != first.digest
    # The digest is taken before a disabled device code grant is dropped, as in MAS.
    assert prepare_registration(DEDUPE, device_code_grant_enabled=False).digest == first.digest


def test_device_code_grant_dropped_when_disabled() -> None:
    body = {
        "client_uri": "https://example.com/",
        "token_endpoint_auth_method": "none",
        "grant_types": ["urn:ietf:params:oauth:grant-type:device_code"],
        "response_types": [],
    }
    disabled = prepare_registration(body, device_code_grant_enabled=False)
    assert disabled.metadata.grant_types == ()
    assert disabled.metadata.to_json() == {
        "response_types": [],
        "grant_types": [],
        "token_endpoint_auth_method": "none",
        "client_uri": "https://example.com/",
    }
    enabled = prepare_registration(body, device_code_grant_enabled=True)
    assert enabled.metadata.grant_types == ("urn:ietf:params:oauth:grant-type:device_code",)


def test_policy_denial_error() -> None:
    error = policy_denial_error(["missing client_uri", "invalid redirect_uri"])
    assert error.error == "invalid_redirect_uri"
    assert error.description == "missing client_uri; invalid redirect_uri"
    error = policy_denial_error(["invalid tos_uri"])
    assert (error.error, error.description, error.code) == ("invalid_client_metadata", "invalid tos_uri", 400)


def test_jwks_keeps_only_public_key_material() -> None:
    from jwcrypto import jwk

    private = jwk.JWK.generate(kty="EC", crv="P-256", kid="k1").export_private(as_dict=True)
    metadata = parse_client_metadata({"jwks": {"keys": [dict(private, use="sig", alg="ES256")]}})
    assert metadata.jwks is not None
    (key,) = metadata.jwks["keys"]
    assert "d" not in key
    assert {k: key[k] for k in ("kty", "crv", "use", "alg", "kid")} == {
        "kty": "EC",
        "crv": "P-256",
        "use": "sig",
        "alg": "ES256",
        "kid": "k1",
    }
    assert metadata.to_json()["jwks"] == {"keys": [key]}
