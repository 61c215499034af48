# SPDX-License-Identifier: AGPL-3.0-only
"""Every operation of ``/api/admin/v1`` (inventory §6), one :class:`~mas_twisted.api.admin.spec.Route`
each, with the resources' attributes and their schemas (MAS's ``crates/handlers/src/admin/model.rs``).

The answers have MAS's JSON:API-like shapes (``admin/response.rs``): a single resource is
``{"data": {"type", "id", "attributes", "links": {"self"}}, "links": {"self"}}``; a list is
``{"meta": {"count"}, "data": [... each with "meta": {"page": {"cursor"}}], "links": {"self",
"first", "last", "next"?, "prev"?}}``, where the links repeat the filters, then ``count`` unless
it is ``true``, then the page bounds. ``count=only`` answers the count and a ``self`` link alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import attrs

from mas_twisted import __version__
from mas_twisted.api.admin.spec import (
    FILTER_DATES,
    MISSING,
    PAGINATION,
    ULID_REF,
    Answer,
    Body,
    Call,
    Field,
    InvalidValue,
    JsonSchema,
    Param,
    Response,
    Route,
    filter_bool,
    filter_datetime,
    filter_enum,
    filter_string,
    filter_ulid,
    format_datetime,
    parse_datetime,
    parse_ulid,
    path_id,
    resource_schemas,
)
from mas_twisted.storage.stores.admin import (
    AnyFilter,
    CompatSessionFilter,
    OAuth2ClientFilter,
    OAuth2SessionFilter,
    Pagination,
    PersonalSessionFilter,
    RegistrationTokenFilter,
    SessionDates,
    UpstreamOAuthLinkFilter,
    UpstreamOAuthProviderFilter,
    UserEmailFilter,
    UserFilter,
    UserSessionFilter,
)
from mas_twisted.types.registrations import UserRegistrationToken

if TYPE_CHECKING:
    from mas_twisted.handlers.admin import AdminHandler
    from mas_twisted.types.clients import OAuth2Client
    from mas_twisted.types.compat import CompatSession
    from mas_twisted.types.oauth2 import OAuth2Session
    from mas_twisted.types.personal import PersonalSessionWithToken
    from mas_twisted.types.policy_data import PolicyData
    from mas_twisted.types.upstream import UpstreamOAuthLink, UpstreamOAuthProvider
    from mas_twisted.types.users import BrowserSession, User, UserEmail

PREFIX = "/api/admin/v1"

# -- resources ----------------------------------------------------------------------------------


def _dt(description: str, nullable: bool = True) -> JsonSchema:
    return {
        "description": description,
        "type": ["string", "null"] if nullable else "string",
        "format": "date-time",
    }


def _nullable(ref: JsonSchema, description: str) -> JsonSchema:
    return {"description": description, "anyOf": [ref, {"type": "null"}]}


def _str(description: str, nullable: bool = True, **extra: Any) -> JsonSchema:
    return {"description": description, "type": ["string", "null"] if nullable else "string", **extra}


class Kind:
    """One type of resource: its ``type``, collection path, attribute schema and serialiser."""

    def __init__(
        self, name: str, kind: str, path: str, schema: JsonSchema, attributes: Callable[[Any], dict[str, Any]]
    ):
        self.name = name
        self.kind = kind
        self.path = PREFIX + path
        self.schema = schema
        self.attributes = attributes

    def resource(self, item: Any, *, cursor: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": self.kind,
            "id": item.id,
            "attributes": self.attributes(item),
            "links": {"self": f"{self.path}/{item.id}"},
        }
        if cursor:
            out["meta"] = {"page": {"cursor": item.id}}
        return out

    def single(self, item: Any, self_link: str | None = None) -> dict[str, Any]:
        return {"data": self.resource(item), "links": {"self": self_link or f"{self.path}/{item.id}"}}


def _user(user: User) -> dict[str, Any]:
    return {
        "username": user.username,
        "created_at": format_datetime(user.created_at),
        "locked_at": format_datetime(user.locked_at),
        "deactivated_at": format_datetime(user.deactivated_at),
        "admin": user.can_request_admin,
        "legacy_guest": user.is_guest,
    }


def _user_email(email: UserEmail) -> dict[str, Any]:
    return {"created_at": format_datetime(email.created_at), "user_id": email.user_id, "email": email.email}


def _user_session(session: BrowserSession) -> dict[str, Any]:
    return {
        "created_at": format_datetime(session.created_at),
        "finished_at": format_datetime(session.finished_at),
        "user_id": session.user_id,
        "user_agent": session.user_agent,
        "last_active_at": format_datetime(session.last_active_at),
        "last_active_ip": session.last_active_ip,
    }


def _compat_session(session: CompatSession) -> dict[str, Any]:
    return {
        "user_id": session.user_id,
        "device_id": session.device_id,
        "user_session_id": session.user_session_id,
        "redirect_uri": None,
        "created_at": format_datetime(session.created_at),
        "user_agent": session.user_agent,
        "last_active_at": format_datetime(session.last_active_at),
        "last_active_ip": session.last_active_ip,
        "finished_at": format_datetime(session.finished_at),
        "human_name": session.human_name,
    }


def _oauth2_session(session: OAuth2Session) -> dict[str, Any]:
    return {
        "created_at": format_datetime(session.created_at),
        "finished_at": format_datetime(session.finished_at),
        "user_id": session.user_id,
        "user_session_id": session.user_session_id,
        "client_id": session.client_id,
        "scope": session.scope_string,
        "user_agent": session.user_agent,
        "last_active_at": format_datetime(session.last_active_at),
        "last_active_ip": session.last_active_ip,
        "human_name": session.human_name,
    }


def _object(description: str, properties: dict[str, JsonSchema], required: list[str]) -> JsonSchema:
    return {"description": description, "type": "object", "properties": properties, "required": required}


USER = Kind(
    "User",
    "user",
    "/users",
    _object(
        "A user",
        {
            "username": _str("The username (localpart) of the user", nullable=False),
            "created_at": _dt("When the user was created", nullable=False),
            "locked_at": _dt("When the user was locked. If null, the user is not locked."),
            "deactivated_at": _dt("When the user was deactivated. If null, the user is not deactivated."),
            "admin": {"description": "Whether the user can request admin privileges.", "type": "boolean"},
            "legacy_guest": {
                "description": "Whether the user was a guest before migrating to MAS",
                "type": "boolean",
            },
        },
        ["username", "created_at", "locked_at", "deactivated_at", "admin", "legacy_guest"],
    ),
    _user,
)
USER_EMAIL = Kind(
    "UserEmail",
    "user-email",
    "/user-emails",
    _object(
        "An email address for a user",
        {
            "created_at": _dt("When the object was created", nullable=False),
            "user_id": ULID_REF,
            "email": _str("The email address of the user", nullable=False),
        },
        ["created_at", "user_id", "email"],
    ),
    _user_email,
)
USER_SESSION = Kind(
    "UserSession",
    "user-session",
    "/user-sessions",
    _object(
        "The browser (cookie) session of a user",
        {
            "created_at": _dt("When the object was created", nullable=False),
            "finished_at": _dt("When the session was finished"),
            "user_id": ULID_REF,
            "user_agent": _str("The user agent string that started this session, if any"),
            "last_active_at": _dt("The last time the session was active"),
            "last_active_ip": _str("The last IP address used by the session", format="ip"),
        },
        ["created_at", "finished_at", "user_id", "user_agent", "last_active_at", "last_active_ip"],
    ),
    _user_session,
)
COMPAT_SESSION = Kind(
    "CompatSession",
    "compat-session",
    "/compat-sessions",
    _object(
        "A compatibility session for legacy clients",
        {
            "user_id": ULID_REF,
            "device_id": _str("The Matrix device ID of this session"),
            "user_session_id": _nullable(
                ULID_REF, "The ID of the user session that started this session, if any"
            ),
            "redirect_uri": _str(
                "The redirect URI used to login in the client, if it was an SSO login", format="uri"
            ),
            "created_at": _dt("The time this session was created", nullable=False),
            "user_agent": _str("The user agent string that started this session, if any"),
            "last_active_at": _dt("The time this session was last active"),
            "last_active_ip": _str("The last IP address recorded for this session", format="ip"),
            "finished_at": _dt("The time this session was finished"),
            "human_name": _str("The user-provided name, if any"),
        },
        [
            "user_id",
            "device_id",
            "user_session_id",
            "redirect_uri",
            "created_at",
            "user_agent",
            "last_active_at",
            "last_active_ip",
            "finished_at",
            "human_name",
        ],
    ),
    _compat_session,
)
OAUTH2_SESSION = Kind(
    "OAuth2Session",
    "oauth2-session",
    "/oauth2-sessions",
    _object(
        "A OAuth 2.0 session",
        {
            "created_at": _dt("When the object was created", nullable=False),
            "finished_at": _dt("When the session was finished"),
            "user_id": _nullable(ULID_REF, "The ID of the user who owns the session"),
            "user_session_id": _nullable(
                ULID_REF, "The ID of the browser session which started this session"
            ),
            "client_id": ULID_REF,
            "scope": _str("The scope granted for this session", nullable=False),
            "user_agent": _str("The user agent string of the client which started this session"),
            "last_active_at": _dt("The last time the session was active"),
            "last_active_ip": _str("The last IP address used by the session", format="ip"),
            "human_name": _str("The user-provided name, if any"),
        },
        [
            "created_at",
            "finished_at",
            "user_id",
            "user_session_id",
            "client_id",
            "scope",
            "user_agent",
            "last_active_at",
            "last_active_ip",
            "human_name",
        ],
    ),
    _oauth2_session,
)


def _personal_session(item: PersonalSessionWithToken) -> dict[str, Any]:
    session = item.session
    return {
        "created_at": format_datetime(session.created_at),
        "revoked_at": format_datetime(session.revoked_at),
        "owner_user_id": session.owner_user_id,
        "owner_client_id": session.owner_client_id,
        "actor_user_id": session.actor_user_id,
        "human_name": session.human_name,
        "scope": session.scope_string,
        "last_active_at": format_datetime(session.last_active_at),
        "last_active_ip": session.last_active_ip,
        "expires_at": format_datetime(item.token.expires_at) if item.token is not None else None,
    }


PERSONAL_SESSION = Kind(
    "PersonalSession",
    "personal-session",
    "/personal-sessions",
    _object(
        "A personal session (session using personal access tokens)",
        {
            "created_at": _dt("When the session was created", nullable=False),
            "revoked_at": _dt("When the session was revoked, if applicable"),
            "owner_user_id": _nullable(ULID_REF, "The ID of the user who owns this session (if user-owned)"),
            "owner_client_id": _nullable(
                ULID_REF, "The ID of the `OAuth2` client that owns this session (if client-owned)"
            ),
            "actor_user_id": ULID_REF,
            "human_name": _str("Human-readable name for the session", nullable=False),
            "scope": _str("`OAuth2` scopes for this session", nullable=False),
            "last_active_at": _dt("When the session was last active"),
            "last_active_ip": _str("IP address of last activity", format="ip"),
            "expires_at": _dt(
                "When the current token for this session expires; null if it never does or if the"
                " session is revoked"
            ),
            "access_token": _str("The actual access token (only returned on creation)"),
        },
        ["created_at", "actor_user_id", "human_name", "scope"],
    ),
    _personal_session,
)


@attrs.frozen
class TokenAt:
    """A registration token and the time its ``valid`` attribute is judged at."""

    token: UserRegistrationToken
    now: int

    @property
    def id(self) -> str:
        return self.token.id


def _registration_token(item: TokenAt) -> dict[str, Any]:
    token = item.token
    return {
        "token": token.token,
        "valid": token.is_valid(item.now),
        "usage_limit": token.usage_limit,
        "times_used": token.times_used,
        "created_at": format_datetime(token.created_at),
        "last_used_at": format_datetime(token.last_used_at),
        "expires_at": format_datetime(token.expires_at),
        "revoked_at": format_datetime(token.revoked_at),
    }


REGISTRATION_TOKEN = Kind(
    "UserRegistrationToken",
    "user-registration_token",
    "/user-registration-tokens",
    _object(
        "A registration token",
        {
            "token": _str("The token string", nullable=False),
            "valid": {"description": "Whether the token is valid", "type": "boolean"},
            "usage_limit": {
                "description": "Maximum number of times this token can be used",
                "type": ["integer", "null"],
                "minimum": 0,
            },
            "times_used": {
                "description": "Number of times this token has been used",
                "type": "integer",
                "minimum": 0,
            },
            "created_at": _dt("When the token was created", nullable=False),
            "last_used_at": _dt("When the token was last used. If null, the token has never been used."),
            "expires_at": _dt("When the token expires. If null, the token never expires."),
            "revoked_at": _dt("When the token was revoked. If null, the token is not revoked."),
        },
        ["token", "valid", "times_used", "created_at"],
    ),
    _registration_token,
)


def _policy_data(item: PolicyData) -> dict[str, Any]:
    return {"created_at": format_datetime(item.created_at), "data": item.data}


POLICY_DATA = Kind(
    "PolicyData",
    "policy-data",
    "/policy-data",
    _object(
        "The policy data",
        {
            "created_at": _dt("The creation date of the policy data", nullable=False),
            "data": {"description": "The policy data content"},
        },
        ["created_at", "data"],
    ),
    _policy_data,
)


def _upstream_oauth_link(link: UpstreamOAuthLink) -> dict[str, Any]:
    return {
        "created_at": format_datetime(link.created_at),
        "provider_id": link.provider_id,
        "subject": link.subject,
        "user_id": link.user_id,
        "human_account_name": link.human_account_name,
    }


UPSTREAM_OAUTH_LINK = Kind(
    "UpstreamOAuthLink",
    "upstream-oauth-link",
    "/upstream-oauth-links",
    _object(
        "An upstream OAuth 2.0 link",
        {
            "created_at": _dt("When the object was created", nullable=False),
            "provider_id": ULID_REF,
            "subject": _str("The subject of the upstream account, unique per provider", nullable=False),
            "user_id": _nullable(ULID_REF, "The ID of the user who owns this link, if any"),
            "human_account_name": _str("A human-readable name of the upstream account"),
        },
        ["created_at", "provider_id", "subject"],
    ),
    _upstream_oauth_link,
)


def _upstream_oauth_provider(provider: UpstreamOAuthProvider) -> dict[str, Any]:
    return {
        "issuer": provider.issuer,
        "human_name": provider.human_name,
        "brand_name": provider.brand_name,
        "created_at": format_datetime(provider.created_at),
        "disabled_at": format_datetime(provider.disabled_at),
        "registration_token_required": provider.registration_token_required,
    }


UPSTREAM_OAUTH_PROVIDER = Kind(
    "UpstreamOAuthProvider",
    "upstream-oauth-provider",
    "/upstream-oauth-providers",
    _object(
        "An upstream OAuth 2.0 provider",
        {
            "issuer": _str("The OIDC issuer of the provider"),
            "human_name": _str("A human-readable name for the provider"),
            "brand_name": _str('A brand identifier, e.g. "apple" or "google"'),
            "created_at": _dt("When the provider was created", nullable=False),
            "disabled_at": _dt("When the provider was disabled. If null, the provider is enabled."),
            "registration_token_required": {
                "description": "Whether a registration token is required for registrations via this provider.",
                "type": "boolean",
            },
        },
        ["created_at", "registration_token_required"],
    ),
    _upstream_oauth_provider,
)


def _oauth2_client(client: OAuth2Client) -> dict[str, Any]:
    return {
        "client_id": client.client_id,
        "client_name": client.client_name,
        "client_uri": client.client_uri,
        "logo_uri": client.logo_uri,
        "redirect_uris": list(client.redirect_uris),
        "grant_types": list(client.grant_types),
        "is_static": client.is_static,
    }


OAUTH2_CLIENT = Kind(
    "OAuth2Client",
    "oauth2-client",
    "/oauth2-clients",
    _object(
        "An OAuth 2.0 client registered with this service",
        {
            "client_id": _str("The OAuth 2.0 client identifier", nullable=False),
            "client_name": _str("The human-readable name of the client, if registered"),
            "client_uri": _str("The homepage URL of the client, if registered", format="uri"),
            "logo_uri": _str("The URL of the client's logo, if registered", format="uri"),
            "redirect_uris": {
                "description": "The list of redirect URIs registered by the client",
                "type": "array",
                "items": {"type": "string", "format": "uri"},
            },
            "grant_types": {
                "description": "The list of grant types the client is allowed to use",
                "type": "array",
                "items": {"type": "string"},
            },
            "is_static": {
                "description": "Whether the client is statically configured (defined in the configuration file)"
                " rather than dynamically registered.",
                "type": "boolean",
            },
        },
        ["client_id", "client_name", "client_uri", "logo_uri", "redirect_uris", "grant_types", "is_static"],
    ),
    _oauth2_client,
)
KINDS = (
    USER,
    USER_EMAIL,
    USER_SESSION,
    COMPAT_SESSION,
    OAUTH2_SESSION,
    PERSONAL_SESSION,
    REGISTRATION_TOKEN,
    POLICY_DATA,
    UPSTREAM_OAUTH_LINK,
    UPSTREAM_OAUTH_PROVIDER,
    OAUTH2_CLIENT,
)

SITE_CONFIG_FIELDS = (
    "password_login_enabled",
    "password_registration_enabled",
    "password_registration_email_required",
    "password_registration_token_required",
    "registration_token_required",
    "email_change_allowed",
    "displayname_change_allowed",
    "password_change_allowed",
    "account_recovery_allowed",
    "account_deactivation_allowed",
    "captcha_enabled",
)
SCHEMAS: dict[str, JsonSchema] = {
    "UserStatus": {"type": "string", "enum": ["active", "locked", "deactivated"]},
    "SessionStatus": {"type": "string", "enum": ["active", "finished"]},
    "OAuth2ClientKind": {"type": "string", "enum": ["dynamic", "static"]},
    "PersonalSessionStatus": {"type": "string", "enum": ["active", "revoked"]},
    "SiteConfig": _object(
        "Some configuration values of this service",
        {
            "server_name": {"type": "string"},
            **{name: {"type": "boolean"} for name in SITE_CONFIG_FIELDS},
            "minimum_password_complexity": {"type": "integer", "minimum": 0, "maximum": 4},
        },
        ["server_name", *SITE_CONFIG_FIELDS, "minimum_password_complexity"],
    ),
    "Version": _object("The version of this service", {"version": {"type": "string"}}, ["version"]),
}
for _kind in KINDS:
    SCHEMAS[_kind.name] = _kind.schema
    SCHEMAS.update(resource_schemas(_kind.name))


# -- lists ----------------------------------------------------------------------------------------
def _query_value(value: str) -> str:
    return quote(value, safe="-_.~:!$'()*,;@/")


def _with_page(base: str, *, before: str | None, after: str | None, forward: bool, count: int) -> str:
    path, _, query = base.partition("?")
    parts = [query] if query else []
    if before is not None:
        parts.append(f"page[before]={before}")
    if after is not None:
        parts.append(f"page[after]={after}")
    parts.append(f"page[{'first' if forward else 'last'}]={count}")
    return f"{path}?{'&'.join(parts)}"


async def _list(
    handler: AdminHandler, call: Call, kind: Kind, list_filter: AnyFilter, filters: tuple[Param, ...]
) -> Answer:
    """A page of ``kind`` (MAS's ``PaginatedResponse::for_page`` / ``for_count_only``)."""
    params = call.params
    query = [
        f"{p.name}={_query_value(v)}"
        for p in filters
        for v in call.raw.get(p.name, ())
        if p.location == "query"
    ]
    include_count = params["count"] or "true"
    if include_count != "true":
        query.append(f"count={include_count}")
    base = kind.path + (f"?{'&'.join(query)}" if query else "")
    size = params["first"] or params["last"] or 10
    pagination = Pagination(
        count=size, forward=params["last"] is None, before=params["before"], after=params["after"]
    )
    page, total = await handler.list(list_filter, pagination, include_count)
    if page is None:
        return Answer(200, {"meta": {"count": total}, "links": {"self": base}})
    links: dict[str, str] = {
        "self": _with_page(
            base, before=pagination.before, after=pagination.after, forward=pagination.forward, count=size
        ),
        "first": _with_page(base, before=None, after=None, forward=True, count=size),
        "last": _with_page(base, before=None, after=None, forward=False, count=size),
    }
    if page.has_next_page:
        links["next"] = _with_page(
            base, before=None, after=page.items[-1].id, forward=pagination.forward, count=size
        )
    if page.has_previous_page:
        links["prev"] = _with_page(
            base, before=page.items[0].id, after=None, forward=pagination.forward, count=size
        )
    body: dict[str, Any] = {}
    if total is not None:
        body["meta"] = {"count": total}
    body["data"] = [kind.resource(item, cursor=True) for item in page.items]
    body["links"] = links
    return Answer(200, body)


def _dates(params: Mapping[str, Any]) -> SessionDates:
    return SessionDates(
        created_before=params["created_before"],
        created_after=params["created_after"],
        last_active_before=params["last_active_before"],
        last_active_after=params["last_active_after"],
    )


USER_FILTERS: tuple[Param, ...] = (
    filter_bool("admin", "admin", "Retrieve users with (or without) the `admin` flag set"),
    filter_bool(
        "legacy-guest", "legacy_guest", "Retrieve users with (or without) the `legacy_guest` flag set"
    ),
    filter_string("search", "search", "Retrieve users whose username contains the given string"),
    filter_enum(
        "status",
        "status",
        "Retrieve the users with the given status: `active`, `locked` (deactivated users included) or `deactivated`",
        "UserStatus",
        ("active", "locked", "deactivated"),
    ),
    filter_ulid(
        "active-oauth2-client",
        "active_oauth2_clients",
        "Retrieve users with an active OAuth 2.0 session of any of the given clients (repeatable)",
        repeated=True,
    ),
    filter_bool(
        "has-active-oauth2-session",
        "has_active_oauth2_session",
        "Retrieve users with (or without) an active OAuth 2.0 session",
    ),
    filter_bool(
        "has-active-compat-session",
        "has_active_compat_session",
        "Retrieve users with (or without) an active compatibility session",
    ),
)


async def list_users(handler: AdminHandler, call: Call) -> Answer:
    p = call.params
    await handler.check_clients_exist(p["active_oauth2_clients"])
    list_filter = UserFilter(
        admin=p["admin"],
        legacy_guest=p["legacy_guest"],
        search=p["search"],
        status=p["status"],
        active_oauth2_clients=p["active_oauth2_clients"],
        has_active_oauth2_session=p["has_active_oauth2_session"],
        has_active_compat_session=p["has_active_compat_session"],
    )
    return await _list(handler, call, USER, list_filter, USER_FILTERS)


EMAIL_FILTERS: tuple[Param, ...] = (
    filter_ulid("user", "user", "Retrieve the items for the given user"),
    filter_string("email", "email", "Retrieve the user email with the given email address"),
)


async def list_user_emails(handler: AdminHandler, call: Call) -> Answer:
    p = call.params
    if p["user"] is not None:
        await handler.check_user_exists(p["user"])
    return await _list(
        handler, call, USER_EMAIL, UserEmailFilter(user_id=p["user"], email=p["email"]), EMAIL_FILTERS
    )


_STATUS = filter_enum(
    "status", "status", "Retrieve the items with the given status", "SessionStatus", ("active", "finished")
)
USER_SESSION_FILTERS: tuple[Param, ...] = (
    filter_ulid("user", "user", "Retrieve the items for the given user"),
    _STATUS,
    *FILTER_DATES,
)


async def list_user_sessions(handler: AdminHandler, call: Call) -> Answer:
    p = call.params
    if p["user"] is not None:
        await handler.check_user_exists(p["user"])
    list_filter = UserSessionFilter(user_id=p["user"], status=p["status"], dates=_dates(p))
    return await _list(handler, call, USER_SESSION, list_filter, USER_SESSION_FILTERS)


COMPAT_FILTERS: tuple[Param, ...] = (
    filter_ulid("user", "user", "Retrieve the items for the given user"),
    filter_ulid("user-session", "user_session", "Retrieve the items started from the given browser session"),
    _STATUS,
    *FILTER_DATES,
)


async def list_compat_sessions(handler: AdminHandler, call: Call) -> Answer:
    p = call.params
    if p["user"] is not None:
        await handler.check_user_exists(p["user"])
    if p["user_session"] is not None:
        await handler.check_user_session_exists(p["user_session"])
    list_filter = CompatSessionFilter(
        user_id=p["user"], user_session_id=p["user_session"], status=p["status"], dates=_dates(p)
    )
    return await _list(handler, call, COMPAT_SESSION, list_filter, COMPAT_FILTERS)


OAUTH2_FILTERS: tuple[Param, ...] = (
    filter_ulid("user", "user", "Retrieve the items for the given user"),
    filter_ulid(
        "client", "client", "Retrieve the items for any of the given clients (repeatable)", repeated=True
    ),
    filter_enum(
        "client-kind",
        "client_kind",
        "Retrieve the items of static or dynamic clients",
        "OAuth2ClientKind",
        ("dynamic", "static"),
    ),
    filter_ulid("user-session", "user_session", "Retrieve the items started from the given browser session"),
    filter_string(
        "scope",
        "scope",
        "Retrieve the items with every one of the given scope tokens (repeatable)",
        repeated=True,
    ),
    _STATUS,
    *FILTER_DATES,
)


async def list_oauth2_sessions(handler: AdminHandler, call: Call) -> Answer:
    from mas_twisted.api.errors import AdminApiError
    from mas_twisted.oauth2.scope import InvalidScopeFormat, Scope

    p = call.params
    if p["user"] is not None:
        await handler.check_user_exists(p["user"])
    await handler.check_clients_exist(p["client"])
    if p["user_session"] is not None:
        await handler.check_user_session_exists(p["user_session"])
    for token in p["scope"]:
        try:
            valid = len(Scope.parse(token).tokens) == 1
        except InvalidScopeFormat:
            valid = False
        if not valid:
            raise AdminApiError(400, f'Invalid scope "{token}" in filter parameters') from None
    list_filter = OAuth2SessionFilter(
        user_id=p["user"],
        client_ids=p["client"],
        client_kind=p["client_kind"],
        user_session_id=p["user_session"],
        scope=p["scope"],
        status=p["status"],
        dates=_dates(p),
    )
    return await _list(handler, call, OAUTH2_SESSION, list_filter, OAUTH2_FILTERS)


PERSONAL_FILTERS: tuple[Param, ...] = (
    filter_ulid("owner_user", "owner_user", "Filter by owner user ID"),
    filter_ulid("owner_client", "owner_client", "Filter by owner `OAuth2` client ID"),
    filter_ulid("actor_user", "actor_user", "Filter by actor user ID"),
    filter_string("scope", "scope", "Retrieve the items with the given scope", repeated=True),
    filter_enum(
        "status",
        "status",
        "Filter by session status",
        "PersonalSessionStatus",
        ("active", "revoked"),
    ),
    filter_datetime("expires_before", "expires_before", "Filter by access token expiry date"),
    filter_datetime("expires_after", "expires_after", "Filter by access token expiry date"),
    filter_bool("expires", "expires", "Filter by whether the access token has an expiry time"),
)


def _check_scope_filter(tokens: tuple[str, ...]) -> None:
    from mas_twisted.api.errors import AdminApiError
    from mas_twisted.oauth2.scope import InvalidScopeFormat, Scope

    for token in tokens:
        try:
            valid = len(Scope.parse(token).tokens) == 1
        except InvalidScopeFormat:
            valid = False
        if not valid:
            raise AdminApiError(400, f'Invalid scope "{token}" in filter parameters') from None


async def list_personal_sessions(handler: AdminHandler, call: Call) -> Answer:
    p = call.params
    for user_id in (p["owner_user"], p["actor_user"]):
        if user_id is not None:
            await handler.check_user_exists(user_id)
    if p["owner_client"] is not None:
        await handler.check_clients_exist((p["owner_client"],))
    _check_scope_filter(p["scope"])
    list_filter = PersonalSessionFilter(
        owner_user_id=p["owner_user"],
        owner_client_id=p["owner_client"],
        actor_user_id=p["actor_user"],
        scope=p["scope"],
        status=p["status"],
        expires_before=p["expires_before"],
        expires_after=p["expires_after"],
        expires=p["expires"],
    )
    return await _list(handler, call, PERSONAL_SESSION, list_filter, PERSONAL_FILTERS)


def _with_token(item: PersonalSessionWithToken, token: str) -> dict[str, Any]:
    """The single response of a session, with the token's text (creation and regeneration only)."""
    body = PERSONAL_SESSION.single(item)
    body["data"]["attributes"]["access_token"] = token
    return body


async def get_personal_session(handler: AdminHandler, call: Call) -> Answer:
    return Answer(200, PERSONAL_SESSION.single(await handler.get_personal_session(call.params["id"])))


async def create_personal_session(handler: AdminHandler, call: Call) -> Answer:
    body = call.body
    item, token = await handler.create_personal_session(
        call.caller,
        actor_user_id=body["actor_user_id"],
        human_name=body["human_name"],
        scope=body["scope"],
        expires_in=body["expires_in"],
    )
    return Answer(201, _with_token(item, token))


async def revoke_personal_session(handler: AdminHandler, call: Call) -> Answer:
    return Answer(200, PERSONAL_SESSION.single(await handler.revoke_personal_session(call.params["id"])))


async def regenerate_personal_session(handler: AdminHandler, call: Call) -> Answer:
    item, token = await handler.regenerate_personal_session(
        call.caller, call.params["id"], call.body["expires_in"]
    )
    return Answer(201, _with_token(item, token))


REGISTRATION_TOKEN_FILTERS: tuple[Param, ...] = (
    filter_bool("used", "used", "Retrieve tokens that have (or have not) been used at least once"),
    filter_bool("revoked", "revoked", "Retrieve tokens that are (or are not) revoked"),
    filter_bool("expired", "expired", "Retrieve tokens that are (or are not) expired"),
    filter_bool(
        "valid",
        "valid",
        "Retrieve tokens that are (or are not) valid: not expired, not revoked, and under their usage limit",
    ),
)


async def list_registration_tokens(handler: AdminHandler, call: Call) -> Answer:
    p = call.params
    now = handler.now_ms()
    list_filter = RegistrationTokenFilter(
        now=now, used=p["used"], revoked=p["revoked"], expired=p["expired"], valid=p["valid"]
    )
    answer = await _list(handler, call, _AtNow(now), list_filter, REGISTRATION_TOKEN_FILTERS)
    return answer


class _AtNow(Kind):
    """:data:`REGISTRATION_TOKEN` for a list, each token judged at ``now``."""

    def __init__(self, now: int):
        super().__init__(
            REGISTRATION_TOKEN.name,
            REGISTRATION_TOKEN.kind,
            REGISTRATION_TOKEN.path[len(PREFIX) :],
            REGISTRATION_TOKEN.schema,
            lambda token: _registration_token(TokenAt(token, now)),
        )


def _token_answer(
    handler: AdminHandler, token: UserRegistrationToken, self_link: str | None = None, status: int = 200
) -> Answer:
    return Answer(status, REGISTRATION_TOKEN.single(TokenAt(token, handler.now_ms()), self_link))


def _expires_at(value: Any) -> int:
    try:
        return parse_datetime(value)
    except InvalidValue:
        raise
    except (OverflowError, ValueError, OSError) as e:
        raise InvalidValue(str(e)) from None


async def get_registration_token(handler: AdminHandler, call: Call) -> Answer:
    return _token_answer(handler, await handler.get_registration_token(call.params["id"]))


async def add_registration_token(handler: AdminHandler, call: Call) -> Answer:
    b = call.body
    token = await handler.add_registration_token(b["token"], b["usage_limit"], b["expires_at"])
    return _token_answer(handler, token, status=201)


async def update_registration_token(handler: AdminHandler, call: Call) -> Answer:
    changes = {
        name: call.body[name] for name in ("expires_at", "usage_limit") if call.body[name] is not MISSING
    }
    return _token_answer(handler, await handler.update_registration_token(call.params["id"], changes))


async def revoke_registration_token(handler: AdminHandler, call: Call) -> Answer:
    token = await handler.revoke_registration_token(call.params["id"])
    return _token_answer(handler, token, f"{REGISTRATION_TOKEN.path}/{token.id}/revoke")


async def unrevoke_registration_token(handler: AdminHandler, call: Call) -> Answer:
    token = await handler.unrevoke_registration_token(call.params["id"])
    return _token_answer(handler, token, f"{REGISTRATION_TOKEN.path}/{token.id}/unrevoke")


async def set_policy_data(handler: AdminHandler, call: Call) -> Answer:
    return Answer(201, POLICY_DATA.single(await handler.set_policy_data(call.body["data"])))


async def get_latest_policy_data(handler: AdminHandler, call: Call) -> Answer:
    return Answer(200, POLICY_DATA.single(await handler.get_latest_policy_data()))


async def get_policy_data(handler: AdminHandler, call: Call) -> Answer:
    return Answer(200, POLICY_DATA.single(await handler.get_policy_data(call.params["id"])))


OAUTH2_CLIENT_FILTERS: tuple[Param, ...] = (
    filter_enum(
        "client-kind",
        "client_kind",
        "Retrieve only clients of the given kind: `dynamic` (registered through dynamic client registration)"
        " or `static` (declared in the configuration file)",
        "OAuth2ClientKind",
        ("dynamic", "static"),
    ),
    filter_string(
        "client-name", "client_name", "Substring (case-insensitive) match on the client's `client_name`"
    ),
    filter_string(
        "client-uri", "client_uri", "Substring (case-insensitive) match on the client's `client_uri`"
    ),
    filter_string(
        "grant-type",
        "grant_type",
        "Retrieve only clients which support the given grant type, e.g. `authorization_code`,"
        " `client_credentials`, `urn:ietf:params:oauth:grant-type:device_code`",
    ),
    filter_bool(
        "has-active-sessions",
        "has_active_sessions",
        "Retrieve only clients which have (`true`) or don't have (`false`) at least one active OAuth 2.0 session",
    ),
)


async def list_oauth2_clients(handler: AdminHandler, call: Call) -> Answer:
    p = call.params
    list_filter = OAuth2ClientFilter(
        client_kind=p["client_kind"],
        client_name=p["client_name"],
        client_uri=p["client_uri"],
        grant_type=p["grant_type"],
        has_active_sessions=p["has_active_sessions"],
    )
    return await _list(handler, call, OAUTH2_CLIENT, list_filter, OAUTH2_CLIENT_FILTERS)


async def get_oauth2_client(handler: AdminHandler, call: Call) -> Answer:
    return Answer(200, OAUTH2_CLIENT.single(await handler.get_oauth2_client(call.params["id"])))


UPSTREAM_OAUTH_LINK_FILTERS: tuple[Param, ...] = (
    filter_ulid("user", "user", "Retrieve the items for the given user"),
    filter_ulid("provider", "provider", "Retrieve the items for the given provider"),
    filter_string("subject", "subject", "Retrieve the items with the given subject"),
    filter_string(
        "human-account-name",
        "human_account_name",
        "Retrieve the items with a human account name matching the given substring (case-insensitive)",
    ),
)


async def list_upstream_oauth_links(handler: AdminHandler, call: Call) -> Answer:
    p = call.params
    if p["user"] is not None:
        await handler.check_user_exists(p["user"])
    if p["provider"] is not None:
        await handler.check_provider_exists(p["provider"])
    list_filter = UpstreamOAuthLinkFilter(
        user_id=p["user"],
        provider_id=p["provider"],
        subject=p["subject"],
        human_account_name=p["human_account_name"],
    )
    return await _list(handler, call, UPSTREAM_OAUTH_LINK, list_filter, UPSTREAM_OAUTH_LINK_FILTERS)


async def get_upstream_oauth_link(handler: AdminHandler, call: Call) -> Answer:
    return Answer(200, UPSTREAM_OAUTH_LINK.single(await handler.get_upstream_oauth_link(call.params["id"])))


async def add_upstream_oauth_link(handler: AdminHandler, call: Call) -> Answer:
    b = call.body
    link, created = await handler.add_upstream_oauth_link(
        user_id=b["user_id"],
        provider_id=b["provider_id"],
        subject=b["subject"],
        human_account_name=b["human_account_name"],
    )
    return Answer(201 if created else 200, UPSTREAM_OAUTH_LINK.single(link))


async def delete_upstream_oauth_link(handler: AdminHandler, call: Call) -> Answer:
    await handler.delete_upstream_oauth_link(call.params["id"])
    return Answer(204)


UPSTREAM_OAUTH_PROVIDER_FILTERS: tuple[Param, ...] = (
    filter_bool("enabled", "enabled", "Retrieve providers that are (or are not) enabled"),
)


async def list_upstream_oauth_providers(handler: AdminHandler, call: Call) -> Answer:
    list_filter = UpstreamOAuthProviderFilter(enabled=call.params["enabled"])
    return await _list(handler, call, UPSTREAM_OAUTH_PROVIDER, list_filter, UPSTREAM_OAUTH_PROVIDER_FILTERS)


async def get_upstream_oauth_provider(handler: AdminHandler, call: Call) -> Answer:
    provider = await handler.get_upstream_oauth_provider(call.params["id"])
    return Answer(200, UPSTREAM_OAUTH_PROVIDER.single(provider))


# -- single resources ------------------------------------------------------------------------------
async def get_user(handler: AdminHandler, call: Call) -> Answer:
    return Answer(200, USER.single(await handler.get_user(call.params["id"])))


async def get_user_by_username(handler: AdminHandler, call: Call) -> Answer:
    username = call.params["username"]
    user = await handler.get_user_by_username(username)
    return Answer(200, USER.single(user, f"{USER.path}/by-username/{_query_value(username)}"))


async def create_user(handler: AdminHandler, call: Call) -> Answer:
    body = call.body
    user = await handler.create_user(
        body["username"], skip_homeserver_check=body["skip_homeserver_check"], displayname=body["displayname"]
    )
    return Answer(201, USER.single(user))


async def set_password(handler: AdminHandler, call: Call) -> Answer:
    await handler.set_password(
        call.params["id"], call.body["password"], skip_password_check=bool(call.body["skip_password_check"])
    )
    return Answer(204)


def _user_action(name: str) -> Callable[[AdminHandler, Call], Any]:
    async def run(handler: AdminHandler, call: Call) -> Answer:
        user_id = call.params["id"]
        if name == "set-admin":
            user = await handler.set_admin(user_id, call.body["admin"])
        elif name == "lock":
            user = await handler.lock_user(user_id)
        elif name == "unlock":
            user = await handler.unlock_user(user_id)
        elif name == "deactivate":
            user = await handler.deactivate_user(user_id, skip_erase=call.body["skip_erase"])
        else:
            user = await handler.reactivate_user(user_id)
        return Answer(200, USER.single(user, f"{USER.path}/{user_id}/{name}"))

    return run


async def get_user_email(handler: AdminHandler, call: Call) -> Answer:
    return Answer(200, USER_EMAIL.single(await handler.get_user_email(call.params["id"])))


async def add_user_email(handler: AdminHandler, call: Call) -> Answer:
    email = await handler.add_user_email(call.body["user_id"], call.body["email"])
    return Answer(201, USER_EMAIL.single(email))


async def delete_user_email(handler: AdminHandler, call: Call) -> Answer:
    await handler.delete_user_email(call.params["id"])
    return Answer(204)


async def get_user_session(handler: AdminHandler, call: Call) -> Answer:
    return Answer(200, USER_SESSION.single(await handler.get_user_session(call.params["id"])))


async def finish_user_session(handler: AdminHandler, call: Call) -> Answer:
    session = await handler.finish_user_session(call.params["id"])
    return Answer(200, USER_SESSION.single(session, f"{USER_SESSION.path}/{session.id}/finish"))


async def get_compat_session(handler: AdminHandler, call: Call) -> Answer:
    return Answer(200, COMPAT_SESSION.single(await handler.get_compat_session(call.params["id"])))


async def finish_compat_session(handler: AdminHandler, call: Call) -> Answer:
    session = await handler.finish_compat_session(call.params["id"])
    return Answer(200, COMPAT_SESSION.single(session, f"{COMPAT_SESSION.path}/{session.id}/finish"))


async def get_oauth2_session(handler: AdminHandler, call: Call) -> Answer:
    return Answer(200, OAUTH2_SESSION.single(await handler.get_oauth2_session(call.params["id"])))


async def finish_oauth2_session(handler: AdminHandler, call: Call) -> Answer:
    session = await handler.finish_oauth2_session(call.params["id"])
    return Answer(200, OAUTH2_SESSION.single(session, f"{OAUTH2_SESSION.path}/{session.id}/finish"))


async def site_config(handler: AdminHandler, call: Call) -> Answer:
    return Answer(200, handler.site_config())


async def version(handler: AdminHandler, call: Call) -> Answer:
    return Answer(200, {"version": __version__})


# -- the table ----------------------------------------------------------------------------------
def _ok(kind: Kind, description: str) -> Response:
    return Response(200, description, f"SingleResponse_for_{kind.name}")


def _not_found(what: str) -> Response:
    return Response(404, f"{what} was not found")


def _list_ok(kind: Kind, what: str) -> Response:
    return Response(200, f"Paginated response of {what}", f"PaginatedResponse_for_{kind.name}")


_ID = path_id()
_USERNAME = Param(
    "username", "username", {"type": "string"}, "The username (localpart) of the user", location="path"
)

CREATE_USER_BODY = Body(
    "AddUserRequest",
    "JSON payload for the `POST /api/admin/v1/users` endpoint",
    (
        Field("username", ("string",), "The username of the user to add.", required=True),
        Field(
            "skip_homeserver_check",
            ("boolean",),
            "Skip checking with the homeserver whether the username is available.",
            default=False,
        ),
        Field("displayname", ("string", "null"), "The displayname of the user to add."),
        Field("avatar_url", ("string", "null"), "The avatar URL of the user to add (not used yet)."),
    ),
)
SET_PASSWORD_BODY = Body(
    "SetUserPasswordRequest",
    "JSON payload for the `POST /api/admin/v1/users/:id/set-password` endpoint",
    (
        Field("password", ("string",), "The password to set for the user", required=True),
        Field("skip_password_check", ("boolean", "null"), "Skip the password complexity check"),
    ),
)
SET_ADMIN_BODY = Body(
    "UserSetAdminRequest",
    "JSON payload for the `POST /api/admin/v1/users/:id/set-admin` endpoint",
    (Field("admin", ("boolean",), "Whether the user can request admin privileges.", required=True),),
)
DEACTIVATE_BODY = Body(
    "DeactivateUserRequest",
    "JSON payload for the `POST /api/admin/v1/users/:id/deactivate` endpoint",
    (
        Field(
            "skip_erase",
            ("boolean",),
            "Whether to skip requesting the homeserver to GDPR-erase the user upon deactivation.",
            default=False,
        ),
    ),
    optional=True,
)
ADD_EMAIL_BODY = Body(
    "AddUserEmailRequest",
    "JSON payload for the `POST /api/admin/v1/user-emails` endpoint",
    (
        Field(
            "user_id",
            ("string",),
            "The ID of the user to which the email should be added.",
            required=True,
            extra_schema={"pattern": "^[0123456789ABCDEFGHJKMNPQRSTVWXYZ]{26}$"},
            check=parse_ulid,
        ),
        Field(
            "email",
            ("string",),
            "The email address of the user to add.",
            required=True,
            extra_schema={"format": "email"},
        ),
    ),
)


def _uint32(value: Any) -> int:
    if not 0 <= value <= 2**32 - 1:
        raise InvalidValue(f"{value} is out of range")
    return int(value)


_EXPIRES_IN = Field(
    "expires_in",
    ("integer", "null"),
    "Token expiry time in seconds. If not set, the token won't expire.",
    extra_schema={"format": "uint32", "minimum": 0, "maximum": 2**32 - 1},
    check=_uint32,
)
CREATE_PERSONAL_SESSION_BODY = Body(
    "CreatePersonalSessionRequest",
    "JSON payload for the `POST /api/admin/v1/personal-sessions` endpoint",
    (
        Field(
            "actor_user_id",
            ("string",),
            "The user this session will act on behalf of",
            required=True,
            extra_schema={"pattern": "^[0123456789ABCDEFGHJKMNPQRSTVWXYZ]{26}$"},
            check=parse_ulid,
        ),
        Field("human_name", ("string",), "Human-readable name for the session", required=True),
        Field("scope", ("string",), "`OAuth2` scopes for this session", required=True),
        _EXPIRES_IN,
    ),
)
_USAGE_LIMIT_SCHEMA = {"minimum": 0, "maximum": 2**32 - 1}
ADD_REGISTRATION_TOKEN_BODY = Body(
    "AddUserRegistrationTokenRequest",
    "JSON payload for the `POST /api/admin/v1/user-registration-tokens`",
    (
        Field(
            "token",
            ("string", "null"),
            "The token string. If not provided, a random token will be generated.",
        ),
        Field(
            "usage_limit",
            ("integer", "null"),
            "Maximum number of times this token can be used. If not provided, it can be used an unlimited number of times.",
            extra_schema=_USAGE_LIMIT_SCHEMA,
            check=_uint32,
        ),
        Field(
            "expires_at",
            ("string", "null"),
            "When the token expires. If not provided, the token never expires.",
            extra_schema={"format": "date-time"},
            check=_expires_at,
        ),
    ),
)
UPDATE_REGISTRATION_TOKEN_BODY = Body(
    "EditUserRegistrationTokenRequest",
    "JSON payload for the `PUT /api/admin/v1/user-registration-tokens/{id}` endpoint",
    (
        Field(
            "expires_at",
            ("string", "null"),
            "New expiration date for the token, or null to remove expiration",
            default=MISSING,
            extra_schema={"format": "date-time"},
            check=_expires_at,
        ),
        Field(
            "usage_limit",
            ("integer", "null"),
            "New usage limit for the token, or null to remove the limit",
            default=MISSING,
            extra_schema=_USAGE_LIMIT_SCHEMA,
            check=_uint32,
        ),
    ),
)
SET_POLICY_DATA_BODY = Body(
    "SetPolicyDataRequest",
    "JSON payload for the `POST /api/admin/v1/policy-data`",
    (
        Field(
            "data",
            ("object",),
            "The policy data, merged over the configuration's `policy.data` (a JSON object)",
            required=True,
            extra_schema={"examples": [{"hello": "world", "foo": 42, "bar": True}]},
        ),
    ),
)
_ULID_PATTERN = {"pattern": "^[0123456789ABCDEFGHJKMNPQRSTVWXYZ]{26}$"}
ADD_UPSTREAM_OAUTH_LINK_BODY = Body(
    "AddUpstreamOauthLinkRequest",
    "JSON payload for the `POST /api/admin/v1/upstream-oauth-links`",
    (
        Field(
            "user_id",
            ("string",),
            "The ID of the user to which the link should be added.",
            required=True,
            extra_schema=_ULID_PATTERN,
            check=parse_ulid,
        ),
        Field(
            "provider_id",
            ("string",),
            "The ID of the upstream provider to which the link is for.",
            required=True,
            extra_schema=_ULID_PATTERN,
            check=parse_ulid,
        ),
        Field("subject", ("string",), "The subject (sub) claim of the user on the provider.", required=True),
        Field("human_account_name", ("string", "null"), "A human readable account name."),
    ),
)
REGENERATE_PERSONAL_SESSION_BODY = Body(
    "RegeneratePersonalSessionRequest",
    "JSON payload for the `POST /api/admin/v1/personal-sessions/{id}/regenerate` endpoint",
    (_EXPIRES_IN,),
)


def _user_route(name: str, operation_id: str, summary: str, body: Body | None = None) -> Route:
    return Route(
        "POST",
        f"{PREFIX}/users/{{id}}/{name}",
        operation_id,
        summary,
        "user",
        _user_action(name),
        (_ok(USER, f"The user, after: {summary.lower()}"), _not_found("User")),
        params=(_ID,),
        body=body,
    )


def _session_routes(
    kind: Kind,
    tag: str,
    what: str,
    filters: tuple[Param, ...],
    run_list: Any,
    run_get: Any,
    run_finish: Any,
    ids: tuple[str, str, str],
) -> tuple[Route, ...]:
    return (
        Route(
            "GET",
            kind.path,
            ids[0],
            f"List {what}s",
            tag,
            run_list,
            (_list_ok(kind, f"{what}s"), _not_found("A user, client or browser session of the filters")),
            params=PAGINATION + filters,
        ),
        Route(
            "GET",
            f"{kind.path}/{{id}}",
            ids[1],
            f"Get a {what}",
            tag,
            run_get,
            (_ok(kind, f"The {what}"), _not_found(what.capitalize())),
            params=(_ID,),
        ),
        Route(
            "POST",
            f"{kind.path}/{{id}}/finish",
            ids[2],
            f"Finish a {what}",
            tag,
            run_finish,
            (_ok(kind, f"The {what}, finished"), _not_found(what.capitalize())),
            params=(_ID,),
        ),
    )


ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        f"{PREFIX}/site-config",
        "siteConfig",
        "Get informations about the configuration of this MAS instance",
        "server",
        site_config,
        (Response(200, "Some configuration values", "SiteConfig"),),
    ),
    Route(
        "GET",
        f"{PREFIX}/version",
        "version",
        "Get the version currently running",
        "server",
        version,
        (Response(200, "The version", "Version"),),
    ),
    Route(
        "GET",
        USER.path,
        "listUsers",
        "List users",
        "user",
        list_users,
        (_list_ok(USER, "users"), _not_found("A client of the filters")),
        params=PAGINATION + USER_FILTERS,
    ),
    Route(
        "POST",
        USER.path,
        "createUser",
        "Create a new user",
        "user",
        create_user,
        (
            Response(201, "User was created", "SingleResponse_for_User"),
            Response(409, "User already exists, or the username is reserved by the homeserver"),
            Response(503, "The homeserver could not be asked whether the username is available"),
        ),
        body=CREATE_USER_BODY,
    ),
    Route(
        "GET",
        f"{USER.path}/{{id}}",
        "getUser",
        "Get a user",
        "user",
        get_user,
        (_ok(USER, "User was found"), _not_found("User")),
        params=(_ID,),
    ),
    Route(
        "POST",
        f"{USER.path}/{{id}}/set-password",
        "setUserPassword",
        "Set the password for a user",
        "user",
        set_password,
        (
            Response(204, "Password was set", None),
            Response(403, "Password auth is disabled in the server configuration"),
            _not_found("User"),
        ),
        params=(_ID,),
        body=SET_PASSWORD_BODY,
    ),
    Route(
        "GET",
        f"{USER.path}/by-username/{{username}}",
        "getUserByUsername",
        "Get a user by its username (localpart)",
        "user",
        get_user_by_username,
        (_ok(USER, "User was found"), _not_found("User")),
        params=(_USERNAME,),
    ),
    _user_route("set-admin", "userSetAdmin", "Set whether a user can request admin", SET_ADMIN_BODY),
    _user_route("deactivate", "deactivateUser", "Deactivate a user", DEACTIVATE_BODY),
    _user_route("reactivate", "reactivateUser", "Reactivate a user"),
    _user_route("lock", "lockUser", "Lock a user"),
    _user_route("unlock", "unlockUser", "Unlock a user"),
    Route(
        "GET",
        USER_EMAIL.path,
        "listUserEmails",
        "List user emails",
        "user-email",
        list_user_emails,
        (_list_ok(USER_EMAIL, "user emails"), _not_found("User")),
        params=PAGINATION + EMAIL_FILTERS,
    ),
    Route(
        "POST",
        USER_EMAIL.path,
        "addUserEmail",
        "Add a user email",
        "user-email",
        add_user_email,
        (
            Response(201, "User email was created", "SingleResponse_for_UserEmail"),
            Response(409, "Email already in use"),
            _not_found("User"),
        ),
        body=ADD_EMAIL_BODY,
    ),
    Route(
        "GET",
        f"{USER_EMAIL.path}/{{id}}",
        "getUserEmail",
        "Get a user email",
        "user-email",
        get_user_email,
        (_ok(USER_EMAIL, "User email was found"), _not_found("User email")),
        params=(_ID,),
    ),
    Route(
        "DELETE",
        f"{USER_EMAIL.path}/{{id}}",
        "deleteUserEmail",
        "Delete a user email",
        "user-email",
        delete_user_email,
        (Response(204, "User email was found", None), _not_found("User email")),
        params=(_ID,),
    ),
    *_session_routes(
        USER_SESSION,
        "user-session",
        "user session",
        USER_SESSION_FILTERS,
        list_user_sessions,
        get_user_session,
        finish_user_session,
        ("listUserSessions", "getUserSession", "finishUserSession"),
    ),
    *_session_routes(
        COMPAT_SESSION,
        "compat-session",
        "compatibility session",
        COMPAT_FILTERS,
        list_compat_sessions,
        get_compat_session,
        finish_compat_session,
        ("listCompatSessions", "getCompatSession", "finishCompatSession"),
    ),
    *_session_routes(
        OAUTH2_SESSION,
        "oauth2-session",
        "OAuth 2.0 session",
        OAUTH2_FILTERS,
        list_oauth2_sessions,
        get_oauth2_session,
        finish_oauth2_session,
        ("listOAuth2Sessions", "getOAuth2Session", "finishOAuth2Session"),
    ),
    Route(
        "GET",
        PERSONAL_SESSION.path,
        "listPersonalSessions",
        "List personal sessions",
        "personal-session",
        list_personal_sessions,
        (_list_ok(PERSONAL_SESSION, "personal sessions"), _not_found("A user or client of the filters")),
        params=PAGINATION + PERSONAL_FILTERS,
    ),
    Route(
        "POST",
        PERSONAL_SESSION.path,
        "createPersonalSession",
        "Create a new personal session with personal access token",
        "personal-session",
        create_personal_session,
        (
            Response(
                201,
                "Personal session and personal access token were created",
                "SingleResponse_for_PersonalSession",
            ),
            Response(400, "Invalid scope provided"),
            _not_found("User"),
            Response(410, "The user is deactivated"),
            Response(503, "The homeserver could not create a device of the scope"),
        ),
        body=CREATE_PERSONAL_SESSION_BODY,
    ),
    Route(
        "GET",
        f"{PERSONAL_SESSION.path}/{{id}}",
        "getPersonalSession",
        "Get a personal session",
        "personal-session",
        get_personal_session,
        (_ok(PERSONAL_SESSION, "Personal session details"), _not_found("Personal session")),
        params=(_ID,),
    ),
    Route(
        "POST",
        f"{PERSONAL_SESSION.path}/{{id}}/revoke",
        "revokePersonalSession",
        "Revoke a personal session",
        "personal-session",
        revoke_personal_session,
        (
            _ok(PERSONAL_SESSION, "Personal session was revoked"),
            _not_found("Personal session"),
            Response(409, "Personal session already revoked"),
        ),
        params=(_ID,),
    ),
    Route(
        "POST",
        f"{PERSONAL_SESSION.path}/{{id}}/regenerate",
        "regeneratePersonalSession",
        "Regenerate a personal session by replacing its personal access token",
        "personal-session",
        regenerate_personal_session,
        (
            Response(
                201,
                "Personal session was regenerated and a personal access token was created",
                "SingleResponse_for_PersonalSession",
            ),
            Response(403, "The session belongs to another owner"),
            _not_found("Personal session"),
            Response(422, "The session is revoked"),
        ),
        params=(_ID,),
        body=REGENERATE_PERSONAL_SESSION_BODY,
    ),
    Route(
        "GET",
        REGISTRATION_TOKEN.path,
        "listUserRegistrationTokens",
        "List user registration tokens",
        "user-registration-token",
        list_registration_tokens,
        (_list_ok(REGISTRATION_TOKEN, "registration tokens"),),
        params=PAGINATION + REGISTRATION_TOKEN_FILTERS,
    ),
    Route(
        "POST",
        REGISTRATION_TOKEN.path,
        "addUserRegistrationToken",
        "Create a new user registration token",
        "user-registration-token",
        add_registration_token,
        (
            Response(
                201, "A new user registration token was created", "SingleResponse_for_UserRegistrationToken"
            ),
            Response(409, "A token with the same string already exists"),
        ),
        body=ADD_REGISTRATION_TOKEN_BODY,
    ),
    Route(
        "GET",
        f"{REGISTRATION_TOKEN.path}/{{id}}",
        "getUserRegistrationToken",
        "Get a user registration token",
        "user-registration-token",
        get_registration_token,
        (_ok(REGISTRATION_TOKEN, "Registration token was found"), _not_found("Registration token")),
        params=(_ID,),
    ),
    Route(
        "PUT",
        f"{REGISTRATION_TOKEN.path}/{{id}}",
        "updateUserRegistrationToken",
        "Update a user registration token",
        "user-registration-token",
        update_registration_token,
        (_ok(REGISTRATION_TOKEN, "Registration token was updated"), _not_found("Registration token")),
        params=(_ID,),
        body=UPDATE_REGISTRATION_TOKEN_BODY,
    ),
    Route(
        "POST",
        f"{REGISTRATION_TOKEN.path}/{{id}}/revoke",
        "revokeUserRegistrationToken",
        "Revoke a user registration token",
        "user-registration-token",
        revoke_registration_token,
        (_ok(REGISTRATION_TOKEN, "Registration token was revoked"), _not_found("Registration token")),
        params=(_ID,),
    ),
    Route(
        "POST",
        f"{REGISTRATION_TOKEN.path}/{{id}}/unrevoke",
        "unrevokeUserRegistrationToken",
        "Unrevoke a user registration token",
        "user-registration-token",
        unrevoke_registration_token,
        (_ok(REGISTRATION_TOKEN, "Registration token was unrevoked"), _not_found("Registration token")),
        params=(_ID,),
    ),
    Route(
        "GET",
        OAUTH2_CLIENT.path,
        "listOAuth2Clients",
        "List OAuth 2.0 clients",
        "oauth2-client",
        list_oauth2_clients,
        (_list_ok(OAUTH2_CLIENT, "OAuth 2.0 clients"),),
        params=PAGINATION + OAUTH2_CLIENT_FILTERS,
    ),
    Route(
        "GET",
        f"{OAUTH2_CLIENT.path}/{{id}}",
        "getOAuth2Client",
        "Get an OAuth 2.0 client",
        "oauth2-client",
        get_oauth2_client,
        (_ok(OAUTH2_CLIENT, "OAuth 2.0 client was found"), _not_found("OAuth 2.0 client")),
        params=(_ID,),
    ),
    Route(
        "GET",
        UPSTREAM_OAUTH_LINK.path,
        "listUpstreamOAuthLinks",
        "List upstream OAuth 2.0 links",
        "upstream-oauth-link",
        list_upstream_oauth_links,
        (_list_ok(UPSTREAM_OAUTH_LINK, "upstream OAuth 2.0 links"), _not_found("User or provider")),
        params=PAGINATION + UPSTREAM_OAUTH_LINK_FILTERS,
    ),
    Route(
        "POST",
        UPSTREAM_OAUTH_LINK.path,
        "addUpstreamOAuthLink",
        "Add an upstream OAuth 2.0 link",
        "upstream-oauth-link",
        add_upstream_oauth_link,
        (
            _ok(UPSTREAM_OAUTH_LINK, "An existing Upstream OAuth 2.0 link was associated to a user"),
            Response(
                201, "A new Upstream OAuth 2.0 link was created", "SingleResponse_for_UpstreamOAuthLink"
            ),
            _not_found("User or provider"),
            Response(409, "The subject from the provider is already linked to another user"),
        ),
        body=ADD_UPSTREAM_OAUTH_LINK_BODY,
    ),
    Route(
        "GET",
        f"{UPSTREAM_OAUTH_LINK.path}/{{id}}",
        "getUpstreamOAuthLink",
        "Get an upstream OAuth 2.0 link",
        "upstream-oauth-link",
        get_upstream_oauth_link,
        (
            _ok(UPSTREAM_OAUTH_LINK, "Upstream OAuth 2.0 link was found"),
            _not_found("Upstream OAuth 2.0 link"),
        ),
        params=(_ID,),
    ),
    Route(
        "DELETE",
        f"{UPSTREAM_OAUTH_LINK.path}/{{id}}",
        "deleteUpstreamOAuthLink",
        "Delete an upstream OAuth 2.0 link",
        "upstream-oauth-link",
        delete_upstream_oauth_link,
        (Response(204, "Upstream OAuth 2.0 link was deleted", None), _not_found("Upstream OAuth 2.0 link")),
        params=(_ID,),
    ),
    Route(
        "GET",
        UPSTREAM_OAUTH_PROVIDER.path,
        "listUpstreamOAuthProviders",
        "List upstream OAuth 2.0 providers",
        "upstream-oauth-provider",
        list_upstream_oauth_providers,
        (_list_ok(UPSTREAM_OAUTH_PROVIDER, "upstream OAuth 2.0 providers"),),
        params=PAGINATION + UPSTREAM_OAUTH_PROVIDER_FILTERS,
    ),
    Route(
        "GET",
        f"{UPSTREAM_OAUTH_PROVIDER.path}/{{id}}",
        "getUpstreamOAuthProvider",
        "Get upstream OAuth provider",
        "upstream-oauth-provider",
        get_upstream_oauth_provider,
        (_ok(UPSTREAM_OAUTH_PROVIDER, "The upstream OAuth provider"), Response(404, "Provider not found")),
        params=(_ID,),
    ),
    Route(
        "POST",
        POLICY_DATA.path,
        "setPolicyData",
        "Set the current policy data",
        "policy-data",
        set_policy_data,
        (
            Response(201, "Policy data was successfully set", "SingleResponse_for_PolicyData"),
            Response(400, "Invalid policy data"),
        ),
        body=SET_POLICY_DATA_BODY,
    ),
    Route(
        "GET",
        f"{POLICY_DATA.path}/latest",
        "getLatestPolicyData",
        "Get the latest policy data",
        "policy-data",
        get_latest_policy_data,
        (_ok(POLICY_DATA, "Latest policy data was found"), Response(404, "No policy data was found")),
    ),
    Route(
        "GET",
        f"{POLICY_DATA.path}/{{id}}",
        "getPolicyData",
        "Get policy data by ID",
        "policy-data",
        get_policy_data,
        (_ok(POLICY_DATA, "Policy data was found"), _not_found("Policy data")),
        params=(_ID,),
    ),
)
