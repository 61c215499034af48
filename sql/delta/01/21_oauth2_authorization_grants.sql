-- SPDX-License-Identifier: AGPL-3.0-only
-- Authorization requests (RFC 6749 §4.1, OIDC Core §3): pending until the user consents
-- (fulfilled_at + user_session_id), then exchanged once at the token endpoint
-- (exchanged_at + oauth2_session_id), or cancelled while pending. MAS's table and column
-- names (inventory §12); raw_parameters is a JSON object in TEXT.
CREATE TABLE oauth2_authorization_grants (
    oauth2_authorization_grant_id TEXT NOT NULL PRIMARY KEY,
    oauth2_client_id TEXT NOT NULL REFERENCES oauth2_clients (oauth2_client_id) ON DELETE CASCADE,
    -- The session the exchange created; the grant goes with it.
    oauth2_session_id TEXT REFERENCES oauth2_sessions (oauth2_session_id) ON DELETE CASCADE,
    -- The browser session that fulfilled the grant.
    user_session_id TEXT REFERENCES user_sessions (user_session_id) ON DELETE SET NULL,
    -- NULL when the response type has no code (id_token alone).
    authorization_code TEXT,
    redirect_uri TEXT NOT NULL,
    scope TEXT NOT NULL,
    state TEXT,
    nonce TEXT,
    response_mode TEXT NOT NULL,
    code_challenge_method TEXT,
    code_challenge TEXT,
    response_type_code BOOLEAN NOT NULL,
    response_type_id_token BOOLEAN NOT NULL,
    login_hint TEXT,
    locale TEXT,
    raw_parameters TEXT,
    created_at BIGINT NOT NULL,
    fulfilled_at BIGINT,
    cancelled_at BIGINT,
    exchanged_at BIGINT
);

CREATE UNIQUE INDEX oauth2_authorization_grants_authorization_code_unique
    ON oauth2_authorization_grants (authorization_code);
CREATE INDEX oauth2_authorization_grants_client_fk ON oauth2_authorization_grants (oauth2_client_id);
CREATE INDEX oauth2_authorization_grants_session_fk ON oauth2_authorization_grants (oauth2_session_id);
CREATE INDEX oauth2_authorization_grants_user_session_id_idx ON oauth2_authorization_grants (user_session_id);
