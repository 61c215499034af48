# SPDX-License-Identifier: AGPL-3.0-only
"""The error hierarchy shared by every layer (STYLE.md §5.4).

Errors that reach a client carry a message that is safe to show (``msg``); anything only
an operator should read goes in ``debug``, which is logged and never sent.

- :class:`OAuth2Error` and one subclass per registered error code: RFC 6749 §4.1.2.1 and
  §5.2, RFC 7009 §2.2.1, RFC 7591 §3.2.2, RFC 8628 §3.5 and OpenID Connect Core §3.1.2.6,
  with the HTTP status MAS answers each with;
- :class:`AuthorizationRedirectError`: an authorization error reported to the client's
  redirect URI;
- :class:`MatrixError` for the Matrix client-server API (with one subclass per error the
  compatibility API raises: :class:`ForbiddenError`, :class:`UserLockedError`,
  :class:`UnknownTokenError`, :class:`LimitExceededError`...), :class:`PageError` /
  :class:`NotFoundError` for human pages;
- :class:`AdminApiError`: an answer of the admin API (``{"errors":[{"title": ...}]}``);
- non-HTTP errors: :class:`ConfigError`, :class:`DatabaseError`, :class:`RowsAffectedError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

PathElement = str | int


def format_path(path: Iterable[PathElement]) -> str:
    """Render a YAML path the way an operator would type it: ``http.listeners[0].binds[1].port``."""
    out = ""
    for element in path:
        if isinstance(element, int):
            out += f"[{element}]"
        elif out:
            out += f".{element}"
        else:
            out = str(element)
    return out


class MasError(Exception):
    """Base class of the errors the service raises on purpose."""

    code: int = 500

    def __init__(self, msg: str = "", *, code: int | None = None, debug: str | None = None):
        super().__init__(msg)
        self.msg = msg
        if code is not None:
            self.code = code
        self.debug = debug


class ConfigError(MasError):
    """A configuration value is missing or wrong.

    ``str(err)`` is one line naming the YAML path and the problem, which is what the CLI
    and ``twistd mas`` print before exiting non-zero.
    """

    def __init__(self, msg: str, path: Sequence[PathElement] = ()):
        super().__init__(msg)
        self.path = tuple(path)

    def __str__(self) -> str:
        if self.path:
            return f"Invalid configuration at {format_path(self.path)}: {self.msg}"
        return f"Invalid configuration: {self.msg}"


class DatabaseError(MasError):
    """The database is unusable (unreachable, or its schema is newer than this code)."""


class RowsAffectedError(MasError):
    """A state-changing statement touched an unexpected number of rows (MAS's ``ensure_affected_rows``)."""

    def __init__(self, expected: int, actual: int):
        super().__init__(f"expected {expected} row(s) to be affected, got {actual}")
        self.expected = expected
        self.actual = actual


# -- OAuth 2.0 ---------------------------------------------------------------------------------
def invalid_description_characters(text: str) -> list[str]:
    """The characters of ``text`` that RFC 6749 §4.1.2.1 / §5.2 forbid in ``error_description``.

    Only ``%x20-21 / %x23-5B / %x5D-7E`` are allowed: printable ASCII without ``"`` and ``\\``.
    """
    return sorted({ch for ch in text if not _is_description_char(ch)})


def _is_description_char(ch: str) -> bool:
    code = ord(ch)
    return 0x20 <= code <= 0x21 or 0x23 <= code <= 0x5B or 0x5D <= code <= 0x7E


def clean_description(text: str) -> str:
    """``text`` with every character RFC 6749 forbids in ``error_description`` replaced by ``?``.

    For descriptions that embed text a client or user chose (a policy message quoting a user
    agent, a URL): the :class:`OAuth2Error` constructor refuses such characters outright.
    """
    return "".join(ch if _is_description_char(ch) else "?" for ch in text)


class OAuth2Error(MasError):
    """An error answered with the RFC 6749 §5.2 JSON body ``{"error", "error_description"}``.

    Subclasses declare ``error`` (the registered code), ``code`` (MAS's HTTP status for it) and
    ``default_description``. A handler may pass its own ``description`` (validated: RFC 6749
    allows only printable ASCII without ``"`` and ``\\``; :func:`clean_description` makes
    untrusted text safe) and override ``code`` where MAS answers the same error with another
    status (``InvalidScopeError(..., code=403)`` at the token endpoint). ``debug`` is logged,
    never sent.
    """

    error: ClassVar[str] = "invalid_request"
    code = 400
    default_description: ClassVar[str | None] = None

    def __init__(
        self,
        description: str | None = None,
        *,
        code: int | None = None,
        debug: str | None = None,
        uri: str | None = None,
    ):
        if description is None:
            description = self.default_description
        if description is not None:
            bad = invalid_description_characters(description)
            if bad:
                raise ValueError(
                    f"error_description contains characters RFC 6749 forbids: {', '.join(map(repr, bad))}"
                )
        super().__init__(description or self.error, code=code, debug=debug)
        self.description = description
        self.uri = uri

    def to_json(self) -> dict[str, str]:
        """The response body: ``error``, then ``error_description`` and ``error_uri`` when set."""
        body = {"error": self.error}
        if self.description is not None:
            body["error_description"] = self.description
        if self.uri is not None:
            body["error_uri"] = self.uri
        return body

    def headers(self) -> list[tuple[str, str]]:
        """Extra response headers (``WWW-Authenticate`` for :class:`InvalidClientError`)."""
        return []

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(error={self.error!r}, code={self.code}, description={self.description!r})"
        )


# RFC 6749 §4.1.2.1 / §5.2
class InvalidRequestError(OAuth2Error):
    """``invalid_request``: a missing, repeated, invalid or malformed parameter (RFC 6749 §5.2)."""

    error = "invalid_request"
    code = 400
    default_description = (
        "The request is missing a required parameter, includes an invalid parameter value, "
        "includes a parameter more than once, or is otherwise malformed."
    )


class InvalidClientError(OAuth2Error):
    """``invalid_client``: client authentication failed (RFC 6749 §5.2), HTTP 401.

    ``basic_offered``: the client authenticated with ``Authorization: Basic``, so RFC 6749 §5.2
    requires a ``WWW-Authenticate`` challenge for that scheme.
    """

    error = "invalid_client"
    code = 401
    default_description = "Client authentication failed."

    def __init__(
        self,
        description: str | None = None,
        *,
        basic_offered: bool = False,
        realm: str = "mas",
        code: int | None = None,
        debug: str | None = None,
    ):
        super().__init__(description, code=code, debug=debug)
        self.basic_offered = basic_offered
        self.realm = realm

    def headers(self) -> list[tuple[str, str]]:
        if self.basic_offered:
            return [("WWW-Authenticate", f'Basic realm="{self.realm}"')]
        return []


class InvalidGrantError(OAuth2Error):
    """``invalid_grant``: the code, refresh token or device code is unusable (RFC 6749 §5.2)."""

    error = "invalid_grant"
    code = 400
    default_description = "The provided authorization grant is invalid, expired, or revoked."


class UnauthorizedClientError(OAuth2Error):
    """``unauthorized_client``: the client may not use this grant or response type.

    RFC 6749 §5.2 suggests 400; MAS answers 401 at every endpoint.
    """

    error = "unauthorized_client"
    code = 401
    default_description = "The client is not authorized to use this authorization grant type."


class UnsupportedGrantTypeError(OAuth2Error):
    """``unsupported_grant_type`` (RFC 6749 §5.2)."""

    error = "unsupported_grant_type"
    code = 400
    default_description = "The authorization grant type is not supported by the authorization server."


class UnsupportedResponseTypeError(OAuth2Error):
    """``unsupported_response_type`` (RFC 6749 §4.1.2.1)."""

    error = "unsupported_response_type"
    code = 400
    default_description = "The authorization server does not support this response type."


class InvalidScopeError(OAuth2Error):
    """``invalid_scope`` (RFC 6749 §5.2); MAS answers a policy denial at the token endpoint with 403."""

    error = "invalid_scope"
    code = 400
    default_description = "The requested scope is invalid, unknown, or malformed."


class AccessDeniedError(OAuth2Error):
    """``access_denied`` (RFC 6749 §4.1.2.1, RFC 8628 §3.5).

    MAS answers it with 403 for a rejected device code and 401 at the introspection endpoint
    (pass ``code=401`` there).
    """

    error = "access_denied"
    code = 403
    default_description = "The resource owner or authorization server denied the request."


class ServerError(OAuth2Error):
    """``server_error`` (RFC 6749 §4.1.2.1), HTTP 500."""

    error = "server_error"
    code = 500
    default_description = "The authorization server encountered an unexpected condition."


class TemporarilyUnavailableError(OAuth2Error):
    """``temporarily_unavailable`` (RFC 6749 §4.1.2.1), HTTP 503."""

    error = "temporarily_unavailable"
    code = 503
    default_description = "The authorization server is temporarily unable to handle the request."


# RFC 7009 §2.2.1
class UnsupportedTokenTypeError(OAuth2Error):
    """``unsupported_token_type``: revocation of this token type is not supported (RFC 7009 §2.2.1)."""

    error = "unsupported_token_type"
    code = 400
    default_description = "The authorization server does not support the revocation of this token type."


# RFC 7591 §3.2.2
class InvalidRedirectUriError(OAuth2Error):
    """``invalid_redirect_uri``: a registered redirect URI is invalid (RFC 7591 §3.2.2)."""

    error = "invalid_redirect_uri"
    code = 400
    default_description = "The value of one or more redirection URIs is invalid."


class InvalidClientMetadataError(OAuth2Error):
    """``invalid_client_metadata``: a client metadata field is invalid (RFC 7591 §3.2.2)."""

    error = "invalid_client_metadata"
    code = 400
    default_description = "The value of one of the client metadata fields is invalid."


# RFC 8628 §3.5: MAS answers these with HTTP 403 (RFC 8628 says 400).
class AuthorizationPendingError(OAuth2Error):
    """``authorization_pending``: the user has not acted on the device code yet (RFC 8628 §3.5)."""

    error = "authorization_pending"
    code = 403
    default_description = "The authorization request is still pending."


class SlowDownError(OAuth2Error):
    """``slow_down``: poll less often, by 5 more seconds (RFC 8628 §3.5)."""

    error = "slow_down"
    code = 403
    default_description = (
        "Polling too fast: increase the interval by 5 seconds for this and all later requests."
    )


class ExpiredTokenError(OAuth2Error):
    """``expired_token``: the device code expired (RFC 8628 §3.5)."""

    error = "expired_token"
    code = 403
    default_description = "The device_code has expired and the device authorization session has concluded."


# OpenID Connect Core 1.0 §3.1.2.6
class InteractionRequiredError(OAuth2Error):
    """``interaction_required`` (OIDC Core §3.1.2.6)."""

    error = "interaction_required"
    default_description = "The authorization server requires end-user interaction to proceed."


class LoginRequiredError(OAuth2Error):
    """``login_required``: MAS's answer to ``prompt=none`` (OIDC Core §3.1.2.6)."""

    error = "login_required"
    default_description = "The authorization server requires end-user authentication."


class ConsentRequiredError(OAuth2Error):
    """``consent_required`` (OIDC Core §3.1.2.6)."""

    error = "consent_required"
    default_description = "The authorization server requires end-user consent."


class RequestNotSupportedError(OAuth2Error):
    """``request_not_supported``: the ``request`` parameter is not supported (OIDC Core §3.1.2.6)."""

    error = "request_not_supported"
    default_description = "The provider does not support use of the request parameter."


class RequestUriNotSupportedError(OAuth2Error):
    """``request_uri_not_supported`` (OIDC Core §3.1.2.6)."""

    error = "request_uri_not_supported"
    default_description = "The provider does not support use of the request_uri parameter."


class RegistrationNotSupportedError(OAuth2Error):
    """``registration_not_supported`` (OIDC Core §3.1.2.6)."""

    error = "registration_not_supported"
    default_description = "The provider does not support use of the registration parameter."


#: Every concrete error class by its ``error`` code.
OAUTH2_ERRORS: dict[str, type[OAuth2Error]] = {
    cls.error: cls
    for cls in (
        InvalidRequestError,
        InvalidClientError,
        InvalidGrantError,
        UnauthorizedClientError,
        UnsupportedGrantTypeError,
        UnsupportedResponseTypeError,
        InvalidScopeError,
        AccessDeniedError,
        ServerError,
        TemporarilyUnavailableError,
        UnsupportedTokenTypeError,
        InvalidRedirectUriError,
        InvalidClientMetadataError,
        AuthorizationPendingError,
        SlowDownError,
        ExpiredTokenError,
        InteractionRequiredError,
        LoginRequiredError,
        ConsentRequiredError,
        RequestNotSupportedError,
        RequestUriNotSupportedError,
        RegistrationNotSupportedError,
    )
}


class AuthorizationRedirectError(OAuth2Error):
    """An authorization-endpoint error sent back to the client's redirect URI (RFC 6749 §4.1.2.1).

    Wraps the OAuth2 error to report (``inner``) with where and how to report it: the
    already-validated ``redirect_uri``, the request's ``state`` and the ``response_mode``
    (``query``, ``fragment`` or ``form_post``). Errors found *before* the redirect URI is
    validated must never take this form: they render the error page instead.
    """

    def __init__(
        self,
        inner: OAuth2Error,
        redirect_uri: str,
        *,
        state: str | None = None,
        response_mode: str = "query",
    ):
        MasError.__init__(self, inner.msg, code=302, debug=inner.debug)
        self.inner = inner
        self.error = inner.error  # type: ignore[misc]
        self.description = inner.description
        self.uri = inner.uri
        self.redirect_uri = redirect_uri
        self.state = state
        self.response_mode = response_mode

    def params(self) -> list[tuple[str, str]]:
        """The parameters to send, in MAS's order: ``state``, ``error``, ``error_description``."""
        out: list[tuple[str, str]] = []
        if self.state is not None:
            out.append(("state", self.state))
        out.extend(self.inner.to_json().items())
        return out


# -- Matrix and human pages --------------------------------------------------------------------
class MatrixError(MasError):
    """An error of the Matrix client-server API (``rest/compat/*``), Synapse's ``SynapseError``.

    Answered as ``{"errcode": ..., "error": msg}`` plus ``additional_fields``.
    """

    code = 400
    errcode: str = "M_UNKNOWN"

    def __init__(
        self,
        code: int,
        msg: str,
        errcode: str | None = None,
        *,
        additional_fields: dict[str, Any] | None = None,
        debug: str | None = None,
    ):
        super().__init__(msg, code=code, debug=debug)
        if errcode is not None:
            self.errcode = errcode
        self.additional_fields = dict(additional_fields or {})

    def to_json(self) -> dict[str, Any]:
        return {"errcode": self.errcode, "error": self.msg, **self.additional_fields}


# The Matrix errors the compatibility API raises, with MAS's statuses and texts (as Synapse's
# ``AuthError``, ``InvalidClientTokenError``, ``LimitExceededError`` ...).


class ForbiddenError(MatrixError):
    """403 ``M_FORBIDDEN``: the request is understood and refused."""

    def __init__(self, msg: str, *, debug: str | None = None):
        super().__init__(403, msg, "M_FORBIDDEN", debug=debug)


class InvalidCredentialsError(ForbiddenError):
    """A password login with an unknown user, no password or a wrong one (never which)."""

    def __init__(self, debug: str):
        super().__init__("Invalid username/password", debug=debug)


class InvalidLoginTokenError(ForbiddenError):
    """An ``m.login.token`` login whose token is unknown, spent or not usable."""

    def __init__(self, debug: str):
        super().__init__("Invalid login token", debug=debug)


class InvalidLoginTypeError(MatrixError):
    """400 ``M_UNKNOWN``: a login ``type`` this service does not offer."""

    def __init__(self) -> None:
        super().__init__(400, "Invalid login type", "M_UNKNOWN")


class UserLockedError(MatrixError):
    """401 ``M_USER_LOCKED``: the user's account is locked."""

    def __init__(self) -> None:
        super().__init__(401, "User account has been locked", "M_USER_LOCKED")


class MissingTokenError(MatrixError):
    """401 ``M_MISSING_TOKEN``: no access token was sent."""

    def __init__(self) -> None:
        super().__init__(401, "Missing access token", "M_MISSING_TOKEN")


class UnknownTokenError(MatrixError):
    """401 ``M_UNKNOWN_TOKEN``: the token is not one this service knows as valid."""

    def __init__(self, debug: str, msg: str = "Invalid access token"):
        super().__init__(401, msg, "M_UNKNOWN_TOKEN", debug=debug)


class LimitExceededError(MatrixError):
    """429 ``M_LIMIT_EXCEEDED``, telling when to retry (``retry_after_ms``)."""

    def __init__(self, msg: str, *, retry_after_ms: int, debug: str | None = None):
        super().__init__(
            429, msg, "M_LIMIT_EXCEEDED", additional_fields={"retry_after_ms": retry_after_ms}, debug=debug
        )


class UnrecognizedRequestError(MatrixError):
    """``M_UNRECOGNIZED``: an endpoint (or a use of it) this deployment does not support."""

    def __init__(self, msg: str, *, code: int = 404):
        super().__init__(code, msg, "M_UNRECOGNIZED")


class MatrixInternalError(MatrixError):
    """500 ``M_UNKNOWN``: the request failed on our side (the details go to ``debug``)."""

    def __init__(self, msg: str = "Internal server error", *, debug: str | None = None):
        super().__init__(500, msg, "M_UNKNOWN", debug=debug)


class MissingParamError(MatrixError):
    """400 ``M_MISSING_PARAM``: a required parameter is absent."""

    def __init__(self, msg: str):
        super().__init__(400, msg, "M_MISSING_PARAM")


class InvalidParamError(MatrixError):
    """400 ``M_INVALID_PARAM``: a parameter has a value that is not allowed."""

    def __init__(self, msg: str, *, debug: str | None = None):
        super().__init__(400, msg, "M_INVALID_PARAM", debug=debug)


class NotJsonError(MatrixError):
    """400 ``M_NOT_JSON``: the body (or its ``Content-Type``) is not JSON."""

    def __init__(self, msg: str):
        super().__init__(400, msg, "M_NOT_JSON")


class BadJsonError(MatrixError):
    """400 ``M_BAD_JSON``: the JSON does not have the expected shape."""

    def __init__(self, msg: str = "JSON fields are not valid"):
        super().__init__(400, msg, "M_BAD_JSON")


class PageError(MasError):
    """An error shown to a person as the ``pages/error.html`` page (human routes).

    ``msg`` is the text shown; ``details`` an optional second line (MAS's error page has both).
    """

    code = 400

    def __init__(
        self, msg: str, *, code: int | None = None, details: str | None = None, debug: str | None = None
    ):
        super().__init__(msg, code=code, debug=debug)
        self.details = details


class NotFoundError(PageError):
    """A human route found nothing to show: rendered with ``pages/404.html``."""

    code = 404

    def __init__(self, msg: str = "Page not found", *, debug: str | None = None):
        super().__init__(msg, debug=debug)


class AdminApiError(MasError):
    """An answer of the admin API (``/api/admin/v1``, MAS's ``crates/handlers/src/admin/``):
    ``{"errors": [{"title": ...}, ...]}`` with the HTTP status ``code``. ``titles`` lists the
    error first, then its causes, as MAS's ``ErrorResponse::from_error`` walks ``source()``."""

    def __init__(self, code: int, *titles: str, debug: str | None = None):
        super().__init__(titles[0] if titles else "", code=code, debug=debug)
        self.titles = titles

    def to_json(self) -> dict[str, Any]:
        return {"errors": [{"title": title} for title in self.titles]}
