# SPDX-License-Identifier: AGPL-3.0-only
"""Client authentication: which credentials a request presents, and checking them.

RFC 6749 §2.3 and RFC 7523 §2.2 / §3, with MAS's rules
(``crates/axum-utils/src/client_authorization.rs``, inventory §2.4):

:func:`extract_credentials` classifies a request from its ``Authorization`` header and form:

============================================================  ===================================
presented                                                      credentials
============================================================  ===================================
``Authorization: Basic`` (form ``client_id`` may repeat it)    ``client_secret_basic``
form ``client_id`` + ``client_secret``                         ``client_secret_post``
form ``client_id`` alone                                       ``none``
``client_assertion_type`` = jwt-bearer + ``client_assertion``  ``client_assertion`` (JWT; its
                                                               ``sub`` is the client id)
``Authorization: Bearer``                                      ``bearer`` (introspection only)
============================================================  ===================================

and refuses the rest: an unreadable ``Authorization`` header or another scheme
(``invalid_request`` "Invalid Authorization header"), a form ``client_id`` that differs from
the one in the header or assertion (``invalid_grant``, as MAS), another assertion type
(``invalid_request``), an assertion that is not a JWT with a string ``sub``
(``invalid_request`` "Invalid client_assertion"), no credentials at all (``invalid_request``
"No credentials were presented"), and any other mix (``invalid_request``).

The Basic credentials are ``application/x-www-form-urlencoded`` before base64 (RFC 6749
§2.3.1), so they are URL-decoded here.

:func:`verify_credentials` then checks them against the client's registered
``token_endpoint_auth_method``: the method used must be that one (else ``invalid_client``),
a secret must match, and a JWT assertion must be signed with the client secret
(``client_secret_jwt``: HS256/384/512) or one of the client's keys (``private_key_jwt``:
RS256/384/512, PS256/384/512, ES256, ES384, ES256K). MAS itself stops at the signature; this
module also applies RFC 7523 §3: ``iss`` and ``sub`` are the client id, ``aud`` names this
server (the caller passes the accepted values: the issuer, the token endpoint, the endpoint
being called), ``exp`` is present and not past, ``nbf`` not in the future (each with
:data:`CLOCK_LEEWAY_S` of tolerance). ``jti`` is optional in RFC 7523 and returned for a caller
that wants replay protection. Fetching a ``jwks_uri`` is I/O and happens before the call.
Every failure is ``invalid_client`` (401), with ``WWW-Authenticate: Basic`` when the client
used Basic.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import unquote_plus

import attrs
from jwcrypto import jwk, jws
from jwcrypto.common import JWException

from mas_twisted.api.errors import (
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    clean_description,
)

logger = logging.getLogger(__name__)

JWT_BEARER_CLIENT_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

#: Client authentication methods (RFC 7591 §2, OIDC Core §9).
NONE = "none"
CLIENT_SECRET_BASIC = "client_secret_basic"
CLIENT_SECRET_POST = "client_secret_post"
CLIENT_SECRET_JWT = "client_secret_jwt"
PRIVATE_KEY_JWT = "private_key_jwt"
#: As advertised by discovery, in MAS's order.
AUTH_METHODS = (CLIENT_SECRET_BASIC, CLIENT_SECRET_POST, CLIENT_SECRET_JWT, PRIVATE_KEY_JWT, NONE)

HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
ASYMMETRIC_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES256K")
#: The JWS algorithms accepted for client assertions (MAS's ``SUPPORTED_SIGNING_ALGORITHMS``).
SIGNING_ALGORITHMS = HMAC_ALGORITHMS + ASYMMETRIC_ALGORITHMS

#: Seconds of clock skew tolerated on ``exp`` and ``nbf``.
CLOCK_LEEWAY_S = 60

_CLIENT_FIELDS = ("client_id", "client_secret", "client_assertion_type", "client_assertion")
_B64URL_RE = re.compile(r"[A-Za-z0-9_-]*")
_B64_RE = re.compile(r"[A-Za-z0-9+/]*={0,2}")


class CredentialsKind(enum.Enum):
    NONE = "none"
    CLIENT_SECRET_BASIC = "client_secret_basic"
    CLIENT_SECRET_POST = "client_secret_post"
    CLIENT_ASSERTION = "client_assertion"
    BEARER = "bearer"


@attrs.frozen
class ClientAssertion:
    """A compact JWS client assertion (RFC 7523 §2.2), decoded but not yet verified."""

    raw: str
    header: Mapping[str, Any]
    claims: Mapping[str, Any]

    @property
    def alg(self) -> Any:
        return self.header.get("alg")

    @property
    def kid(self) -> Any:
        return self.header.get("kid")

    @property
    def jti(self) -> str | None:
        jti = self.claims.get("jti")
        return jti if isinstance(jti, str) else None


@attrs.frozen
class Credentials:
    """What a request presented to authenticate its client."""

    kind: CredentialsKind
    #: The client id (``None`` only for :attr:`CredentialsKind.BEARER`).
    client_id: str | None = None
    client_secret: str | None = attrs.field(default=None, repr=False)
    assertion: ClientAssertion | None = attrs.field(default=None, repr=False)
    bearer_token: str | None = attrs.field(default=None, repr=False)

    @property
    def used_basic(self) -> bool:
        return self.kind is CredentialsKind.CLIENT_SECRET_BASIC


@attrs.frozen
class ClientAuthorization:
    """The credentials of a request, and its form without the client authentication fields."""

    credentials: Credentials
    form: Mapping[str, str]


def _b64url_decode(part: str) -> bytes:
    if not _B64URL_RE.fullmatch(part) or len(part) % 4 == 1:
        raise ValueError("not base64url")
    decoded = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    if base64.urlsafe_b64encode(decoded).rstrip(b"=").decode("ascii") != part:
        raise ValueError("non-canonical base64url")
    return decoded


def decode_jwt(token: str) -> ClientAssertion:
    """Split and decode a compact JWS (RFC 7515 §7.1): a JSON header with ``alg``, a JSON
    object payload and a base64url signature.

    Raises:
        ValueError: anything malformed.
    """
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("a JWS has three parts")
    header = json.loads(_b64url_decode(parts[0]))
    claims = json.loads(_b64url_decode(parts[1]))
    _b64url_decode(parts[2])
    if not isinstance(header, dict) or not isinstance(header.get("alg"), str):
        raise ValueError("the JWS header must be an object with an alg")
    if not isinstance(claims, dict):
        raise ValueError("the JWT claims must be an object")
    return ClientAssertion(raw=token, header=header, claims=claims)


def _parse_authorization(header: str) -> tuple[str, str, str | None]:
    """``("basic", client_id, secret)`` or ``("bearer", token, None)``."""
    if header[:6].lower() == "basic ":
        encoded = header[6:].lstrip(" ")
        if not _B64_RE.fullmatch(encoded) or len(encoded) % 4 != 0:
            raise InvalidRequestError("Invalid Authorization header")
        try:
            decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidRequestError("Invalid Authorization header") from None
        if ":" not in decoded:
            raise InvalidRequestError("Invalid Authorization header")
        user, password = decoded.split(":", 1)
        return "basic", unquote_plus(user), unquote_plus(password)
    if header[:7].lower() == "bearer ":
        token = header[7:].lstrip(" ")
        if not token:
            raise InvalidRequestError("Invalid Authorization header")
        return "bearer", token, None
    raise InvalidRequestError("Invalid Authorization header")


def _client_id_mismatch(credential: str, form: str) -> InvalidGrantError:
    return InvalidGrantError(
        clean_description(f"client_id in form ('{form}') does not match credential ('{credential}')"),
        debug=f"client_id mismatch: form {form!r}, credential {credential!r}",
    )


def extract_credentials(authorization: str | bytes | None, form: Mapping[str, str]) -> ClientAuthorization:
    """Classify the client credentials of a request (see the module docstring).

    Args:
        authorization: the ``Authorization`` header, if any.
        form: the request's form parameters (one value each).

    Raises:
        InvalidRequestError, InvalidGrantError: as tabled in the module docstring.
    """
    if isinstance(authorization, bytes):
        try:
            authorization = authorization.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidRequestError("Invalid Authorization header") from None
    header = _parse_authorization(authorization) if authorization is not None else None

    client_id = form.get("client_id")
    client_secret = form.get("client_secret")
    assertion_type = form.get("client_assertion_type")
    assertion = form.get("client_assertion")
    rest = {k: v for k, v in form.items() if k not in _CLIENT_FIELDS}

    credentials: Credentials
    if (
        header is not None
        and header[0] == "basic"
        and client_secret is None
        and assertion_type is None
        and assertion is None
    ):
        _, basic_id, basic_secret = header
        if client_id is not None and client_id != basic_id:
            raise _client_id_mismatch(basic_id, client_id)
        credentials = Credentials(CredentialsKind.CLIENT_SECRET_BASIC, basic_id, client_secret=basic_secret)
    elif (
        header is None
        and client_id is not None
        and client_secret is not None
        and assertion_type is None
        and assertion is None
    ):
        credentials = Credentials(CredentialsKind.CLIENT_SECRET_POST, client_id, client_secret=client_secret)
    elif (
        header is None
        and client_id is not None
        and client_secret is None
        and assertion_type is None
        and assertion is None
    ):
        credentials = Credentials(CredentialsKind.NONE, client_id)
    elif (
        header is None
        and client_secret is None
        and assertion_type == JWT_BEARER_CLIENT_ASSERTION
        and assertion is not None
    ):
        try:
            decoded = decode_jwt(assertion)
        except (ValueError, UnicodeDecodeError):
            raise InvalidRequestError("Invalid client_assertion") from None
        sub = decoded.claims.get("sub")
        if not isinstance(sub, str):
            raise InvalidRequestError("Invalid client_assertion", debug="client_assertion has no string sub")
        if client_id is not None and client_id != sub:
            raise _client_id_mismatch(sub, client_id)
        credentials = Credentials(CredentialsKind.CLIENT_ASSERTION, sub, assertion=decoded)
    elif (
        header is None
        and client_id is None
        and client_secret is None
        and assertion_type is not None
        and assertion is not None
    ):
        raise InvalidRequestError(clean_description(f"Unsupported client_assertion_type: {assertion_type}"))
    elif (
        header is not None
        and header[0] == "bearer"
        and client_id is None
        and client_secret is None
        and assertion_type is None
        and assertion is None
    ):
        credentials = Credentials(CredentialsKind.BEARER, bearer_token=header[1])
    elif (
        header is None
        and client_id is None
        and client_secret is None
        and assertion_type is None
        and assertion is None
    ):
        raise InvalidRequestError("No credentials were presented")
    else:
        raise InvalidRequestError(debug="conflicting client credentials")
    return ClientAuthorization(credentials, rest)


# -- verification ----------------------------------------------------------------------------------
def _fail(credentials: Credentials, reason: str) -> InvalidClientError:
    return InvalidClientError(
        basic_offered=credentials.used_basic, debug=f"client {credentials.client_id}: {reason}"
    )


def verify_credentials(
    credentials: Credentials,
    *,
    method: str,
    client_secret: str | None = None,
    jwks: Mapping[str, Any] | None = None,
    audiences: Collection[str] = (),
    now_s: float,
    expected_alg: str | None = None,
) -> None:
    """Check presented credentials against the client's registration.

    Args:
        credentials: from :func:`extract_credentials` (not ``bearer``).
        method: the client's ``token_endpoint_auth_method``.
        client_secret: the client's decrypted secret (``client_secret_*`` methods).
        jwks: the client's JWK Set, fetched from ``jwks_uri`` if need be (``private_key_jwt``).
        audiences: the ``aud`` values an assertion may name.
        now_s: the current time, in seconds since the epoch.
        expected_alg: if set, the only JWS ``alg`` accepted (the client's
            ``token_endpoint_auth_signing_alg``; MAS does not enforce it).

    Raises:
        InvalidClientError: the method differs or the credentials do not check out.
        ValueError: the client's registration lacks the secret or keys its method needs
            (a server-side inconsistency: answer ``server_error``).
    """
    kind = credentials.kind
    if kind is CredentialsKind.NONE and method == NONE:
        return
    if (kind is CredentialsKind.CLIENT_SECRET_BASIC and method == CLIENT_SECRET_BASIC) or (
        kind is CredentialsKind.CLIENT_SECRET_POST and method == CLIENT_SECRET_POST
    ):
        if client_secret is None:
            raise ValueError(f"client {credentials.client_id} has no secret for {method}")
        presented = (credentials.client_secret or "").encode("utf-8")
        if not hmac.compare_digest(presented, client_secret.encode("utf-8")):
            raise _fail(credentials, "client secret mismatch")
        return
    if kind is CredentialsKind.CLIENT_ASSERTION and method in (CLIENT_SECRET_JWT, PRIVATE_KEY_JWT):
        assert credentials.assertion is not None
        alg = credentials.assertion.alg
        if method == CLIENT_SECRET_JWT:
            if client_secret is None:
                raise ValueError(f"client {credentials.client_id} has no secret for {method}")
            if alg not in HMAC_ALGORITHMS or (expected_alg is not None and alg != expected_alg):
                raise _fail(credentials, f"assertion signed with {alg!r}")
            valid = _verify_hmac(credentials.assertion.raw, client_secret, alg)
        else:
            if jwks is None:
                raise ValueError(f"client {credentials.client_id} has no keys for {method}")
            if alg not in ASYMMETRIC_ALGORITHMS or (expected_alg is not None and alg != expected_alg):
                raise _fail(credentials, f"assertion signed with {alg!r}")
            keys = _candidate_keys(jwks, credentials.assertion.header)
            valid = any(_verify_signature(credentials.assertion.raw, key, alg) for key in keys)
        if not valid:
            raise _fail(credentials, "invalid assertion signature")
        check_assertion_claims(credentials, audiences=audiences, now_s=now_s)
        return
    raise _fail(credentials, f"authentication method mismatch ({kind.value} presented, {method} registered)")


def check_assertion_claims(credentials: Credentials, *, audiences: Collection[str], now_s: float) -> None:
    """RFC 7523 §3 on a signature-checked assertion: ``iss``, ``sub``, ``aud``, ``exp``, ``nbf``.

    Raises:
        InvalidClientError: a claim is missing or wrong.
    """
    assert credentials.assertion is not None
    claims = credentials.assertion.claims
    client_id = credentials.client_id
    if claims.get("iss") != client_id:
        raise _fail(credentials, "assertion iss is not the client id")
    if claims.get("sub") != client_id:
        raise _fail(credentials, "assertion sub is not the client id")
    aud = claims.get("aud")
    aud_values = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if not any(isinstance(value, str) and value in audiences for value in aud_values):
        raise _fail(credentials, f"assertion aud {aud!r} does not name this server")
    exp = claims.get("exp")
    if not _is_number(exp):
        raise _fail(credentials, "assertion has no numeric exp")
    assert exp is not None
    if now_s > exp + CLOCK_LEEWAY_S:
        raise _fail(credentials, "assertion expired")
    nbf = claims.get("nbf")
    if nbf is not None and (not _is_number(nbf) or now_s < nbf - CLOCK_LEEWAY_S):
        raise _fail(credentials, "assertion not yet valid")
    jti = claims.get("jti")
    if jti is not None and not isinstance(jti, str):
        raise _fail(credentials, "assertion jti is not a string")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_HMAC_HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def _verify_hmac(token: str, secret: str, alg: str) -> bool:
    """An HMAC JWS signature check keyed with the client secret as bytes (RFC 7518 §3.2).

    Done by hand: jwcrypto refuses keys shorter than the hash, and the 20-character secrets
    MAS hands out (and every client's) must work.
    """
    signing_input, _, signature = token.rpartition(".")
    try:
        presented = _b64url_decode(signature)
    except ValueError:
        return False
    expected = hmac.new(secret.encode("utf-8"), signing_input.encode("ascii"), _HMAC_HASHES[alg]).digest()
    return hmac.compare_digest(presented, expected)


#: The algorithms a key can verify, by key type and curve.
def _key_algorithms(key: Mapping[str, Any]) -> tuple[str, ...]:
    kty = key.get("kty")
    if kty == "RSA":
        return ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
    if kty == "EC":
        by_curve: dict[Any, tuple[str, ...]] = {
            "P-256": ("ES256",),
            "P-384": ("ES384",),
            "secp256k1": ("ES256K",),
        }
        return by_curve.get(key.get("crv"), ())
    return ()


def _candidate_keys(jwks: Mapping[str, Any], header: Mapping[str, Any]) -> list[jwk.JWK]:
    """The keys of ``jwks`` that could have made a signature with this header: same ``alg``
    if the key names one (else a key type able to use it), same ``kid`` if both name one."""
    alg = header.get("alg")
    kid = header.get("kid")
    keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
    out: list[jwk.JWK] = []
    for key in keys if isinstance(keys, list) else []:
        if not isinstance(key, Mapping):
            continue
        key_alg = key.get("alg")
        if key_alg is not None and key_alg != alg:
            continue
        if alg not in _key_algorithms(key):
            continue
        if isinstance(kid, str) and key.get("kid") is not None and key.get("kid") != kid:
            continue
        try:
            out.append(
                jwk.JWK(**{k: v for k, v in key.items() if k not in ("d", "p", "q", "dp", "dq", "qi")})
            )
        except (JWException, ValueError, TypeError) as e:
            logger.debug("skipping unusable client key %r: %s", key.get("kid"), e)
    return out


def _verify_signature(token: str, key: jwk.JWK, alg: str) -> bool:
    try:
        signed = jws.JWS()
        signed.deserialize(token)
        signed.allowed_algs = [alg]
        signed.verify(key, alg=alg)
    except (JWException, ValueError, TypeError):
        return False
    return True
