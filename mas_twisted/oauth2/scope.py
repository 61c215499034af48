# SPDX-License-Identifier: AGPL-3.0-only
"""OAuth 2.0 scopes (RFC 6749 §3.3) and the Matrix scopes of MSC2967.

- A scope token is one or more ``NQCHAR`` (RFC 6749 Appendix A: ``%x21 / %x23-5B / %x5D-7E``);
  a scope is tokens separated by single spaces, kept as a set and written out in byte order
  (MAS's ``BTreeSet``), so ``"b a a"`` is written ``"a b"``. An empty string is not a scope.
- The Matrix scopes (inventory §2.6): the client-server API scope in its stable
  (``urn:matrix:client:api:*``) and unstable (``urn:matrix:org.matrix.msc2967.client:api:*``)
  forms, device scopes under either prefix, Synapse's admin scope and MAS's own scopes.
- :func:`normalize_scope` is the introspection normalisation (inventory §2.10): Synapse may
  look for either form, so both the stable and unstable API scope, and both forms of the
  device scope, are answered. :func:`compat_session_scope` is the scope answered for a
  compatibility session's token.
- :func:`describe_scopes` is what a consent page says a scope lets the client do.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator

import attrs

OPENID = "openid"
PROFILE = "profile"
EMAIL = "email"
ADDRESS = "address"
PHONE = "phone"
OFFLINE_ACCESS = "offline_access"

#: Access to the whole Matrix client-server API (MSC2967).
MATRIX_API_SCOPE = "urn:matrix:client:api:*"
MATRIX_API_SCOPE_UNSTABLE = "urn:matrix:org.matrix.msc2967.client:api:*"
#: Prefixes of the client-server API scopes.
MATRIX_API_SCOPE_PREFIX = "urn:matrix:client:api:"
MATRIX_API_SCOPE_PREFIX_UNSTABLE = "urn:matrix:org.matrix.msc2967.client:api:"
#: Prefixes of the scope that binds a session to one Matrix device.
DEVICE_SCOPE_PREFIX = "urn:matrix:client:device:"
DEVICE_SCOPE_PREFIX_UNSTABLE = "urn:matrix:org.matrix.msc2967.client:device:"
#: Prefixes shared by every stable / unstable Matrix scope.
MATRIX_SCOPE_PREFIX = "urn:matrix:client:"
MATRIX_SCOPE_PREFIX_UNSTABLE = "urn:matrix:org.matrix.msc2967.client:"
#: Synapse's admin API.
SYNAPSE_ADMIN_SCOPE = "urn:synapse:admin:*"
#: MAS's admin API (and admin access to its GraphQL API).
MAS_ADMIN_SCOPE = "urn:mas:admin"
#: MAS's GraphQL API.
MAS_GRAPHQL_SCOPE = "urn:mas:graphql:*"

#: The device IDs the ``authorization_grant`` policy accepts in a device scope it grants
#: (its regexes are built from this pattern, so it stays valid in both Python and RE2).
DEVICE_ID_PATTERN = r"[A-Za-z0-9._~!$&'()*+,;=:@/-]{10,}"
_DEVICE_ID_RE = re.compile(DEVICE_ID_PATTERN)


class InvalidScopeFormat(ValueError):
    """The string is not an RFC 6749 §3.3 scope."""

    def __init__(self, value: str):
        super().__init__(f"invalid scope format: {value!r}")
        self.value = value


#: RFC 6749 §3.3: ``scope-token = 1*NQCHAR``, ``NQCHAR = %x21 / %x23-5B / %x5D-7E``.
_SCOPE_TOKEN = re.compile(r"[!#-\[\]-~]+")


def is_scope_token(value: str) -> bool:
    """Whether ``value`` is one RFC 6749 ``scope-token`` (``1*NQCHAR``)."""
    return _SCOPE_TOKEN.fullmatch(value) is not None


class Scope:
    """An immutable set of scope tokens, written out in byte order."""

    __slots__ = ("_tokens",)

    def __init__(self, tokens: Iterable[str] = ()):
        tokens = tuple(tokens)
        for token in tokens:
            if not is_scope_token(token):
                raise InvalidScopeFormat(token)
        self._tokens: tuple[str, ...] = tuple(sorted(set(tokens)))

    @classmethod
    def parse(cls, value: str) -> Scope:
        """Parse ``scope = scope-token *( SP scope-token )``.

        Raises:
            InvalidScopeFormat: empty string, a leading, trailing or double space, or a
                character outside ``NQCHAR``.
        """
        parts = value.split(" ")
        if not all(is_scope_token(part) for part in parts):
            raise InvalidScopeFormat(value)
        return cls(parts)

    @classmethod
    def parse_optional(cls, value: str | None) -> Scope:
        """:meth:`parse`, with an absent parameter meaning the empty scope."""
        return cls() if value is None else cls.parse(value)

    def __str__(self) -> str:
        return " ".join(self._tokens)

    def __repr__(self) -> str:
        return f"Scope({str(self)!r})"

    def __iter__(self) -> Iterator[str]:
        return iter(self._tokens)

    def __len__(self) -> int:
        return len(self._tokens)

    def __bool__(self) -> bool:
        return bool(self._tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._tokens

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Scope):
            return self._tokens == other._tokens
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._tokens)

    def __or__(self, other: Iterable[str]) -> Scope:
        return Scope(self._tokens + tuple(other))

    @property
    def tokens(self) -> tuple[str, ...]:
        return self._tokens

    @property
    def has_openid(self) -> bool:
        return OPENID in self._tokens

    def issubset(self, other: Iterable[str]) -> bool:
        return set(self._tokens) <= set(other)


# -- devices -------------------------------------------------------------------------------------
def device_id_from_scope_token(token: str) -> str | None:
    """The device ID of a device scope token (either prefix), or ``None`` for any other token."""
    for prefix in (DEVICE_SCOPE_PREFIX, DEVICE_SCOPE_PREFIX_UNSTABLE):
        if token.startswith(prefix):
            return token[len(prefix) :]
    return None


def device_id_from_scope(scope: Iterable[str]) -> str | None:
    """The device a session is bound to: the ID in its first device scope token, in byte order.

    The stable prefix sorts before the unstable one, so a scope with both forms of one device
    gives that device.
    """
    for token in sorted(scope):
        device_id = device_id_from_scope_token(token)
        if device_id is not None:
            return device_id
    return None


def device_scope_tokens(device_id: str) -> tuple[str, str]:
    """The stable and unstable device scope tokens for ``device_id``.

    Raises:
        InvalidScopeFormat: the device ID has characters a scope token cannot carry (a space,
            ``"``, ``\\`` or anything outside printable ASCII).
    """
    stable = DEVICE_SCOPE_PREFIX + device_id
    unstable = DEVICE_SCOPE_PREFIX_UNSTABLE + device_id
    for token in (stable, unstable):
        if not is_scope_token(token):
            raise InvalidScopeFormat(token)
    return stable, unstable


def is_valid_device_id(device_id: str) -> bool:
    """Whether the ``authorization_grant`` policy would grant a device scope for ``device_id``."""
    return _DEVICE_ID_RE.fullmatch(device_id) is not None


# -- introspection -------------------------------------------------------------------------------
def normalize_scope(scope: Scope | Iterable[str]) -> Scope:
    """The scope introspection answers for an OAuth 2.0 or personal session.

    Adds the unstable API scope next to the stable one (and the reverse), and both forms of
    every device scope token.
    """
    tokens = list(scope)
    extra: list[str] = []
    for token in tokens:
        if token == MATRIX_API_SCOPE:
            extra.append(MATRIX_API_SCOPE_UNSTABLE)
        elif token == MATRIX_API_SCOPE_UNSTABLE:
            extra.append(MATRIX_API_SCOPE)
        else:
            device_id = device_id_from_scope_token(token)
            if device_id is not None:
                extra.extend(device_scope_tokens(device_id))
    return Scope(tokens + extra)


@functools.lru_cache(maxsize=4096)
def compat_session_scope(
    device_id: str | None, *, is_synapse_admin: bool, supports_explicit_device_id: bool
) -> Scope:
    """The scope introspection answers for a compatibility session's token.

    Both forms of the API scope; both forms of the device scope unless the caller sent
    ``X-MAS-Supports-Device-Id`` (then the device goes in ``device_id`` instead); Synapse's
    admin scope for a session flagged admin.

    Raises:
        InvalidScopeFormat: the device must go in the scope but cannot be encoded there
            (introspection then answers the token as inactive).
    """
    tokens = [MATRIX_API_SCOPE, MATRIX_API_SCOPE_UNSTABLE]
    if device_id is not None and not supports_explicit_device_id:
        tokens.extend(device_scope_tokens(device_id))
    if is_synapse_admin:
        tokens.append(SYNAPSE_ADMIN_SCOPE)
    return Scope(tokens)


# -- consent pages -------------------------------------------------------------------------------
@attrs.frozen
class ScopeDescription:
    """One scope as a person reads it on a consent page."""

    scope: str
    description: str
    #: Grants powers over other users or the server itself.
    dangerous: bool = False


#: What each known scope lets a client do, as ``(text, dangerous)`` lines.
_SCOPE_TEXT: dict[str, tuple[tuple[str, bool], ...]] = {
    OPENID: (("See your profile: your username and Matrix ID", False),),
    MAS_GRAPHQL_SCOPE: (
        ("Change your profile and contact details", False),
        ("See and end your sessions and devices", False),
    ),
    MATRIX_API_SCOPE: (
        ("Read your messages, rooms and account data", False),
        ("Send messages and act in rooms as you", False),
    ),
    SYNAPSE_ADMIN_SCOPE: (("Administer the homeserver, with every user's data", True),),
    MAS_ADMIN_SCOPE: (("Manage every user and session of this account service", True),),
}
_SCOPE_ALIASES = {MATRIX_API_SCOPE_UNSTABLE: MATRIX_API_SCOPE}


def describe_scopes(scopes: str | Iterable[str]) -> list[ScopeDescription]:
    """Human descriptions of a scope (a space-separated string or its tokens).

    Device scopes are not shown (they name the session being created, not a permission);
    an unknown scope is shown as it is.
    """
    tokens = scopes.split() if isinstance(scopes, str) else list(scopes)
    out: list[ScopeDescription] = []
    seen: set[str] = set()
    for token in tokens:
        if token.startswith((DEVICE_SCOPE_PREFIX, DEVICE_SCOPE_PREFIX_UNSTABLE)):
            continue
        key = _SCOPE_ALIASES.get(token, token)
        for description, dangerous in _SCOPE_TEXT.get(key, ((token, False),)):
            if description not in seen:
                seen.add(description)
                out.append(ScopeDescription(scope=token, description=description, dangerous=dangerous))
    return out
