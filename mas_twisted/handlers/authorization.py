# SPDX-License-Identifier: AGPL-3.0-only
"""The authorization endpoint and its consent step (RFC 6749 §4.1, OIDC Core §3.1.2), as MAS
does them (``crates/handlers/src/oauth2/authorization/{mod,consent,callback}.rs``, inventory §2.3).

``GET /authorize`` (:meth:`AuthorizationHandler.start_authorization`):

1. Parse the request. A missing ``client_id``/``response_type``/``scope``, an empty
   ``response_type``, a malformed scope or ``max_age``: the error page (400), as MAS's query
   extractor answers.
2. Find the client, resolve the redirect URI (an unregistered one, or none while several are
   registered), resolve the response mode (``query`` for ``code``; ``fragment`` by default and
   ``query`` refused when ``id_token``/``token`` is asked; an unknown mode refused), refuse a
   redirect URI with a fragment or a query that is not form-encoded: all error pages (400).
3. From here on errors go back to the client (query, fragment or ``form_post``) with
   ``state``: ``request`` → ``request_not_supported``, ``request_uri`` →
   ``request_uri_not_supported``, ``token`` → ``unsupported_response_type``, ``id_token``
   without the implicit grant (which no stored client has) → ``unauthorized_client``,
   ``registration`` → ``registration_not_supported``, ``prompt=none`` → ``login_required``,
   ``code`` without the ``authorization_code`` grant → ``unauthorized_client``, PKCE without
   ``code`` → ``invalid_request``.
4. Store a pending grant (code: 32 alphanumerics) with every raw query parameter, then send
   the browser to ``/login`` (with ``login_hint``; ``prompt=create`` goes to ``/register``
   with the action only), or to ``/consent/<grant>`` when signed in.

``/consent/<grant>`` (:meth:`AuthorizationHandler.load_consent`,
:meth:`AuthorizationHandler.consent`): the grant must exist (404) and be pending (409); the
``authorization_grant`` policy decides with the user, their session counts, the client, the
scope and the requester; allowing fulfils the grant with the browser session and answers
``code`` and/or ``id_token``; denying answers ``access_denied`` and changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

import attrs

from mas_twisted.api.errors import (
    AccessDeniedError,
    InvalidRequestError,
    LoginRequiredError,
    NotFoundError,
    OAuth2Error,
    PageError,
    RegistrationNotSupportedError,
    RequestNotSupportedError,
    RequestUriNotSupportedError,
    UnauthorizedClientError,
    UnsupportedResponseTypeError,
)
from mas_twisted.oauth2.requests import (
    AUTHORIZATION_CODE,
    FORM_POST,
    FRAGMENT,
    IMPLICIT,
    PROMPT_CREATE,
    PROMPT_NONE,
    QUERY,
    InvalidResponseType,
    RedirectUriError,
    ResponseType,
    callback_url,
    parse_prompt,
    resolve_redirect_uri,
)
from mas_twisted.oauth2.scope import InvalidScopeFormat, Scope
from mas_twisted.oauth2.url import InvalidUrlError, parse_url
from mas_twisted.policy.model import Requester, SessionCounts
from mas_twisted.types.oauth2 import AuthorizationGrant, InvalidTransitionError, Pkce
from mas_twisted.urls import CONTINUE_AUTHORIZATION_GRANT, REGISTER, PostAuthAction, login_url

if TYPE_CHECKING:
    from mas_twisted.policy.model import EvaluationResult
    from mas_twisted.server import MasServer
    from mas_twisted.types.clients import OAuth2Client
    from mas_twisted.types.users import BrowserSession, User

logger = logging.getLogger(__name__)

#: The locale recorded on grants (the only language the pages have).
DEFAULT_LOCALE = "en"


@attrs.frozen
class Callback:
    """An answer to send to the client's redirect URI (a response or an error).

    ``url`` is where to redirect for ``query``/``fragment``; for ``form_post`` the caller
    renders the form with ``redirect_uri`` and ``form_params``.
    """

    redirect_uri: str
    response_mode: str
    #: The parameters after ``state``, in order.
    params: tuple[tuple[str, str], ...]
    state: str | None = None

    @property
    def is_form_post(self) -> bool:
        return self.response_mode == FORM_POST

    @property
    def form_params(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.state is not None:
            out["state"] = self.state
        out.update(self.params)
        return out

    @property
    def url(self) -> str:
        return callback_url(self.redirect_uri, self.response_mode, self.params, state=self.state)


@attrs.frozen
class CallbackDestination:
    """A validated redirect URI, response mode and ``state`` (MAS's ``CallbackDestination``)."""

    redirect_uri: str
    response_mode: str
    state: str | None = None

    @classmethod
    def try_new(cls, response_mode: str, redirect_uri: str, state: str | None) -> CallbackDestination:
        """Raises :class:`PageError` (400) for a URI with a fragment, a bad query or an unknown mode."""
        try:
            url = parse_url(redirect_uri)
        except InvalidUrlError:
            raise PageError("Invalid redirect URI", debug=redirect_uri) from None
        if url.fragment is not None:
            raise PageError("Redirect URI can't have a fragment")
        if response_mode == QUERY:
            if url.query:
                try:
                    parse_qsl(url.query, keep_blank_values=True, strict_parsing=True)
                except ValueError:
                    raise PageError("Existing query parameters are not valid") from None
        elif response_mode not in (FRAGMENT, FORM_POST):
            raise PageError("Requested response_mode is not supported")
        return cls(redirect_uri=redirect_uri, response_mode=response_mode, state=state)

    @classmethod
    def for_grant(cls, grant: AuthorizationGrant) -> CallbackDestination:
        return cls.try_new(grant.response_mode, grant.redirect_uri, grant.state)

    def go(self, params: Sequence[tuple[str, str]]) -> Callback:
        return Callback(self.redirect_uri, self.response_mode, tuple(params), self.state)

    def error(self, error: OAuth2Error) -> Callback:
        return self.go(list(error.to_json().items()))


@attrs.frozen
class AuthorizationResult:
    """What ``GET /authorize`` answers: a redirect to one of our pages, or a callback."""

    location: str | None = None
    callback: Callback | None = None
    grant: AuthorizationGrant | None = None


@attrs.frozen
class ConsentView:
    """What the consent page shows, or the policy's refusal."""

    grant: AuthorizationGrant
    client: OAuth2Client
    action: PostAuthAction
    policy: EvaluationResult


def resolve_response_mode(response_type: ResponseType, requested: str | None) -> str:
    """MAS's ``resolve_response_mode``; raises :class:`PageError` for ``query`` with a token."""
    if response_type.has_token or response_type.has_id_token:
        if requested is None:
            return FRAGMENT
        if requested == QUERY:
            raise PageError("invalid response mode")
        return requested
    return requested if requested is not None else QUERY


def _parse_max_age(value: str | None) -> None:
    if value is None:
        return
    if not value.isdigit() or not 0 < int(value) < 1 << 32:
        raise PageError("Failed to deserialize query string", details=f"max_age: invalid value {value!r}")


class AuthorizationHandler:
    """``/authorize`` and ``/consent/<grant>``."""

    def __init__(self, server: MasServer):
        self._server = server
        self._clock = server.get_clock()
        self._stores = server.get_stores()
        self._tokens = server.get_token_generator()
        self._url_builder = server.get_url_builder()
        self._policy = server.get_policy()

    # -- GET /authorize -------------------------------------------------------------------
    async def start_authorization(
        self, params: Mapping[str, str], session: BrowserSession | None
    ) -> AuthorizationResult:
        """Validate an authorization request and store its pending grant.

        Args:
            params: the query parameters (first value of each).
            session: the active browser session, if any.

        Raises:
            PageError: the request cannot be answered to the client (see the module doc).
        """
        client_id = params.get("client_id")
        raw_response_type = params.get("response_type")
        raw_scope = params.get("scope")
        if client_id is None or raw_response_type is None or raw_scope is None:
            missing = [n for n in ("response_type", "client_id", "scope") if params.get(n) is None]
            raise PageError("Failed to deserialize query string", details=f"missing field `{missing[0]}`")
        try:
            response_type = ResponseType.parse(raw_response_type)
        except InvalidResponseType:
            raise PageError(
                "Failed to deserialize query string", details="response_type: invalid value"
            ) from None
        try:
            scope = Scope.parse(raw_scope)
        except InvalidScopeFormat:
            raise PageError("Failed to deserialize query string", details="scope: invalid value") from None
        _parse_max_age(params.get("max_age"))
        requested_redirect_uri = params.get("redirect_uri")
        if requested_redirect_uri is not None:
            try:
                parse_url(requested_redirect_uri)
            except InvalidUrlError:
                raise PageError(
                    "Failed to deserialize query string", details="redirect_uri: invalid URL"
                ) from None

        client = await self._stores.oauth2_clients.get_oauth2_client(client_id)
        if client is None:
            raise PageError("could not find client", debug=client_id)
        try:
            redirect_uri = resolve_redirect_uri(client.redirect_uris, requested_redirect_uri)
        except RedirectUriError as e:
            raise PageError("invalid redirect uri", details=str(e)) from None
        response_mode = resolve_response_mode(response_type, params.get("response_mode"))
        state = params.get("state")
        destination = CallbackDestination.try_new(response_mode, redirect_uri, state)

        prompt = parse_prompt(params.get("prompt")) or ()
        code_challenge = params.get("code_challenge")
        code_challenge_method = params.get("code_challenge_method")
        has_pkce = code_challenge is not None and code_challenge_method is not None

        error: OAuth2Error | None = None
        if params.get("request") is not None:
            error = RequestNotSupportedError()
        elif params.get("request_uri") is not None:
            error = RequestUriNotSupportedError()
        elif response_type.has_token:
            error = UnsupportedResponseTypeError()
        elif response_type.has_id_token and IMPLICIT not in client.grant_types:
            error = UnauthorizedClientError()
        elif params.get("registration") is not None:
            error = RegistrationNotSupportedError()
        elif PROMPT_NONE in prompt:
            error = LoginRequiredError()
        elif response_type.has_code and AUTHORIZATION_CODE not in client.grant_types:
            error = UnauthorizedClientError()
        elif not response_type.has_code and has_pkce:
            error = InvalidRequestError()
        if error is not None:
            logger.info("Authorization request of client %s refused: %s", client.id, error.error)
            return AuthorizationResult(callback=destination.error(error))

        code: str | None = None
        pkce: Pkce | None = None
        if response_type.has_code:
            code = self._tokens.authorization_code()
            if has_pkce:
                assert code_challenge is not None and code_challenge_method is not None
                pkce = Pkce(challenge_method=code_challenge_method, challenge=code_challenge)

        grant = AuthorizationGrant(
            id=self._tokens.ulid(),
            client_id=client.id,
            redirect_uri=redirect_uri,
            scope=scope,
            created_at=self._clock.time_msec(),
            response_mode=response_mode,
            code=code,
            pkce=pkce,
            state=state,
            nonce=params.get("nonce"),
            response_type_id_token=response_type.has_id_token,
            login_hint=params.get("login_hint"),
            locale=DEFAULT_LOCALE,
            raw_parameters=dict(params),
        )
        await self._stores.authorization_grants.add_authorization_grant(grant)
        action = PostAuthAction(kind=CONTINUE_AUTHORIZATION_GRANT, id=grant.id)

        if session is not None:
            location = action.go_next(self._url_builder)
        elif PROMPT_CREATE in prompt:
            # The registration page, with the action only (MAS's ``Register::and_continue_grant``).
            location = self._url_builder.relative(REGISTER, action.to_params())
        else:
            location = login_url(self._url_builder, action, grant.login_hint)
        return AuthorizationResult(location=location, grant=grant)

    # -- /consent/<grant> -----------------------------------------------------------------
    async def _load_grant(self, grant_id: str) -> tuple[AuthorizationGrant, OAuth2Client]:
        grant = await self._stores.authorization_grants.get_authorization_grant(grant_id)
        if grant is None:
            raise NotFoundError("Authorization grant not found")
        client = await self._stores.oauth2_clients.get_oauth2_client(grant.client_id)
        if client is None:
            raise PageError("Failed to load the client", code=500, debug=grant.client_id)
        return grant, client

    @staticmethod
    def _check_pending(grant: AuthorizationGrant) -> None:
        if not grant.is_pending:
            raise PageError(f"Authorization grant {grant.id} already used", code=409)

    async def session_counts(self, user: User) -> SessionCounts:
        """The user's active sessions, as the session-limit policy counts them."""
        oauth2 = await self._stores.oauth2_sessions.count_active_oauth2_sessions_for_user(user.id)
        return SessionCounts(total=oauth2, oauth2=oauth2)

    async def _evaluate(
        self, grant: AuthorizationGrant, client: OAuth2Client, session: BrowserSession, requester: Requester
    ) -> EvaluationResult:
        return self._policy.evaluate_authorization_grant(
            client=client,
            scope=grant.scope,
            grant_type=AUTHORIZATION_CODE,
            user=session.user,
            session_counts=await self.session_counts(session.user),
            requester=requester,
        )

    async def load_consent(
        self, grant_id: str, session: BrowserSession | None, requester: Requester
    ) -> ConsentView | str:
        """What ``GET /consent/<grant>`` shows; the login URL (a ``str``) when signed out.

        Raises:
            NotFoundError: no such grant.
            PageError: 409 when the grant is no longer pending.
        """
        grant, client = await self._load_grant(grant_id)
        self._check_pending(grant)
        action = PostAuthAction(kind=CONTINUE_AUTHORIZATION_GRANT, id=grant.id)
        if session is None:
            return login_url(self._url_builder, action)
        result = await self._evaluate(grant, client, session, requester)
        return ConsentView(grant=grant, client=client, action=action, policy=result)

    async def consent(
        self, grant_id: str, session: BrowserSession | None, requester: Requester, *, allow: bool
    ) -> ConsentView | Callback | str:
        """``POST /consent/<grant>``: the login URL when signed out, the policy refusal, or the
        answer for the client (``code`` and/or ``id_token``; ``access_denied`` when denied).

        Raises:
            NotFoundError: no such grant.
            PageError: 409 when the grant is no longer pending; 400 when its callback is unusable.
        """
        grant = await self._stores.authorization_grants.get_authorization_grant(grant_id)
        if grant is None:
            raise NotFoundError("Authorization grant not found")
        destination = CallbackDestination.for_grant(grant)
        action = PostAuthAction(kind=CONTINUE_AUTHORIZATION_GRANT, id=grant.id)
        if session is None:
            return login_url(self._url_builder, action)
        grant, client = await self._load_grant(grant_id)
        self._check_pending(grant)
        if not allow:
            return destination.error(AccessDeniedError())
        result = await self._evaluate(grant, client, session, requester)
        if not result.valid:
            return ConsentView(grant=grant, client=client, action=action, policy=result)

        try:
            grant = await self._stores.authorization_grants.fulfill_authorization_grant(grant, session.id)
        except InvalidTransitionError:
            raise PageError(f"Authorization grant {grant.id} already used", code=409) from None
        params: list[tuple[str, str]] = []
        if grant.code is not None:
            params.append(("code", grant.code))
        if grant.response_type_id_token:
            id_token = await self._server.get_id_token_signer().sign_for_browser_session(
                client, session, nonce=grant.nonce, code=grant.code
            )
            params.append(("id_token", id_token))
        return destination.go(params)
