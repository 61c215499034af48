# SPDX-License-Identifier: AGPL-3.0-only
"""Verifying a registration form's CAPTCHA with its provider (MAS's
``crates/handlers/src/captcha.rs``).

The three providers speak the same "siteverify" protocol: the server POSTs a form with
``secret`` (``captcha.secret_key``), ``response`` (what the widget put in the page's form:
``g-recaptcha-response``, ``h-captcha-response`` or ``cf-turnstile-response``) and
``remoteip`` (the client's address, when known), and gets JSON back: ``success``, and with it
``hostname`` and ``challenge_ts``, else ``error-codes``. As MAS:

- without a ``captcha`` section nothing is verified, but a form that posts a provider's field
  anyway is refused;
- with one, the form must carry that provider's field and no other provider's;
- a success must name ``hostname`` and ``challenge_ts``, and ``hostname`` must be the
  host of ``http.public_base`` (reCAPTCHA v2, hCaptcha and Turnstile all report where the
  widget was solved; none of them has an ``action`` for a v2-style widget, so there is nothing
  more to compare).

A provider that cannot be reached, answers an HTTP error or something that is not the
protocol's JSON, or takes longer than :data:`VERIFY_TIMEOUT_S`, means "not verified"
(:data:`UNAVAILABLE`, its own message on the form), never "verified".

The verification URL is each provider's own; :class:`CaptchaVerifier` takes another one as a
constructor argument only (the tests' local verifier), so no configuration can point it
elsewhere.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import attrs
import treq
from twisted.internet.defer import CancelledError
from twisted.internet.error import TimeoutError as TwistedTimeoutError

from mas_twisted.config.captcha import SERVICE_CLOUDFLARE_TURNSTILE, SERVICE_HCAPTCHA, SERVICE_RECAPTCHA_V2

logger = logging.getLogger(__name__)

#: How long the provider has to answer.
VERIFY_TIMEOUT_S = 10.0
#: The largest answer read from a provider.
MAX_ANSWER_BYTES = 64 * 1024

#: The form's CAPTCHA was not solved (or not for this service, or not on this site).
FAILED = "captcha"
#: The provider could not tell: not verified.
UNAVAILABLE = "captcha_unavailable"


@attrs.frozen
class CaptchaProvider:
    """What the page loads and what the server asks, for one ``captcha.service``."""

    service: str
    #: The form field the widget fills in.
    response_field: str
    verify_url: str
    #: The provider's script, and the class of the element it turns into the widget.
    script_url: str
    widget_class: str
    #: Origins the page must allow the provider's script and frames from (CSP).
    origins: tuple[str, ...]


PROVIDERS: Mapping[str, CaptchaProvider] = {
    SERVICE_RECAPTCHA_V2: CaptchaProvider(
        service=SERVICE_RECAPTCHA_V2,
        response_field="g-recaptcha-response",
        verify_url="https://www.recaptcha.net/recaptcha/api/siteverify",
        script_url="https://www.recaptcha.net/recaptcha/api.js",
        widget_class="g-recaptcha",
        origins=("https://www.recaptcha.net", "https://www.gstatic.com", "https://www.google.com"),
    ),
    SERVICE_HCAPTCHA: CaptchaProvider(
        service=SERVICE_HCAPTCHA,
        response_field="h-captcha-response",
        verify_url="https://api.hcaptcha.com/siteverify",
        script_url="https://js.hcaptcha.com/1/api.js",
        widget_class="h-captcha",
        origins=("https://hcaptcha.com", "https://*.hcaptcha.com"),
    ),
    SERVICE_CLOUDFLARE_TURNSTILE: CaptchaProvider(
        service=SERVICE_CLOUDFLARE_TURNSTILE,
        response_field="cf-turnstile-response",
        verify_url="https://challenges.cloudflare.com/turnstile/v0/siteverify",
        script_url="https://challenges.cloudflare.com/turnstile/v0/api.js",
        widget_class="cf-turnstile",
        origins=("https://challenges.cloudflare.com",),
    ),
}

#: Every provider's response field, as the registration form may post them.
RESPONSE_FIELDS: tuple[str, ...] = tuple(p.response_field for p in PROVIDERS.values())


class _Unavailable(Exception):
    pass


class CaptchaVerifier:
    """``server.get_captcha_verifier()``: checks a form's CAPTCHA with ``captcha.service``."""

    def __init__(
        self,
        *,
        reactor: Any,
        http_client: Any,
        service: str | None,
        secret_key: str | None,
        site_hostname: str,
        verify_url: str | None = None,
        timeout_s: float = VERIFY_TIMEOUT_S,
    ):
        """
        Args:
            http_client: a ``treq.client.HTTPClient``.
            verify_url: instead of the provider's own (the tests' local verifier).
        """
        self._reactor = reactor
        self._http = http_client
        self.provider: CaptchaProvider | None = PROVIDERS[service] if service is not None else None
        self._secret = secret_key or ""
        self._site_hostname = site_hostname
        self._verify_url = verify_url
        self._timeout_s = timeout_s

    async def verify(self, fields: Mapping[str, str], client_ip: str | None) -> str | None:
        """``None`` when the form's CAPTCHA passes, else the form error (:data:`FAILED` or
        :data:`UNAVAILABLE`). ``fields``: the provider response fields the form posted."""
        posted = {name: value for name, value in fields.items() if name in RESPONSE_FIELDS}
        if self.provider is None:
            if posted:
                logger.warning("A CAPTCHA response was posted, but no CAPTCHA is configured")
                return FAILED
            return None
        response = posted.get(self.provider.response_field)
        if not response or set(posted) != {self.provider.response_field}:
            logger.warning(
                "No CAPTCHA response for %s in the form (or another provider's)", self.provider.service
            )
            return FAILED
        try:
            answer = await self._ask(response, client_ip)
        except _Unavailable as e:
            logger.warning("Could not verify the %s CAPTCHA: %s", self.provider.service, e)
            return UNAVAILABLE
        success = answer.get("success")
        if success is not True:
            if success is not False:
                logger.warning("The %s verifier answered without a boolean success", self.provider.service)
                return UNAVAILABLE
            codes = answer.get("error-codes")
            logger.warning("The %s CAPTCHA was refused: %s", self.provider.service, codes)
            return FAILED
        hostname = answer.get("hostname")
        if not isinstance(hostname, str) or not isinstance(answer.get("challenge_ts"), str):
            logger.warning(
                "The %s verifier's success names no hostname or challenge_ts", self.provider.service
            )
            return UNAVAILABLE
        if hostname != self._site_hostname:
            logger.warning(
                "The %s CAPTCHA was solved on %r, not on %r",
                self.provider.service,
                hostname,
                self._site_hostname,
            )
            return FAILED
        return None

    async def _ask(self, response: str, client_ip: str | None) -> dict[str, Any]:
        assert self.provider is not None
        url = self._verify_url or self.provider.verify_url
        form = [("secret", self._secret), ("response", response)]
        if client_ip:
            form.append(("remoteip", client_ip))
        try:
            answer = await self._http.post(
                url,
                data=form,
                headers={b"Accept": [b"application/json"]},
                timeout=self._timeout_s,
                reactor=self._reactor,
            )
            chunks: list[bytes] = []
            size = [0]

            def collect(data: bytes) -> None:
                size[0] += len(data)
                if size[0] > MAX_ANSWER_BYTES:
                    raise _Unavailable(f"answer larger than {MAX_ANSWER_BYTES} bytes")
                chunks.append(data)

            await treq.collect(answer, collect)
        except _Unavailable:
            raise
        except (CancelledError, TwistedTimeoutError) as e:
            raise _Unavailable(f"no answer within {self._timeout_s}s") from e
        except Exception as e:  # refused, reset, DNS, TLS, ResponseNeverReceived (timeouts too)
            raise _Unavailable(f"{type(e).__name__}: {e}") from e
        if not 200 <= answer.code < 300:
            raise _Unavailable(f"HTTP {answer.code}")
        try:
            value = json.loads(b"".join(chunks))
        except (ValueError, UnicodeDecodeError) as e:
            raise _Unavailable("the answer is not JSON") from e
        if not isinstance(value, dict):
            raise _Unavailable("the answer is not a JSON object")
        return value
