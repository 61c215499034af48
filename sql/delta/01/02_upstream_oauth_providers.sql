-- SPDX-License-Identifier: AGPL-3.0-only
-- Upstream OAuth 2.0 / OpenID Connect providers (`upstream_oauth2.providers` in the config,
-- written by `config sync`). MAS's table and column names (inventory §12); ids are ULID
-- TEXT, timestamps BIGINT milliseconds since the epoch, JSON TEXT.
CREATE TABLE upstream_oauth_providers (
    upstream_oauth_provider_id TEXT NOT NULL PRIMARY KEY,
    issuer TEXT,
    human_name TEXT,
    brand_name TEXT,
    scope TEXT NOT NULL,
    client_id TEXT NOT NULL,
    -- ChaCha20-Poly1305 under secrets.encryption: base64(nonce || ciphertext).
    encrypted_client_secret TEXT,
    token_endpoint_signing_alg TEXT,
    token_endpoint_auth_method TEXT NOT NULL,
    id_token_signed_response_alg TEXT NOT NULL DEFAULT 'RS256',
    userinfo_signed_response_alg TEXT,
    discovery_mode TEXT NOT NULL DEFAULT 'oidc',
    pkce_mode TEXT NOT NULL DEFAULT 'auto',
    response_mode TEXT,
    fetch_userinfo BOOLEAN NOT NULL DEFAULT FALSE,
    authorization_endpoint_override TEXT,
    token_endpoint_override TEXT,
    userinfo_endpoint_override TEXT,
    jwks_uri_override TEXT,
    -- JSON object: how claims map to the new account.
    claims_imports TEXT NOT NULL DEFAULT '{}',
    -- JSON array of [name, template] pairs added to the authorization request.
    additional_parameters TEXT,
    forward_login_hint BOOLEAN NOT NULL DEFAULT FALSE,
    on_backchannel_logout TEXT NOT NULL DEFAULT 'do_nothing',
    registration_token_required BOOLEAN NOT NULL DEFAULT FALSE,
    -- Position of the provider in the config, which is its position on the login page.
    ui_order INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    -- Set when the provider left the config; a disabled provider is kept for its links.
    disabled_at BIGINT
);
