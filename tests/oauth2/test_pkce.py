# SPDX-License-Identifier: AGPL-3.0-only
"""PKCE (RFC 7636) with MAS's token-endpoint error mapping."""

from __future__ import annotations

import attrs
import pytest

from mas_twisted.api.errors import InvalidGrantError, InvalidRequestError
from mas_twisted.oauth2.pkce import (
    SUPPORTED_METHODS,
    UnknownChallengeMethodError,
    VerificationFailedError,
    VerifierInvalidCharactersError,
    VerifierTooLongError,
    VerifierTooShortError,
    check_pkce,
    compute_challenge,
    verify_challenge,
)

# RFC 7636 Appendix B.
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


@attrs.frozen
class Pkce:
    challenge_method: str
    challenge: str


def test_rfc7636_appendix_b() -> None:
    assert compute_challenge("S256", VERIFIER) == CHALLENGE
    verify_challenge("S256", CHALLENGE, VERIFIER)
    verify_challenge("plain", CHALLENGE, CHALLENGE)
    assert SUPPORTED_METHODS == ("plain", "S256")


@pytest.mark.parametrize(
    "verifier,error",
    [
        ("x" * 43, VerificationFailedError),
        ("tooshort", VerifierTooShortError),
        ("toolong" * 20, VerifierTooLongError),
        ("this is long enough but has invalid characters in it", VerifierInvalidCharactersError),
    ],
)
def test_verifier_errors(verifier: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        verify_challenge("S256", CHALLENGE, verifier)


def test_unknown_method() -> None:
    with pytest.raises(UnknownChallengeMethodError):
        verify_challenge("S512", CHALLENGE, VERIFIER)


def test_token_endpoint_mapping() -> None:
    check_pkce(None, None)
    check_pkce(Pkce("S256", CHALLENGE), VERIFIER)
    with pytest.raises(InvalidRequestError):
        check_pkce(Pkce("S256", CHALLENGE), None)
    with pytest.raises(InvalidRequestError):
        check_pkce(None, VERIFIER)
    with pytest.raises(InvalidGrantError) as info:
        check_pkce(Pkce("S256", CHALLENGE), "x" * 43)
    assert info.value.to_json() == {
        "error": "invalid_grant",
        "error_description": "PKCE verification failed: challenge verification failed",
    }
    with pytest.raises(InvalidGrantError) as info:
        check_pkce(Pkce("plain", CHALLENGE), "short")
    assert (
        info.value.description
        == "PKCE verification failed: code_verifier should be at least 43 characters long"
    )
