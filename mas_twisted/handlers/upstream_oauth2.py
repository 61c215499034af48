# SPDX-License-Identifier: AGPL-3.0-only
"""Sign in through an upstream OpenID Connect provider (MAS's
``crates/handlers/src/upstream_oauth2/{authorize,callback,link}.rs``, ``crates/oidc-client``).

- :meth:`UpstreamOAuth2Handler.start_authorization`: the provider's metadata (discovered
  per ``discovery_mode``, overridden per endpoint), a pending authorization session with
  ``state``, ``nonce`` and a PKCE verifier (``pkce_mode``: ``auto`` when the provider
  advertises S256, ``s256`` always, ``disabled`` never), and the authorization URL with the
  rendered ``additional_authorization_parameters`` and ``response_mode``.
- :meth:`UpstreamOAuth2Handler.callback`: the code exchanged at the token endpoint with the
  provider's ``token_endpoint_auth_method``, the ID token validated (OpenID Connect Core
  §3.1.3.7: signature with the provider's JWKS, refreshed once on an unknown ``kid``;
  ``alg`` = ``id_token_signed_response_alg``; ``iss``, ``aud``, ``azp``, ``exp``, ``iat``,
  ``nonce``), userinfo if ``fetch_userinfo`` (signed when ``userinfo_signed_response_alg``),
  the subject rendered from ``claims_imports.subject`` and the session completed with its link.
- :meth:`UpstreamOAuth2Handler.link_page` / ``register`` / ``link_to_current_user``: what
  ``/upstream/link/{id}`` does with it (log in, link mismatch, suggest linking, register).

Every failure talking to the provider is an :class:`UpstreamProviderError`: an error page that
names the provider; nothing is written before the provider's answers were all validated.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import logging
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import attrs
import jinja2
import treq
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jwcrypto.common import JWException
from jwcrypto.jwk import JWK
from jwcrypto.jws import JWS, InvalidJWSSignature
from twisted.internet.defer import CancelledError
from twisted.internet.error import TimeoutError as TwistedTimeoutError
from twisted.web.http_headers import Headers

from mas_twisted import urls
from mas_twisted.api.errors import InvalidRequestError, NotFoundError, PageError
from mas_twisted.handlers.client_auth import JwksFetcher, JwksFetchError, make_http_client
from mas_twisted.oauth2.pkce import compute_challenge
from mas_twisted.queue.base import enqueue_txn
from mas_twisted.queue.jobs.matrix import ProvisionUserJob, SyncDevicesJob
from mas_twisted.storage.stores.upstream_oauth_sessions import (
    RegistrationTokenInvalidError,
    SessionAlreadyUsedError,
    UsernameTakenError,
)
from mas_twisted.storage.stores.user_emails import replace_synced_user_email_txn
from mas_twisted.types.upstream import (
    UpstreamOAuthAuthorizationSession,
    UpstreamOAuthLink,
    UpstreamOAuthProvider,
)
from mas_twisted.types.users import BrowserSession, BrowserSessionAuthentication, User, UserEmail

if TYPE_CHECKING:
    from mas_twisted.server import MasServer
    from mas_twisted.storage.stores import Stores

logger = logging.getLogger(__name__)

#: MAS's HTTP client timeout for calls to the provider.
HTTP_TIMEOUT_S = 30.0
#: No discovery document, token response or JWKS comes close.
MAX_RESPONSE_BYTES = 1024 * 1024
#: How long a discovered metadata document is reused.
METADATA_CACHE_TTL_S = 3600.0
#: Clock skew tolerated on ``exp`` / ``iat`` (seconds).
LEEWAY_S = 300
#: How long an authorization session may wait for its callback (MAS: 10 minutes in its cookie).
SESSION_TTL_MS = 10 * 60 * 1000
#: ``client_assertion_type`` of RFC 7523 client authentication.
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
APPLE_AUDIENCE = "https://appleid.apple.com"
#: The ``events`` member of a logout token (Back-Channel Logout §2.4).
BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
#: How long a logout token's ``jti`` is remembered (a token older than this is refused by ``iat``).
LOGOUT_REPLAY_WINDOW_S = 2 * LEEWAY_S

# Matrix localparts: the spec's user id grammar (a-z, 0-9, ._=-/+), historical characters excluded.
_LOCALPART_RE = re.compile(r"^[a-z0-9._=/+\-]+$")


class UpstreamProviderError(PageError):
    """Talking to the provider failed: the page names the provider, the cause goes to the log."""

    def __init__(self, provider: UpstreamOAuthProvider, msg: str, *, debug: str | None = None):
        name = provider.human_name or provider.issuer or provider.id
        super().__init__(
            f"Signing in with {name} failed.",
            code=502,
            details=msg,
            debug=f"provider {provider.id}: {debug or msg}",
        )


class ClaimTemplateError(PageError):
    """A claim template (or an authorization parameter's) failed on what the provider sent,
    or does not parse: an error page naming the provider (502, as the provider's errors)."""

    def __init__(self, provider: UpstreamOAuthProvider, what: str, error: Exception):
        name = provider.human_name or provider.issuer or provider.id
        super().__init__(
            f"Signing in with {name} failed.",
            code=502,
            details=f"The {what} template of this provider could not be rendered.",
            debug=f"provider {provider.id}: {what} template: {type(error).__name__}: {error}",
        )


# -- claim templates (MAS's crates/templates/src/functions.rs for upstream claims) -----------
def _b64decode(value: Any) -> bytes:
    text = value.decode() if isinstance(value, bytes) else str(value)
    text = text.strip()
    for decoder in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            return decoder(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            continue
    raise ValueError("not base64")


def _b64encode(value: Any) -> str:
    data = value if isinstance(value, bytes) else str(value).encode("utf-8")
    return base64.b64encode(data).decode("ascii")


def _tlvdecode(value: Any) -> list[dict[str, Any]]:
    """A list of ``{"tag": int, "value": bytes}`` from BER-style TLV bytes (one-byte tags,
    short or long lengths), as MAS's filter for claims such as Shibboleth's encoded values."""
    data = value if isinstance(value, bytes) else str(value).encode("latin-1")
    out = []
    i = 0
    while i < len(data):
        if i + 2 > len(data):
            raise ValueError("truncated TLV")
        tag = data[i]
        length = data[i + 1]
        i += 2
        if length & 0x80:
            n = length & 0x7F
            if n == 0 or n > 4 or i + n > len(data):
                raise ValueError("bad TLV length")
            length = int.from_bytes(data[i : i + n], "big")
            i += n
        if i + length > len(data):
            raise ValueError("truncated TLV")
        out.append({"tag": tag, "value": data[i : i + length]})
        i += length
    return out


def _string(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return str(value)


def _from_json(value: Any) -> Any:
    return json.loads(value.decode("utf-8") if isinstance(value, bytes) else str(value))


def make_claims_environment() -> ImmutableSandboxedEnvironment:
    """The sandboxed Jinja2 environment claim templates run in (no attribute access beyond
    the sandbox's, no mutation), with MAS's filters."""
    env = ImmutableSandboxedEnvironment(autoescape=False, undefined=jinja2.ChainableUndefined)
    env.filters.update(
        b64decode=_b64decode, b64encode=_b64encode, tlvdecode=_tlvdecode, string=_string, from_json=_from_json
    )
    return env


# -- provider metadata -------------------------------------------------------------------------
@attrs.frozen
class ProviderMetadata:
    issuer: str | None
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str | None
    userinfo_endpoint: str | None
    code_challenge_methods_supported: tuple[str, ...] = ()


class ImportAction(str, enum.Enum):
    IGNORE = "ignore"
    SUGGEST = "suggest"
    FORCE = "force"
    REQUIRE = "require"


@attrs.frozen
class ImportedAttribute:
    """One attribute (localpart, display name, email) a registration may import."""

    action: ImportAction
    value: str | None

    @property
    def offered(self) -> bool:
        """Shown on the do-register page (with a checkbox when ``suggest``)."""
        return self.action is not ImportAction.IGNORE and self.value is not None

    @property
    def forced(self) -> bool:
        return self.action in (ImportAction.FORCE, ImportAction.REQUIRE) and self.value is not None


@attrs.frozen
class RegistrationImports:
    localpart: ImportedAttribute
    displayname: ImportedAttribute
    email: ImportedAttribute
    on_conflict: str
    skip_confirmation: bool
    #: The existing user ``localpart`` names, if any (for ``on_conflict``).
    existing_user: User | None = None
    #: The provider's ``registration_token_required``: the page asks for one.
    token_required: bool = False


class LinkOutcome(str, enum.Enum):
    LOGGED_IN = "logged_in"
    LINK_MISMATCH = "link_mismatch"
    SUGGEST_LINK = "suggest_link"
    REGISTER = "register"


@attrs.frozen
class LinkPage:
    outcome: LinkOutcome
    provider: UpstreamOAuthProvider
    link: UpstreamOAuthLink
    session: UpstreamOAuthAuthorizationSession
    #: The browser session that is now signed in (``LOGGED_IN``).
    browser_session: BrowserSession | None = None
    #: The user the link points at (``LINK_MISMATCH``, ``LOGGED_IN``) or the current one.
    linked_user: User | None = None
    imports: RegistrationImports | None = None
    #: The user signed in in this browser (``LINK_MISMATCH``).
    current_user: User | None = None


@attrs.frozen
class RegisterForm:
    username: str | None
    import_displayname: bool
    import_email: bool
    token: str | None = None


@attrs.frozen
class RegisterResult:
    browser_session: BrowserSession | None = None
    #: The problems to show on the do-register page again: ``(field, code)``.
    errors: tuple[tuple[str, str], ...] = ()


class UnlinkOutcome(str, enum.Enum):
    UNLINKED = "unlinked"
    #: Refused: the user would have no way left to sign in.
    LAST_WAY_IN = "last_way_in"


@attrs.frozen
class ConnectedAccounts:
    """The user's upstream links (each with its provider, ``None`` once pruned) and the
    enabled providers not linked yet."""

    links: list[tuple[UpstreamOAuthLink, UpstreamOAuthProvider | None]]
    available: list[UpstreamOAuthProvider]


class UpstreamOAuth2Handler:
    """The upstream login flow (``server.get_upstream_oauth2_handler()``)."""

    def __init__(self, server: MasServer, *, http_client: Any = None):
        self._server = server
        self._clock = server.get_clock()
        self._tokens = server.get_token_generator()
        self._url_builder = server.get_url_builder()
        self._http = http_client if http_client is not None else make_http_client(server.get_reactor())
        self._jwks = JwksFetcher(self._clock, self._http)
        self._metadata: dict[str, tuple[ProviderMetadata, float]] = {}
        self._env = make_claims_environment()
        self._server_name: str = server.config.matrix.homeserver
        #: Logout tokens' ``provider:jti`` seen within the replay window, and when.
        self._seen_jti: dict[str, float] = {}

    @property
    def _stores(self) -> Stores:
        return self._server.get_stores()

    # -- providers -----------------------------------------------------------------------
    async def get_provider(self, provider_id: str) -> UpstreamOAuthProvider:
        """The enabled provider ``provider_id``; a 404 page otherwise."""
        provider = await self._stores.upstream_oauth_providers.get_upstream_oauth_provider(provider_id)
        if provider is None or not provider.enabled:
            raise NotFoundError("Unknown identity provider", debug=f"no enabled provider {provider_id!r}")
        return provider

    def redirect_uri(self, provider: UpstreamOAuthProvider) -> str:
        return self._url_builder.absolute(
            urls.path_for(urls.UPSTREAM_OAUTH2_CALLBACK, provider_id=provider.id)
        )

    async def metadata(self, provider: UpstreamOAuthProvider) -> ProviderMetadata:
        """The endpoints to use: discovered (``oidc``: strictly, ``insecure``: without the
        issuer and HTTPS checks), then each configured override on top; ``disabled``: only
        the overrides.

        Raises:
            UpstreamProviderError: discovery failed, or an endpoint is missing.
        """
        discovered: Mapping[str, Any] = {}
        if provider.discovery_mode != "disabled":
            cached = self._metadata.get(provider.id)
            if cached is not None and self._clock.time() - cached[1] < METADATA_CACHE_TTL_S:
                return cached[0]
            discovered = await self._discover(provider)
        authorization = provider.authorization_endpoint_override or discovered.get("authorization_endpoint")
        token = provider.token_endpoint_override or discovered.get("token_endpoint")
        if not isinstance(authorization, str) or not isinstance(token, str):
            raise UpstreamProviderError(
                provider, "The provider has no authorization or token endpoint configured."
            )
        methods = discovered.get("code_challenge_methods_supported")
        issuer = provider.issuer
        if provider.discovery_mode == "insecure" and isinstance(discovered.get("issuer"), str):
            # Unverified discovery: the tokens are checked against the issuer the provider names.
            issuer = discovered["issuer"]
        metadata = ProviderMetadata(
            issuer=issuer,
            authorization_endpoint=authorization,
            token_endpoint=token,
            jwks_uri=provider.jwks_uri_override or _opt_str(discovered.get("jwks_uri")),
            userinfo_endpoint=provider.userinfo_endpoint_override
            or _opt_str(discovered.get("userinfo_endpoint")),
            code_challenge_methods_supported=tuple(m for m in methods if isinstance(m, str))
            if isinstance(methods, list)
            else (),
        )
        if provider.discovery_mode != "disabled":
            self._metadata[provider.id] = (metadata, self._clock.time())
        return metadata

    async def _discover(self, provider: UpstreamOAuthProvider) -> Mapping[str, Any]:
        assert provider.issuer is not None
        url = provider.issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = await self._get_json(provider, url)
        if provider.discovery_mode == "oidc":
            if document.get("issuer") != provider.issuer:
                raise UpstreamProviderError(
                    provider,
                    "The provider's discovery document names another issuer.",
                    debug=f"expected {provider.issuer!r}, got {document.get('issuer')!r}",
                )
            for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                value = document.get(key)
                if isinstance(value, str) and urlsplit(value).scheme != "https" and not _is_loopback(value):
                    raise UpstreamProviderError(
                        provider, "The provider's discovery document is not secure.", debug=f"{key} {value!r}"
                    )
        return document

    # -- HTTP ------------------------------------------------------------------------------
    async def _request(
        self,
        provider: UpstreamOAuthProvider,
        method: str,
        url: str,
        *,
        headers: dict[bytes, list[bytes]],
        body: bytes | None = None,
    ) -> tuple[int, bytes, str]:
        try:
            response = await self._http.request(
                method, url, headers=Headers(dict(headers)), data=body, timeout=HTTP_TIMEOUT_S
            )
            chunks: list[bytes] = []
            size = [0]

            def collect(data: bytes) -> None:
                size[0] += len(data)
                if size[0] > MAX_RESPONSE_BYTES:
                    raise ValueError("response too large")
                chunks.append(data)

            await treq.collect(response, collect)
        except (CancelledError, TwistedTimeoutError) as e:
            raise UpstreamProviderError(
                provider, "The provider did not answer in time.", debug=f"{method} {url}: {e!r}"
            ) from None
        except Exception as e:  # refused, DNS, TLS, reset, too large ...
            raise UpstreamProviderError(
                provider,
                "The provider could not be reached.",
                debug=f"{method} {url}: {type(e).__name__}: {e}",
            ) from None
        content_type = ""
        values = response.headers.getRawHeaders(b"content-type")
        if values:
            content_type = values[0].decode("latin-1").split(";")[0].strip().lower()
        return response.code, b"".join(chunks), content_type

    async def _get_json(self, provider: UpstreamOAuthProvider, url: str) -> dict[str, Any]:
        code, body, _ = await self._request(provider, "GET", url, headers={b"Accept": [b"application/json"]})
        if code != 200:
            raise UpstreamProviderError(
                provider, "The provider answered with an error.", debug=f"GET {url}: {code}"
            )
        return _json_object(provider, body, f"GET {url}")

    # -- /upstream/authorize -----------------------------------------------------------------
    async def start_authorization(
        self, provider: UpstreamOAuthProvider, params: Mapping[str, str], *, logged_out: bool
    ) -> tuple[str, UpstreamOAuthAuthorizationSession]:
        """The URL to send the browser to, and the pending session (stored).

        ``params``: the downstream query (the post-auth action, ``login_hint``), which the
        ``additional_authorization_parameters`` templates see as ``params``.
        """
        metadata = await self.metadata(provider)
        now = self._clock.time_msec()
        state = self._tokens.alphanumeric(32)
        nonce = self._tokens.alphanumeric(32)
        use_pkce = provider.pkce_mode == "s256" or (
            provider.pkce_mode == "auto" and "S256" in metadata.code_challenge_methods_supported
        )
        verifier = self._tokens.alphanumeric(64) if use_pkce else None
        query: list[tuple[str, str]] = [
            ("response_type", "code"),
            ("client_id", provider.client_id),
            ("redirect_uri", self.redirect_uri(provider)),
            ("scope", provider.scope),
            ("state", state),
            ("nonce", nonce),
        ]
        if verifier is not None:
            query += [
                ("code_challenge", compute_challenge("S256", verifier)),
                ("code_challenge_method", "S256"),
            ]
        if provider.response_mode is not None:
            query.append(("response_mode", provider.response_mode))
        for name, template in provider.additional_authorization_parameters:
            try:
                value = self._env.from_string(template).render(params=dict(params), logged_out=logged_out)
            except Exception as e:
                raise ClaimTemplateError(provider, f"authorization parameter {name!r}", e) from None
            if value.strip():
                query.append((name, value.strip()))
        session = UpstreamOAuthAuthorizationSession(
            id=self._tokens.ulid(),
            provider_id=provider.id,
            state=state,
            created_at=now,
            code_challenge_verifier=verifier,
            nonce=nonce,
        )
        await self._stores.upstream_oauth_sessions.add_authorization_session(session)
        parts = urlsplit(metadata.authorization_endpoint)
        existing = parse_qsl(parts.query, keep_blank_values=True)
        url = urlunsplit(parts._replace(query=urlencode(existing + query, quote_via=quote)))
        logger.info("Upstream authorization %s started with provider %s", session.id, provider.id)
        return url, session

    # -- /upstream/callback ------------------------------------------------------------------
    async def callback(
        self,
        provider: UpstreamOAuthProvider,
        params: Mapping[str, str],
        session: UpstreamOAuthAuthorizationSession,
    ) -> UpstreamOAuthLink:
        """Validate the callback of ``session`` (the one the browser's cookie names for this
        ``state``) and complete it with its link.

        Raises:
            PageError: the provider answered an error, the session is stale or used.
            UpstreamProviderError: the token exchange or the validation failed.
            ClaimTemplateError: the subject template failed.
        """
        if session.completed_at is not None:
            raise PageError("This sign-in was already completed.", debug=f"session {session.id} replayed")
        if self._clock.time_msec() - session.created_at > SESSION_TTL_MS:
            raise PageError("This sign-in took too long. Start again.")
        if "error" in params:
            name = provider.human_name or provider.issuer or provider.id
            raise PageError(
                f"{name} did not sign you in.",
                details=params.get("error_description") or params["error"],
                debug=f"provider {provider.id} answered error {params['error']!r}",
            )
        code = params.get("code")
        if not code:
            raise PageError("The identity provider's answer has no authorization code.")
        metadata = await self.metadata(provider)
        tokens = await self._exchange_code(provider, metadata, code, session)
        id_token = tokens.get("id_token")
        id_token_claims: dict[str, Any] = {}
        if isinstance(id_token, str):
            id_token_claims = await self.validate_jwt(
                provider, metadata, id_token, alg=provider.id_token_signed_response_alg, nonce=session.nonce
            )
        elif "openid" in provider.scope.split(" "):
            raise UpstreamProviderError(provider, "The provider sent no ID token.")
        userinfo: dict[str, Any] | None = None
        if provider.fetch_userinfo:
            userinfo = await self._userinfo(provider, metadata, tokens)
            if id_token_claims.get("sub") is not None and userinfo.get("sub") != id_token_claims["sub"]:
                raise UpstreamProviderError(
                    provider, "The provider's userinfo names another subject.", debug="userinfo sub mismatch"
                )
        extra = {k: v for k, v in params.items() if k not in ("code", "state")}
        context = self.template_context(id_token_claims, userinfo, extra)
        subject = self.render_claim(provider, "subject", _claims_import(provider, "subject"), context)
        if not subject:
            raise UpstreamProviderError(provider, "The provider sent no subject.")
        account_name = self.render_claim(
            provider, "account_name", _claims_import(provider, "account_name"), context
        )
        try:
            link = await self._stores.upstream_oauth_sessions.complete_authorization_session(
                session,
                subject=subject,
                human_account_name=account_name or None,
                new_link_id=self._tokens.ulid(),
                id_token=id_token if isinstance(id_token, str) else None,
                id_token_claims=id_token_claims,
                userinfo=userinfo,
                extra_callback_parameters=extra,
                now=self._clock.time_msec(),
            )
        except SessionAlreadyUsedError:
            raise PageError(
                "This sign-in was already completed.", debug=f"session {session.id} raced"
            ) from None
        logger.info("Upstream authorization %s completed: link %s", session.id, link.id)
        return link

    async def _exchange_code(
        self,
        provider: UpstreamOAuthProvider,
        metadata: ProviderMetadata,
        code: str,
        session: UpstreamOAuthAuthorizationSession,
    ) -> dict[str, Any]:
        form: list[tuple[str, str]] = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.redirect_uri(provider)),
        ]
        if session.code_challenge_verifier is not None:
            form.append(("code_verifier", session.code_challenge_verifier))
        headers: dict[bytes, list[bytes]] = {
            b"Accept": [b"application/json"],
            b"Content-Type": [b"application/x-www-form-urlencoded"],
        }
        method = provider.token_endpoint_auth_method
        secret = self._client_secret(provider)
        if method == "none":
            form.append(("client_id", provider.client_id))
        elif method == "client_secret_basic":
            assert secret is not None
            pair = f"{quote(provider.client_id, safe='')}:{quote(secret, safe='')}"
            headers[b"Authorization"] = [b"Basic " + base64.b64encode(pair.encode("utf-8"))]
        elif method == "client_secret_post":
            assert secret is not None
            form += [("client_id", provider.client_id), ("client_secret", secret)]
        elif method in ("client_secret_jwt", "private_key_jwt"):
            assertion = self._client_assertion(provider, metadata, secret)
            form += [
                ("client_id", provider.client_id),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", assertion),
            ]
        elif method == "sign_in_with_apple":
            form += [
                ("client_id", provider.client_id),
                ("client_secret", self._apple_secret(provider, secret)),
            ]
        code_, body, _ = await self._request(
            provider,
            "POST",
            metadata.token_endpoint,
            headers=headers,
            body=urlencode(form).encode("ascii"),
        )
        document = _json_object(provider, body, "the token endpoint") if body else {}
        if code_ != 200:
            error = document.get("error") if isinstance(document, dict) else None
            raise UpstreamProviderError(
                provider,
                "The provider refused to issue tokens.",
                debug=f"token endpoint {code_}: {error!r} {document.get('error_description')!r}",
            )
        if not isinstance(document.get("access_token"), str):
            raise UpstreamProviderError(
                provider, "The provider's token response is not valid.", debug="no access_token"
            )
        return document

    def _client_secret(self, provider: UpstreamOAuthProvider) -> str | None:
        if provider.encrypted_client_secret is None:
            return None
        return self._server.get_encrypter().decrypt_string(provider.encrypted_client_secret)

    def _assertion_claims(self, provider: UpstreamOAuthProvider, audience: str) -> dict[str, Any]:
        now = int(self._clock.time())
        return {
            "iss": provider.client_id,
            "sub": provider.client_id,
            "aud": audience,
            "jti": self._tokens.alphanumeric(32),
            "iat": now,
            "exp": now + 300,
        }

    def _client_assertion(
        self, provider: UpstreamOAuthProvider, metadata: ProviderMetadata, secret: str | None
    ) -> str:
        alg = provider.token_endpoint_signing_alg or "RS256"
        claims = self._assertion_claims(provider, metadata.token_endpoint)
        if provider.token_endpoint_auth_method == "private_key_jwt":
            return self._server.get_keystore().sign_jwt(claims, alg)
        assert secret is not None
        key = JWK(kty="oct", k=base64.urlsafe_b64encode(secret.encode("utf-8")).rstrip(b"=").decode("ascii"))
        token = JWS(json.dumps(claims, separators=(",", ":")).encode("utf-8"))
        token.add_signature(key, alg=alg, protected=json.dumps({"alg": alg}))
        return str(token.serialize(compact=True))

    def _apple_secret(self, provider: UpstreamOAuthProvider, secret: str | None) -> str:
        """Sign in with Apple's client secret: an ES256 JWT from the team's key."""
        document = json.loads(secret or "{}")
        key = JWK.from_pem(str(document.get("private_key", "")).encode("utf-8"))
        now = int(self._clock.time())
        claims = {
            "iss": document.get("team_id"),
            "sub": provider.client_id,
            "aud": APPLE_AUDIENCE,
            "iat": now,
            "exp": now + 300,
        }
        token = JWS(json.dumps(claims, separators=(",", ":")).encode("utf-8"))
        token.add_signature(
            key, alg="ES256", protected=json.dumps({"alg": "ES256", "kid": document.get("key_id")})
        )
        return str(token.serialize(compact=True))

    async def _userinfo(
        self, provider: UpstreamOAuthProvider, metadata: ProviderMetadata, tokens: Mapping[str, Any]
    ) -> dict[str, Any]:
        if metadata.userinfo_endpoint is None:
            raise UpstreamProviderError(provider, "The provider has no userinfo endpoint.")
        headers = {
            b"Authorization": [b"Bearer " + str(tokens["access_token"]).encode("utf-8")],
            b"Accept": [b"application/json, application/jwt"],
        }
        code, body, content_type = await self._request(
            provider, "GET", metadata.userinfo_endpoint, headers=headers
        )
        if code != 200:
            raise UpstreamProviderError(
                provider, "The provider refused the userinfo request.", debug=f"userinfo {code}"
            )
        if provider.userinfo_signed_response_alg is not None:
            if content_type != "application/jwt":
                raise UpstreamProviderError(
                    provider, "The provider's userinfo is not signed.", debug=content_type
                )
            return await self.validate_jwt(
                provider,
                metadata,
                body.decode("utf-8", "replace").strip(),
                alg=provider.userinfo_signed_response_alg,
                userinfo=True,
            )
        return _json_object(provider, body, "the userinfo endpoint")

    async def validate_jwt(
        self,
        provider: UpstreamOAuthProvider,
        metadata: ProviderMetadata,
        token: str,
        *,
        alg: str,
        nonce: str | None = None,
        userinfo: bool = False,
        logout: bool = False,
    ) -> dict[str, Any]:
        """The claims of an ID token (or signed userinfo, or logout token) once its signature
        and claims check out (OpenID Connect Core §3.1.3.7, Back-Channel Logout §2.6).

        Raises:
            UpstreamProviderError: any check failed.
        """
        try:
            jws = JWS()
            jws.deserialize(token)
            header = jws.jose_header
        except (JWException, ValueError, TypeError) as e:
            raise UpstreamProviderError(
                provider, "The provider sent a malformed token.", debug=repr(e)
            ) from None
        if not isinstance(header, dict) or header.get("alg") != alg:
            raise UpstreamProviderError(
                provider,
                "The provider signed its token with an unexpected algorithm.",
                debug=f"expected {alg}, got {header.get('alg') if isinstance(header, dict) else header!r}",
            )
        kid = header.get("kid")
        payload = await self._verify_signature(
            provider, metadata, jws, alg, kid if isinstance(kid, str) else None
        )
        try:
            claims = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            claims = None
        if not isinstance(claims, dict):
            raise UpstreamProviderError(provider, "The provider's token has no claims.")
        self._check_claims(provider, metadata.issuer, claims, nonce=nonce, userinfo=userinfo, logout=logout)
        return claims

    async def _verify_signature(
        self, provider: UpstreamOAuthProvider, metadata: ProviderMetadata, jws: JWS, alg: str, kid: str | None
    ) -> bytes:
        if alg.startswith("HS"):
            secret = self._client_secret(provider) or ""
            keys = [JWK(kty="oct", k=base64.urlsafe_b64encode(secret.encode()).rstrip(b"=").decode())]
        else:
            if metadata.jwks_uri is None:
                raise UpstreamProviderError(provider, "The provider publishes no signing keys.")
            keys = await self._keys_for(provider, metadata.jwks_uri, kid, refresh=False)
            if not keys:
                # An unknown kid: the provider may have rotated its keys since we cached them.
                keys = await self._keys_for(provider, metadata.jwks_uri, kid, refresh=True)
        for key in keys:
            try:
                jws.verify(key, alg=alg)
                return bytes(jws.payload)
            except (InvalidJWSSignature, JWException, ValueError, TypeError):
                continue
        raise UpstreamProviderError(
            provider, "The provider's token signature is not valid.", debug=f"no key verifies (kid {kid!r})"
        )

    async def _keys_for(
        self, provider: UpstreamOAuthProvider, uri: str, kid: str | None, *, refresh: bool
    ) -> list[JWK]:
        try:
            jwks = await self._jwks.get(uri, refresh=refresh)
        except JwksFetchError as e:
            raise UpstreamProviderError(
                provider, "The provider's signing keys could not be fetched.", debug=str(e)
            ) from None
        out = []
        for entry in jwks.get("keys", []):
            if not isinstance(entry, dict) or entry.get("use") not in (None, "sig"):
                continue
            if kid is not None and entry.get("kid") != kid:
                continue
            try:
                out.append(JWK(**entry))
            except (JWException, ValueError, TypeError):
                continue
        return out

    def _check_claims(
        self,
        provider: UpstreamOAuthProvider,
        issuer: str | None,
        claims: Mapping[str, Any],
        *,
        nonce: str | None,
        userinfo: bool,
        logout: bool,
    ) -> None:
        def refuse(why: str) -> UpstreamProviderError:
            return UpstreamProviderError(provider, "The provider's token is not valid.", debug=why)

        now = self._clock.time()
        if issuer is not None and ("iss" in claims or not userinfo) and claims.get("iss") != issuer:
            raise refuse(f"iss {claims.get('iss')!r} is not {issuer!r}")
        if userinfo:
            aud = claims.get("aud")
            if aud is not None and provider.client_id not in (aud if isinstance(aud, list) else [aud]):
                raise refuse("userinfo aud")
            return
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if provider.client_id not in audiences:
            raise refuse(f"aud {aud!r} does not contain our client id")
        azp = claims.get("azp")
        if azp is not None and azp != provider.client_id:
            raise refuse(f"azp {azp!r} is not our client id")
        if len(audiences) > 1 and azp is None:
            raise refuse("several audiences and no azp")
        iat = claims.get("iat")
        if not isinstance(iat, (int, float)) or isinstance(iat, bool) or iat > now + LEEWAY_S:
            raise refuse(f"iat {iat!r}")
        if logout:
            if "nonce" in claims:
                raise refuse("a logout token must not have a nonce")
            if iat < now - LOGOUT_REPLAY_WINDOW_S + LEEWAY_S:
                raise refuse(f"iat {iat!r} is too old")
            exp = claims.get("exp")
            if exp is not None and (not isinstance(exp, (int, float)) or exp + LEEWAY_S < now):
                raise refuse(f"exp {exp!r}")
            return
        exp = claims.get("exp")
        if not isinstance(exp, (int, float)) or isinstance(exp, bool) or exp + LEEWAY_S < now:
            raise refuse(f"exp {exp!r}")
        if not isinstance(claims.get("sub"), str):
            raise refuse("no sub")
        if nonce is not None and claims.get("nonce") != nonce:
            raise refuse("nonce mismatch")

    # -- claim templates ---------------------------------------------------------------------
    @staticmethod
    def template_context(
        id_token_claims: Mapping[str, Any] | None,
        userinfo: Mapping[str, Any] | None,
        extra: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        user = dict(id_token_claims or {})
        user.update(userinfo or {})
        return {
            "user": user,
            "id_token_claims": dict(id_token_claims or {}),
            "userinfo_claims": dict(userinfo or {}),
            "extra_callback_parameters": dict(extra or {}),
        }

    def render_claim(
        self, provider: UpstreamOAuthProvider, what: str, template: str | None, context: Mapping[str, Any]
    ) -> str | None:
        """The rendered template, stripped, ``None`` when empty (or no template).

        Raises:
            ClaimTemplateError: the template does not parse or fails.
        """
        if template is None:
            return None
        try:
            value = self._env.from_string(template).render(**context).strip()
        except Exception as e:
            raise ClaimTemplateError(provider, what, e) from None
        return value or None

    def session_context(self, session: UpstreamOAuthAuthorizationSession) -> dict[str, Any]:
        return self.template_context(
            session.id_token_claims, session.userinfo, session.extra_callback_parameters
        )

    # -- /upstream/link ----------------------------------------------------------------------
    async def load_link_session(
        self, link_id: str, session_id: str | None
    ) -> tuple[UpstreamOAuthProvider, UpstreamOAuthLink, UpstreamOAuthAuthorizationSession]:
        """The link and the completed, unconsumed session of this browser that resolved to it.

        Raises:
            PageError: no such link, no such session in this browser, or used.
        """
        stores = self._stores
        link = await stores.upstream_oauth_sessions.get_link(link_id)
        if link is None:
            raise PageError("This sign-in is unknown. Start again.", debug=f"no upstream link {link_id!r}")
        session = (
            await stores.upstream_oauth_sessions.get_authorization_session(session_id) if session_id else None
        )
        if session is None or session.link_id != link.id or session.completed_at is None:
            raise PageError("This sign-in was not started in this browser.", debug=f"link {link_id}")
        if session.consumed_at is not None:
            raise PageError(
                "This sign-in was already used. Start again.", debug=f"session {session.id} consumed"
            )
        provider = await self.get_provider(link.provider_id)
        return provider, link, session

    async def link_page(
        self,
        link_id: str,
        session_id: str | None,
        current: BrowserSession | None,
        *,
        user_agent: str | None,
        client_ip: str | None,
    ) -> LinkPage:
        """MAS's outcomes: log in the linked user (the current one, or a new browser session);
        a link to someone else while signed in is a mismatch; an unlinked link while signed in
        suggests linking; otherwise registration (done at once with ``skip_confirmation``)."""
        provider, link, session = await self.load_link_session(link_id, session_id)
        stores = self._stores
        if link.user_id is not None:
            user = await stores.users.get_user(link.user_id)
            if user is None:
                raise PageError("The account this sign-in is linked to is gone.")
            if current is not None and current.user.id != user.id:
                return LinkPage(
                    LinkOutcome.LINK_MISMATCH,
                    provider,
                    link,
                    session,
                    linked_user=user,
                    current_user=current.user,
                )
            if not user.is_valid:
                raise PageError("This account is locked or deactivated.", code=403)
            sync = await self._profile_sync(provider, link, session, user)
            browser = await self._log_in(
                session, user, current, user_agent=user_agent, client_ip=client_ip, also=sync
            )
            return LinkPage(
                LinkOutcome.LOGGED_IN, provider, link, session, browser_session=browser, linked_user=user
            )
        if current is not None:
            return LinkPage(LinkOutcome.SUGGEST_LINK, provider, link, session, linked_user=current.user)
        imports = await self.registration_imports(provider, session)
        if imports.skip_confirmation and not imports.token_required:
            result = await self.register(
                link_id,
                session.id,
                RegisterForm(username=None, import_displayname=True, import_email=True),
                user_agent=user_agent,
                client_ip=client_ip,
            )
            if result.browser_session is not None:
                return LinkPage(
                    LinkOutcome.LOGGED_IN, provider, link, session, browser_session=result.browser_session
                )
            raise PageError(
                "The account could not be created.", details=" ".join(f"{f}: {c}" for f, c in result.errors)
            )
        return LinkPage(LinkOutcome.REGISTER, provider, link, session, imports=imports)

    async def _log_in(
        self,
        session: UpstreamOAuthAuthorizationSession,
        user: User,
        current: BrowserSession | None,
        *,
        user_agent: str | None,
        client_ip: str | None,
        link_to_user: tuple[str, str] | None = None,
        also: Callable[[Any], None] | None = None,
    ) -> BrowserSession:
        now = self._clock.time_msec()
        browser = current
        if browser is None or browser.user.id != user.id:
            browser = BrowserSession(
                id=self._tokens.ulid(),
                user=user,
                created_at=now,
                user_agent=user_agent,
                last_active_at=now,
                last_active_ip=client_ip,
            )
        authentication = BrowserSessionAuthentication(
            id=self._tokens.ulid(),
            user_session_id=browser.id,
            created_at=now,
            upstream_oauth_authorization_session_id=session.id,
        )
        try:
            await self._stores.upstream_oauth_sessions.login_through_link(
                session.id,
                browser,
                authentication,
                new_session=browser is not current,
                link_to_user=link_to_user,
                also=also,
            )
        except SessionAlreadyUsedError:
            raise PageError("This sign-in was already used. Start again.") from None
        logger.info("User %s signed in through upstream session %s", user.id, session.id)
        return browser

    async def _profile_sync(
        self,
        provider: UpstreamOAuthProvider,
        link: UpstreamOAuthLink,
        session: UpstreamOAuthAuthorizationSession,
        user: User,
    ) -> Callable[[Any], None] | None:
        """Beyond MAS (#3117): with ``claims_imports.displayname.on_login: sync`` (and/or
        ``email``), a sign-in of a linked user re-imports the claim when it changed since the
        link's previous sign-in (or on the first one): the display name is pushed to the
        homeserver by ``provision-user``; the new address replaces the provider's old one unless
        another user has it. What to write, in the sign-in's transaction; ``None``: nothing.

        Raises:
            ClaimTemplateError: a template fails (the sign-in is refused with its error page).
        """
        keys = [key for key in ("displayname", "email") if _on_login(provider, key) == "sync"]
        if not keys:
            return None
        previous = await self._stores.upstream_oauth_sessions.get_previous_login_session(link.id, session.id)
        changed: dict[str, tuple[str | None, str]] = {}
        for key in keys:
            template = _claims_import(provider, key)
            new = self.render_claim(provider, key, template, self.session_context(session))
            old = (
                self.render_claim(provider, key, template, self.session_context(previous))
                if previous is not None
                else None
            )
            if new is not None and new != old:
                changed[key] = (old, new)
        if not changed:
            return None
        display_name = changed["displayname"][1] if "displayname" in changed else None
        email = changed.get("email")
        new_email = (
            UserEmail(
                id=self._tokens.ulid(), user_id=user.id, email=email[1], created_at=self._clock.time_msec()
            )
            if email is not None
            else None
        )
        logger.info("Upstream sign-in of %s re-imports %s from %s", user.id, sorted(changed), provider.id)

        def _txn(txn: Any) -> None:
            if new_email is not None and email is not None:
                replace_synced_user_email_txn(txn, new_email, email[0])
            enqueue_txn(txn, self._server, ProvisionUserJob(user_id=user.id, set_display_name=display_name))

        return _txn

    async def link_to_current_user(
        self,
        link_id: str,
        session_id: str | None,
        current: BrowserSession,
        *,
        user_agent: str | None,
        client_ip: str | None,
    ) -> BrowserSession:
        """The suggest-link page's answer: attach the unlinked link to the signed-in user."""
        _, link, session = await self.load_link_session(link_id, session_id)
        if link.user_id is not None:
            raise PageError("This account is already linked.")
        return await self._log_in(
            session,
            current.user,
            current,
            user_agent=user_agent,
            client_ip=client_ip,
            link_to_user=(link.id, current.user.id),
        )

    async def registration_imports(
        self, provider: UpstreamOAuthProvider, session: UpstreamOAuthAuthorizationSession
    ) -> RegistrationImports:
        """What the do-register page offers, from ``claims_imports`` and the session's claims.

        Raises:
            PageError: a ``require``d claim is missing; ClaimTemplateError.
        """
        context = self.session_context(session)
        values = {}
        for key in ("localpart", "displayname", "email"):
            conf = provider.claims_imports.get(key) or {}
            action = ImportAction(conf.get("action") or "ignore")
            value = None
            if action is not ImportAction.IGNORE:
                value = self.render_claim(provider, key, _claims_import(provider, key), context)
            if action is ImportAction.REQUIRE and value is None:
                raise PageError(
                    "The identity provider did not send what this server requires.",
                    details=f"Missing: {key}.",
                    debug=f"provider {provider.id}: required claim {key} is empty",
                )
            if key == "localpart" and value is not None:
                value = value.lower()
            values[key] = ImportedAttribute(action, value)
        localpart_conf = provider.claims_imports.get("localpart") or {}
        existing = None
        if values["localpart"].value is not None:
            existing = await self._stores.users.find_user_by_username(values["localpart"].value)
        return RegistrationImports(
            localpart=values["localpart"],
            displayname=values["displayname"],
            email=values["email"],
            on_conflict=str(localpart_conf.get("on_conflict") or "fail"),
            skip_confirmation=bool(provider.claims_imports.get("skip_confirmation")),
            existing_user=existing,
            token_required=provider.registration_token_required,
        )

    async def register(
        self,
        link_id: str,
        session_id: str | None,
        form: RegisterForm,
        *,
        user_agent: str | None,
        client_ip: str | None,
    ) -> RegisterResult:
        """Create the account (or, per ``on_conflict``, attach the link to the user the
        localpart names), sign in, provision it: one transaction.

        Raises:
            PageError: the session is unusable, a forced localpart conflicts with ``fail``.
        """
        provider, link, session = await self.load_link_session(link_id, session_id)
        if link.user_id is not None:
            raise PageError("This account is already linked.")
        imports = await self.registration_imports(provider, session)
        stores = self._stores

        if imports.localpart.forced:
            username = imports.localpart.value
        else:
            username = (form.username or "").strip().lower() or None
        if username is None:
            return RegisterResult(errors=(("username", "required"),))
        if not _LOCALPART_RE.match(username) or len(username) > 255:
            return RegisterResult(errors=(("username", "invalid"),))

        existing = await stores.users.find_user_by_username(username)
        if existing is not None:
            if not imports.localpart.forced or imports.on_conflict == "fail":
                if imports.localpart.forced:
                    raise PageError(
                        "An account with this username already exists.",
                        details=f"The identity provider names the username {username!r}, which is taken.",
                    )
                return RegisterResult(errors=(("username", "exists"),))
            return RegisterResult(
                browser_session=await self._attach_to_existing(
                    provider,
                    link,
                    session,
                    existing,
                    imports.on_conflict,
                    user_agent=user_agent,
                    client_ip=client_ip,
                )
            )

        try:
            available = await self._server.get_homeserver_connection().is_localpart_available(username)
        except Exception as e:
            raise PageError(
                "The homeserver cannot be reached right now. Try again in a moment.", code=503, debug=str(e)
            ) from None
        if not available:
            return RegisterResult(errors=(("username", "exists"),))

        display_name = None
        if imports.displayname.offered and (imports.displayname.forced or form.import_displayname):
            display_name = imports.displayname.value
        email = None
        if imports.email.offered and (imports.email.forced or form.import_email):
            email = imports.email.value

        now = self._clock.time_msec()
        token_id = None
        if imports.token_required:
            value = (form.token or "").strip()
            if not value:
                return RegisterResult(errors=(("token", "required"),))
            found = await stores.user_registrations.find_registration_token(value)
            if found is None or not found.is_valid(now):
                return RegisterResult(errors=(("token", "invalid"),))
            token_id = found.id
        user = User(id=self._tokens.ulid(), username=username, created_at=now)
        browser = BrowserSession(
            id=self._tokens.ulid(),
            user=user,
            created_at=now,
            user_agent=user_agent,
            last_active_at=now,
            last_active_ip=client_ip,
        )
        authentication = BrowserSessionAuthentication(
            id=self._tokens.ulid(),
            user_session_id=browser.id,
            created_at=now,
            upstream_oauth_authorization_session_id=session.id,
        )
        emails = (
            [UserEmail(id=self._tokens.ulid(), user_id=user.id, email=email, created_at=now)] if email else []
        )
        job = ProvisionUserJob(user_id=user.id, set_display_name=display_name)
        try:
            await stores.upstream_oauth_sessions.register_through_link(
                session.id,
                link.id,
                user=user,
                browser_session=browser,
                authentication=authentication,
                emails=emails,
                token_id=token_id,
                also=lambda txn: enqueue_txn(txn, self._server, job),
            )
        except RegistrationTokenInvalidError:
            return RegisterResult(errors=(("token", "invalid"),))
        except UsernameTakenError:
            return RegisterResult(errors=(("username", "exists"),))
        except SessionAlreadyUsedError:
            raise PageError("This sign-in was already used. Start again.") from None
        logger.info("User %s (%s) registered through provider %s", user.username, user.id, provider.id)
        return RegisterResult(browser_session=browser)

    async def _attach_to_existing(
        self,
        provider: UpstreamOAuthProvider,
        link: UpstreamOAuthLink,
        session: UpstreamOAuthAuthorizationSession,
        user: User,
        on_conflict: str,
        *,
        user_agent: str | None,
        client_ip: str | None,
    ) -> BrowserSession:
        """``on_conflict``: ``add`` links the existing user too; ``set`` only when the user has
        no link to this provider yet; ``replace`` drops the user's other links to it first."""
        if not user.is_valid:
            raise PageError("This account is locked or deactivated.", code=403)
        others = [
            other
            for other in await self._stores.upstream_oauth_sessions.list_links_for_user(user.id)
            if other.provider_id == provider.id and other.id != link.id
        ]
        if on_conflict == "set" and others:
            raise PageError(
                "An account with this username already exists.",
                details="It is already linked to another account at this provider.",
            )
        if on_conflict == "replace":
            for other in others:
                await self._stores.upstream_oauth_sessions.unlink(other.id, user.id)
        return await self._log_in(
            session, user, None, user_agent=user_agent, client_ip=client_ip, link_to_user=(link.id, user.id)
        )

    # -- the account page's links (for its link/unlink UI) -----------------------------------
    async def list_user_links(
        self, user_id: str
    ) -> list[tuple[UpstreamOAuthLink, UpstreamOAuthProvider | None]]:
        """The user's upstream links, each with its provider (``None`` if it was pruned)."""
        stores = self._stores
        out = []
        for link in await stores.upstream_oauth_sessions.list_links_for_user(user_id):
            out.append(
                (link, await stores.upstream_oauth_providers.get_upstream_oauth_provider(link.provider_id))
            )
        return out

    async def unlink(self, user_id: str, link_id: str) -> bool:
        """Detach one of the user's links (it can be linked or registered again later);
        ``False`` if it is not theirs. Linking a new one goes through
        ``/upstream/authorize/<provider>`` while signed in (the suggest-link page)."""
        unlinked = await self._stores.upstream_oauth_sessions.unlink(link_id, user_id)
        if unlinked:
            logger.info("User %s unlinked upstream link %s", user_id, link_id)
        return unlinked

    async def connected_accounts(self, user_id: str) -> ConnectedAccounts:
        """The account page's "Connected accounts" tab: the user's links, and the enabled
        providers they have no link to yet (beyond MAS: #3135, #4495)."""
        links = await self.list_user_links(user_id)
        linked = {link.provider_id for link, _ in links}
        providers = await self._stores.upstream_oauth_providers.list_upstream_oauth_providers(
            enabled_only=True
        )
        return ConnectedAccounts(links=links, available=[p for p in providers if p.id not in linked])

    async def unlink_from_account(self, user_id: str, link_id: str) -> UnlinkOutcome:
        """Unlink from the account page, refusing the user's last way to sign in (no other link
        to an enabled provider, and no password usable at ``/login``).

        Raises:
            NotFoundError: the link is not the user's.
        """
        outcome = await self._stores.upstream_oauth_sessions.unlink_keeping_a_way_in(
            link_id, user_id, password_login=self._server.config.passwords.enabled
        )
        if outcome == "missing":
            raise NotFoundError(debug=f"no upstream link {link_id!r} of user {user_id}")
        if outcome == "last":
            return UnlinkOutcome.LAST_WAY_IN
        logger.info("User %s unlinked upstream link %s from the account page", user_id, link_id)
        return UnlinkOutcome.UNLINKED

    # -- /upstream/backchannel-logout ----------------------------------------------------------
    async def backchannel_logout(self, provider_id: str, logout_token: str | None) -> int:
        """OpenID Connect Back-Channel Logout 1.0 §2.6: validate the logout token (signature,
        ``iss``, ``aud``, ``iat``, no ``nonce``, the logout ``events`` member, ``sub`` and/or
        ``sid``, a ``jti`` not seen within the replay window), then per the provider's
        ``on_backchannel_logout`` finish nothing, the browser sessions its logins opened, or
        those and every session started from them. How many browser sessions were finished.

        Raises:
            InvalidRequestError: unknown provider or an invalid token (a 400, as §2.8 asks).
        """
        provider = await self._stores.upstream_oauth_providers.get_upstream_oauth_provider(provider_id)
        if provider is None or not provider.enabled:
            raise InvalidRequestError("Unknown provider", debug=f"no enabled provider {provider_id!r}")
        if not logout_token:
            raise InvalidRequestError("Missing logout_token")
        try:
            metadata = await self.metadata(provider)
            claims = await self.validate_jwt(
                provider, metadata, logout_token, alg=provider.id_token_signed_response_alg, logout=True
            )
        except UpstreamProviderError as e:
            raise InvalidRequestError("Invalid logout_token", debug=e.debug) from None
        events = claims.get("events")
        if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_LOGOUT_EVENT), dict):
            raise InvalidRequestError("Invalid logout_token", debug="no back-channel logout event")
        sub = claims.get("sub")
        sid = claims.get("sid")
        if not isinstance(sub, str) and not isinstance(sid, str):
            raise InvalidRequestError("Invalid logout_token", debug="neither sub nor sid")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise InvalidRequestError("Invalid logout_token", debug="no jti")
        now = self._clock.time()
        self._seen_jti = {k: t for k, t in self._seen_jti.items() if now - t < LOGOUT_REPLAY_WINDOW_S}
        key = f"{provider.id}:{jti}"
        if key in self._seen_jti:
            raise InvalidRequestError("Invalid logout_token", debug=f"jti {jti!r} replayed")
        self._seen_jti[key] = now
        sessions = await self._stores.upstream_oauth_sessions.find_sessions_for_logout(
            provider.id,
            subject=sub if isinstance(sub, str) else None,
            sid=sid if isinstance(sid, str) else None,
        )
        logger.info(
            "Back-channel logout from provider %s matched %d session(s) (%s)",
            provider.id,
            len(sessions),
            provider.on_backchannel_logout,
        )
        if provider.on_backchannel_logout == "do_nothing" or not sessions:
            return 0
        browser_ids = sorted({s.user_session_id for s in sessions if s.user_session_id is not None})
        logout_all = provider.on_backchannel_logout == "logout_all"
        users = set()
        for browser_id in browser_ids:
            browser = await self._stores.browser_sessions.get_browser_session(browser_id)
            if browser is not None:
                users.add(browser.user.id)

        def _also(txn: Any) -> None:
            if logout_all:
                for user_id in sorted(users):
                    enqueue_txn(txn, self._server, SyncDevicesJob(user_id=user_id))

        return await self._stores.upstream_oauth_sessions.backchannel_logout(
            browser_ids, logout_all=logout_all, at=self._clock.time_msec(), also=_also
        )


def _claims_import(provider: UpstreamOAuthProvider, key: str) -> str | None:
    """The template of ``claims_imports[key]`` or MAS's default (``account_name``: none)."""
    defaults = {
        "subject": "{{ user.sub }}",
        "localpart": "{{ user.preferred_username }}",
        "displayname": "{{ user.name }}",
        "email": "{{ user.email }}",
        "account_name": None,
    }
    conf = provider.claims_imports.get(key)
    if isinstance(conf, dict) and isinstance(conf.get("template"), str):
        return str(conf["template"])
    return defaults[key]


def _on_login(provider: UpstreamOAuthProvider, key: str) -> str:
    """``claims_imports[key].on_login`` (our extension): ``sync`` or ``keep``."""
    conf = provider.claims_imports.get(key)
    return "sync" if isinstance(conf, dict) and conf.get("on_login") == "sync" else "keep"


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host in ("localhost", "127.0.0.1", "::1")


def _json_object(provider: UpstreamOAuthProvider, body: bytes, where: str) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        document = None
    if not isinstance(document, dict):
        raise UpstreamProviderError(
            provider,
            "The provider answered something that is not valid.",
            debug=f"{where}: not a JSON object",
        )
    return document
