-- SPDX-License-Identifier: AGPL-3.0-only
-- Links between users and their accounts at an upstream OAuth 2.0 / OpenID Connect provider
-- (MAS's `upstream_oauth_links`, inventory §12): one row per (provider, subject). syn2mas
-- writes them from Synapse's `user_external_ids`; the upstream login flow reads them.
CREATE TABLE upstream_oauth_links (
    upstream_oauth_link_id TEXT NOT NULL PRIMARY KEY,
    upstream_oauth_provider_id TEXT NOT NULL
        REFERENCES upstream_oauth_providers (upstream_oauth_provider_id) ON DELETE CASCADE,
    user_id TEXT REFERENCES users (user_id) ON DELETE CASCADE,
    subject TEXT NOT NULL,
    human_account_name TEXT,
    created_at BIGINT NOT NULL,
    CONSTRAINT upstream_oauth_links_subject_unique UNIQUE (upstream_oauth_provider_id, subject)
);

CREATE INDEX upstream_oauth_links_user_fk ON upstream_oauth_links (user_id);
