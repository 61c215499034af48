# SPDX-License-Identifier: AGPL-3.0-only
"""The OAuth 2.0 error hierarchy (RFC 6749 §4.1.2.1 / §5.2, RFC 7009, RFC 7591, RFC 8628, OIDC)."""

from __future__ import annotations

import pytest

from mas_twisted.api import errors
from mas_twisted.api.errors import (
    OAUTH2_ERRORS,
    AccessDeniedError,
    AuthorizationPendingError,
    AuthorizationRedirectError,
    ExpiredTokenError,
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    LoginRequiredError,
    MatrixError,
    NotFoundError,
    OAuth2Error,
    PageError,
    SlowDownError,
    UnauthorizedClientError,
    clean_description,
    invalid_description_characters,
)

#: Every registered code this service can answer, with MAS's status for it.
EXPECTED = {
    "invalid_request": 400,
    "invalid_client": 401,
    "invalid_grant": 400,
    "unauthorized_client": 401,
    "unsupported_grant_type": 400,
    "unsupported_response_type": 400,
    "invalid_scope": 400,
    "access_denied": 403,
    "server_error": 500,
    "temporarily_unavailable": 503,
    "unsupported_token_type": 400,
    "invalid_redirect_uri": 400,
    "invalid_client_metadata": 400,
    "authorization_pending": 403,
    "slow_down": 403,
    "expired_token": 403,
    "interaction_required": 400,
    "login_required": 400,
    "consent_required": 400,
    "request_not_supported": 400,
    "request_uri_not_supported": 400,
    "registration_not_supported": 400,
}


def test_every_code_has_a_class_with_mas_status() -> None:
    assert {code: cls.code for code, cls in OAUTH2_ERRORS.items()} == EXPECTED


@pytest.mark.parametrize("code", sorted(EXPECTED))
def test_default_body_is_valid_rfc6749(code: str) -> None:
    error = OAUTH2_ERRORS[code]()
    body = error.to_json()
    assert body["error"] == code
    assert body["error_description"]
    assert invalid_description_characters(body["error_description"]) == []
    assert error.code == EXPECTED[code]


def test_custom_description_and_status() -> None:
    error = InvalidScopeError("scope 'phone' not allowed", code=403, debug="policy denied grant 01H")
    assert error.code == 403
    assert error.to_json() == {"error": "invalid_scope", "error_description": "scope 'phone' not allowed"}
    assert "01H" not in str(error.to_json())
    assert error.debug == "policy denied grant 01H"


@pytest.mark.parametrize("bad", ['a "quoted" word', "back\\slash", "caf\u00e9", "tab\there", "new\nline"])
def test_description_characters_are_validated(bad: str) -> None:
    with pytest.raises(ValueError):
        InvalidRequestError(bad)
    cleaned = clean_description(bad)
    assert invalid_description_characters(cleaned) == []
    InvalidRequestError(cleaned)


def test_invalid_client_challenges_basic_only_when_basic_was_used() -> None:
    assert InvalidClientError().headers() == []
    basic = InvalidClientError(basic_offered=True)
    assert basic.code == 401
    assert basic.headers() == [("WWW-Authenticate", 'Basic realm="mas"')]


def test_device_flow_errors_are_403_as_mas() -> None:
    assert AuthorizationPendingError().code == 403
    assert SlowDownError().code == 403
    assert ExpiredTokenError().code == 403
    assert AccessDeniedError().code == 403
    assert AccessDeniedError(code=401).code == 401
    assert UnauthorizedClientError().code == 401


def test_error_uri() -> None:
    error = InvalidGrantError(uri="https://example.com/errors/grant")
    assert error.to_json()["error_uri"] == "https://example.com/errors/grant"


def test_authorization_redirect_error_params() -> None:
    redirect = AuthorizationRedirectError(
        LoginRequiredError(), "https://client.example.com/cb", state="xyz", response_mode="fragment"
    )
    assert isinstance(redirect, OAuth2Error)
    assert redirect.error == "login_required"
    assert redirect.redirect_uri == "https://client.example.com/cb"
    assert redirect.response_mode == "fragment"
    params = redirect.params()
    assert params[0] == ("state", "xyz")
    assert params[1] == ("error", "login_required")
    assert params[2][0] == "error_description"

    stateless = AuthorizationRedirectError(InvalidRequestError("bad"), "https://client.example.com/cb")
    assert stateless.params() == [("error", "invalid_request"), ("error_description", "bad")]
    assert stateless.response_mode == "query"


def test_matrix_error_body() -> None:
    error = MatrixError(403, "Invalid username or password", "M_FORBIDDEN")
    assert error.code == 403
    assert error.to_json() == {"errcode": "M_FORBIDDEN", "error": "Invalid username or password"}
    limited = MatrixError(
        429, "Too many requests", "M_LIMIT_EXCEEDED", additional_fields={"retry_after_ms": 5000}
    )
    assert limited.to_json()["retry_after_ms"] == 5000
    assert MatrixError(500, "boom").errcode == "M_UNKNOWN"


@pytest.mark.parametrize(
    ("error", "code", "body"),
    [
        (
            errors.ForbiddenError("Login token expired"),
            403,
            {"errcode": "M_FORBIDDEN", "error": "Login token expired"},
        ),
        (
            errors.InvalidCredentialsError("no user"),
            403,
            {"errcode": "M_FORBIDDEN", "error": "Invalid username/password"},
        ),
        (
            errors.InvalidLoginTokenError("spent"),
            403,
            {"errcode": "M_FORBIDDEN", "error": "Invalid login token"},
        ),
        (errors.InvalidLoginTypeError(), 400, {"errcode": "M_UNKNOWN", "error": "Invalid login type"}),
        (
            errors.UserLockedError(),
            401,
            {"errcode": "M_USER_LOCKED", "error": "User account has been locked"},
        ),
        (errors.MissingTokenError(), 401, {"errcode": "M_MISSING_TOKEN", "error": "Missing access token"}),
        (
            errors.UnknownTokenError("gone"),
            401,
            {"errcode": "M_UNKNOWN_TOKEN", "error": "Invalid access token"},
        ),
        (
            errors.UnknownTokenError("gone", "Invalid refresh token"),
            401,
            {"errcode": "M_UNKNOWN_TOKEN", "error": "Invalid refresh token"},
        ),
        (
            errors.LimitExceededError("Too many login attempts", retry_after_ms=1500),
            429,
            {"errcode": "M_LIMIT_EXCEEDED", "error": "Too many login attempts", "retry_after_ms": 1500},
        ),
        (
            errors.UnrecognizedRequestError("Not here"),
            404,
            {"errcode": "M_UNRECOGNIZED", "error": "Not here"},
        ),
        (
            errors.MatrixInternalError(debug="x"),
            500,
            {"errcode": "M_UNKNOWN", "error": "Internal server error"},
        ),
        (
            errors.MissingParamError("Missing redirectUrl"),
            400,
            {"errcode": "M_MISSING_PARAM", "error": "Missing redirectUrl"},
        ),
        (
            errors.InvalidParamError("Invalid redirectUrl"),
            400,
            {"errcode": "M_INVALID_PARAM", "error": "Invalid redirectUrl"},
        ),
        (
            errors.NotJsonError("Body is not JSON"),
            400,
            {"errcode": "M_NOT_JSON", "error": "Body is not JSON"},
        ),
        (errors.BadJsonError(), 400, {"errcode": "M_BAD_JSON", "error": "JSON fields are not valid"}),
    ],
)
def test_matrix_error_subclasses(error: MatrixError, code: int, body: dict[str, object]) -> None:
    assert isinstance(error, MatrixError)
    assert error.code == code
    assert error.to_json() == body


def test_matrix_errors_keep_debug_out_of_the_body() -> None:
    error = errors.InvalidCredentialsError("wrong password for user 01H")
    assert error.debug == "wrong password for user 01H"
    assert "01H" not in str(error.to_json())


def test_page_errors() -> None:
    error = PageError("This link has expired", details="Ask for a new one", code=410)
    assert (error.code, error.msg, error.details) == (410, "This link has expired", "Ask for a new one")
    assert NotFoundError().code == 404
    assert isinstance(NotFoundError(), PageError)


def test_existing_errors_are_kept() -> None:
    assert str(errors.ConfigError("must be a string", ("http", "listeners", 0, "name"))) == (
        "Invalid configuration at http.listeners[0].name: must be a string"
    )
    assert errors.RowsAffectedError(1, 0).msg == "expected 1 row(s) to be affected, got 0"
