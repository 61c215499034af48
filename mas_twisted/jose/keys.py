# SPDX-License-Identifier: AGPL-3.0-only
"""Private signing keys: loading, JWK public parameters and RFC 7638 thumbprints.

Accepts what MAS's keystore accepts (``crates/keystore``): a PEM or DER document holding
an RSA key (PKCS#1 or PKCS#8), or an elliptic-curve key on P-256, P-384 or secp256k1 (SEC1
or PKCS#8), optionally as an encrypted PKCS#8 document unlocked by a password. Everything
else (P-521, Ed25519, DSA, legacy OpenSSL-encrypted PEM...) is refused with a reason.

Like MAS, a password given for an unencrypted key is an error, and so is an encrypted key
without a password.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

import attrs
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwcrypto.jwk import JWK

SupportedKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

#: JWS algorithms an RSA key can sign with (RFC 7518 §3.3, §3.5).
RSA_ALGORITHMS: tuple[str, ...] = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")

#: Curve name (cryptography's) -> (JWK ``crv``, JWS algorithm, coordinate length in bytes).
_CURVES: dict[str, tuple[str, str, int]] = {
    "secp256r1": ("P-256", "ES256", 32),
    "secp384r1": ("P-384", "ES384", 48),
    "secp256k1": ("secp256k1", "ES256K", 32),  # RFC 8812 §3.1
}

#: The order in which MAS lists JWS algorithms (its algorithm enum, which it sorts by).
JWS_ALGORITHM_ORDER: tuple[str, ...] = (
    "HS256", "HS384", "HS512",
    "RS256", "RS384", "RS512",
    "ES256", "ES384", "ES512",
    "PS256", "PS384", "PS512",
    "none", "EdDSA", "ES256K", "Ed25519", "Ed448",
)  # fmt: skip

_LABEL_PKCS1 = "RSA PRIVATE KEY"
_LABEL_PKCS8 = "PRIVATE KEY"
_LABEL_SEC1 = "EC PRIVATE KEY"
_LABEL_ENCRYPTED_PKCS8 = "ENCRYPTED PRIVATE KEY"

_PEM_BEGIN = re.compile(r"-----BEGIN ([^-\r\n]*)-----")
_PEM_END = re.compile(r"-----END ([^-\r\n]*)-----")


class KeyLoadError(Exception):
    """A key could not be loaded; ``str(e)`` says why, in one line, without key material."""


def b64url_encode(data: bytes) -> str:
    """Base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_to_b64url(value: int, length: int | None = None) -> str:
    """RFC 7518 §6.3.1 (minimal big-endian bytes) or §6.2.1.2 (fixed length) encoding."""
    if length is None:
        length = max(1, (value.bit_length() + 7) // 8)
    return b64url_encode(value.to_bytes(length, "big"))


def jwk_thumbprint(public_jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of a JWK, base64url without padding.

    Only the required members of the key type take part (§3.2), serialized with sorted
    member names and no whitespace (§3.3).

    Raises:
        KeyLoadError: the key type is not RSA or EC, or a required member is missing.
    """
    kty = public_jwk.get("kty")
    members: tuple[str, ...]
    if kty == "RSA":
        members = ("e", "kty", "n")
    elif kty == "EC":
        members = ("crv", "kty", "x", "y")
    elif kty == "OKP":
        members = ("crv", "kty", "x")
    else:
        raise KeyLoadError(f"cannot compute a thumbprint for key type {kty!r}")
    try:
        required = {name: public_jwk[name] for name in members}
    except KeyError as e:
        raise KeyLoadError(f"JWK is missing the {e.args[0]!r} member")
    text = json.dumps(required, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return b64url_encode(hashlib.sha256(text.encode("utf-8")).digest())


@attrs.frozen(eq=False)
class PrivateKey:
    """One loaded signing key of a type MAS supports."""

    key: SupportedKey
    #: JWK ``kty``: ``RSA`` or ``EC``.
    kty: str
    #: JWK ``crv`` for EC keys (``P-256``, ``P-384``, ``secp256k1``), else None.
    crv: str | None
    #: The JWS algorithms this key can sign with, in MAS's order.
    algorithms: tuple[str, ...]

    @classmethod
    def from_cryptography(cls, key: Any) -> PrivateKey:
        """Wrap a ``cryptography`` private key, refusing types MAS does not support."""
        if isinstance(key, rsa.RSAPrivateKey):
            return cls(key=key, kty="RSA", crv=None, algorithms=RSA_ALGORITHMS)
        if isinstance(key, ec.EllipticCurvePrivateKey):
            curve = _CURVES.get(key.curve.name)
            if curve is None:
                raise KeyLoadError(
                    f"unsupported elliptic curve {key.curve.name}; supported curves are P-256, P-384 and secp256k1"
                )
            return cls(key=key, kty="EC", crv=curve[0], algorithms=(curve[1],))
        kind = type(key).__name__.lstrip("_").replace("PrivateKey", "") or type(key).__name__
        raise KeyLoadError(
            f"unsupported key type {kind}; supported types are RSA and EC (P-256, P-384, secp256k1)"
        )

    @property
    def description(self) -> str:
        """``RSA 2048`` / ``EC P-256``: for logs and ``mas-cli`` output."""
        if isinstance(self.key, rsa.RSAPrivateKey):
            return f"RSA {self.key.key_size}"
        return f"EC {self.crv}"

    def public_parameters(self) -> dict[str, str]:
        """The public JWK members (RFC 7518 §6), ``kty`` first as MAS writes them."""
        if isinstance(self.key, rsa.RSAPrivateKey):
            numbers = self.key.public_key().public_numbers()
            return {"kty": "RSA", "n": _int_to_b64url(numbers.n), "e": _int_to_b64url(numbers.e)}
        assert self.crv is not None
        length = _CURVES[self.key.curve.name][2]
        point = self.key.public_key().public_numbers()
        return {
            "kty": "EC",
            "crv": self.crv,
            "x": _int_to_b64url(point.x, length),
            "y": _int_to_b64url(point.y, length),
        }

    def thumbprint(self) -> str:
        """RFC 7638 SHA-256 thumbprint: the ``kid`` MAS gives a key configured without one."""
        return jwk_thumbprint(self.public_parameters())

    def to_jwk(self, kid: str) -> JWK:
        """A private jwcrypto JWK for signing, with ``kid`` and ``use: sig``."""
        jwk = JWK.from_pyca(self.key)
        jwk.update(kid=kid, use="sig")
        return jwk

    def to_pem(self) -> str:
        """Unencrypted PEM in the formats MAS writes: PKCS#1 for RSA, SEC1 (named curve) for EC."""
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ).decode("ascii")


def generate_private_key(kind: str) -> PrivateKey:
    """A new key as ``mas-cli config generate`` makes them: ``rsa`` (2048 bits), ``p256``, ``p384`` or ``k256``."""
    if kind == "rsa":
        return PrivateKey.from_cryptography(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    curves = {"p256": ec.SECP256R1(), "p384": ec.SECP384R1(), "k256": ec.SECP256K1()}
    if kind not in curves:
        raise ValueError(f"unknown key kind {kind!r}")
    return PrivateKey.from_cryptography(ec.generate_private_key(curves[kind]))


def _parse_pem(text: str) -> tuple[str, bytes] | None:
    """Split one PEM document (RFC 7468) into its label and DER body.

    Returns:
        None when the text holds no PEM boundary at all (it may then be DER).

    Raises:
        KeyLoadError: the document is malformed, or carries RFC 1421 headers
            (OpenSSL's legacy encryption, which MAS does not read either).
    """
    begin = _PEM_BEGIN.search(text)
    if begin is None:
        return None
    label = begin.group(1)
    end = _PEM_END.search(text, begin.end())
    if end is None:
        raise KeyLoadError(f"malformed PEM: no '-----END {label}-----' line")
    if end.group(1) != label:
        raise KeyLoadError(f"malformed PEM: BEGIN {label} does not match END {end.group(1)}")
    if text[end.end() :].strip():
        raise KeyLoadError("malformed PEM: unexpected data after the END line (expected a single key)")
    body = text[begin.end() : end.start()]
    if ":" in body:
        raise KeyLoadError(
            "PEM headers are not supported (legacy OpenSSL encryption); "
            "use an encrypted PKCS#8 key ('-----BEGIN ENCRYPTED PRIVATE KEY-----') instead"
        )
    compact = "".join(body.split())
    try:
        der = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise KeyLoadError(f"malformed PEM: the body of the {label} document is not valid base64")
    return label, der


def _load_der(der: bytes, password: bytes | None, what: str) -> Any:
    try:
        return serialization.load_der_private_key(der, password=password)
    except TypeError as e:
        # cryptography says "Password was not given but private key is encrypted" or
        # "Password was given but private key is not encrypted".
        if password is None:
            raise KeyLoadError("the key is encrypted and no password was provided")
        raise KeyLoadError("the key is not encrypted but a password was provided") from e
    except ValueError:
        # With a password, the key was encrypted (else TypeError above). A wrong password
        # usually fails the padding check ("Bad decrypt"), but about one time in 256 the
        # padding happens to look right and the garbage then fails to parse instead.
        if password is not None:
            raise KeyLoadError("could not decrypt the key: wrong password?")
        raise KeyLoadError(f"could not decode the {what}")
    except Exception as e:  # unsupported algorithms surface as UnsupportedAlgorithm
        raise KeyLoadError(f"could not decode the {what}: {e}")


def load_private_key(data: bytes, password: bytes | None = None) -> PrivateKey:
    """Load a PEM or DER private key, decrypting it with ``password`` when given.

    Raises:
        KeyLoadError: the data is not a supported key, the password is missing, wrong or
            superfluous, or the key type or curve is not supported.
    """
    try:
        text: str | None = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    pem = _parse_pem(text) if text is not None else None
    if pem is not None:
        label, der = pem
        if label == _LABEL_ENCRYPTED_PKCS8:
            if password is None:
                raise KeyLoadError("the key is encrypted and no password was provided")
            key = _load_der(der, password, "encrypted PKCS#8 key")
        elif label in (_LABEL_PKCS1, _LABEL_PKCS8, _LABEL_SEC1):
            if password is not None:
                raise KeyLoadError("the key is not encrypted but a password was provided")
            what = {_LABEL_PKCS1: "PKCS#1 RSA key", _LABEL_PKCS8: "PKCS#8 key", _LABEL_SEC1: "SEC1 EC key"}[
                label
            ]
            key = _load_der(der, None, what)
        else:
            raise KeyLoadError(
                f"unsupported PEM label {label!r}; expected RSA PRIVATE KEY, PRIVATE KEY, "
                "EC PRIVATE KEY or ENCRYPTED PRIVATE KEY"
            )
        return PrivateKey.from_cryptography(key)
    if text is not None and not data.strip():
        raise KeyLoadError("the key is empty")
    key = _load_der(data, password, "key (expected PEM, or DER in PKCS#1, PKCS#8 or SEC1 format)")
    return PrivateKey.from_cryptography(key)
