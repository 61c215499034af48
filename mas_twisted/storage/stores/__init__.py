# SPDX-License-Identifier: AGPL-3.0-only
"""``Stores``: one attribute per store, all sharing one database pool (STYLE.md §5.1, §5.9).

``server.get_stores().oauth2_clients.get_oauth2_client(client_id)`` mirrors MAS's
``repo.oauth2_client().lookup(id)``. A new store is a module in this package with a
``<Noun>Store(SQLBaseStore)`` class, added here as one attribute.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mas_twisted.storage.introspection import IntrospectionReader
from mas_twisted.storage.stores.access_tokens import ACCESS_TOKEN_QUERY, AccessTokenStore
from mas_twisted.storage.stores.admin import AdminListStore
from mas_twisted.storage.stores.authorization_grants import AuthorizationGrantStore
from mas_twisted.storage.stores.browser_sessions import BrowserSessionStore
from mas_twisted.storage.stores.compat_sessions import COMPAT_ACCESS_TOKEN_QUERY, CompatSessionStore
from mas_twisted.storage.stores.device_code_grants import DeviceCodeGrantStore
from mas_twisted.storage.stores.mfa import MfaStore
from mas_twisted.storage.stores.oauth2_clients import OAuth2ClientStore
from mas_twisted.storage.stores.oauth2_sessions import OAuth2SessionStore
from mas_twisted.storage.stores.personal_sessions import PersonalSessionStore
from mas_twisted.storage.stores.policy_data import PolicyDataStore
from mas_twisted.storage.stores.queue import QueueStore
from mas_twisted.storage.stores.rate_limits import RateLimitStore
from mas_twisted.storage.stores.refresh_tokens import RefreshTokenStore
from mas_twisted.storage.stores.upstream_oauth_providers import UpstreamOAuthProviderStore
from mas_twisted.storage.stores.upstream_oauth_sessions import UpstreamOAuthSessionStore
from mas_twisted.storage.stores.user_emails import UserEmailStore
from mas_twisted.storage.stores.user_passwords import UserPasswordStore
from mas_twisted.storage.stores.user_recovery import UserRecoveryStore
from mas_twisted.storage.stores.user_registrations import UserRegistrationStore
from mas_twisted.storage.stores.users import UserStore

if TYPE_CHECKING:
    from mas_twisted.storage.database import DatabasePool
    from mas_twisted.util.clock import Clock


class Stores:
    """Every store of the service, and the introspection reader two of them share."""

    def __init__(self, db_pool: DatabasePool, clock: Clock, reactor: Any):
        """``reactor``: the one the introspection reader's own connections run on."""
        self.db_pool = db_pool
        self.introspection = IntrospectionReader(
            db_pool, reactor, (ACCESS_TOKEN_QUERY, COMPAT_ACCESS_TOKEN_QUERY)
        )
        self.oauth2_clients = OAuth2ClientStore(db_pool, clock)
        self.oauth2_sessions = OAuth2SessionStore(db_pool, clock)
        self.authorization_grants = AuthorizationGrantStore(db_pool, clock)
        self.access_tokens = AccessTokenStore(db_pool, clock, self.introspection)
        self.refresh_tokens = RefreshTokenStore(db_pool, clock)
        self.device_code_grants = DeviceCodeGrantStore(db_pool, clock)
        self.upstream_oauth_providers = UpstreamOAuthProviderStore(db_pool, clock)
        self.upstream_oauth_sessions = UpstreamOAuthSessionStore(db_pool, clock)
        self.users = UserStore(db_pool, clock)
        self.user_passwords = UserPasswordStore(db_pool, clock)
        self.user_emails = UserEmailStore(db_pool, clock)
        self.user_registrations = UserRegistrationStore(db_pool, clock)
        self.user_recovery = UserRecoveryStore(db_pool, clock)
        self.browser_sessions = BrowserSessionStore(db_pool, clock)
        self.mfa = MfaStore(db_pool, clock)
        self.queue = QueueStore(db_pool, clock)
        self.compat_sessions = CompatSessionStore(db_pool, clock, self.introspection)
        self.personal_sessions = PersonalSessionStore(db_pool, clock)
        self.policy_data = PolicyDataStore(db_pool, clock)
        self.admin = AdminListStore(db_pool, clock)
        #: PostgreSQL only (its table exists only there): the shared rate limits.
        self.rate_limits = RateLimitStore(db_pool, clock)
