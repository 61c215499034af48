# SPDX-License-Identifier: AGPL-3.0-only
"""Dynamic client registration metadata (RFC 7591 §2, OIDC Dynamic Client Registration §2).

What ``POST /oauth2/registration`` checks before the policy, as MAS does (inventory §2.12,
``ClientMetadata::validate`` and ``handlers/src/oauth2/registration.rs``):

1. :func:`parse_client_metadata`: the JSON object read into :class:`ClientMetadata`. Unknown
   fields are ignored; URLs must be absolute (and are normalised, :mod:`.url`); the
   human-readable fields ``client_name``, ``logo_uri``, ``client_uri``, ``policy_uri`` and
   ``tos_uri`` may have localised variants (``client_name#fr``), which need the plain one
   too; any field name with ``#`` must end in a well-formed BCP 47 language tag. A value
   of the wrong type is ``invalid_client_metadata``.
2. :meth:`ClientMetadata.sorted`: lists and localised variants in a stable order, so that
   :func:`metadata_digest` (SHA-256 of the compact JSON) is the same for the same
   registration written differently. Clients without a secret are de-duplicated on it.
3. The device code grant is dropped (silently) when the server has it disabled.
4. :func:`validate_client_metadata`: redirect URIs required for ``authorization_code`` and
   ``implicit`` and without fragments (``invalid_redirect_uri``); every response type
   coherent with the grant types; ``jwks`` and ``jwks_uri`` exclusive; ``https`` for
   ``sector_identifier_uri`` and ``initiate_login_uri``; keys for ``private_key_jwt``; a
   ``token_endpoint_auth_signing_alg`` for the JWT methods, never ``none``; no ``none`` ID
   token signature with an ``id_token`` response type; an encryption ``enc`` only with its
   ``alg`` (``invalid_client_metadata`` with MAS's message).
5. :func:`check_public_suffixes`: no URI whose host is a public suffix (``https://co.uk``,
   ``https://github.io``), per the Public Suffix List (the ``publicsuffixlist`` package).

Defaults (RFC 7591 §2): ``response_types`` ``["code"]``, ``grant_types``
``["authorization_code"]``, ``application_type`` ``web``, ``token_endpoint_auth_method``
``client_secret_basic``, ``id_token_signed_response_alg`` ``RS256``. A secret is generated
only when ``token_endpoint_auth_method`` is *explicitly* one of the secret-based methods
(:attr:`ClientMetadata.generates_client_secret`), as in MAS.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

import attrs
from jwcrypto import jwk
from jwcrypto.common import JWException

from mas_twisted.api.errors import (
    InvalidClientMetadataError,
    InvalidRedirectUriError,
    InvalidRequestError,
    OAuth2Error,
    clean_description,
)
from mas_twisted.oauth2 import requests as oauth2_requests
from mas_twisted.oauth2.credentials import (
    CLIENT_SECRET_BASIC,
    CLIENT_SECRET_JWT,
    CLIENT_SECRET_POST,
    PRIVATE_KEY_JWT,
)
from mas_twisted.oauth2.requests import InvalidResponseType, ResponseType, grant_type_sort_key
from mas_twisted.oauth2.url import InvalidUrlError, Url, parse_url

T = TypeVar("T")

DEFAULT_RESPONSE_TYPES = (ResponseType(["code"]),)
DEFAULT_GRANT_TYPES = (oauth2_requests.AUTHORIZATION_CODE,)
DEFAULT_APPLICATION_TYPE = "web"
DEFAULT_TOKEN_AUTH_METHOD = CLIENT_SECRET_BASIC
DEFAULT_SIGNING_ALGORITHM = "RS256"
DEFAULT_ENCRYPTION_ENC_ALGORITHM = "A128CBC-HS256"

LOCALIZED_FIELDS = ("client_name", "logo_uri", "client_uri", "policy_uri", "tos_uri")

# -- BCP 47 (RFC 5646 §2.1) ----------------------------------------------------------------------
_ALNUM = "[A-Za-z0-9]"
_LANGTAG = (
    r"(?:[A-Za-z]{2,3}(?:-[A-Za-z]{3}){0,3}|[A-Za-z]{4}|[A-Za-z]{5,8})"  # language (+ extlang)
    r"(?:-[A-Za-z]{4})?"  # script
    r"(?:-(?:[A-Za-z]{2}|[0-9]{3}))?"  # region
    rf"(?:-(?:{_ALNUM}{{5,8}}|[0-9]{_ALNUM}{{3}}))*"  # variants
    rf"(?:-[0-9A-WY-Za-wy-z](?:-{_ALNUM}{{2,8}})+)*"  # extensions
    rf"(?:-[Xx](?:-{_ALNUM}{{1,8}})+)?"  # private use
)
_PRIVATEUSE = rf"[Xx](?:-{_ALNUM}{{1,8}})+"
_GRANDFATHERED = (
    "en-GB-oed|i-ami|i-bnn|i-default|i-enochian|i-hak|i-klingon|i-lux|i-mingo|i-navajo|i-pwn|"
    "i-tao|i-tay|i-tsu|sgn-BE-FR|sgn-BE-NL|sgn-CH-DE|art-lojban|cel-gaulish|no-bok|no-nyn|"
    "zh-guoyu|zh-hakka|zh-min|zh-min-nan|zh-xiang"
)
_LANGUAGE_TAG_RE = re.compile(rf"(?:{_LANGTAG}|{_PRIVATEUSE}|(?i:{_GRANDFATHERED}))")


def is_language_tag(value: str) -> bool:
    """Whether ``value`` is a well-formed BCP 47 language tag (RFC 5646 §2.1)."""
    return _LANGUAGE_TAG_RE.fullmatch(value) is not None


# -- the metadata -----------------------------------------------------------------------------------
@attrs.frozen
class Localized(Generic[T]):
    """A human-readable field with its localised variants (OIDC Registration §2.1)."""

    value: T
    #: ``(language tag, value)`` pairs, in the order given (or sorted, after ``sorted()``).
    localized: tuple[tuple[str, T], ...] = ()

    def get(self, language: str | None) -> T | None:
        if language is None:
            return self.value
        for tag, value in self.localized:
            if tag == language:
                return value
        return None

    def values(self) -> list[T]:
        return [self.value] + [value for _, value in self.localized]

    def sorted(self) -> Localized[T]:
        return Localized(self.value, tuple(sorted(self.localized, key=lambda item: item[0])))


@attrs.frozen
class ClientMetadata:
    """Client metadata as registered (RFC 7591 §2, the IANA "OAuth Dynamic Client Registration
    Metadata" registry). Absent fields are ``None``; URLs are normalised strings."""

    redirect_uris: tuple[str, ...] | None = None
    response_types: tuple[ResponseType, ...] | None = None
    grant_types: tuple[str, ...] | None = None
    application_type: str | None = None
    contacts: tuple[str, ...] | None = None
    client_name: Localized[str] | None = None
    logo_uri: Localized[str] | None = None
    client_uri: Localized[str] | None = None
    policy_uri: Localized[str] | None = None
    tos_uri: Localized[str] | None = None
    jwks_uri: str | None = None
    jwks: Mapping[str, Any] | None = None
    software_id: str | None = None
    software_version: str | None = None
    sector_identifier_uri: str | None = None
    subject_type: str | None = None
    token_endpoint_auth_method: str | None = None
    token_endpoint_auth_signing_alg: str | None = None
    id_token_signed_response_alg: str | None = None
    id_token_encrypted_response_alg: str | None = None
    id_token_encrypted_response_enc: str | None = None
    userinfo_signed_response_alg: str | None = None
    userinfo_encrypted_response_alg: str | None = None
    userinfo_encrypted_response_enc: str | None = None
    request_object_signing_alg: str | None = None
    request_object_encryption_alg: str | None = None
    request_object_encryption_enc: str | None = None
    default_max_age: int | None = None
    require_auth_time: bool | None = None
    default_acr_values: tuple[str, ...] | None = None
    initiate_login_uri: str | None = None
    request_uris: tuple[str, ...] | None = None
    require_signed_request_object: bool | None = None
    require_pushed_authorization_requests: bool | None = None
    introspection_signed_response_alg: str | None = None
    introspection_encrypted_response_alg: str | None = None
    introspection_encrypted_response_enc: str | None = None
    post_logout_redirect_uris: tuple[str, ...] | None = None

    # -- defaults (RFC 7591 §2) ------------------------------------------------------------
    @property
    def effective_response_types(self) -> tuple[ResponseType, ...]:
        return self.response_types if self.response_types is not None else DEFAULT_RESPONSE_TYPES

    @property
    def effective_grant_types(self) -> tuple[str, ...]:
        return self.grant_types if self.grant_types is not None else DEFAULT_GRANT_TYPES

    @property
    def effective_application_type(self) -> str:
        return self.application_type if self.application_type is not None else DEFAULT_APPLICATION_TYPE

    @property
    def effective_token_endpoint_auth_method(self) -> str:
        if self.token_endpoint_auth_method is not None:
            return self.token_endpoint_auth_method
        return DEFAULT_TOKEN_AUTH_METHOD

    @property
    def effective_id_token_signed_response_alg(self) -> str:
        if self.id_token_signed_response_alg is not None:
            return self.id_token_signed_response_alg
        return DEFAULT_SIGNING_ALGORITHM

    @property
    def require_auth_time_or_default(self) -> bool:
        return bool(self.require_auth_time)

    @property
    def generates_client_secret(self) -> bool:
        """Whether registration hands out a secret: only for an *explicit* secret-based method."""
        return self.token_endpoint_auth_method in (CLIENT_SECRET_BASIC, CLIENT_SECRET_POST, CLIENT_SECRET_JWT)

    @property
    def verified_redirect_uris(self) -> tuple[str, ...]:
        return self.redirect_uris or ()

    # -- ordering and serialisation ----------------------------------------------------------
    def sorted(self) -> ClientMetadata:
        """Every list and localised field in a stable order (for the de-duplication digest)."""

        def opt(value: Any, fn: Callable[[Any], Any]) -> Any:
            return None if value is None else fn(value)

        return attrs.evolve(
            self,
            redirect_uris=opt(self.redirect_uris, lambda v: tuple(sorted(v))),
            response_types=opt(self.response_types, lambda v: tuple(sorted(v, key=ResponseType.sort_key))),
            grant_types=opt(self.grant_types, lambda v: tuple(sorted(v, key=grant_type_sort_key))),
            contacts=opt(self.contacts, lambda v: tuple(sorted(v))),
            client_name=opt(self.client_name, Localized.sorted),
            logo_uri=opt(self.logo_uri, Localized.sorted),
            client_uri=opt(self.client_uri, Localized.sorted),
            policy_uri=opt(self.policy_uri, Localized.sorted),
            tos_uri=opt(self.tos_uri, Localized.sorted),
            default_acr_values=opt(self.default_acr_values, lambda v: tuple(sorted(v))),
            request_uris=opt(self.request_uris, lambda v: tuple(sorted(v))),
            post_logout_redirect_uris=opt(self.post_logout_redirect_uris, lambda v: tuple(sorted(v))),
        )

    def to_json(self) -> dict[str, Any]:
        """The metadata as JSON, absent fields omitted, in MAS's field order (localised
        fields last). It is the registration response's metadata and the policy's input."""
        out: dict[str, Any] = {}
        for name in _PLAIN_FIELD_ORDER:
            value = getattr(self, name)
            if value is None:
                continue
            if name == "response_types":
                value = [str(rt) for rt in value]
            elif name == "jwks":
                value = _jsonable(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[name] = value
        for name in LOCALIZED_FIELDS:
            localized: Localized[str] | None = getattr(self, name)
            if localized is None:
                continue
            out[name] = localized.value
            for tag, value in localized.localized:
                out[f"{name}#{tag}"] = value
        return out

    def to_canonical_json(self) -> str:
        """Compact JSON of :meth:`to_json`, non-ASCII kept, as hashed for de-duplication."""
        return json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":"))

    def without_grant_type(self, grant_type: str) -> ClientMetadata:
        if self.grant_types is None or grant_type not in self.grant_types:
            return self
        return attrs.evolve(self, grant_types=tuple(g for g in self.grant_types if g != grant_type))


_PLAIN_FIELD_ORDER = (
    "redirect_uris",
    "response_types",
    "grant_types",
    "application_type",
    "contacts",
    "jwks_uri",
    "jwks",
    "software_id",
    "software_version",
    "sector_identifier_uri",
    "subject_type",
    "token_endpoint_auth_method",
    "token_endpoint_auth_signing_alg",
    "id_token_signed_response_alg",
    "id_token_encrypted_response_alg",
    "id_token_encrypted_response_enc",
    "userinfo_signed_response_alg",
    "userinfo_encrypted_response_alg",
    "userinfo_encrypted_response_enc",
    "request_object_signing_alg",
    "request_object_encryption_alg",
    "request_object_encryption_enc",
    "default_max_age",
    "require_auth_time",
    "default_acr_values",
    "initiate_login_uri",
    "request_uris",
    "require_signed_request_object",
    "require_pushed_authorization_requests",
    "introspection_signed_response_alg",
    "introspection_encrypted_response_alg",
    "introspection_encrypted_response_enc",
    "post_logout_redirect_uris",
)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def metadata_digest(metadata: ClientMetadata) -> str:
    """The de-duplication key of a secret-less registration: SHA-256 (hex) of the sorted
    metadata's canonical JSON (``oauth2_clients.metadata_digest``)."""
    return hashlib.sha256(metadata.sorted().to_canonical_json().encode("utf-8")).hexdigest()


# -- parsing ----------------------------------------------------------------------------------------
class _DataError(Exception):
    pass


def _expect(field: str, value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _DataError(f"invalid type for {field}: expected {what}")
    return value


def _string(field: str, value: Any) -> str:
    return _expect(field, value, str, "a string")


def _url(field: str, value: Any) -> str:
    text = _string(field, value)
    try:
        return str(parse_url(text))
    except InvalidUrlError as e:
        raise _DataError(f"invalid URL for {field}: {e.reason}") from None


def _list(field: str, value: Any, item: Callable[[str, Any], T]) -> tuple[T, ...]:
    _expect(field, value, list, "an array")
    return tuple(item(field, v) for v in value)


def _response_type(field: str, value: Any) -> ResponseType:
    try:
        return ResponseType.parse(_string(field, value))
    except InvalidResponseType:
        raise _DataError(f"invalid response type in {field}") from None


def _bool(field: str, value: Any) -> bool:
    return _expect(field, value, bool, "a boolean")


def _integer(field: str, value: Any) -> int:
    return _expect(field, value, int, "an integer")


_JWK_PUBLIC_PARAMS = {"RSA": ("n", "e"), "EC": ("crv", "x", "y"), "OKP": ("crv", "x")}
_JWK_CURVES = {"EC": ("P-256", "P-384", "P-521", "secp256k1"), "OKP": ("Ed25519", "Ed448", "X25519", "X448")}
_BASE64URL_NOPAD = re.compile(r"(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2,3})?")
_JWK_COMMON = ("use", "key_ops", "alg", "kid", "x5u", "x5c", "x5t", "x5t#S256")


def _public_jwk(field: str, value: Any) -> dict[str, Any]:
    key = _expect(field, value, dict, "a JSON Web Key object")
    kty = key.get("kty")
    if kty not in _JWK_PUBLIC_PARAMS:
        raise _DataError(f"invalid key in {field}: unsupported kty {kty!r}")
    out: dict[str, Any] = {"kty": kty}
    for param in _JWK_PUBLIC_PARAMS[kty]:
        if not isinstance(key.get(param), str):
            raise _DataError(f"invalid key in {field}: missing {param}")
        if param != "crv" and not _BASE64URL_NOPAD.fullmatch(key[param]):
            raise _DataError(f"invalid key in {field}: {param} is not base64url")
        out[param] = key[param]
    if "crv" in out and out["crv"] not in _JWK_CURVES[kty]:
        raise _DataError(f"invalid key in {field}: unsupported curve {out['crv']!r}")
    for param in _JWK_COMMON:
        if key.get(param) is not None:
            out[param] = key[param]
    try:
        jwk.JWK(**{k: v for k, v in out.items() if k in ("kty", "crv", "x", "y", "n", "e")})
    except (JWException, ValueError, TypeError) as e:
        raise _DataError(f"invalid key in {field}: {e}") from None
    return out


def _jwks(field: str, value: Any) -> dict[str, Any]:
    document = _expect(field, value, dict, "a JWK Set object")
    keys = _expect(field, document.get("keys"), list, "a JWK Set with a keys array")
    return {"keys": [_public_jwk(field, key) for key in keys]}


_PLAIN_PARSERS: dict[str, Callable[[str, Any], Any]] = {
    "redirect_uris": functools.partial(_list, item=_url),
    "response_types": functools.partial(_list, item=_response_type),
    "grant_types": functools.partial(_list, item=_string),
    "application_type": _string,
    "contacts": functools.partial(_list, item=_string),
    "jwks_uri": _url,
    "jwks": _jwks,
    "software_id": _string,
    "software_version": _string,
    "sector_identifier_uri": _url,
    "subject_type": _string,
    "token_endpoint_auth_method": _string,
    "token_endpoint_auth_signing_alg": _string,
    "id_token_signed_response_alg": _string,
    "id_token_encrypted_response_alg": _string,
    "id_token_encrypted_response_enc": _string,
    "userinfo_signed_response_alg": _string,
    "userinfo_encrypted_response_alg": _string,
    "userinfo_encrypted_response_enc": _string,
    "request_object_signing_alg": _string,
    "request_object_encryption_alg": _string,
    "request_object_encryption_enc": _string,
    "default_max_age": _integer,
    "require_auth_time": _bool,
    "default_acr_values": functools.partial(_list, item=_string),
    "initiate_login_uri": _url,
    "request_uris": functools.partial(_list, item=_url),
    "require_signed_request_object": _bool,
    "require_pushed_authorization_requests": _bool,
    "introspection_signed_response_alg": _string,
    "introspection_encrypted_response_alg": _string,
    "introspection_encrypted_response_enc": _string,
    "post_logout_redirect_uris": functools.partial(_list, item=_url),
}
_LOCALIZED_PARSERS: dict[str, Callable[[str, Any], str]] = {
    "client_name": _string,
    "logo_uri": _url,
    "client_uri": _url,
    "policy_uri": _url,
    "tos_uri": _url,
}


def parse_client_metadata(body: Any) -> ClientMetadata:
    """Read a registration request's JSON body (already decoded) into :class:`ClientMetadata`.

    Raises:
        InvalidClientMetadataError: not an object, a field of the wrong type, an invalid
            URL, a malformed language tag, a localised field without its plain variant.
    """
    try:
        return _parse_client_metadata(body)
    except _DataError as e:
        raise InvalidClientMetadataError(clean_description(str(e)), debug=str(e)) from None


def parse_client_metadata_json(raw: bytes) -> ClientMetadata:
    """:func:`parse_client_metadata` on the raw body; malformed JSON is ``invalid_request``."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidRequestError(debug=f"registration body is not JSON: {e}") from None
    return parse_client_metadata(body)


def _parse_client_metadata(body: Any) -> ClientMetadata:
    if not isinstance(body, dict):
        raise _DataError("invalid type: expected a JSON object")
    fields: dict[str, Any] = {}
    localized: dict[str, dict[str | None, Any]] = {}
    for key, value in body.items():
        base, sep, tag = key.partition("#")
        if sep:
            if not is_language_tag(tag):
                raise _DataError(f"invalid language tag {tag!r} in {key}")
            localized.setdefault(base, {})[tag] = value
            continue
        if key in _LOCALIZED_PARSERS:
            localized.setdefault(key, {})[None] = value
            continue
        parser = _PLAIN_PARSERS.get(key)
        if parser is None or value is None:
            continue
        fields[key] = parser(key, value)
    for name, parse in _LOCALIZED_PARSERS.items():
        variants = localized.get(name)
        if variants is None:
            continue
        if None not in variants:
            raise _DataError(f"missing non-localized variant of field '{name}'")
        fields[name] = Localized(
            parse(name, variants[None]),
            tuple((tag, parse(f"{name}#{tag}", value)) for tag, value in variants.items() if tag is not None),
        )
    return ClientMetadata(**fields)


# -- validation -------------------------------------------------------------------------------------
def _https(field: str, value: str | None) -> None:
    if value is not None and parse_url(value).scheme != "https":
        raise InvalidClientMetadataError(
            clean_description(f"{field}'s URL doesn't use a https scheme: {value}")
        )


def validate_client_metadata(metadata: ClientMetadata) -> ClientMetadata:
    """MAS's ``ClientMetadata::validate`` (OIDC Dynamic Client Registration §2).

    Returns:
        ``metadata`` itself, now known to be coherent.

    Raises:
        InvalidRedirectUriError: redirect URIs missing while needed, or one has a fragment.
        InvalidClientMetadataError: any other incoherence, with MAS's message.
    """
    grant_types = metadata.effective_grant_types
    has_implicit = oauth2_requests.IMPLICIT in grant_types
    has_authorization_code = oauth2_requests.AUTHORIZATION_CODE in grant_types
    has_both = has_implicit and has_authorization_code

    if metadata.redirect_uris is not None:
        for uri in metadata.redirect_uris:
            if parse_url(uri).fragment is not None:
                raise InvalidRedirectUriError(debug=f"redirect URI with fragment: {uri}")
    elif has_authorization_code or has_implicit:
        raise InvalidRedirectUriError(debug="redirect URIs are missing")

    if metadata.response_types is not None:
        response_types: tuple[ResponseType, ...] = metadata.response_types
    elif has_authorization_code or has_implicit:
        response_types = DEFAULT_RESPONSE_TYPES
    else:
        response_types = ()

    for response_type in response_types:
        has_code = response_type.has_code
        has_id_token = response_type.has_id_token
        has_token = response_type.has_token
        coherent = (
            (has_code and has_both)
            or (not has_code and has_implicit)
            or (has_authorization_code and not has_id_token and not has_token)
            or (not has_code and not has_id_token and not has_token)
        )
        if not coherent:
            raise InvalidClientMetadataError(
                clean_description(f"'{response_type}' response type not compatible with grant types")
            )

    if metadata.jwks_uri is not None and metadata.jwks is not None:
        raise InvalidClientMetadataError("jwks_uri and jwks are mutually exclusive")

    _https("sector_identifier_uri", metadata.sector_identifier_uri)

    method = metadata.effective_token_endpoint_auth_method
    if method == PRIVATE_KEY_JWT and metadata.jwks_uri is None and metadata.jwks is None:
        raise InvalidClientMetadataError("missing JWK Set for token auth method")

    if metadata.token_endpoint_auth_signing_alg is not None:
        if metadata.token_endpoint_auth_signing_alg == "none":
            raise InvalidClientMetadataError("none signing alg unauthorized for token_endpoint")
    elif method in (PRIVATE_KEY_JWT, CLIENT_SECRET_JWT):
        raise InvalidClientMetadataError("token_endpoint missing auth signing algorithm")

    if metadata.effective_id_token_signed_response_alg == "none" and any(
        rt.has_id_token for rt in response_types
    ):
        raise InvalidClientMetadataError("ID Token signing alg is none")

    for prefix, label in (("id_token", "id_token"), ("userinfo", "userinfo")):
        if getattr(metadata, f"{prefix}_encrypted_response_enc") is not None and (
            getattr(metadata, f"{prefix}_encrypted_response_alg") is None
        ):
            raise InvalidClientMetadataError(f"{label} missing encryption alg value")
    if metadata.request_object_encryption_enc is not None and metadata.request_object_encryption_alg is None:
        raise InvalidClientMetadataError("request_object missing encryption alg value")

    _https("initiate_login_uri", metadata.initiate_login_uri)

    if (
        metadata.introspection_encrypted_response_enc is not None
        and metadata.introspection_encrypted_response_alg is None
    ):
        raise InvalidClientMetadataError("introspection missing encryption alg value")

    return metadata


# -- public suffixes --------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _public_suffix_list() -> Any:
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


def host_is_public_suffix(url: str | Url) -> bool:
    """Whether the URL's host is nothing but a public suffix (``com``, ``.com``, ``co.uk``,
    ``github.io``). Hosts outside the list (``localhost``, an intranet name), IP addresses
    and URLs without a host are not."""
    parsed = url if isinstance(url, Url) else parse_url(url)
    host = parsed.host
    if not host or host.startswith("["):
        return False
    name = host[:-1] if host.endswith(".") else host
    name = name.lstrip(".")
    if not name:
        return False
    suffix = _public_suffix_list().publicsuffix(name, accept_unknown=False)
    return suffix is not None and suffix == name


def check_public_suffixes(metadata: ClientMetadata) -> None:
    """Refuse URIs on a public suffix, in MAS's order of fields.

    Raises:
        InvalidClientMetadataError: ``<field> is not using a valid domain``.
        InvalidRedirectUriError: ``redirect_uri is not using a valid domain``.
    """
    for name in ("client_uri", "logo_uri", "policy_uri", "tos_uri"):
        localized: Localized[str] | None = getattr(metadata, name)
        if localized is not None and any(host_is_public_suffix(u) for u in localized.values()):
            raise InvalidClientMetadataError(f"{name} is not using a valid domain")
    if metadata.initiate_login_uri is not None and host_is_public_suffix(metadata.initiate_login_uri):
        raise InvalidClientMetadataError("initiate_login_uri is not using a valid domain")
    for uri in metadata.verified_redirect_uris:
        if host_is_public_suffix(uri):
            raise InvalidRedirectUriError("redirect_uri is not using a valid domain")


# -- the whole pre-policy pipeline -----------------------------------------------------------------
@attrs.frozen
class RegistrationRequest:
    """A registration that passed every check before the ``client_registration`` policy."""

    #: The metadata to register (and to give the policy).
    metadata: ClientMetadata
    #: SHA-256 of the sorted request, before any grant type was dropped (MAS hashes it then).
    digest: str


def prepare_registration(body: Any, *, device_code_grant_enabled: bool) -> RegistrationRequest:
    """Steps 1 to 5 of the module docstring for a decoded JSON body.

    Raises:
        OAuth2Error: ``invalid_client_metadata`` or ``invalid_redirect_uri``.
    """
    metadata = parse_client_metadata(body).sorted()
    digest = hashlib.sha256(metadata.to_canonical_json().encode("utf-8")).hexdigest()
    if not device_code_grant_enabled:
        metadata = metadata.without_grant_type(oauth2_requests.DEVICE_CODE)
    validate_client_metadata(metadata)
    check_public_suffixes(metadata)
    return RegistrationRequest(metadata=metadata, digest=digest)


def policy_denial_error(messages: Iterable[str]) -> OAuth2Error:
    """The error for a ``client_registration`` policy denial: ``invalid_redirect_uri`` if any
    message mentions ``redirect_uri`` (MAS's rule), else ``invalid_client_metadata``; the
    description is the messages joined with ``"; "``."""
    messages = list(messages)
    description = clean_description("; ".join(messages))
    if any("redirect_uri" in message for message in messages):
        return InvalidRedirectUriError(description)
    return InvalidClientMetadataError(description)
