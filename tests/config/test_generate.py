# SPDX-License-Identifier: AGPL-3.0-only
"""``generate_config()``: a loadable config.yaml with fresh secrets and MAS's default listeners."""

from __future__ import annotations

import random
import re

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mas_twisted.config.generate import generate_config
from mas_twisted.config.root import RootConfig


def generated() -> tuple[str, dict, RootConfig]:
    text = generate_config()
    raw = yaml.safe_load(text)
    return text, raw, RootConfig(raw)


def test_output_loads_and_has_the_four_key_types() -> None:
    text, raw, config = generated()
    assert sorted(key.private_key.description for key in config.secrets.keys) == [
        "EC P-256",
        "EC P-384",
        "EC secp256k1",
        "RSA 2048",
    ]
    # PKCS#1 for RSA and SEC1 for EC, the formats MAS writes.
    pems = [item["key"] for item in raw["secrets"]["keys"]]
    assert [pem.splitlines()[0] for pem in pems] == [
        "-----BEGIN RSA PRIVATE KEY-----",
        "-----BEGIN EC PRIVATE KEY-----",
        "-----BEGIN EC PRIVATE KEY-----",
        "-----BEGIN EC PRIVATE KEY-----",
    ]
    keys = [serialization.load_pem_private_key(pem.encode(), password=None) for pem in pems]
    assert isinstance(keys[0], rsa.RSAPrivateKey) and keys[0].key_size == 2048
    assert [type(k.curve) for k in keys[1:]] == [ec.SECP256R1, ec.SECP384R1, ec.SECP256K1]


def test_secrets_are_fresh_and_well_formed() -> None:
    _, raw1, config1 = generated()
    _, raw2, config2 = generated()
    encryption = raw1["secrets"]["encryption"]
    assert re.fullmatch(r"[0-9a-f]{64}", encryption)
    assert config1.secrets.encryption_key == bytes.fromhex(encryption)
    assert config1.secrets.encryption_key != config2.secrets.encryption_key
    kids = [key.kid for key in config1.secrets.keys]
    assert all(re.fullmatch(r"[A-Za-z0-9]{10}", kid) for kid in kids), kids
    assert len(set(kids)) == 4
    assert re.fullmatch(r"[A-Za-z0-9]{32}", config1.matrix.secret)
    assert config1.matrix.secret != config2.matrix.secret
    pems1 = {item["key"] for item in raw1["secrets"]["keys"]}
    pems2 = {item["key"] for item in raw2["secrets"]["keys"]}
    assert not pems1 & pems2


def test_rng_drives_the_non_key_secrets() -> None:
    raw1 = yaml.safe_load(generate_config(random.Random(7)))
    raw2 = yaml.safe_load(generate_config(random.Random(7)))
    assert raw1["secrets"]["encryption"] == raw2["secrets"]["encryption"]
    assert [k["kid"] for k in raw1["secrets"]["keys"]] == [k["kid"] for k in raw2["secrets"]["keys"]]
    assert raw1["matrix"]["secret"] == raw2["matrix"]["secret"]


def test_defaults_of_the_generated_file() -> None:
    text, raw, config = generated()
    assert config.http.public_base == "http://localhost:8080/"
    assert config.http.issuer == "http://localhost:8080/"
    web, internal = config.http.listeners
    assert web.name == "web"
    assert web.resource_names == ("discovery", "human", "oauth", "compat", "assets")
    assert [b.describe() for b in web.binds] == ["[::]:8080"]
    assert internal.name == "internal"
    assert internal.resource_names == ("health",)
    assert [(b.host, b.port) for b in internal.binds] == [("localhost", 8081)]
    assert config.database.is_sqlite
    assert config.database.sqlite_path == "mas.db"
    assert config.matrix.homeserver == "localhost:8008"
    assert config.matrix.endpoint == "http://localhost:8008/"
    assert config.matrix.kind == "synapse"
    assert config.passwords.enabled is True
    assert config.email.transport == "blackhole"
    assert config.clients.clients == []
    assert config.upstream_oauth2.providers == []
    # Every section is mentioned, active or as a commented example.
    for section in (
        "clients",
        "http",
        "database",
        "telemetry",
        "templates",
        "email",
        "secrets",
        "passwords",
        "matrix",
        "policy",
        "rate_limiting",
        "upstream_oauth2",
        "branding",
        "captcha",
        "account",
        "oauth",
        "experimental",
    ):
        assert re.search(rf"^#?{section}:", text, re.MULTILINE), section


def test_commented_examples_are_valid_configuration() -> None:
    """Uncommenting an example block gives a configuration that loads."""
    text, raw, _ = generated()
    for section in (
        "clients",
        "telemetry",
        "templates",
        "policy",
        "rate_limiting",
        "upstream_oauth2",
        "branding",
        "captcha",
        "oauth",
        "experimental",
    ):
        block = re.search(rf"^#{section}:\n(?:#.*\n)*", text, re.MULTILINE)
        assert block is not None, section
        uncommented = "".join(line[1:] + "\n" for line in block.group(0).splitlines())
        example = yaml.safe_load(uncommented)
        # Raises ConfigError, naming the key, if the example is wrong.
        RootConfig(dict(raw, **example))
