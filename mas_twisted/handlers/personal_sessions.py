# SPDX-License-Identifier: AGPL-3.0-only
"""Personal sessions and their ``mpt_`` tokens, as the admin API (MAS's
``admin/v1/personal_sessions/``) and the self-service page (``/account/personal-tokens``) create,
revoke and regenerate them. Plain values in and out; each caller turns the errors here into its
protocol's answer.

- Issuing: the actor must exist and not be deactivated; devices named in the scope are created
  on the homeserver first (MAS does it before committing); the session and its first token are
  one transaction. The token's text is returned once and never stored (its SHA-256 is).
- Revoking: the session and its tokens in one conditional transaction, with ``sync-devices`` for
  the actor when the scope names a device.
- Regenerating: only while the session is valid; the old token is revoked and the new one added
  in one transaction.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from mas_twisted.oauth2.scope import Scope, device_id_from_scope_token
from mas_twisted.types.personal import (
    PersonalAccessToken,
    PersonalSession,
    PersonalSessionWithToken,
    hash_personal_token,
)
from mas_twisted.types.tokens import TokenType

if TYPE_CHECKING:
    from mas_twisted.server import MasServer
    from mas_twisted.storage.database import LoggingTransaction


class PersonalSessionError(Exception):
    """Why an operation on a personal session was refused."""

    class Kind(enum.Enum):
        USER_NOT_FOUND = "user_not_found"
        USER_DEACTIVATED = "user_deactivated"
        DEVICE_PROVISIONING_FAILED = "device_provisioning_failed"
        NOT_FOUND = "not_found"
        ALREADY_REVOKED = "already_revoked"
        NOT_VALID = "not_valid"

    def __init__(self, kind: Kind, debug: str | None = None):
        super().__init__(kind.value)
        self.kind = kind
        self.debug = debug


def has_device(scope: Scope) -> bool:
    return any(device_id_from_scope_token(t) is not None for t in scope.tokens)


class PersonalSessionHandler:
    def __init__(self, server: MasServer):
        self._server = server
        self._clock = server.get_clock()
        self._tokens = server.get_token_generator()
        self._stores = server.get_stores()

    def _new_token(self, session_id: str, expires_in: int | None) -> tuple[str, PersonalAccessToken]:
        now = self._clock.time_msec()
        text = self._tokens.token(TokenType.PERSONAL_ACCESS_TOKEN)
        token = PersonalAccessToken(
            id=self._tokens.ulid(),
            session_id=session_id,
            token_sha256=hash_personal_token(text),
            created_at=now,
            expires_at=now + expires_in * 1000 if expires_in is not None else None,
        )
        return text, token

    async def get(self, session_id: str) -> PersonalSessionWithToken | None:
        return await self._stores.personal_sessions.get_personal_session(session_id)

    async def list_owned_by(self, user_id: str) -> list[PersonalSessionWithToken]:
        return await self._stores.personal_sessions.list_personal_sessions_of_owner(user_id)

    async def issue(
        self,
        *,
        owner_user_id: str | None,
        owner_client_id: str | None,
        actor_user_id: str,
        human_name: str,
        scope: Scope,
        expires_in: int | None,
    ) -> tuple[PersonalSessionWithToken, str]:
        """A new session and its first token's text.

        Raises:
            PersonalSessionError: USER_NOT_FOUND, USER_DEACTIVATED, DEVICE_PROVISIONING_FAILED.
        """
        actor = await self._stores.users.get_user(actor_user_id)
        if actor is None:
            raise PersonalSessionError(PersonalSessionError.Kind.USER_NOT_FOUND)
        if actor.deactivated_at is not None:
            raise PersonalSessionError(PersonalSessionError.Kind.USER_DEACTIVATED)
        homeserver = self._server.get_homeserver_connection()
        for scope_token in scope.tokens:
            device_id = device_id_from_scope_token(scope_token)
            if device_id is None:
                continue
            try:
                await homeserver.upsert_device(actor.username, device_id, None)
            except Exception as e:
                raise PersonalSessionError(
                    PersonalSessionError.Kind.DEVICE_PROVISIONING_FAILED, debug=str(e)
                ) from None
        session = PersonalSession(
            id=self._tokens.ulid(),
            actor_user_id=actor.id,
            human_name=human_name,
            scope=scope,
            created_at=self._clock.time_msec(),
            owner_user_id=owner_user_id,
            owner_client_id=owner_client_id,
        )
        text, token = self._new_token(session.id, expires_in)
        await self._stores.personal_sessions.add_personal_session_with_token(session, token)
        return PersonalSessionWithToken(session, token), text

    async def revoke(self, session_id: str, *, owner_user_id: str | None = None) -> PersonalSessionWithToken:
        """Revoke the session (with ``owner_user_id``: only if that user owns it).

        Raises:
            PersonalSessionError: NOT_FOUND (or not theirs), ALREADY_REVOKED.
        """
        from mas_twisted.queue.base import enqueue_txn
        from mas_twisted.queue.jobs.matrix import SyncDevicesJob

        found = await self.get(session_id)
        if found is None or (owner_user_id is not None and found.session.owner_user_id != owner_user_id):
            raise PersonalSessionError(PersonalSessionError.Kind.NOT_FOUND)
        session = found.session

        def _sync_devices_txn(txn: LoggingTransaction) -> None:
            enqueue_txn(txn, self._server, SyncDevicesJob(user_id=session.actor_user_id))

        revoked = session.is_valid and await self._stores.personal_sessions.revoke_personal_session(
            session.id,
            self._clock.time_msec(),
            owner_user_id=owner_user_id,
            also=_sync_devices_txn if has_device(session.scope) else None,
        )
        if not revoked:
            raise PersonalSessionError(PersonalSessionError.Kind.ALREADY_REVOKED)
        after = await self.get(session_id)
        assert after is not None
        return after

    async def regenerate(
        self, session: PersonalSession, expires_in: int | None
    ) -> tuple[PersonalSessionWithToken, str]:
        """Replace the token of a valid session.

        Raises:
            PersonalSessionError: NOT_VALID (revoked meanwhile).
        """
        text, token = self._new_token(session.id, expires_in)
        if not await self._stores.personal_sessions.regenerate_token(
            session.id, token, self._clock.time_msec()
        ):
            raise PersonalSessionError(PersonalSessionError.Kind.NOT_VALID)
        return PersonalSessionWithToken(session, token), text
