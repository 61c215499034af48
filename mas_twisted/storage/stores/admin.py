# SPDX-License-Identifier: AGPL-3.0-only
"""The filtered, paginated lists of the admin API (MAS's ``crates/storage-pg/src/pagination.rs``
and the ``list``/``count`` methods of its repositories, inventory §6).

Every list is keyed by its ULID column: ``page[after]``/``page[before]`` are exclusive bounds on
it, a forward page reads ``count + 1`` rows in ascending order and a backward page ``count + 1``
in descending order (then reversed), and the extra row tells whether there is a next (forward)
or previous (backward) page, as MAS's ``Pagination::process`` does. ULIDs are stored as
upper-case Crockford text, whose byte order is their time order.

Each ``*Filter`` is a frozen attrs class whose fields are ANDed; a ``None`` field does not
filter. Timestamps are epoch milliseconds. The same ``WHERE`` clause serves the page and its
``count``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import attrs

from mas_twisted.storage._base import SQLBaseStore
from mas_twisted.storage.database import DatabasePool, LoggingTransaction
from mas_twisted.storage.stores.personal_sessions import (
    SESSION_WITH_TOKEN_FROM,
    SESSION_WITH_TOKEN_SELECT,
    session_with_token_from_row,
)
from mas_twisted.types.clients import OAuth2Client
from mas_twisted.types.compat import CompatSession
from mas_twisted.types.oauth2 import OAuth2Session
from mas_twisted.types.registrations import UserRegistrationToken
from mas_twisted.types.upstream import UpstreamOAuthLink, UpstreamOAuthProvider
from mas_twisted.types.users import BrowserSession, User, UserEmail

T = TypeVar("T")


@attrs.frozen
class Pagination:
    """One page request: exclusive ULID bounds, the direction and the page size."""

    count: int = 10
    forward: bool = True
    before: str | None = None
    after: str | None = None


@attrs.frozen
class Page(Generic[T]):
    """The items of one page, in ascending id order, and whether more lie on either side."""

    items: list[T]
    has_next_page: bool
    has_previous_page: bool


@attrs.frozen
class _Query:
    """``FROM``, joins and ``WHERE`` terms of one list."""

    table: str
    id_column: str
    where: list[str] = attrs.field(factory=list)
    args: list[Any] = attrs.field(factory=list)

    def add(self, clause: str, *args: Any) -> None:
        self.where.append(clause)
        self.args.extend(args)

    def where_sql(self) -> str:
        return (" WHERE " + " AND ".join(self.where)) if self.where else ""


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _in_clause(column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
    return f"{column} IN ({', '.join('?' for _ in values)})", list(values)


def _dates(
    query: _Query,
    prefix: str,
    created_before: int | None,
    created_after: int | None,
    last_active_before: int | None,
    last_active_after: int | None,
) -> None:
    if created_before is not None:
        query.add(f"{prefix}.created_at < ?", created_before)
    if created_after is not None:
        query.add(f"{prefix}.created_at > ?", created_after)
    if last_active_before is not None:
        query.add(f"{prefix}.last_active_at < ?", last_active_before)
    if last_active_after is not None:
        query.add(f"{prefix}.last_active_at > ?", last_active_after)


def _status(query: _Query, prefix: str, status: str | None) -> None:
    if status == "active":
        query.add(f"{prefix}.finished_at IS NULL")
    elif status == "finished":
        query.add(f"{prefix}.finished_at IS NOT NULL")


def _page_txn(
    txn: LoggingTransaction,
    query: _Query,
    select: str,
    pagination: Pagination,
    from_row: Callable[[Sequence[Any]], T],
) -> Page[T]:
    where, args = list(query.where), list(query.args)
    if pagination.after is not None:
        where.append(f"{query.id_column} > ?")
        args.append(pagination.after)
    if pagination.before is not None:
        where.append(f"{query.id_column} < ?")
        args.append(pagination.before)
    order = "ASC" if pagination.forward else "DESC"
    sql = (
        f"SELECT {select} FROM {query.table}"
        + ((" WHERE " + " AND ".join(where)) if where else "")
        + f" ORDER BY {query.id_column} {order} LIMIT ?"
    )
    txn.execute(sql, (*args, pagination.count + 1))
    rows = txn.fetchall()
    full = len(rows) == pagination.count + 1
    if full:
        rows = rows[:-1]
    if not pagination.forward:
        rows = list(reversed(rows))
    items = [from_row(row) for row in rows]
    return Page(
        items, has_next_page=full and pagination.forward, has_previous_page=full and not pagination.forward
    )


def _count_txn(txn: LoggingTransaction, query: _Query) -> int:
    txn.execute(f"SELECT COUNT(*) FROM {query.table}{query.where_sql()}", tuple(query.args))
    row = txn.fetchone()
    return int(row[0]) if row else 0


# -- filters ----------------------------------------------------------------------------------
@attrs.frozen
class UserFilter:
    """``GET /users`` (MAS's ``UserFilter``)."""

    admin: bool | None = None
    legacy_guest: bool | None = None
    #: A substring of the username (case-insensitive).
    search: str | None = None
    #: ``active``, ``locked`` (deactivated users included) or ``deactivated``.
    status: str | None = None
    #: Users with a valid OAuth 2.0 session of any of these clients.
    active_oauth2_clients: tuple[str, ...] = ()
    has_active_oauth2_session: bool | None = None
    has_active_compat_session: bool | None = None

    def query(self) -> _Query:
        q = _Query("users u", "u.user_id")
        if self.admin is not None:
            q.add("u.can_request_admin = ?", self.admin)
        if self.legacy_guest is not None:
            q.add("u.is_guest = ?", self.legacy_guest)
        if self.search is not None:
            q.add("LOWER(u.username) LIKE ? ESCAPE '\\'", f"%{_like_escape(self.search.lower())}%")
        if self.status == "active":
            q.add("u.locked_at IS NULL AND u.deactivated_at IS NULL")
        elif self.status == "locked":
            q.add("u.locked_at IS NOT NULL")
        elif self.status == "deactivated":
            q.add("u.deactivated_at IS NOT NULL")
        if self.active_oauth2_clients:
            clause, args = _in_clause("s.oauth2_client_id", self.active_oauth2_clients)
            q.add(
                "EXISTS (SELECT 1 FROM oauth2_sessions s WHERE s.user_id = u.user_id"
                f" AND s.finished_at IS NULL AND {clause})",
                *args,
            )
        if self.has_active_oauth2_session is not None:
            q.add(
                ("" if self.has_active_oauth2_session else "NOT ")
                + "EXISTS (SELECT 1 FROM oauth2_sessions s WHERE s.user_id = u.user_id AND s.finished_at IS NULL)"
            )
        if self.has_active_compat_session is not None:
            q.add(
                ("" if self.has_active_compat_session else "NOT ")
                + "EXISTS (SELECT 1 FROM compat_sessions c WHERE c.user_id = u.user_id AND c.finished_at IS NULL)"
            )
        return q


@attrs.frozen
class UserEmailFilter:
    """``GET /user-emails``."""

    user_id: str | None = None
    email: str | None = None

    def query(self) -> _Query:
        q = _Query("user_emails e", "e.user_email_id")
        if self.user_id is not None:
            q.add("e.user_id = ?", self.user_id)
        if self.email is not None:
            q.add("e.email = ?", self.email)
        return q


@attrs.frozen
class SessionDates:
    """The date filters every session list shares (epoch milliseconds, exclusive)."""

    created_before: int | None = None
    created_after: int | None = None
    last_active_before: int | None = None
    last_active_after: int | None = None


@attrs.frozen
class UserSessionFilter:
    """``GET /user-sessions`` (browser sessions)."""

    user_id: str | None = None
    status: str | None = None
    dates: SessionDates = SessionDates()

    def query(self) -> _Query:
        q = _Query("user_sessions s JOIN users u ON u.user_id = s.user_id", "s.user_session_id")
        if self.user_id is not None:
            q.add("s.user_id = ?", self.user_id)
        _status(q, "s", self.status)
        _dates(q, "s", *attrs.astuple(self.dates))
        return q


@attrs.frozen
class CompatSessionFilter:
    """``GET /compat-sessions``."""

    user_id: str | None = None
    user_session_id: str | None = None
    status: str | None = None
    dates: SessionDates = SessionDates()

    def query(self) -> _Query:
        q = _Query("compat_sessions c", "c.compat_session_id")
        if self.user_id is not None:
            q.add("c.user_id = ?", self.user_id)
        if self.user_session_id is not None:
            q.add("c.user_session_id = ?", self.user_session_id)
        _status(q, "c", self.status)
        _dates(q, "c", *attrs.astuple(self.dates))
        return q


@attrs.frozen
class OAuth2SessionFilter:
    """``GET /oauth2-sessions``."""

    user_id: str | None = None
    #: Sessions of any of these clients.
    client_ids: tuple[str, ...] = ()
    #: ``static`` or ``dynamic``.
    client_kind: str | None = None
    user_session_id: str | None = None
    #: Sessions whose scope has every one of these tokens.
    scope: tuple[str, ...] = ()
    status: str | None = None
    dates: SessionDates = SessionDates()

    def query(self) -> _Query:
        q = _Query("oauth2_sessions o", "o.oauth2_session_id")
        if self.user_id is not None:
            q.add("o.user_id = ?", self.user_id)
        if self.client_ids:
            clause, args = _in_clause("o.oauth2_client_id", self.client_ids)
            q.add(clause, *args)
        if self.client_kind is not None:
            q.add(
                "o.oauth2_client_id IN (SELECT oauth2_client_id FROM oauth2_clients WHERE is_static = ?)",
                self.client_kind == "static",
            )
        if self.user_session_id is not None:
            q.add("o.user_session_id = ?", self.user_session_id)
        for token in self.scope:
            # ``scope_list`` is a JSON array of strings: the token appears as its JSON string.
            q.add("o.scope_list LIKE ? ESCAPE '\\'", f"%{_like_escape(json.dumps(token))}%")
        _status(q, "o", self.status)
        _dates(q, "o", *attrs.astuple(self.dates))
        return q


@attrs.frozen
class PersonalSessionFilter:
    """``GET /personal-sessions`` (MAS's ``PersonalSessionFilter``); the expiry filters look at
    the session's token that is not revoked; a revoked session has none, so it has no expiry
    (``expires=false`` matches it, the date filters never do), as MAS's ``LEFT JOIN`` gives."""

    owner_user_id: str | None = None
    owner_client_id: str | None = None
    actor_user_id: str | None = None
    #: Sessions whose scope has every one of these tokens.
    scope: tuple[str, ...] = ()
    #: ``active`` or ``revoked``.
    status: str | None = None
    expires_before: int | None = None
    expires_after: int | None = None
    #: Whether the token has an expiry at all.
    expires: bool | None = None

    def query(self) -> _Query:
        q = _Query(SESSION_WITH_TOKEN_FROM, "s.personal_session_id")
        if self.owner_user_id is not None:
            q.add("s.owner_user_id = ?", self.owner_user_id)
        if self.owner_client_id is not None:
            q.add("s.owner_oauth2_client_id = ?", self.owner_client_id)
        if self.actor_user_id is not None:
            q.add("s.actor_user_id = ?", self.actor_user_id)
        for token in self.scope:
            q.add("s.scope_list LIKE ? ESCAPE '\\'", f"%{_like_escape(json.dumps(token))}%")
        if self.status == "active":
            q.add("s.revoked_at IS NULL")
        elif self.status == "revoked":
            q.add("s.revoked_at IS NOT NULL")
        if self.expires_before is not None:
            q.add("t.expires_at < ?", self.expires_before)
        if self.expires_after is not None:
            q.add("t.expires_at > ?", self.expires_after)
        if self.expires is True:
            q.add("t.expires_at IS NOT NULL")
        elif self.expires is False:
            q.add("t.expires_at IS NULL")
        return q


@attrs.frozen
class RegistrationTokenFilter:
    """``GET /user-registration-tokens`` (MAS's ``UserRegistrationTokenFilter``), at ``now``
    (epoch milliseconds): a token expires at ``expires_at``, as registration checks it."""

    now: int
    used: bool | None = None
    revoked: bool | None = None
    expired: bool | None = None
    valid: bool | None = None

    def query(self) -> _Query:
        q = _Query("user_registration_tokens r", "r.user_registration_token_id")
        if self.used is not None:
            q.add("r.times_used > 0" if self.used else "r.times_used = 0")
        if self.revoked is not None:
            q.add("r.revoked_at IS NOT NULL" if self.revoked else "r.revoked_at IS NULL")
        expired = "(r.expires_at IS NOT NULL AND r.expires_at <= ?)"
        if self.expired is not None:
            q.add(expired if self.expired else f"NOT {expired}", self.now)
        if self.valid is not None:
            valid = (
                "(r.revoked_at IS NULL AND (r.expires_at IS NULL OR r.expires_at > ?)"
                " AND (r.usage_limit IS NULL OR r.times_used < r.usage_limit))"
            )
            q.add(valid if self.valid else f"NOT {valid}", self.now)
        return q


@attrs.frozen
class UpstreamOAuthLinkFilter:
    """``GET /upstream-oauth-links`` (MAS's ``UpstreamOAuthLinkFilter``): the subject exactly,
    the human account name as a case-insensitive substring."""

    user_id: str | None = None
    provider_id: str | None = None
    subject: str | None = None
    human_account_name: str | None = None

    def query(self) -> _Query:
        q = _Query("upstream_oauth_links l", "l.upstream_oauth_link_id")
        if self.user_id is not None:
            q.add("l.user_id = ?", self.user_id)
        if self.provider_id is not None:
            q.add("l.upstream_oauth_provider_id = ?", self.provider_id)
        if self.subject is not None:
            q.add("l.subject = ?", self.subject)
        if self.human_account_name is not None:
            q.add(
                "LOWER(l.human_account_name) LIKE ? ESCAPE '\\'",
                f"%{_like_escape(self.human_account_name.lower())}%",
            )
        return q


@attrs.frozen
class UpstreamOAuthProviderFilter:
    """``GET /upstream-oauth-providers`` (MAS's ``UpstreamOAuthProviderFilter``)."""

    enabled: bool | None = None

    def query(self) -> _Query:
        q = _Query("upstream_oauth_providers p", "p.upstream_oauth_provider_id")
        if self.enabled is not None:
            q.add("p.disabled_at IS NULL" if self.enabled else "p.disabled_at IS NOT NULL")
        return q


#: The grant types with a column of their own; any other matches no client.
_GRANT_TYPE_COLUMNS = {
    "authorization_code": "grant_type_authorization_code",
    "refresh_token": "grant_type_refresh_token",
    "client_credentials": "grant_type_client_credentials",
    "urn:ietf:params:oauth:grant-type:device_code": "grant_type_device_code",
}


@attrs.frozen
class OAuth2ClientFilter:
    """``GET /oauth2-clients`` (MAS's ``OAuth2ClientFilter``): name and URI as case-insensitive
    substrings; a grant type without a column (``implicit``, say) matches nothing."""

    client_kind: str | None = None
    client_name: str | None = None
    client_uri: str | None = None
    grant_type: str | None = None
    has_active_sessions: bool | None = None

    def query(self) -> _Query:
        q = _Query("oauth2_clients c", "c.oauth2_client_id")
        if self.client_kind is not None:
            q.add("c.is_static = ?", self.client_kind == "static")
        for column, value in (("client_name", self.client_name), ("client_uri", self.client_uri)):
            if value is not None:
                q.add(f"LOWER(c.{column}) LIKE ? ESCAPE '\\'", f"%{_like_escape(value.lower())}%")
        if self.grant_type is not None:
            grant_column = _GRANT_TYPE_COLUMNS.get(self.grant_type)
            if grant_column is None:
                q.add("1 = 0")
            else:
                q.add(f"c.{grant_column} = ?", True)
        if self.has_active_sessions is not None:
            exists = (
                "EXISTS (SELECT 1 FROM oauth2_sessions s"
                " WHERE s.oauth2_client_id = c.oauth2_client_id AND s.finished_at IS NULL)"
            )
            q.add(exists if self.has_active_sessions else f"NOT {exists}")
        return q


class LinkConflictError(Exception):
    """The subject at that provider is already linked to a user."""


_USER_SELECT = ", ".join(f"u.{c}" for c in User.COLUMNS)
_EMAIL_SELECT = ", ".join(f"e.{c}" for c in UserEmail.COLUMNS)
_USER_SESSION_SELECT = ", ".join(f"s.{c}" for c in BrowserSession.COLUMNS) + ", " + _USER_SELECT
_COMPAT_SELECT = ", ".join(f"c.{c}" for c in CompatSession.COLUMNS)
_OAUTH2_SELECT = ", ".join(f"o.{c}" for c in OAuth2Session.COLUMNS)
_N_SESSION = len(BrowserSession.COLUMNS)


def _browser_session(row: Sequence[Any]) -> BrowserSession:
    return BrowserSession.from_row(row[:_N_SESSION], User.from_row(row[_N_SESSION:]))


_LISTS: dict[type, tuple[str, Callable[[Sequence[Any]], Any]]] = {
    UserFilter: (_USER_SELECT, User.from_row),
    UserEmailFilter: (_EMAIL_SELECT, UserEmail.from_row),
    UserSessionFilter: (_USER_SESSION_SELECT, _browser_session),
    CompatSessionFilter: (_COMPAT_SELECT, CompatSession.from_row),
    OAuth2SessionFilter: (_OAUTH2_SELECT, OAuth2Session.from_row),
    PersonalSessionFilter: (SESSION_WITH_TOKEN_SELECT, session_with_token_from_row),
    RegistrationTokenFilter: (
        ", ".join(f"r.{c}" for c in UserRegistrationToken.COLUMNS),
        UserRegistrationToken.from_row,
    ),
    OAuth2ClientFilter: (", ".join(f"c.{c}" for c in OAuth2Client.COLUMNS), OAuth2Client.from_row),
    UpstreamOAuthLinkFilter: (
        ", ".join(f"l.{c}" for c in UpstreamOAuthLink.COLUMNS),
        UpstreamOAuthLink.from_row,
    ),
    UpstreamOAuthProviderFilter: (
        ", ".join(f"p.{c}" for c in UpstreamOAuthProvider.COLUMNS),
        UpstreamOAuthProvider.from_row,
    ),
}

AnyFilter = (
    UserFilter
    | UserEmailFilter
    | UserSessionFilter
    | CompatSessionFilter
    | OAuth2SessionFilter
    | PersonalSessionFilter
    | RegistrationTokenFilter
    | UpstreamOAuthLinkFilter
    | UpstreamOAuthProviderFilter
    | OAuth2ClientFilter
)


class AdminListStore(SQLBaseStore):
    """The admin API's lists: a page, its total count, or both, in one transaction."""

    async def list_page(
        self, list_filter: AnyFilter, pagination: Pagination | None, *, count: bool
    ) -> tuple[Page[Any] | None, int | None]:
        """The page ``pagination`` of what ``list_filter`` selects (``None``: no page) and, if
        ``count``, how many it selects in all."""
        select, from_row = _LISTS[type(list_filter)]
        query = list_filter.query()

        def _list_txn(txn: LoggingTransaction) -> tuple[Page[Any] | None, int | None]:
            page = _page_txn(txn, query, select, pagination, from_row) if pagination is not None else None
            total = _count_txn(txn, query) if count else None
            return page, total

        return await self.db_pool.runInteraction(f"admin_list_{type(list_filter).__name__}", _list_txn)

    async def get_user_session(self, session_id: str) -> BrowserSession | None:
        """The browser session ``session_id`` with its user, or ``None``."""
        q = UserSessionFilter().query()
        q.add("s.user_session_id = ?", session_id)

        def _get_txn(txn: LoggingTransaction) -> BrowserSession | None:
            txn.execute(f"SELECT {_USER_SESSION_SELECT} FROM {q.table}{q.where_sql()}", tuple(q.args))
            row = txn.fetchone()
            return _browser_session(row) if row else None

        return await self.db_pool.runInteraction("admin_get_user_session", _get_txn)

    async def get_user_email(self, email_id: str) -> UserEmail | None:
        rows = await self.db_pool.execute(
            "admin_get_user_email",
            f"SELECT {', '.join(UserEmail.COLUMNS)} FROM user_emails WHERE user_email_id = ?",
            email_id,
        )
        return UserEmail.from_row(rows[0]) if rows else None

    async def existing_client_ids(self, client_ids: Sequence[str]) -> set[str]:
        """Which of ``client_ids`` are clients here."""
        if not client_ids:
            return set()
        clause, args = _in_clause("oauth2_client_id", client_ids)
        rows = await self.db_pool.execute(
            "admin_existing_client_ids", f"SELECT oauth2_client_id FROM oauth2_clients WHERE {clause}", *args
        )
        return {row[0] for row in rows}

    # -- state changes of the admin API, each with its jobs (``also``) in one transaction --------
    async def deactivate_user(
        self, user_id: str, at: int, also: Callable[[LoggingTransaction], object]
    ) -> bool:
        """Mark the user deactivated at ``at`` unless they are already; ``also`` runs either way
        (the ``deactivate-user`` job, which ends their sessions and tells the homeserver)."""

        def _deactivate_txn(txn: LoggingTransaction) -> bool:
            txn.execute(
                "UPDATE users SET deactivated_at = ? WHERE user_id = ? AND deactivated_at IS NULL",
                (at, user_id),
            )
            changed = txn.rowcount == 1
            also(txn)
            return changed

        return await self.db_pool.runInteraction("admin_deactivate_user", _deactivate_txn)

    async def add_user_email(
        self, email: UserEmail, also: Callable[[LoggingTransaction], object]
    ) -> UserEmail | None:
        """Add the address unless some user has it already (then that row, nothing added)."""
        from mas_twisted.storage.stores.user_emails import add_user_email_txn, find_user_email_by_email_txn

        def _add_txn(txn: LoggingTransaction) -> UserEmail | None:
            existing = find_user_email_by_email_txn(txn, email.email)
            if existing is not None:
                return existing
            add_user_email_txn(txn, email)
            also(txn)
            return None

        return await self.db_pool.runInteraction("admin_add_user_email", _add_txn)

    async def remove_user_email(self, email_id: str, also: Callable[[LoggingTransaction], object]) -> bool:
        """Delete the address; whether it existed (``also`` runs only then)."""

        def _remove_txn(txn: LoggingTransaction) -> bool:
            txn.execute("DELETE FROM user_emails WHERE user_email_id = ?", (email_id,))
            if txn.rowcount != 1:
                return False
            also(txn)
            return True

        return await self.db_pool.runInteraction("admin_remove_user_email", _remove_txn)

    async def finish_user_session(self, session_id: str, at: int) -> bool:
        """Finish the browser session unless it is finished; whether this finished it."""
        from mas_twisted.storage.stores.browser_sessions import finish_browser_session_txn

        return await self.db_pool.runInteraction(
            "admin_finish_user_session", finish_browser_session_txn, session_id, at
        )

    # -- upstream OAuth links ---------------------------------------------------------------
    async def add_upstream_oauth_link(self, link: UpstreamOAuthLink) -> tuple[UpstreamOAuthLink, bool]:
        """Link ``link.subject`` at ``link.provider_id`` to ``link.user_id`` (MAS's
        ``upstream_oauth_links/add.rs``): a new link, or an existing one that no user holds
        yet given to this user. ``(link, created)``.

        Raises:
            LinkConflictError: a user already holds the subject.
        """

        def _txn(txn: LoggingTransaction) -> tuple[UpstreamOAuthLink, bool]:
            row = link.to_row()
            columns = list(row)
            txn.execute(
                f"INSERT INTO upstream_oauth_links ({', '.join(columns)})"
                f" VALUES ({', '.join('?' for _ in columns)})"
                " ON CONFLICT (upstream_oauth_provider_id, subject) DO NOTHING",
                [row[c] for c in columns],
            )
            if txn.rowcount == 1:
                return link, True
            existing = DatabasePool.simple_select_one_txn(
                txn,
                "upstream_oauth_links",
                {"upstream_oauth_provider_id": link.provider_id, "subject": link.subject},
                UpstreamOAuthLink.COLUMNS,
            )
            assert existing is not None
            found = UpstreamOAuthLink.from_row(existing)
            txn.execute(
                "UPDATE upstream_oauth_links SET user_id = ? WHERE upstream_oauth_link_id = ? AND user_id IS NULL",
                (link.user_id, found.id),
            )
            if txn.rowcount != 1:
                raise LinkConflictError(found.id)
            return attrs.evolve(found, user_id=link.user_id), False

        return await self.db_pool.runInteraction("admin_add_upstream_oauth_link", _txn)

    async def remove_upstream_oauth_link(self, link_id: str, at: int) -> bool:
        """Delete the link; the authorization sessions that used it are marked unlinked at
        ``at`` first (MAS's ``UpstreamOAuthLinkRepository::remove``). Whether it existed."""

        def _txn(txn: LoggingTransaction) -> bool:
            txn.execute(
                "UPDATE upstream_oauth_authorization_sessions SET upstream_oauth_link_id = NULL, unlinked_at = ?"
                " WHERE upstream_oauth_link_id = ?",
                (at, link_id),
            )
            txn.execute("DELETE FROM upstream_oauth_links WHERE upstream_oauth_link_id = ?", (link_id,))
            return txn.rowcount == 1

        return await self.db_pool.runInteraction("admin_remove_upstream_oauth_link", _txn)
