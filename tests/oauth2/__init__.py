# SPDX-License-Identifier: AGPL-3.0-only
"""Tests of the protocol-only OAuth 2.0 pieces: errors, scopes, PKCE, URLs, client credentials, registration."""
