# SPDX-License-Identifier: AGPL-3.0-only
"""The ``clients`` section: OAuth 2.0 clients declared in the configuration (static clients).

MAS behaviour (``crates/config/src/sections/clients.rs``): the section is a *list*. Each
client has a ULID ``client_id``, a ``client_auth_method`` (RFC 7591 §2 names: ``none``,
``client_secret_basic``, ``client_secret_post``, ``client_secret_jwt``, ``private_key_jwt``),
optional ``client_name``/``client_uri``, a secret given as ``client_secret`` or
``client_secret_file`` (trimmed when read from a file), a JWK Set (RFC 7517 §5) as ``jwks``
or ``jwks_uri``, and ``redirect_uris``. The secret is required by, and only allowed with,
the ``client_secret_*`` methods; ``private_key_jwt`` needs exactly one of ``jwks`` and
``jwks_uri``; ``none`` allows neither. MAS accepts repeated client ids (``config sync``
then keeps the last one), and so do we.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from mas_twisted.api.errors import ConfigError
from mas_twisted.config._base import Config, JsonDict, Reader, describe

logger = logging.getLogger(__name__)

AUTH_NONE = "none"
AUTH_CLIENT_SECRET_BASIC = "client_secret_basic"
AUTH_CLIENT_SECRET_POST = "client_secret_post"
AUTH_CLIENT_SECRET_JWT = "client_secret_jwt"
AUTH_PRIVATE_KEY_JWT = "private_key_jwt"

CLIENT_AUTH_METHODS: tuple[str, ...] = (
    AUTH_NONE,
    AUTH_CLIENT_SECRET_BASIC,
    AUTH_CLIENT_SECRET_POST,
    AUTH_CLIENT_SECRET_JWT,
    AUTH_PRIVATE_KEY_JWT,
)

#: The methods that authenticate with a shared secret.
SECRET_AUTH_METHODS = frozenset({AUTH_CLIENT_SECRET_BASIC, AUTH_CLIENT_SECRET_POST, AUTH_CLIENT_SECRET_JWT})

# RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
_URL_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):(.*)$", re.DOTALL)
# WHATWG URL "special" schemes: these need a host, everything else (app-claimed
# schemes such as ``com.example.app:/callback``) only needs a scheme.
_SPECIAL_SCHEMES = frozenset({"http", "https", "ws", "wss", "ftp"})
_B64URL_RE = re.compile(r"^[A-Za-z0-9_\-]*={0,2}$")

_JWK_TYPES: dict[str, tuple[str, ...]] = {"RSA": ("n", "e"), "EC": ("crv", "x", "y"), "OKP": ("crv", "x")}
_JWK_CURVES: dict[str, tuple[str, ...]] = {
    "EC": ("P-256", "P-384", "P-521", "secp256k1"),
    "OKP": ("Ed25519", "Ed448", "X25519", "X448"),
}
_JWK_USES = ("sig", "enc")
_JWK_OPS = ("sign", "verify", "encrypt", "decrypt", "wrapKey", "unwrapKey", "deriveKey", "deriveBits")


def check_url(value: Any, path: tuple) -> str:
    """Accept any absolute URL the way MAS's ``url::Url`` does, custom app schemes included."""
    if isinstance(value, bool) or not isinstance(value, str):
        raise ConfigError(f"expected a URL, got {describe(value)}", path)
    match = _URL_RE.match(value)
    if match is None or any(c.isspace() for c in value):
        raise ConfigError(f"expected an absolute URL, got {describe(value)}", path)
    scheme, rest = match.group(1).lower(), match.group(2)
    if scheme in _SPECIAL_SCHEMES:
        host = rest.lstrip("/").split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
        if not host or host.rsplit("@", 1)[-1].startswith(":"):
            raise ConfigError(f"expected an absolute URL with a host, got {describe(value)}", path)
    return value


def read_url_list(r: Reader, key: str) -> tuple[str, ...]:
    return tuple(check_url(item, r.at(key) + (i,)) for i, item in enumerate(r.list(key) or ()))


def read_client_secret(r: Reader) -> str | None:
    """``client_secret`` or ``client_secret_file`` (trimmed), as MAS's ``ClientSecret``."""
    return r.secret("client_secret", strip=True)


def parse_jwks(r: Reader, key: str) -> dict[str, Any] | None:
    """Check a public JWK Set (RFC 7517 §5) given inline, and return it as plain JSON."""
    jwks = r.mapping(key)
    if jwks is None:
        return None
    jr = Reader(jwks, r.at(key))
    if not jr.has("keys"):
        raise jr.error("keys", "missing required value")
    for kr in jr.children("keys"):
        kty = kr.enum("kty", tuple(_JWK_TYPES), required=True)
        for param in _JWK_TYPES[kty]:
            value = kr.str(param, required=True)
            if param == "crv":
                if value not in _JWK_CURVES[kty]:
                    raise kr.error(
                        param,
                        f"expected one of {', '.join(_JWK_CURVES[kty])} for a {kty} key; got {describe(value)}",
                    )
            elif not _B64URL_RE.match(value):
                raise kr.error(param, f"expected base64url, got {describe(value)}")
        kr.enum("use", _JWK_USES)
        for i, op in enumerate(kr.str_list("key_ops", ())):
            if op not in _JWK_OPS:
                raise ConfigError(
                    f"expected one of {', '.join(_JWK_OPS)}; got {describe(op)}", kr.at("key_ops") + (i,)
                )
        kr.str("alg")
        kr.str("kid")
        kr.str_list("x5c", ())
    return copy.deepcopy(jwks)


@attrs.frozen
class StaticClient:
    """One entry of ``clients``: an OAuth 2.0 client whose registration lives in the config."""

    client_id: str
    client_auth_method: str
    client_name: str | None = None
    client_uri: str | None = None
    #: The secret's value (read from ``client_secret_file`` when that was given).
    client_secret: str | None = None
    client_secret_file: str | None = None
    #: The public JWK Set for ``private_key_jwt``, as JSON (``{"keys": [...]}``).
    jwks: Mapping[str, Any] | None = None
    jwks_uri: str | None = None
    redirect_uris: tuple[str, ...] = ()
    #: Ours, beyond MAS (OpenID Connect RP-Initiated Logout 1.0): where the client may be sent
    #: back after the end-session endpoint logged the user out.
    post_logout_redirect_uris: tuple[str, ...] = ()

    @classmethod
    def parse(cls, r: Reader) -> StaticClient:
        client_id = r.ulid("client_id", required=True)
        method = r.enum("client_auth_method", CLIENT_AUTH_METHODS, required=True)
        client_secret_file = r.str("client_secret_file")
        client_secret = read_client_secret(r)
        jwks = parse_jwks(r, "jwks")
        jwks_uri = r.url("jwks_uri")
        client = cls(
            client_id=client_id,
            client_auth_method=method,
            client_name=r.str("client_name"),
            client_uri=check_url(r.data["client_uri"], r.at("client_uri")) if r.has("client_uri") else None,
            client_secret=client_secret,
            client_secret_file=client_secret_file,
            jwks=jwks,
            jwks_uri=jwks_uri,
            redirect_uris=read_url_list(r, "redirect_uris"),
            post_logout_redirect_uris=read_url_list(r, "post_logout_redirect_uris"),
        )
        client._validate(r)
        return client

    def _validate(self, r: Reader) -> None:
        method = self.client_auth_method
        secret_key = "client_secret_file" if self.client_secret_file is not None else "client_secret"
        if method == AUTH_PRIVATE_KEY_JWT:
            if self.jwks is None and self.jwks_uri is None:
                raise r.error("client_auth_method", f"jwks or jwks_uri is required for {method!r}")
            if self.jwks is not None and self.jwks_uri is not None:
                raise r.error(
                    "jwks", f"jwks and jwks_uri are mutually exclusive (jwks_uri is {self.jwks_uri!r})"
                )
            if self.client_secret is not None:
                raise r.error(secret_key, f"a client secret is not allowed with {method!r}")
        elif method in SECRET_AUTH_METHODS:
            if self.client_secret is None:
                raise r.error(
                    "client_auth_method", f"client_secret or client_secret_file is required for {method!r}"
                )
            if self.jwks is not None:
                raise r.error("jwks", f"jwks is not allowed with {method!r}")
            if self.jwks_uri is not None:
                raise r.error("jwks_uri", f"jwks_uri is not allowed with {method!r}, got {self.jwks_uri!r}")
        else:
            if self.client_secret is not None:
                raise r.error(secret_key, f"a client secret is not allowed with {method!r}")
            if self.jwks is not None:
                raise r.error("jwks", f"jwks is not allowed with {method!r}")
            if self.jwks_uri is not None:
                raise r.error("jwks_uri", f"jwks_uri is not allowed with {method!r}, got {self.jwks_uri!r}")

    @property
    def uses_secret(self) -> bool:
        return self.client_auth_method in SECRET_AUTH_METHODS

    def to_dict(self) -> dict[str, Any]:
        """As MAS serialises a ``ClientConfig`` (the secret's file path rather than its content)."""
        from mas_twisted.config.http import normalize_url

        out: dict[str, Any] = {"client_id": self.client_id, "client_auth_method": self.client_auth_method}
        if self.client_name is not None:
            out["client_name"] = self.client_name
        if self.client_uri is not None:
            out["client_uri"] = normalize_url(self.client_uri)
        if self.client_secret_file is not None:
            out["client_secret_file"] = self.client_secret_file
        elif self.client_secret is not None:
            out["client_secret"] = self.client_secret
        if self.jwks is not None:
            out["jwks"] = copy.deepcopy(dict(self.jwks))
        if self.jwks_uri is not None:
            out["jwks_uri"] = normalize_url(self.jwks_uri)
        if self.redirect_uris:
            out["redirect_uris"] = [normalize_url(uri) for uri in self.redirect_uris]
        if self.post_logout_redirect_uris:
            out["post_logout_redirect_uris"] = list(self.post_logout_redirect_uris)
        return out


def parse_clients(value: Any) -> list[StaticClient]:
    """Read the ``clients`` list (MAS's ``ClientsConfig`` is a bare list)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(f"expected a list, got {describe(value)}", ("clients",))
    return [StaticClient.parse(Reader(item, ("clients", i))) for i, item in enumerate(value)]


class ClientsConfig(Config):
    """``config.clients``: the static clients, in configuration order."""

    section = "clients"
    #: The YAML value is a list, not a mapping: the root must not wrap it in a mapping
    #: :class:`Reader` (``read_config`` reads it from the raw tree).
    list_section: ClassVar[bool] = True

    clients: list[StaticClient]

    def read_config(self, r: Reader, raw: JsonDict) -> None:
        # The section is a list, so it is read from the raw tree rather than through
        # the mapping reader the root hands to every section.
        self.clients = parse_clients(raw.get(self.section))
        seen: set[str] = set()
        for client in self.clients:
            if client.client_id in seen:
                logger.warning(
                    "clients: client_id %s is listed more than once; the last entry wins", client.client_id
                )
            seen.add(client.client_id)

    def to_dict(self) -> list[dict[str, Any]]:
        return [client.to_dict() for client in self.clients]

    def is_default(self) -> bool:
        return not self.clients

    def get(self, client_id: str) -> StaticClient | None:
        """The last entry with this id, which is the one ``config sync`` stores."""
        found = None
        for client in self.clients:
            if client.client_id == client_id:
                found = client
        return found

    @classmethod
    def generate_config_section(cls, **kwargs: Any) -> str:
        return """\
# OAuth 2.0 clients known without dynamic registration (`mas-cli config sync` stores them).
#clients:
#  - client_id: 01H3Z5KX3D6KQ8W6B9S7N2M4PJ   # a ULID
#    client_auth_method: client_secret_basic  # none, client_secret_basic, client_secret_post,
#                                             # client_secret_jwt or private_key_jwt
#    client_secret: "change me"               # or client_secret_file: /path/to/secret
#    redirect_uris:
#      - https://client.example.com/callback
"""
