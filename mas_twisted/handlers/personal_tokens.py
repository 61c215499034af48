# SPDX-License-Identifier: AGPL-3.0-only
"""The self-service page of personal access tokens (``/account/personal-tokens``; beyond MAS,
its issue #4492 asks for it): a signed-in user creates, sees and revokes the personal sessions
they own and act as.

- Creating: a name (1 to :data:`MAX_NAME_LENGTH` characters), at least one scope among those
  the user may request (:meth:`PersonalTokensHandler.scope_choices`: the Matrix client API for
  everyone; ``urn:synapse:admin:*`` and ``urn:mas:admin`` only for a user with
  ``can_request_admin``, as the authorization policy allows them), and an expiry among
  :data:`EXPIRY_DAYS` (required: a token made here always expires). The token's text is shown on
  the answer to that form and never again.
- Each token made here gets a device of its own (a generated 10-character device ID in its scope,
  created on the homeserver with the token): a script or bot that uses the token shows up in the
  user's device list, and revoking the token removes the device (``sync-devices``), which also
  makes the homeserver forget what it cached about the token.
- Listing shows no token values (none are stored); revoking is only of the user's own sessions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import attrs

from mas_twisted.oauth2.scope import (
    DEVICE_SCOPE_PREFIX,
    MAS_ADMIN_SCOPE,
    MATRIX_API_SCOPE,
    SYNAPSE_ADMIN_SCOPE,
    Scope,
)
from mas_twisted.templating.forms import FormState

if TYPE_CHECKING:
    from mas_twisted.server import MasServer
    from mas_twisted.types.personal import PersonalSessionWithToken
    from mas_twisted.types.users import User

MAX_NAME_LENGTH = 100
#: The expiries offered, in days.
EXPIRY_DAYS = (1, 7, 30, 90, 365)
_ADMIN_SCOPES = (SYNAPSE_ADMIN_SCOPE, MAS_ADMIN_SCOPE)


@attrs.frozen
class Created:
    """A token made by the form: its session and its text, to show once."""

    session: PersonalSessionWithToken
    token: str


class PersonalTokensHandler:
    def __init__(self, server: MasServer):
        self._personal = server.get_personal_session_handler()
        self._tokens = server.get_token_generator()

    @staticmethod
    def scope_choices(user: User) -> tuple[str, ...]:
        """The scopes ``user`` may give a token."""
        if user.can_request_admin:
            return (MATRIX_API_SCOPE, *_ADMIN_SCOPES)
        return (MATRIX_API_SCOPE,)

    async def list_tokens(self, user: User) -> list[PersonalSessionWithToken]:
        """The user's own personal sessions that act as them, newest first."""
        return [s for s in await self._personal.list_owned_by(user.id) if s.session.actor_user_id == user.id]

    async def create(self, user: User, form: Mapping[str, Sequence[str]]) -> Created | FormState:
        """Create a token from the form's ``name``, ``scope`` (repeated) and ``expires_days``,
        or the refused form's state."""
        from mas_twisted.handlers.personal_sessions import PersonalSessionError

        name = (form.get("name") or [""])[0].strip()
        scopes = list(dict.fromkeys(form.get("scope") or ()))
        days_text = (form.get("expires_days") or [""])[0]
        state = FormState(values={"name": name, "expires_days": days_text})
        if not name:
            state = state.with_field_error("name", "required")
        elif len(name) > MAX_NAME_LENGTH or not name.isprintable():
            state = state.with_field_error("name", "invalid")
        allowed = self.scope_choices(user)
        if not scopes:
            state = state.with_field_error("scope", "required")
        elif any(s not in allowed for s in scopes):
            state = state.with_field_error("scope", "policy")
        if not days_text:
            state = state.with_field_error("expires_days", "required")
        elif days_text not in {str(d) for d in EXPIRY_DAYS}:
            state = state.with_field_error("expires_days", "invalid")
        if not state.is_valid:
            return state
        try:
            session, token = await self._personal.issue(
                owner_user_id=user.id,
                owner_client_id=None,
                actor_user_id=user.id,
                human_name=name,
                scope=Scope([*scopes, DEVICE_SCOPE_PREFIX + self._tokens.device_id()]),
                expires_in=int(days_text) * 86_400,
            )
        except PersonalSessionError as e:
            if e.kind is PersonalSessionError.Kind.DEVICE_PROVISIONING_FAILED:
                return state.with_form_error("homeserver_unavailable")
            return state.with_form_error("internal")
        return Created(session, token)

    async def revoke(self, user: User, session_id: str) -> bool:
        """Revoke one of the user's own sessions; whether it did (unknown, not theirs or already
        revoked: ``False``)."""
        from mas_twisted.handlers.personal_sessions import PersonalSessionError

        try:
            await self._personal.revoke(session_id, owner_user_id=user.id)
        except PersonalSessionError:
            return False
        return True
