# SPDX-License-Identifier: AGPL-3.0-only
""":class:`~mas_twisted.handlers.captcha.CaptchaVerifier` against a local verifier over real
HTTP (trial's real reactor, a real TCP port, treq's real client), for each of the three
providers: the form fields it sends (``secret``, ``response``, ``remoteip``), a success, a
wrong answer, a success on another site (hostname check), a form carrying another provider's
field or none, and a provider that is down, answers an error, answers nonsense or never
answers: all of those "not verified"."""

from __future__ import annotations

import json
from typing import Any

from treq.client import HTTPClient
from twisted.internet import reactor as real_reactor
from twisted.web.client import Agent, HTTPConnectionPool

from mas_twisted.handlers.captcha import FAILED, PROVIDERS, UNAVAILABLE, CaptchaVerifier
from tests.email._helpers import free_port, settle
from tests.handlers._captcha import GOOD_RESPONSE, SECRET, LocalVerifier, serve, stop
from tests.unittest import MasTestCase

SITE = "auth.example.com"


class CaptchaVerifierTests(MasTestCase):
    async def start(self, service: str, *, url: str | None = None, timeout_s: float = 5.0) -> Any:
        self.local = LocalVerifier(SITE)
        port = serve(self.local)
        self.addCleanup(lambda: stop(port, self.local))
        pool = HTTPConnectionPool(real_reactor, persistent=False)
        self.addCleanup(settle)
        client = HTTPClient(Agent(real_reactor, pool=pool, connectTimeout=2))
        verify_url = url or f"http://127.0.0.1:{port.getHost().port}/siteverify"
        return CaptchaVerifier(
            reactor=real_reactor,
            http_client=client,
            service=service,
            secret_key=SECRET,
            site_hostname=SITE,
            verify_url=verify_url,
            timeout_s=timeout_s,
        )

    async def test_each_provider_success_and_failure(self) -> None:
        for service, provider in PROVIDERS.items():
            verifier = await self.start(service)
            field = provider.response_field
            self.assertIsNone(await verifier.verify({field: GOOD_RESPONSE}, "192.0.2.7"), service)
            self.assertEqual(
                self.local.requests[-1],
                {"secret": [SECRET], "response": [GOOD_RESPONSE], "remoteip": ["192.0.2.7"]},
            )
            self.assertEqual(await verifier.verify({field: "wrong"}, None), FAILED, service)
            # No remoteip when the client's address is unknown.
            self.assertEqual(self.local.requests[-1], {"secret": [SECRET], "response": ["wrong"]})
            # Solved on another site: refused.
            self.local.hostname = "evil.example.net"
            self.assertEqual(await verifier.verify({field: GOOD_RESPONSE}, None), FAILED, service)

    async def test_form_without_the_providers_field(self) -> None:
        verifier = await self.start("hcaptcha")
        self.assertEqual(await verifier.verify({}, None), FAILED)
        self.assertEqual(await verifier.verify({"h-captcha-response": ""}, None), FAILED)
        self.assertEqual(await verifier.verify({"g-recaptcha-response": GOOD_RESPONSE}, None), FAILED)
        self.assertEqual(
            await verifier.verify({"h-captcha-response": GOOD_RESPONSE, "cf-turnstile-response": "x"}, None),
            FAILED,
        )
        # None of those reached the provider.
        self.assertEqual(self.local.requests, [])

    async def test_provider_answers_that_are_not_a_verdict(self) -> None:
        verifier = await self.start("cloudflare_turnstile")
        form = {"cf-turnstile-response": GOOD_RESPONSE}
        self.local.failure = 500
        self.assertEqual(await verifier.verify(form, None), UNAVAILABLE)
        self.local.failure = None
        for body in (
            b"<html>",
            b"[]",
            json.dumps({"success": "yes"}).encode(),
            json.dumps({"success": True}).encode(),
        ):
            self.local.body = body
            self.assertEqual(await verifier.verify(form, None), UNAVAILABLE, body)

    async def test_provider_down(self) -> None:
        verifier = await self.start("recaptcha_v2", url=f"http://127.0.0.1:{free_port()}/siteverify")
        self.assertEqual(await verifier.verify({"g-recaptcha-response": GOOD_RESPONSE}, None), UNAVAILABLE)

    async def test_provider_never_answers(self) -> None:
        verifier = await self.start("hcaptcha", timeout_s=0.5)
        self.local.failure = "hang"
        self.assertEqual(await verifier.verify({"h-captcha-response": GOOD_RESPONSE}, None), UNAVAILABLE)

    async def test_no_captcha_configured(self) -> None:
        verifier = CaptchaVerifier(
            reactor=real_reactor, http_client=None, service=None, secret_key=None, site_hostname=SITE
        )
        self.assertIsNone(await verifier.verify({}, None))
        # MAS: a response posted with no CAPTCHA configured is refused.
        self.assertEqual(await verifier.verify({"h-captcha-response": "x"}, None), FAILED)
