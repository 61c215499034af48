# SPDX-License-Identifier: AGPL-3.0-only
"""What the account pages show of a user's sessions and profile (MAS's account SPA, whose
GraphQL types are ``BrowserSession``, ``Oauth2Session`` and ``CompatSession``; inventory §4,
§5): plain values built by :mod:`mas_twisted.handlers.account`, rendered by
``templates/pages/account/``.
"""

from __future__ import annotations

import enum

import attrs


class SessionKind(str, enum.Enum):
    """Which table a session of the list comes from."""

    BROWSER = "browser"
    OAUTH2 = "oauth2"
    COMPAT = "compat"
    #: A personal session (an ``mpt_`` token acting as the user).
    PERSONAL = "personal"


@attrs.frozen
class AccountSession:
    """One session of the user, as the sessions list and a session's page show it."""

    kind: SessionKind
    id: str
    #: What the user sees it as: the name they gave the device, else the client and the
    #: device parsed from the User-Agent (``handlers/device_name.py``).
    name: str
    created_at: int
    #: The Matrix device of an OAuth 2.0 (device scope) or compatibility session.
    device_id: str | None = None
    #: The OAuth 2.0 client's name (its id when unnamed); ``None`` for other kinds.
    client_name: str | None = None
    client_id: str | None = None
    #: The device parsed from the User-Agent ("Firefox for Linux").
    device_description: str | None = None
    user_agent: str | None = None
    last_active_at: int | None = None
    last_active_ip: str | None = None
    finished_at: int | None = None
    #: The browser session this page is being viewed from.
    is_current: bool = False
    #: The scope of an OAuth 2.0 session, as a string.
    scope: str | None = None
    #: When the token of a personal session expires (``None``: never, or another kind).
    expires_at: int | None = None

    @property
    def is_active(self) -> bool:
        return self.finished_at is None

    @property
    def can_rename(self) -> bool:
        """Only a session with a Matrix device has a name to change (a personal session's name
        is its token's, set when it was created)."""
        return (
            self.device_id is not None and self.finished_at is None and self.kind is not SessionKind.PERSONAL
        )


@attrs.frozen
class AccountProfile:
    """The user as the homeserver knows them (``query_user``), when it answered."""

    mxid: str
    display_name: str | None = None
    #: An ``mxc://`` URI, shown as text (the pages load images from this service only).
    avatar_url: str | None = None
    #: ``False`` when the homeserver could not be asked: the values above are then unknown.
    reachable: bool = True

    @property
    def initial(self) -> str:
        """The letter of the placeholder avatar."""
        source = self.display_name or self.mxid.lstrip("@")
        return source[:1].upper() or "?"
