# SPDX-License-Identifier: AGPL-3.0-only
"""The keystore: public JWKS (RFC 7517), algorithm advertisement and JWT signing (RFC 7515/7519)."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto import jwt as jwcrypto_jwt
from twisted.internet.testing import MemoryReactorClock

from mas_twisted.jose.encrypter import Encrypter
from mas_twisted.jose.keys import PrivateKey
from mas_twisted.jose.keystore import Keystore, NoSigningKeyError, SigningKey
from mas_twisted.server import MasServer
from tests.jose._helpers import (
    ENCRYPTION_HEX,
    expected_public_jwk,
    expected_thumbprint,
    load_secrets,
    make_key,
    pem,
)

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
ALL_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "PS384", "PS512", "ES256K"]


def keystore_of(*kinds: str, kids: dict[int, str] | None = None) -> Keystore:
    kids = kids or {}
    keys = []
    for i, kind in enumerate(kinds):
        index = 1 if kinds[:i].count(kind) else 0
        keys.append(SigningKey.create(PrivateKey.from_cryptography(make_key(kind, index)), kids.get(i)))
    return Keystore(keys)


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_key_from_jwk(jwk: dict[str, str]) -> Any:
    """Rebuild a public key from JWK members only, as a relying party would."""
    if jwk["kty"] == "RSA":
        n = int.from_bytes(b64url_decode(jwk["n"]), "big")
        e = int.from_bytes(b64url_decode(jwk["e"]), "big")
        return rsa.RSAPublicNumbers(e, n).public_key()
    curve = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "secp256k1": ec.SECP256K1()}[jwk["crv"]]
    x = int.from_bytes(b64url_decode(jwk["x"]), "big")
    y = int.from_bytes(b64url_decode(jwk["y"]), "big")
    return ec.EllipticCurvePublicNumbers(x, y, curve).public_key()


def verify_compact_jws(token: str, jwks: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verify with ``cryptography`` alone (RFC 7515 §5.2, RFC 7518 §3), returning (header, claims)."""
    header_b64, payload_b64, signature_b64 = token.split(".")
    header = json.loads(b64url_decode(header_b64))
    [jwk] = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    key = public_key_from_jwk(jwk)
    alg = header["alg"]
    digest = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[alg[2:5]]
    signing_input = f"{header_b64}.{payload_b64}".encode()
    signature = b64url_decode(signature_b64)
    if alg.startswith("RS"):
        key.verify(signature, signing_input, padding.PKCS1v15(), digest)
    elif alg.startswith("PS"):
        key.verify(signature, signing_input, padding.PSS(padding.MGF1(digest), digest.digest_size), digest)
    else:
        size = len(signature) // 2
        r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
        assert size == (key.curve.key_size + 7) // 8
        key.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(digest))
    return header, json.loads(b64url_decode(payload_b64))


# -- JWKS ----------------------------------------------------------------------------------


def test_public_jwks_members() -> None:
    keystore = keystore_of("rsa", "p256", "p384", "k256")
    jwks = keystore.public_jwks()
    assert list(jwks) == ["keys"]
    for kind, published in zip(("rsa", "p256", "p384", "k256"), jwks["keys"]):
        key = make_key(kind)
        assert published == {**expected_public_jwk(key), "use": "sig", "kid": expected_thumbprint(key)}
        assert not PRIVATE_MEMBERS & set(published)
        assert "alg" not in published  # MAS publishes no alg: an RSA key serves RS* and PS*.
    assert [k["crv"] for k in jwks["keys"][1:]] == ["P-256", "P-384", "secp256k1"]


def test_public_jwks_is_json_and_parses_as_public_keys() -> None:
    text = json.dumps(keystore_of("rsa", "p256").public_jwks())
    keyset = jwcrypto_jwk.JWKSet.from_json(text)
    assert all(not key.has_private for key in keyset["keys"])


def test_configured_kid_is_published() -> None:
    jwks = keystore_of("p256", kids={0: "lekid0"}).public_jwks()
    assert jwks["keys"][0]["kid"] == "lekid0"


def test_empty_keystore() -> None:
    keystore = Keystore()
    assert keystore.public_jwks() == {"keys": []}
    assert keystore.signing_algorithms() == []
    with pytest.raises(NoSigningKeyError):
        keystore.sign_jwt({"sub": "x"}, "RS256")


# -- algorithms ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kinds, expected",
    [
        (("rsa",), ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]),
        (("p256",), ["ES256"]),
        (("p384",), ["ES384"]),
        (("k256",), ["ES256K"]),
        (("k256", "p256"), ["ES256", "ES256K"]),
        (("rsa", "rsa"), ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]),
        (("k256", "p384", "rsa", "p256"), ALL_ALGORITHMS),
    ],
)
def test_signing_algorithms(kinds: tuple[str, ...], expected: list[str]) -> None:
    assert keystore_of(*kinds).signing_algorithms() == expected


# -- signing -------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ALL_ALGORITHMS)
def test_signed_jwt_verifies_against_public_jwks(alg: str) -> None:
    keystore = keystore_of("rsa", "p256", "p384", "k256")
    claims = {
        "iss": "https://auth.example.com/",
        "sub": "01FSHN9AG0MZAA6S4AF7CTV32E",
        "aud": "client",
        "iat": 1,
    }
    token = keystore.sign_jwt(claims, alg)
    header, payload = verify_compact_jws(token, keystore.public_jwks())
    assert payload == claims
    signer = keystore.find_signing_key(alg)
    assert signer is not None
    assert header == {"alg": alg, "kid": signer.kid}

    # A relying party using a JOSE library and the published JWKS accepts it as well.
    keyset = jwcrypto_jwk.JWKSet.from_json(json.dumps(keystore.public_jwks()))
    verified = jwcrypto_jwt.JWT(jwt=token, key=keyset, algs=[alg], check_claims=False)
    assert json.loads(verified.claims) == claims


@pytest.mark.parametrize("alg", ["RS256", "PS384", "ES256", "ES256K"])
def test_tampered_jwt_does_not_verify(alg: str) -> None:
    keystore = keystore_of("rsa", "p256", "k256")
    header, payload, signature = keystore.sign_jwt({"sub": "alice"}, alg).split(".")
    forged = base64.urlsafe_b64encode(b'{"sub":"mallory"}').rstrip(b"=").decode()
    with pytest.raises(InvalidSignature):
        verify_compact_jws(f"{header}.{forged}.{signature}", keystore.public_jwks())


def test_signature_from_another_key_does_not_verify() -> None:
    ours = keystore_of("p256")
    theirs = Keystore(
        [SigningKey.create(PrivateKey.from_cryptography(make_key("p256", 1)), ours.keys[0].kid)]
    )
    with pytest.raises(InvalidSignature):
        verify_compact_jws(theirs.sign_jwt({"sub": "x"}, "ES256"), ours.public_jwks())


def test_last_able_key_signs_as_in_mas() -> None:
    keystore = keystore_of("rsa", "p256", "rsa")
    second_rsa = expected_thumbprint(make_key("rsa", 1))
    assert keystore.signing_key_for("RS256")["kid"] == second_rsa
    header = json.loads(b64url_decode(keystore.sign_jwt({}, "PS256").split(".")[0]))
    assert header["kid"] == second_rsa
    assert keystore.signing_key_for("ES256")["kid"] == expected_thumbprint(make_key("p256"))


def test_signing_key_by_kid() -> None:
    keystore = keystore_of("rsa", "rsa", kids={0: "old", 1: "new"})
    assert keystore.signing_key_for("RS256", kid="old")["kid"] == "old"
    header = json.loads(b64url_decode(keystore.sign_jwt({}, "RS256", kid="old").split(".")[0]))
    assert header == {"alg": "RS256", "kid": "old"}
    with pytest.raises(NoSigningKeyError, match="'missing'"):
        keystore.signing_key_for("RS256", kid="missing")


def test_signing_key_is_private_jwk() -> None:
    jwk = keystore_of("p384").signing_key_for("ES384")
    assert jwk.has_private
    assert jwk.get("use") == "sig"


@pytest.mark.parametrize("alg", ["ES256", "ES512", "HS256", "EdDSA", "none"])
def test_no_key_for_algorithm(alg: str) -> None:
    keystore = keystore_of("rsa", "p384")
    with pytest.raises(NoSigningKeyError, match=alg):
        keystore.signing_key_for(alg)
    with pytest.raises(NoSigningKeyError):
        keystore.sign_jwt({"sub": "x"}, alg)


# -- wiring --------------------------------------------------------------------------------


def test_keystore_and_encrypter_from_server_config() -> None:
    secrets = load_secrets(
        {
            "encryption": ENCRYPTION_HEX,
            "keys": [{"key": pem(make_key("p256"))}, {"kid": "r", "key": pem(make_key("rsa"))}],
        }
    )
    server = MasServer(SimpleNamespace(secrets=secrets), MemoryReactorClock())  # type: ignore[arg-type]
    keystore = server.get_keystore()
    assert keystore is server.get_keystore()
    assert [k["kid"] for k in keystore.public_jwks()["keys"]] == [expected_thumbprint(make_key("p256")), "r"]
    assert keystore.signing_algorithms() == ["RS256", "RS384", "RS512", "ES256", "PS256", "PS384", "PS512"]
    sealed = server.get_encrypter().encrypt(b"secret")
    assert Encrypter(bytes.fromhex(ENCRYPTION_HEX)).decrypt(sealed) == b"secret"


def test_duplicate_kids_are_reported(caplog: pytest.LogCaptureFixture) -> None:
    secrets = load_secrets(
        {
            "encryption": ENCRYPTION_HEX,
            "keys": [
                {"kid": "same", "key": pem(make_key("p256"))},
                {"kid": "same", "key": pem(make_key("rsa"))},
            ],
        }
    )
    with caplog.at_level("INFO", logger="mas_twisted.jose.keystore"):
        Keystore.from_config(secrets)
    assert [r.levelname for r in caplog.records if "share the kid 'same'" in r.getMessage()] == ["WARNING"]
    assert sum("Loaded signing key same" in r.getMessage() for r in caplog.records) == 2
