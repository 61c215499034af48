# SPDX-License-Identifier: AGPL-3.0-only
"""``config generate --synapse-config``: the generated file loads through our configuration
loader with Synapse's settings, the checks syn2mas makes against it pass, and the lines for
``homeserver.yaml`` carry the same secret."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import yaml

from mas_twisted.config.root import RootConfig
from mas_twisted.handlers.upstream_oauth2 import make_claims_environment
from mas_twisted.syn2mas.checks import ERROR, mas_config_checks
from mas_twisted.syn2mas.mas_config import SynapseDerivedConfig, generate_config_from_synapse
from mas_twisted.syn2mas.synapse_config import load_synapse_config
from mas_twisted.util.ulid import is_ulid, ulid_ms
from tests.cli._helpers import mas_cli

NOW_MS = 1_800_000_000_000

GOOGLE = {
    "idp_id": "google",
    "idp_name": "Google",
    "idp_brand": "google",
    "issuer": "https://accounts.google.com/",
    "client_id": "abc",
    "client_secret": "s3cret",
    "scopes": ["openid", "profile", "email"],
    "allow_existing_users": True,
    "user_mapping_provider": {
        "config": {
            "localpart_template": "{{ user.email | localpart_from_email }}",
            "display_name_template": "{{ user.name|capitalize }}",
            "email_template": "{{ user.email }}",
        }
    },
}


def _write(path: Path, data: dict[str, Any]) -> str:
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _generate(*paths: str) -> tuple[SynapseDerivedConfig, RootConfig]:
    generated = generate_config_from_synapse(
        paths, claims_environment=make_claims_environment(), rng=random.Random(3), now_ms=NOW_MS
    )
    return generated, RootConfig(yaml.safe_load(generated.config))


def _added(generated: SynapseDerivedConfig) -> dict[str, Any]:
    return yaml.safe_load(generated.homeserver_lines)


def _removed(generated: SynapseDerivedConfig) -> list[str]:
    return re.findall(r"^#   - ([a-z0-9_.]+)", generated.homeserver_lines, re.MULTILINE)


def _errors(paths: list[str], config: RootConfig) -> list[str]:
    return [f.message for f in mas_config_checks(load_synapse_config(paths), config) if f.level == ERROR]


def test_pepper_email_and_providers(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "homeserver.yaml",
        {
            "server_name": "example.org",
            "public_baseurl": "https://matrix.example.org/",
            "listeners": [
                {"port": 9008, "type": "http", "resources": [{"names": ["federation"]}]},
                {
                    "port": 8008,
                    "bind_addresses": ["::1", "127.0.0.1"],
                    "type": "http",
                    "resources": [{"names": ["client", "federation"]}],
                },
            ],
            "password_config": {"pepper": "pep pep"},
            "bcrypt_rounds": 4,
            "email": {
                "smtp_host": "mail.example.org",
                "smtp_port": 587,
                "smtp_user": "synapse",
                "smtp_pass": "hunter2",
                "require_transport_security": True,
                "notif_from": "Your %(app)s homeserver <noreply@example.org>",
                "app_name": "Example",
            },
            "oidc_providers": [GOOGLE],
        },
    )
    generated, config = _generate(path)
    assert config.matrix.homeserver == "example.org"
    # The client listener, not the federation one, on its loopback IPv4 address.
    assert config.matrix.endpoint == "http://127.0.0.1:8008/"
    assert re.fullmatch(r"[A-Za-z0-9]{32}", config.matrix.secret)
    assert _added(generated) == {
        "matrix_authentication_service": {
            "enabled": True,
            "endpoint": config.http.public_base,
            "secret": config.matrix.secret,
        }
    }
    assert _removed(generated) == ["password_config", "oidc_providers"]

    assert config.passwords.enabled
    v1, v2 = config.passwords.schemes
    assert (v1.version, v1.algorithm, v1.secret, v1.cost, v1.unicode_normalization) == (
        1,
        "bcrypt",
        b"pep pep",
        4,
        True,
    )
    assert (v2.version, v2.algorithm, v2.secret) == (2, "argon2id", None)
    assert config.passwords.current_scheme == v2

    email = config.email
    assert (email.transport, email.mode, email.hostname, email.smtp_port) == (
        "smtp",
        "starttls",
        "mail.example.org",
        587,
    )
    assert (email.username, email.password) == ("synapse", "hunter2")
    assert email.from_address == "Your Example homeserver <noreply@example.org>"

    (google,) = config.upstream_oauth2.providers
    assert google.synapse_idp_id == "oidc-google"
    assert is_ulid(google.id) and ulid_ms(google.id) == NOW_MS
    assert (google.issuer, google.client_id, google.client_secret) == (
        "https://accounts.google.com/",
        "abc",
        "s3cret",
    )
    assert google.token_endpoint_auth_method == "client_secret_basic"
    assert google.scope == "openid profile email"
    assert (google.human_name, google.brand_name) == ("Google", "google")
    # With the openid scope, Synapse's `auto` reads the ID token, not the userinfo endpoint.
    assert google.fetch_userinfo is False
    claims = google.claims_imports
    assert (claims.localpart.action, claims.localpart.on_conflict) == ("require", "add")
    assert (claims.displayname.action, claims.displayname.template) == ("force", "{{ user.name|capitalize }}")
    assert (claims.email.action, claims.email.template) == ("force", "{{ user.email }}")
    # Synapse's localpart_from_email filter, rewritten into what our templates run.
    env = make_claims_environment()
    assert claims.localpart.template is not None
    assert (
        env.from_string(claims.localpart.template).render(user={"email": "bob@corp@example.org"})
        == "bob@corp"
    )

    # What syn2mas checks against this pair: nothing is wrong.
    assert _errors([path], config) == []
    assert any("callback" in note and google.id in note for note in generated.notes)


def test_no_pepper_and_passwords_disabled(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "hs.yaml",
        {"server_name": "nopepper.test", "password_config": {"enabled": False}},
    )
    generated, config = _generate(path)
    assert config.passwords.enabled is False
    v1, v2 = config.passwords.schemes
    assert (v1.algorithm, v1.secret, v1.cost) == ("bcrypt", None, None)
    assert v2.algorithm == "argon2id"
    # No email section in Synapse: ours stays the blackhole; no providers.
    assert config.email.transport == "blackhole"
    assert config.upstream_oauth2.providers == []
    # Neither listeners nor public_baseurl: the default, with a note saying so.
    assert config.matrix.endpoint == "http://localhost:8008/"
    assert any(note.startswith("matrix.endpoint") for note in generated.notes)
    assert _errors([path], config) == []

    reauth = _write(
        tmp_path / "reauth.yaml", {"server_name": "r.test", "password_config": {"enabled": "only_for_reauth"}}
    )
    generated, config = _generate(reauth)
    assert config.passwords.enabled is False
    assert any("only_for_reauth" in note for note in generated.notes)


def test_legacy_oidc_config_and_prefixed_ids(tmp_path: Path) -> None:
    secret_file = tmp_path / "kc-secret"
    secret_file.write_text("kc-secret-value\n")
    path = _write(
        tmp_path / "hs.yaml",
        {
            "server_name": "legacy.test",
            "public_baseurl": "https://legacy.test",
            "oidc_config": {
                "enabled": True,
                "issuer": "https://id.legacy.test/",
                "client_id": "synapse",
                "discover": False,
                "authorization_endpoint": "https://id.legacy.test/auth",
                "token_endpoint": "https://id.legacy.test/token",
                "user_profile_method": "userinfo_endpoint",
                "userinfo_endpoint": "https://id.legacy.test/userinfo",
                "backchannel_logout_enabled": True,
                "user_mapping_provider": {
                    "config": {
                        "subject_claim": "id",
                        "confirm_localpart": True,
                        "localpart_template": "{{ user.login }}",
                    }
                },
            },
            "oidc_providers": [
                {
                    "idp_id": "oidc-kc",
                    "issuer": "https://kc.test/",
                    "client_id": "s",
                    "client_secret_path": str(secret_file),
                },
                {
                    "idp_id": "odd",
                    "issuer": "https://odd.test/",
                    "client_id": "odd",
                    "client_secret": "x",
                    "user_mapping_provider": {"module": "my.Mapper", "config": {}},
                },
            ],
        },
    )
    generated, config = _generate(path)
    # public_baseurl, as there is no client listener; with its slash.
    assert config.matrix.endpoint == "https://legacy.test/"
    kc, odd, legacy = config.upstream_oauth2.providers
    assert len({kc.id, odd.id, legacy.id}) == 3
    assert (legacy.synapse_idp_id, kc.synapse_idp_id, odd.synapse_idp_id) == (
        "oidc",
        "oidc-oidc-kc",
        "oidc-odd",
    )
    assert legacy.token_endpoint_auth_method == "none" and legacy.client_secret is None
    assert legacy.discovery_mode == "disabled"
    assert legacy.token_endpoint == "https://id.legacy.test/token"
    assert legacy.fetch_userinfo is True
    assert legacy.on_backchannel_logout == "logout_all"
    claims = legacy.claims_imports
    assert claims.subject_template == "{{ user.id }}"
    assert (claims.localpart.action, claims.localpart.template) == ("suggest", "{{ user.login }}")
    # client_secret_path becomes client_secret_file, which the loader reads.
    assert (kc.client_secret_file, kc.client_secret) == (str(secret_file), "kc-secret-value")
    assert kc.token_endpoint_auth_method == "client_secret_basic"
    assert odd.claims_imports.localpart.action == "ignore"
    assert any("my.Mapper" in note for note in generated.notes)
    assert sorted(_removed(generated)) == ["oidc_config", "oidc_providers"]


def test_split_files_merge_as_synapse_does(tmp_path: Path) -> None:
    main = _write(
        tmp_path / "homeserver.yaml",
        {
            "server_name": "split.test",
            "password_config": {"pepper": "first", "enabled": True},
            "listeners": [{"port": 8448, "tls": True, "type": "http", "resources": [{"names": ["client"]}]}],
        },
    )
    conf_d = tmp_path / "conf.d"
    conf_d.mkdir()
    # A later file replaces the whole top-level key: the pepper is the second one's.
    _write(conf_d / "10-password.yaml", {"password_config": {"pepper": "second"}})
    _write(conf_d / "20-registration.yaml", {"enable_registration": True, "refresh_token_lifetime": "1h"})
    generated, config = _generate(main, str(conf_d))
    assert config.passwords.schemes[0].secret == b"second"
    # Every address (the default binds) reaches it as localhost; TLS makes it https.
    assert config.matrix.endpoint == "https://localhost:8448/"
    assert config.account.password_registration_enabled is True
    lines = generated.homeserver_lines
    assert f"password_config (in {conf_d / '10-password.yaml'})" in lines
    assert f"refresh_token_lifetime (in {conf_d / '20-registration.yaml'})" in lines
    assert _errors([main, str(conf_d)], config) == []


def test_what_does_not_translate_is_left_out_and_said(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "hs.yaml",
        {
            "server_name": "t.test",
            "email": {"smtp_host": "relay", "smtp_user": "only-user", "notif_from": "not an address"},
            "oidc_providers": [
                {
                    "idp_id": "x",
                    "issuer": "https://x/",
                    "client_id": "x",
                    "attribute_requirements": [{"attribute": "group", "value": "staff"}],
                    "user_mapping_provider": {
                        "config": {
                            "localpart_template": "{{ user.name | unknown_filter }}",
                            "display_name_template": "{{ user.name",
                        }
                    },
                }
            ],
            "saml2_config": {"sp_config": {}},
        },
    )
    generated, config = _generate(path)
    (x,) = config.upstream_oauth2.providers
    assert x.claims_imports.localpart.action == "ignore" and x.claims_imports.localpart.template is None
    assert x.claims_imports.displayname.template is None
    notes = "\n".join(generated.notes)
    for expected in (
        "unknown_filter",
        "does not parse",
        "attribute_requirements",
        "SAML",
        "smtp_user",
        "notif_from",
    ):
        assert expected in notes, expected
    # Synapse's default opportunistic STARTTLS on port 25; no login with a user but no password.
    assert (config.email.mode, config.email.smtp_port, config.email.username) == ("starttls", 25, None)
    assert "saml2_config" in _removed(generated)


def test_cli_writes_the_config_and_the_synapse_lines(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "homeserver.yaml", {"server_name": "cli.test", "password_config": {"pepper": "p"}}
    )
    out = mas_cli("config", "generate", "--synapse-config", path, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    config = RootConfig(yaml.safe_load(out.stdout))
    assert config.matrix.homeserver == "cli.test"
    assert f'secret: "{config.matrix.secret}"' in out.stderr
    assert "matrix_authentication_service:" not in out.stdout

    out = mas_cli("config", "generate", "--synapse-config", path, "-o", "mas.yaml", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "matrix_authentication_service:" in out.stdout and "password_config" in out.stdout
    check = mas_cli("config", "check", "-c", "mas.yaml", cwd=tmp_path)
    assert check.returncode == 0, check.stderr

    missing = mas_cli("config", "generate", "--synapse-config", "nope.yaml", cwd=tmp_path)
    assert missing.returncode == 1 and "nope.yaml" in missing.stderr
