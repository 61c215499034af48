-- SPDX-License-Identifier: AGPL-3.0-only
-- Device authorization grants (RFC 8628): pending until the user approves (fulfilled_at)
-- or denies (rejected_at) at /device/{id}, then exchanged once by the polling device.
-- MAS's table (singular name) and column names (inventory §12); ip_address as text.
CREATE TABLE oauth2_device_code_grant (
    oauth2_device_code_grant_id TEXT NOT NULL PRIMARY KEY,
    oauth2_client_id TEXT NOT NULL REFERENCES oauth2_clients (oauth2_client_id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    user_code TEXT NOT NULL,
    device_code TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    fulfilled_at BIGINT,
    rejected_at BIGINT,
    exchanged_at BIGINT,
    oauth2_session_id TEXT REFERENCES oauth2_sessions (oauth2_session_id) ON DELETE CASCADE,
    user_session_id TEXT REFERENCES user_sessions (user_session_id),
    ip_address TEXT,
    user_agent TEXT,
    locale TEXT
);

CREATE UNIQUE INDEX oauth2_device_code_grant_user_code_key ON oauth2_device_code_grant (user_code);
CREATE UNIQUE INDEX oauth2_device_code_grant_device_code_key ON oauth2_device_code_grant (device_code);
CREATE INDEX oauth2_device_code_grants_client_fk ON oauth2_device_code_grant (oauth2_client_id);
CREATE INDEX oauth2_device_code_grants_session_fk ON oauth2_device_code_grant (oauth2_session_id);
CREATE INDEX oauth2_device_code_grants_user_session_fk ON oauth2_device_code_grant (user_session_id);
