# SPDX-License-Identifier: AGPL-3.0-only
"""The TOTP second factor and its recovery codes (ours, issue 18: MAS 1.22 has none;
``experimental.mfa``).

Enrolment: :meth:`MfaHandler.start_enrolment` draws a 160-bit secret (RFC 4226's recommended
length) from the container's randomness and stores it encrypted and unconfirmed; the account
page shows it as text and as an ``otpauth://`` QR code; :meth:`MfaHandler.confirm_enrolment`
accepts a first code and returns :data:`RECOVERY_CODE_COUNT` recovery codes, shown once and
stored as their SHA-256.

A code (RFC 6238: SHA-1, 6 digits, 30-second steps, as every authenticator app) is accepted
for the current step or one step either side, and once: the step it matched is recorded
(``last_used_step``) and a code for that step or an earlier one is refused. Code checks are
rate limited per account (:data:`ATTEMPTS_BURST` at once, then one per
:data:`ATTEMPT_INTERVAL_S` seconds), so guessing 10⁶ codes is out of reach.

Login: :meth:`MfaHandler.complete_login` takes the user that passed the password check (the
login page carries it in a sealed, short-lived cookie), checks a TOTP code or a recovery code
and opens the browser session in the same transaction that consumes it.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs
import pyotp
import segno

from mas_twisted.handlers.rate_limit import RateLimitExceededError
from mas_twisted.types.mfa import SECOND_FACTOR_RECOVERY_CODE, SECOND_FACTOR_TOTP, UserRecoveryCode, UserTotp
from mas_twisted.types.users import BrowserSession, BrowserSessionAuthentication, User

if TYPE_CHECKING:
    from mas_twisted.server import MasServer
    from mas_twisted.storage.stores import Stores

logger = logging.getLogger(__name__)

TOTP_INTERVAL_S = 30
TOTP_DIGITS = 6
#: Steps accepted either side of the current one (clock drift, a code typed as it changed).
TOTP_WINDOW = 1
SECRET_BYTES = 20
RECOVERY_CODE_COUNT = 10
#: Characters of a recovery code (two groups of five, shown ``abcde-fghij``).
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
ATTEMPTS_BURST = 5
ATTEMPT_INTERVAL_S = 30
#: How long a password check waits for its second factor, in seconds.
PENDING_LOGIN_TTL_S = 300

# Problems (form error codes).
INVALID_CODE = "invalid_code"
WRONG_PASSWORD = "wrong_password"
RATE_LIMITED = "rate_limit_exceeded"
NOT_ENROLLED = "not_enrolled"
ALREADY_ENROLLED = "already_enrolled"


def normalize_recovery_code(code: str) -> str:
    return "".join(c for c in code.lower() if c.isalnum())


def hash_recovery_code(code: str) -> str:
    return hashlib.sha256(normalize_recovery_code(code).encode("ascii", "replace")).hexdigest()


def looks_like_totp(code: str) -> bool:
    stripped = code.replace(" ", "")
    return len(stripped) == TOTP_DIGITS and stripped.isascii() and stripped.isdigit()


class SecondFactorOutcome(str, enum.Enum):
    SUCCESS = "success"
    INVALID_CODE = INVALID_CODE
    RATE_LIMITED = RATE_LIMITED


@attrs.frozen
class Enrolment:
    """What the page shows while enrolling: the secret and its QR code."""

    secret: str = attrs.field(repr=False)
    uri: str = attrs.field(repr=False)
    qr_svg: str = attrs.field(repr=False)


@attrs.frozen
class MfaStatus:
    totp: UserTotp | None
    unused_recovery_codes: int = 0

    @property
    def enrolled(self) -> bool:
        return self.totp is not None and self.totp.confirmed


class MfaHandler:
    """``server.get_mfa_handler()``."""

    def __init__(self, server: MasServer):
        self._server = server
        config = server.config.experimental.mfa
        self.enabled: bool = config.enabled
        self.allow_compat_password_login: bool = config.allow_compat_password_login
        self._issuer: str = config.totp_issuer or server.config.matrix.homeserver
        self._clock = server.get_clock()
        self._tokens = server.get_token_generator()
        self._encrypter = server.get_encrypter()
        self._passwords = server.get_password_manager()
        self._attempts = server.get_rate_limiter().make_limit(
            "mfa.attempts_per_account", ATTEMPTS_BURST, 1 / ATTEMPT_INTERVAL_S
        )

    @property
    def _stores(self) -> Stores:
        return self._server.get_stores()

    # -- status ---------------------------------------------------------------------------
    async def status(self, user: User) -> MfaStatus:
        totp = await self._stores.mfa.get_totp(user.id)
        unused = await self._stores.mfa.count_unused_recovery_codes(user.id) if totp is not None else 0
        return MfaStatus(totp=totp, unused_recovery_codes=unused)

    async def requires_second_factor(self, user: User) -> bool:
        """Whether a password login of ``user`` must be completed with a second factor."""
        if not self.enabled:
            return False
        totp = await self._stores.mfa.get_totp(user.id)
        return totp is not None and totp.confirmed

    # -- enrolment ------------------------------------------------------------------------
    def enrolment_of(self, user: User, totp: UserTotp) -> Enrolment:
        secret = self._encrypter.decrypt_string(totp.secret)
        uri = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_INTERVAL_S).provisioning_uri(
            name=user.username, issuer_name=self._issuer
        )
        svg = segno.make(uri, error="m").svg_inline(scale=4, title="TOTP QR code")
        return Enrolment(secret=secret, uri=uri, qr_svg=svg)

    async def start_enrolment(self, user: User) -> Enrolment | None:
        """A fresh unconfirmed secret (replacing an unconfirmed one); ``None`` when the user
        already has a confirmed one."""
        secret = base64.b32encode(self._tokens.random_bytes(SECRET_BYTES)).decode("ascii")
        totp = UserTotp(
            id=self._tokens.ulid(),
            user_id=user.id,
            secret=self._encrypter.encrypt_to_string(secret),
            created_at=self._clock.time_msec(),
        )
        if not await self._stores.mfa.start_enrolment(totp):
            return None
        logger.info("User %s started a TOTP enrolment", user.id)
        return self.enrolment_of(user, totp)

    async def confirm_enrolment(self, user: User, code: str) -> list[str] | str:
        """The recovery codes once ``code`` confirmed the pending secret, else the problem."""
        totp = await self._stores.mfa.get_totp(user.id)
        if totp is None:
            return NOT_ENROLLED
        if totp.confirmed:
            return ALREADY_ENROLLED
        step = await self._check(user, totp, code)
        if isinstance(step, str):
            return step
        codes, rows = self._new_recovery_codes(user)
        if not await self._stores.mfa.confirm_enrolment(totp.id, step, self._clock.time_msec(), rows):
            return NOT_ENROLLED
        logger.info("User %s confirmed TOTP", user.id)
        return codes

    async def regenerate_recovery_codes(self, user: User, code: str) -> list[str] | str:
        """New recovery codes (the old ones stop working) once ``code`` matched."""
        totp = await self._stores.mfa.get_totp(user.id)
        if totp is None or not totp.confirmed:
            return NOT_ENROLLED
        step = await self._check(user, totp, code)
        if isinstance(step, str):
            return step
        codes, rows = self._new_recovery_codes(user)
        if not await self._stores.mfa.replace_recovery_codes(user.id, step, rows):
            return INVALID_CODE
        logger.info("User %s replaced their recovery codes", user.id)
        return codes

    async def disable(self, user: User, password: str, code: str) -> dict[str | None, str]:
        """Remove the second factor once the password and a code matched; the problems."""
        totp = await self._stores.mfa.get_totp(user.id)
        if totp is None or not totp.confirmed:
            return {None: NOT_ENROLLED}
        if not await self._check_password(user, password):
            return {"password": WRONG_PASSWORD}
        step = await self._check(user, totp, code)
        if isinstance(step, str):
            return {"code": step} if step == INVALID_CODE else {None: step}
        if not await self._stores.mfa.disable(user.id, step):
            return {"code": INVALID_CODE}
        logger.info("User %s removed their TOTP second factor", user.id)
        return {}

    # -- login ----------------------------------------------------------------------------
    async def complete_login(
        self,
        user: User,
        user_password_id: str | None,
        code: str,
        *,
        client_ip: str | None,
        user_agent: str | None,
    ) -> tuple[SecondFactorOutcome, BrowserSession | None]:
        """Check ``code`` (a TOTP code, or else a recovery code) for a user whose password
        was just checked, and open their browser session."""
        totp = await self._stores.mfa.get_totp(user.id)
        if totp is None or not totp.confirmed:
            return SecondFactorOutcome.INVALID_CODE, None
        try:
            await self._attempts.check(user.id)
        except RateLimitExceededError as e:
            logger.warning("Second factor refused: %s", e.debug)
            return SecondFactorOutcome.RATE_LIMITED, None

        now = self._clock.time_msec()
        session = BrowserSession(
            id=self._tokens.ulid(),
            user=user,
            created_at=now,
            user_agent=user_agent,
            last_active_at=now,
            last_active_ip=client_ip,
        )
        step: int | None = None
        code_hash: str | None = None
        if looks_like_totp(code):
            step = self._match_step(totp, code.replace(" ", ""))
            if step is None:
                logger.warning("Second factor failed: wrong TOTP code for user %s", user.id)
                return SecondFactorOutcome.INVALID_CODE, None
            factor = SECOND_FACTOR_TOTP
        else:
            code_hash = hash_recovery_code(code)
            factor = SECOND_FACTOR_RECOVERY_CODE
        authentication = BrowserSessionAuthentication(
            id=self._tokens.ulid(),
            user_session_id=session.id,
            created_at=now,
            user_password_id=user_password_id,
            second_factor=factor,
        )
        if not await self._stores.mfa.complete_login(
            session, authentication, step=step, recovery_code_hash=code_hash
        ):
            logger.warning("Second factor failed for user %s: used or unknown %s", user.id, factor)
            return SecondFactorOutcome.INVALID_CODE, None
        logger.info(
            "User %s logged in with a password and %s (browser session %s)", user.id, factor, session.id
        )
        return SecondFactorOutcome.SUCCESS, session

    # -- helpers --------------------------------------------------------------------------
    async def _check(self, user: User, totp: UserTotp, code: str) -> int | str:
        """The step ``code`` matches (rate limited), else the problem."""
        try:
            await self._attempts.check(user.id)
        except RateLimitExceededError as e:
            logger.warning("TOTP check refused: %s", e.debug)
            return RATE_LIMITED
        code = code.replace(" ", "")
        if not looks_like_totp(code):
            return INVALID_CODE
        step = self._match_step(totp, code)
        return INVALID_CODE if step is None else step

    def _match_step(self, totp: UserTotp, code: str) -> int | None:
        """The step within the window whose code is ``code`` and that is later than the last
        used one; each candidate is compared in constant time."""
        generator = pyotp.TOTP(
            self._encrypter.decrypt_string(totp.secret), digits=TOTP_DIGITS, interval=TOTP_INTERVAL_S
        )
        current = int(self._clock.time()) // TOTP_INTERVAL_S
        matched: int | None = None
        for step in range(current - TOTP_WINDOW, current + TOTP_WINDOW + 1):
            if hmac.compare_digest(generator.generate_otp(step).encode(), code.encode("ascii", "replace")):
                matched = step
        if matched is None:
            return None
        if totp.last_used_step is not None and matched <= totp.last_used_step:
            return None
        return matched

    def _new_recovery_codes(self, user: User) -> tuple[list[str], Sequence[UserRecoveryCode]]:
        now = self._clock.time_msec()
        codes: list[str] = []
        rows: list[UserRecoveryCode] = []
        for _ in range(RECOVERY_CODE_COUNT):
            raw = "".join(_RECOVERY_ALPHABET[b % len(_RECOVERY_ALPHABET)] for b in self._unbiased_bytes(10))
            code = f"{raw[:5]}-{raw[5:]}"
            codes.append(code)
            rows.append(
                UserRecoveryCode(
                    id=self._tokens.ulid(),
                    user_id=user.id,
                    code_hash=hash_recovery_code(code),
                    created_at=now,
                )
            )
        return codes, rows

    def _unbiased_bytes(self, n: int) -> list[int]:
        """``n`` bytes below the largest multiple of the alphabet's size (no modulo bias)."""
        limit = 256 - 256 % len(_RECOVERY_ALPHABET)
        out: list[int] = []
        while len(out) < n:
            out.extend(b for b in self._tokens.random_bytes(n) if b < limit)
        return out[:n]

    async def _check_password(self, user: User, password: str) -> bool:
        current = await self._stores.user_passwords.get_active_user_password(user.id)
        if current is None or not password or not self._passwords.enabled:
            return False
        try:
            return await self._passwords.verify(current.version, password, current.hashed_password)
        except Exception as e:
            logger.warning("Could not check the password of %s: %r", user.id, e)
            return False
