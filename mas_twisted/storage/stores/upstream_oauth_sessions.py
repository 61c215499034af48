# SPDX-License-Identifier: AGPL-3.0-only
"""Storage for upstream login attempts and the links they resolve to (MAS's
``crates/storage-pg/src/upstream_oauth2/{session,link}.rs``: tables
``upstream_oauth_authorization_sessions`` and ``upstream_oauth_links``).

A session goes pending → completed (the callback: one conditional UPDATE, so a replayed
callback finds it completed and is refused) → consumed (the login or registration it allowed:
again conditional, in the same transaction as the browser session, user and link it writes).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from mas_twisted.storage._base import SQLBaseStore
from mas_twisted.storage.database import DatabasePool, LoggingTransaction
from mas_twisted.storage.stores.browser_sessions import (
    add_browser_session_authentication_txn,
    add_browser_session_txn,
)
from mas_twisted.storage.stores.user_emails import add_user_email_txn
from mas_twisted.storage.stores.user_registrations import use_registration_token_txn
from mas_twisted.storage.stores.users import add_user_txn, user_exists_txn
from mas_twisted.types.columns import to_db_json
from mas_twisted.types.upstream import UpstreamOAuthAuthorizationSession, UpstreamOAuthLink
from mas_twisted.types.users import BrowserSession, BrowserSessionAuthentication, User, UserEmail

logger = logging.getLogger(__name__)

SESSIONS = "upstream_oauth_authorization_sessions"
LINKS = "upstream_oauth_links"

Also = Callable[[LoggingTransaction], object] | None


class SessionAlreadyUsedError(Exception):
    """The authorization session was already completed (callback) or consumed (link page)."""


class RegistrationTokenInvalidError(Exception):
    """The registration token stopped being valid meanwhile (used up, expired, revoked)."""


class UsernameTakenError(Exception):
    """The username of an upstream registration was taken meanwhile."""


def get_link_txn(txn: LoggingTransaction, link_id: str) -> UpstreamOAuthLink | None:
    row = DatabasePool.simple_select_one_txn(
        txn, LINKS, {"upstream_oauth_link_id": link_id}, UpstreamOAuthLink.COLUMNS, allow_none=True
    )
    return UpstreamOAuthLink.from_row(row) if row else None


def find_link_txn(txn: LoggingTransaction, provider_id: str, subject: str) -> UpstreamOAuthLink | None:
    row = DatabasePool.simple_select_one_txn(
        txn,
        LINKS,
        {"upstream_oauth_provider_id": provider_id, "subject": subject},
        UpstreamOAuthLink.COLUMNS,
        allow_none=True,
    )
    return UpstreamOAuthLink.from_row(row) if row else None


def _consume_txn(txn: LoggingTransaction, session_id: str, user_session_id: str | None, now: int) -> None:
    txn.execute(
        f"UPDATE {SESSIONS} SET consumed_at = ?, user_session_id = ?"
        " WHERE upstream_oauth_authorization_session_id = ? AND completed_at IS NOT NULL"
        " AND consumed_at IS NULL",
        (now, user_session_id, session_id),
    )
    if txn.rowcount != 1:
        raise SessionAlreadyUsedError()


def _start_session_txn(
    txn: LoggingTransaction, session: BrowserSession | None, authentication: BrowserSessionAuthentication
) -> None:
    if session is not None:
        add_browser_session_txn(txn, session)
    add_browser_session_authentication_txn(txn, authentication)


class UpstreamOAuthSessionStore(SQLBaseStore):
    async def add_authorization_session(self, session: UpstreamOAuthAuthorizationSession) -> None:
        await self.db_pool.simple_insert(
            SESSIONS, session.to_row(), desc="add_upstream_authorization_session"
        )

    async def get_authorization_session(self, session_id: str) -> UpstreamOAuthAuthorizationSession | None:
        row = await self.db_pool.simple_select_one(
            SESSIONS,
            {"upstream_oauth_authorization_session_id": session_id},
            UpstreamOAuthAuthorizationSession.COLUMNS,
            allow_none=True,
            desc="get_upstream_authorization_session",
        )
        return UpstreamOAuthAuthorizationSession.from_row(row) if row else None

    async def get_previous_login_session(
        self, link_id: str, session_id: str
    ) -> UpstreamOAuthAuthorizationSession | None:
        """The last session of the link before ``session_id`` that signed someone in (consumed),
        or ``None``: what the provider's claims were the time before (profile sync)."""
        rows = await self.db_pool.execute(
            "get_previous_upstream_login_session",
            f"SELECT {', '.join(UpstreamOAuthAuthorizationSession.COLUMNS)} FROM {SESSIONS}"
            " WHERE upstream_oauth_link_id = ? AND upstream_oauth_authorization_session_id <> ?"
            " AND consumed_at IS NOT NULL"
            " ORDER BY consumed_at DESC, upstream_oauth_authorization_session_id DESC LIMIT 1",
            link_id,
            session_id,
        )
        return UpstreamOAuthAuthorizationSession.from_row(rows[0]) if rows else None

    async def get_link(self, link_id: str) -> UpstreamOAuthLink | None:
        return await self.db_pool.runInteraction("get_upstream_oauth_link", get_link_txn, link_id)

    async def find_link(self, provider_id: str, subject: str) -> UpstreamOAuthLink | None:
        return await self.db_pool.runInteraction(
            "find_upstream_oauth_link", find_link_txn, provider_id, subject
        )

    async def list_links_for_user(self, user_id: str) -> list[UpstreamOAuthLink]:
        rows = await self.db_pool.simple_select_list(
            LINKS, {"user_id": user_id}, UpstreamOAuthLink.COLUMNS, desc="list_upstream_oauth_links"
        )
        return sorted((UpstreamOAuthLink.from_row(r) for r in rows), key=lambda link: link.id)

    async def complete_authorization_session(
        self,
        session: UpstreamOAuthAuthorizationSession,
        *,
        subject: str,
        human_account_name: str | None,
        new_link_id: str,
        id_token: str | None,
        id_token_claims: Any,
        userinfo: Any,
        extra_callback_parameters: Any,
        now: int,
    ) -> UpstreamOAuthLink:
        """Complete a pending session with the link for ``subject`` (created with
        ``new_link_id`` if the provider never sent that subject before), in one transaction.

        Raises:
            SessionAlreadyUsedError: the session was completed already (a replayed callback).
        """

        def _txn(txn: LoggingTransaction) -> UpstreamOAuthLink:
            link = find_link_txn(txn, session.provider_id, subject)
            if link is None:
                link = UpstreamOAuthLink(
                    id=new_link_id,
                    provider_id=session.provider_id,
                    subject=subject,
                    created_at=now,
                    human_account_name=human_account_name,
                )
                DatabasePool.simple_insert_txn(txn, LINKS, link.to_row())
            elif human_account_name is not None and human_account_name != link.human_account_name:
                txn.execute(
                    f"UPDATE {LINKS} SET human_account_name = ? WHERE upstream_oauth_link_id = ?",
                    (human_account_name, link.id),
                )
            txn.execute(
                f"UPDATE {SESSIONS} SET upstream_oauth_link_id = ?, id_token = ?, id_token_claims = ?,"
                " userinfo = ?, extra_callback_parameters = ?, completed_at = ?"
                " WHERE upstream_oauth_authorization_session_id = ? AND completed_at IS NULL",
                (
                    link.id,
                    id_token,
                    to_db_json(id_token_claims),
                    to_db_json(userinfo),
                    to_db_json(extra_callback_parameters),
                    now,
                    session.id,
                ),
            )
            if txn.rowcount != 1:
                raise SessionAlreadyUsedError()
            return link

        return await self.db_pool.runInteraction("complete_upstream_authorization_session", _txn)

    async def login_through_link(
        self,
        session_id: str,
        browser_session: BrowserSession,
        authentication: BrowserSessionAuthentication,
        *,
        new_session: bool,
        link_to_user: tuple[str, str] | None = None,
        also: Also = None,
    ) -> None:
        """Consume the session and open (or re-authenticate) a browser session, in one
        transaction; ``link_to_user`` = ``(link id, user id)`` first attaches an unlinked link
        to that user (the suggest-link page, ``on_conflict`` add/replace/set).

        Raises:
            SessionAlreadyUsedError: consumed already, or the link got a user meanwhile.
        """

        def _txn(txn: LoggingTransaction) -> None:
            if link_to_user is not None:
                link_id, user_id = link_to_user
                txn.execute(
                    f"UPDATE {LINKS} SET user_id = ? WHERE upstream_oauth_link_id = ? AND user_id IS NULL",
                    (user_id, link_id),
                )
                if txn.rowcount != 1:
                    raise SessionAlreadyUsedError()
            _start_session_txn(txn, browser_session if new_session else None, authentication)
            # After the browser session exists (the column references it); a failure rolls back.
            _consume_txn(txn, session_id, browser_session.id, authentication.created_at)
            if also is not None:
                also(txn)

        await self.db_pool.runInteraction("login_through_upstream_link", _txn)

    async def register_through_link(
        self,
        session_id: str,
        link_id: str,
        *,
        user: User,
        browser_session: BrowserSession,
        authentication: BrowserSessionAuthentication,
        emails: Sequence[UserEmail],
        token_id: str | None = None,
        also: Also = None,
    ) -> None:
        """Create the user of an upstream registration, attach the link, open the browser
        session, record the emails and ``also`` (the provisioning job): one transaction.

        Raises:
            SessionAlreadyUsedError: the session was consumed, or the link got a user meanwhile.
            UsernameTakenError: the username exists now.
            RegistrationTokenInvalidError: ``token_id`` cannot be used once more.
        """

        def _txn(txn: LoggingTransaction) -> None:
            if user_exists_txn(txn, user.username):
                raise UsernameTakenError()
            if token_id is not None and not use_registration_token_txn(txn, token_id, user.created_at):
                raise RegistrationTokenInvalidError()
            add_user_txn(txn, user)
            txn.execute(
                f"UPDATE {LINKS} SET user_id = ? WHERE upstream_oauth_link_id = ? AND user_id IS NULL",
                (user.id, link_id),
            )
            if txn.rowcount != 1:
                raise SessionAlreadyUsedError()
            _start_session_txn(txn, browser_session, authentication)
            _consume_txn(txn, session_id, browser_session.id, user.created_at)
            for email in emails:
                add_user_email_txn(txn, email)
            if also is not None:
                also(txn)

        await self.db_pool.runInteraction("register_through_upstream_link", _txn)

    async def find_sessions_for_logout(
        self, provider_id: str, *, subject: str | None, sid: str | None
    ) -> list[UpstreamOAuthAuthorizationSession]:
        """The consumed sessions of ``provider_id`` whose ID token names ``sub`` and/or ``sid``
        (the back-channel logout's match), newest first."""
        rows = await self.db_pool.simple_select_list(
            SESSIONS,
            {"upstream_oauth_provider_id": provider_id},
            UpstreamOAuthAuthorizationSession.COLUMNS,
            desc="find_upstream_sessions_for_logout",
        )
        out = []
        for row in rows:
            session = UpstreamOAuthAuthorizationSession.from_row(row)
            claims = session.id_token_claims if isinstance(session.id_token_claims, dict) else {}
            if session.user_session_id is None:
                continue
            if subject is not None and claims.get("sub") != subject:
                continue
            if sid is not None and claims.get("sid") != sid:
                continue
            out.append(session)
        return sorted(out, key=lambda s: s.id, reverse=True)

    async def unlink(self, link_id: str, user_id: str) -> bool:
        """Detach ``link_id`` from ``user_id`` (the link stays, for a later registration or
        link); ``False`` if it was not that user's."""

        def _txn(txn: LoggingTransaction) -> bool:
            txn.execute(
                f"UPDATE {LINKS} SET user_id = NULL WHERE upstream_oauth_link_id = ? AND user_id = ?",
                (link_id, user_id),
            )
            return txn.rowcount == 1

        return await self.db_pool.runInteraction("unlink_upstream_oauth_link", _txn)

    async def unlink_keeping_a_way_in(self, link_id: str, user_id: str, *, password_login: bool) -> str:
        """Detach ``link_id`` from ``user_id`` unless it is the user's last way to sign in: no
        other link to an enabled provider, and no password (or ``password_login`` off).
        ``"unlinked"``, ``"missing"`` (not that user's link) or ``"last"``; one serializable
        transaction, so two concurrent unlinks cannot both remove the last two ways in."""

        def _txn(txn: LoggingTransaction) -> str:
            txn.execute(
                f"SELECT 1 FROM {LINKS} WHERE upstream_oauth_link_id = ? AND user_id = ?", (link_id, user_id)
            )
            if txn.fetchone() is None:
                return "missing"
            has_password = False
            if password_login:
                txn.execute("SELECT 1 FROM user_passwords WHERE user_id = ? LIMIT 1", (user_id,))
                has_password = txn.fetchone() is not None
            if not has_password:
                txn.execute(
                    f"SELECT COUNT(*) FROM {LINKS} l JOIN upstream_oauth_providers p"
                    " ON p.upstream_oauth_provider_id = l.upstream_oauth_provider_id"
                    " WHERE l.user_id = ? AND l.upstream_oauth_link_id <> ? AND p.disabled_at IS NULL",
                    (user_id, link_id),
                )
                row = txn.fetchone()
                if not row or int(row[0]) == 0:
                    return "last"
            txn.execute(
                f"UPDATE {LINKS} SET user_id = NULL WHERE upstream_oauth_link_id = ? AND user_id = ?",
                (link_id, user_id),
            )
            return "unlinked" if txn.rowcount == 1 else "missing"

        return await self.db_pool.runInteraction(
            "unlink_upstream_oauth_link_keeping_a_way_in", _txn, isolation_level="serializable"
        )

    async def backchannel_logout(
        self, browser_session_ids: Sequence[str], *, logout_all: bool, at: int, also: Also = None
    ) -> int:
        """Finish the browser sessions (and, with ``logout_all``, the OAuth 2.0 and
        compatibility sessions started from them, their tokens revoked) in one transaction;
        ``also`` (the device syncs) in it too. How many browser sessions were still open."""
        from mas_twisted.storage.stores.browser_sessions import finish_browser_session_txn
        from mas_twisted.storage.stores.oauth2_sessions import finish_oauth2_sessions_for_browser_session_txn

        def _txn(txn: LoggingTransaction) -> int:
            finished = 0
            for session_id in browser_session_ids:
                if logout_all:
                    finish_oauth2_sessions_for_browser_session_txn(txn, session_id, at)
                    txn.execute(
                        "UPDATE compat_sessions SET finished_at = ? WHERE user_session_id = ? AND finished_at IS NULL",
                        (at, session_id),
                    )
                if finish_browser_session_txn(txn, session_id, at):
                    finished += 1
            if also is not None:
                also(txn)
            return finished

        return await self.db_pool.runInteraction("upstream_backchannel_logout", _txn)
