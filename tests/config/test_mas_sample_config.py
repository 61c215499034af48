# SPDX-License-Identifier: AGPL-3.0-only
"""A configuration in the shape MAS's own ``mas-cli config generate`` writes loads unchanged,
with the values MAS would use."""

from __future__ import annotations

from mas_twisted.config.passwords import PasswordScheme
from mas_twisted.config.root import RootConfig
from tests.config._helpers import HERE


def test_mas_generated_config_loads() -> None:
    config = RootConfig.load([str(HERE / "mas_generated_config.yaml")], environ={})
    assert config.http.public_base == "http://[::]:8080/"
    assert config.http.issuer == "http://[::]:8080/"
    assert [listener.name for listener in config.http.listeners] == ["web", "internal"]
    assert config.http.listeners[0].resource_names == (
        "discovery",
        "human",
        "oauth",
        "compat",
        "graphql",
        "assets",
    )
    assert config.database.uri == "postgresql://"
    assert config.email.transport == "blackhole"
    assert config.email.from_address == '"Authentication Service" <root@localhost>'
    # Keys without a kid get their RFC 7638 thumbprint.
    assert sorted(key.private_key.description for key in config.secrets.keys) == [
        "EC P-256",
        "EC P-384",
        "EC secp256k1",
        "RSA 2048",
    ]
    assert all(len(key.kid) == 43 for key in config.secrets.keys)
    assert config.passwords.schemes == [PasswordScheme(version=1, algorithm="argon2id")]
    assert config.passwords.minimum_complexity == 3
    assert (config.matrix.kind, config.matrix.homeserver, config.matrix.endpoint) == (
        "synapse",
        "localhost:8008",
        "http://localhost:8008/",
    )
    assert config.matrix.secret == "Hq4mZsK2pW8vR1xT6yN3bJ7cF5dL9gA0"
    assert config.clients.clients == []
    assert config.upstream_oauth2.providers == []
    assert config.experimental.access_token_ttl == 300
