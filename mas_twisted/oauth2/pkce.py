# SPDX-License-Identifier: AGPL-3.0-only
"""Proof Key for Code Exchange (RFC 7636).

- The ``code_verifier`` must be 43 to 128 characters of ``[A-Za-z0-9-._~]`` (RFC 7636 §4.1).
- ``S256``: the challenge is ``BASE64URL(SHA256(verifier))`` without padding; ``plain``: the
  verifier itself (§4.2). Both are advertised in discovery; other methods are refused.
- At the token endpoint (MAS's ``authorization_code`` grant, STYLE.md §4.5): a challenge
  without a verifier, or a verifier for a grant without a challenge, is ``invalid_request``;
  a verifier that is malformed or does not match is ``invalid_grant`` with the description
  ``PKCE verification failed: <reason>``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Protocol

from mas_twisted.api.errors import InvalidGrantError, InvalidRequestError

PLAIN = "plain"
S256 = "S256"
#: The methods advertised as ``code_challenge_methods_supported``.
SUPPORTED_METHODS = (PLAIN, S256)

_VERIFIER_CHARS = re.compile(r"[A-Za-z0-9._~-]*")


class CodeChallengeError(ValueError):
    """Why a code verifier was refused."""


class VerifierTooShortError(CodeChallengeError):
    def __init__(self) -> None:
        super().__init__("code_verifier should be at least 43 characters long")


class VerifierTooLongError(CodeChallengeError):
    def __init__(self) -> None:
        super().__init__("code_verifier should be at most 128 characters long")


class VerifierInvalidCharactersError(CodeChallengeError):
    def __init__(self) -> None:
        super().__init__("code_verifier contains invalid characters")


class VerificationFailedError(CodeChallengeError):
    def __init__(self) -> None:
        super().__init__("challenge verification failed")


class UnknownChallengeMethodError(CodeChallengeError):
    def __init__(self) -> None:
        super().__init__("unknown challenge method")


class _Pkce(Protocol):
    @property
    def challenge_method(self) -> str: ...

    @property
    def challenge(self) -> str: ...


def validate_verifier(verifier: str) -> None:
    """Check RFC 7636 §4.1's length and character rules.

    Raises:
        VerifierTooShortError, VerifierTooLongError, VerifierInvalidCharactersError.
    """
    if len(verifier) < 43:
        raise VerifierTooShortError()
    if len(verifier) > 128:
        raise VerifierTooLongError()
    if not _VERIFIER_CHARS.fullmatch(verifier):
        raise VerifierInvalidCharactersError()


def compute_challenge(method: str, verifier: str) -> str:
    """The challenge a verifier answers under ``method`` (RFC 7636 §4.2).

    Raises:
        CodeChallengeError: malformed verifier or unknown method.
    """
    validate_verifier(verifier)
    if method == PLAIN:
        return verifier
    if method == S256:
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    raise UnknownChallengeMethodError()


def verify_challenge(method: str, challenge: str, verifier: str) -> None:
    """Check that ``verifier`` answers ``challenge`` (RFC 7636 §4.6).

    Raises:
        CodeChallengeError: the verifier is malformed, the method unknown, or no match.
    """
    if not hmac.compare_digest(compute_challenge(method, verifier).encode(), challenge.encode()):
        raise VerificationFailedError()


def check_pkce(pkce: _Pkce | None, code_verifier: str | None) -> None:
    """The token endpoint's PKCE step for an authorization code.

    Args:
        pkce: the challenge recorded on the grant (``challenge_method``, ``challenge``), if any.
        code_verifier: the ``code_verifier`` form parameter, if sent.

    Raises:
        InvalidRequestError: exactly one of the challenge and the verifier is present.
        InvalidGrantError: the verifier is malformed or does not match.
    """
    if pkce is None and code_verifier is None:
        return
    if pkce is None or code_verifier is None:
        raise InvalidRequestError(
            debug="PKCE challenge without verifier"
            if code_verifier is None
            else "PKCE verifier without challenge"
        )
    try:
        verify_challenge(pkce.challenge_method, pkce.challenge, code_verifier)
    except CodeChallengeError as e:
        raise InvalidGrantError(f"PKCE verification failed: {e}", debug=f"PKCE: {e}") from e
