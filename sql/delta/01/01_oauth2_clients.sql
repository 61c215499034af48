-- SPDX-License-Identifier: AGPL-3.0-only
-- OAuth 2.0 clients (RFC 6749 §2, RFC 7591 metadata): static ones from `clients:` in the
-- config (written by `config sync`, is_static) and dynamically registered ones.
-- MAS's table and column names (inventory §12). Portable types: ids are ULID TEXT,
-- timestamps BIGINT milliseconds since the epoch, JSON TEXT, arrays JSON TEXT arrays.
CREATE TABLE oauth2_clients (
    oauth2_client_id TEXT NOT NULL PRIMARY KEY,
    -- Digest of the registration metadata, so that an identical registration reuses the client.
    metadata_digest TEXT UNIQUE,
    -- ChaCha20-Poly1305 under secrets.encryption: base64(nonce || ciphertext).
    encrypted_client_secret TEXT,
    -- JSON array of strings.
    redirect_uris TEXT NOT NULL DEFAULT '[]',
    grant_type_authorization_code BOOLEAN NOT NULL,
    grant_type_refresh_token BOOLEAN NOT NULL,
    grant_type_client_credentials BOOLEAN NOT NULL DEFAULT FALSE,
    grant_type_device_code BOOLEAN NOT NULL DEFAULT FALSE,
    client_name TEXT,
    logo_uri TEXT,
    client_uri TEXT,
    policy_uri TEXT,
    tos_uri TEXT,
    jwks_uri TEXT,
    -- JSON Web Key Set, as a JSON object.
    jwks TEXT,
    id_token_signed_response_alg TEXT,
    userinfo_signed_response_alg TEXT,
    token_endpoint_auth_method TEXT,
    token_endpoint_auth_signing_alg TEXT,
    initiate_login_uri TEXT,
    application_type TEXT,
    -- JSON array of strings.
    contacts TEXT NOT NULL DEFAULT '[]',
    is_static BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT
);

CREATE INDEX oauth2_clients_is_static_idx ON oauth2_clients (is_static);
