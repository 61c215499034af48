-- SPDX-License-Identifier: AGPL-3.0-only
-- One login attempt through an upstream OpenID Connect provider (MAS's
-- `upstream_oauth_authorization_sessions`, inventory §12): created by /upstream/authorize
-- with its `state`, `nonce` and PKCE verifier; completed by /upstream/callback with the link
-- it resolved to, the validated ID token and its claims, the userinfo and the extra callback
-- parameters (JSON text); consumed once /upstream/link used it to log in or register.
CREATE TABLE upstream_oauth_authorization_sessions (
    upstream_oauth_authorization_session_id TEXT NOT NULL PRIMARY KEY,
    upstream_oauth_provider_id TEXT NOT NULL
        REFERENCES upstream_oauth_providers (upstream_oauth_provider_id) ON DELETE CASCADE,
    upstream_oauth_link_id TEXT REFERENCES upstream_oauth_links (upstream_oauth_link_id) ON DELETE CASCADE,
    user_session_id TEXT REFERENCES user_sessions (user_session_id) ON DELETE SET NULL,
    state TEXT NOT NULL,
    code_challenge_verifier TEXT,
    nonce TEXT,
    id_token TEXT,
    id_token_claims TEXT,
    userinfo TEXT,
    extra_callback_parameters TEXT,
    created_at BIGINT NOT NULL,
    completed_at BIGINT,
    consumed_at BIGINT,
    unlinked_at BIGINT,
    CONSTRAINT upstream_oauth_authorization_sessions_state_unique UNIQUE (state)
);

CREATE INDEX upstream_oauth_authorization_sessions_provider_fk
    ON upstream_oauth_authorization_sessions (upstream_oauth_provider_id);
CREATE INDEX upstream_oauth_authorization_sessions_link_fk
    ON upstream_oauth_authorization_sessions (upstream_oauth_link_id);
CREATE INDEX upstream_oauth_authorization_sessions_user_session_fk
    ON upstream_oauth_authorization_sessions (user_session_id);
