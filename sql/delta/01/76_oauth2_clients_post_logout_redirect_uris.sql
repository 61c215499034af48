-- SPDX-License-Identifier: AGPL-3.0-only
-- OpenID Connect RP-Initiated Logout 1.0 §3.1 (beyond MAS): where a client may ask to be sent
-- back after logging out, as registered (dynamic registration's `post_logout_redirect_uris`,
-- a static client's key of that name). A JSON array of strings, matched exactly.
ALTER TABLE oauth2_clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]';
