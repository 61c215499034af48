# SPDX-License-Identifier: AGPL-3.0-only
"""Values of the OAuth 2.0 wire protocol, and where an authorization response goes.

- Grant types (RFC 6749 §4, RFC 8628 §3.4), response types (RFC 6749 §3.1.1, OAuth 2.0
  Multiple Response Type Encoding Practices: a space-separated *set* of ``code``,
  ``id_token``, ``token`` or other words, ``none`` for the empty set), response modes
  (``query``, ``fragment``, ``form_post``), ``prompt`` values (OIDC Core §3.1.2.1) and
  token type hints (RFC 7009 §2.1).
- :func:`resolve_redirect_uri`: the redirect URI of an authorization request, MAS's
  ``Client::resolve_redirect_uri``: optional when exactly one is registered; for a loopback
  host (``localhost``, ``127.0.0.1``, ``[::1]``) the port is ignored (RFC 8252 §7.3).
- :func:`callback_url`: the redirect carrying an authorization response or error
  (RFC 6749 §4.1.2, OAuth 2.0 Multiple Response Type Encoding Practices §2): in ``query``
  mode the parameters are added to the redirect URI's own query, after ``state``, and an
  empty fragment is appended (as MAS does, so a fragment of the current page cannot leak
  into the redirect); in ``fragment`` mode they form the fragment; ``form_post`` is rendered
  as an auto-submitted form by the caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from urllib.parse import parse_qsl

from mas_twisted.oauth2.url import InvalidUrlError, Url, form_urlencode, parse_url

# -- grant types -----------------------------------------------------------------------------------
AUTHORIZATION_CODE = "authorization_code"
REFRESH_TOKEN = "refresh_token"
IMPLICIT = "implicit"
CLIENT_CREDENTIALS = "client_credentials"
PASSWORD = "password"
DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CIBA = "urn:openid:params:grant-type:ciba"

#: Grant types in MAS's order (its ``GrantType`` enum), which is how lists of them sort.
GRANT_TYPE_ORDER: tuple[str, ...] = (
    AUTHORIZATION_CODE,
    REFRESH_TOKEN,
    IMPLICIT,
    CLIENT_CREDENTIALS,
    PASSWORD,
    DEVICE_CODE,
    JWT_BEARER,
    CIBA,
)


def grant_type_sort_key(grant_type: str) -> tuple[int, str]:
    """Known grant types in MAS's order, then unknown ones by name."""
    try:
        return (GRANT_TYPE_ORDER.index(grant_type), "")
    except ValueError:
        return (len(GRANT_TYPE_ORDER), grant_type)


# -- response types --------------------------------------------------------------------------------
CODE = "code"
ID_TOKEN = "id_token"
TOKEN = "token"
_RESPONSE_TOKEN_ORDER = (CODE, ID_TOKEN, TOKEN)


def _response_token_key(token: str) -> tuple[int, str]:
    try:
        return (_RESPONSE_TOKEN_ORDER.index(token), "")
    except ValueError:
        return (len(_RESPONSE_TOKEN_ORDER), token)


class InvalidResponseType(ValueError):
    """An empty ``response_type``."""


class ResponseType:
    """A ``response_type`` value: a set of words, ``code`` < ``id_token`` < ``token`` < others."""

    __slots__ = ("_tokens",)

    def __init__(self, tokens: Iterable[str] = ()):
        self._tokens: tuple[str, ...] = tuple(sorted(set(tokens), key=_response_token_key))

    @classmethod
    def parse(cls, value: str) -> ResponseType:
        """Parse a ``response_type``; ``none`` is the empty set.

        Raises:
            InvalidResponseType: the value is empty or only whitespace.
        """
        value = value.strip()
        if not value:
            raise InvalidResponseType("invalid response type")
        if value == "none":
            return cls()
        return cls(value.split())

    @property
    def tokens(self) -> tuple[str, ...]:
        return self._tokens

    @property
    def has_code(self) -> bool:
        return CODE in self._tokens

    @property
    def has_id_token(self) -> bool:
        return ID_TOKEN in self._tokens

    @property
    def has_token(self) -> bool:
        return TOKEN in self._tokens

    @property
    def has_unknown(self) -> bool:
        return any(t not in _RESPONSE_TOKEN_ORDER for t in self._tokens)

    def sort_key(self) -> tuple[tuple[int, str], ...]:
        """MAS's ordering of response types (its set ordering, token by token)."""
        return tuple(_response_token_key(t) for t in self._tokens)

    def __str__(self) -> str:
        return " ".join(self._tokens) if self._tokens else "none"

    def __repr__(self) -> str:
        return f"ResponseType({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ResponseType):
            return self._tokens == other._tokens
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._tokens)


# -- response modes, prompts, hints -------------------------------------------------------------------
QUERY = "query"
FRAGMENT = "fragment"
FORM_POST = "form_post"
RESPONSE_MODES = (FORM_POST, QUERY, FRAGMENT)

PROMPT_NONE = "none"
PROMPT_LOGIN = "login"
PROMPT_CONSENT = "consent"
PROMPT_SELECT_ACCOUNT = "select_account"
PROMPT_CREATE = "create"


def parse_prompt(value: str | None) -> tuple[str, ...] | None:
    """The ``prompt`` parameter as its space-separated values (OIDC Core §3.1.2.1), or ``None``."""
    if value is None:
        return None
    return tuple(part for part in value.split(" ") if part)


ACCESS_TOKEN_HINT = "access_token"
REFRESH_TOKEN_HINT = "refresh_token"


# -- redirect URIs -------------------------------------------------------------------------------------
_LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


class RedirectUriError(ValueError):
    """The authorization request's redirect URI cannot be used; the message says why."""


def resolve_redirect_uri(registered: Sequence[str], requested: str | None) -> str:
    """The redirect URI to use for an authorization request (MAS's ``resolve_redirect_uri``).

    Args:
        registered: the client's registered redirect URIs.
        requested: the request's ``redirect_uri`` parameter, if any.

    Returns:
        The URI to redirect to, normalised.

    Raises:
        RedirectUriError: none registered; none requested while several are registered; or
            the requested URI is not registered (for a loopback host, also not when the port
            is dropped). Such an error must not be redirected: it renders the error page.
    """
    if not registered:
        raise RedirectUriError("client has no redirect_uri registered")
    registered_urls: list[str] = []
    for uri in registered:
        try:
            registered_urls.append(str(parse_url(uri)))
        except InvalidUrlError:
            continue
    if requested is None:
        if len(registered) == 1:
            return registered_urls[0] if registered_urls else registered[0]
        raise RedirectUriError("multiple redirect_uris registered for this client")
    try:
        url = parse_url(requested)
    except InvalidUrlError:
        raise RedirectUriError("redirect_uri is not allowed for this client") from None
    if url.host in _LOOPBACK_HOSTS and str(url.with_port(None)) in registered_urls:
        return str(url)
    if str(url) in registered_urls:
        return str(url)
    raise RedirectUriError("redirect_uri is not allowed for this client")


def callback_url(
    redirect_uri: str,
    response_mode: str,
    params: Iterable[tuple[str, str]],
    *,
    state: str | None = None,
) -> str:
    """Where to redirect the browser with an authorization response or error.

    Args:
        redirect_uri: the validated redirect URI.
        response_mode: ``query`` or ``fragment`` (``form_post`` is rendered by the caller).
        params: the response parameters (``code``, ``id_token``, or ``error`` …), in order.
        state: the request's ``state``, sent first when present.

    Raises:
        ValueError: the redirect URI has a fragment, its query is not form-encoded, or the
            mode is not ``query``/``fragment``.
    """
    url: Url = parse_url(redirect_uri)
    if url.fragment is not None:
        raise ValueError("redirect URI can't have a fragment")
    pairs: list[tuple[str, str]] = []
    if state is not None:
        pairs.append(("state", state))
    pairs.extend(params)
    if response_mode == QUERY:
        existing: list[tuple[str, str]] = []
        if url.query:
            existing = parse_qsl(url.query, keep_blank_values=True, strict_parsing=True)
        return str(url.with_query(form_urlencode(existing + pairs)).with_fragment(""))
    if response_mode == FRAGMENT:
        return str(url.with_fragment(form_urlencode(pairs)))
    raise ValueError(f"response mode {response_mode!r} is not a redirect")
