# SPDX-License-Identifier: AGPL-3.0-only
"""The ``email`` section: the three transports and MAS's checks on each."""

from __future__ import annotations

from typing import Any

import pytest

from mas_twisted.config.email import EmailConfig, parse_mailbox
from tests.config._helpers import FIXTURES, assert_config_error, load, read_section

DEFAULT_MAILBOX = '"Authentication Service" <root@localhost>'


def email(**keys: Any) -> EmailConfig:
    return read_section(EmailConfig, keys)


def smtp(**keys: Any) -> EmailConfig:
    return email(**{"transport": "smtp", "mode": "tls", "hostname": "smtp.example.com", **keys})


def test_defaults_without_the_section() -> None:
    config = load().email
    assert config.transport == "blackhole"
    assert config.from_address == DEFAULT_MAILBOX
    assert config.reply_to == DEFAULT_MAILBOX
    assert (config.mode, config.hostname, config.port, config.username, config.password, config.command) == (
        None,
        None,
        None,
        None,
        None,
        None,
    )


def test_transport_is_required_in_a_present_section() -> None:
    assert_config_error(lambda: email(**{"from": "a@example.com"}), ("email", "transport"), "missing")


def test_unknown_transport() -> None:
    assert_config_error(lambda: email(transport="pigeon"), ("email", "transport"), "'pigeon'")


def test_smtp() -> None:
    config = smtp(
        **{"from": "Accounts <accounts@example.com>", "reply_to": "help@example.com"},
        username="mas",
        password="pw",
        port=2525,
    )
    assert config.transport == "smtp"
    assert config.from_address == "Accounts <accounts@example.com>"
    assert config.reply_to == "help@example.com"
    assert (config.mode, config.hostname, config.port, config.smtp_port) == (
        "tls",
        "smtp.example.com",
        2525,
        2525,
    )
    assert (config.username, config.password) == ("mas", "pw")


def test_smtp_default_ports() -> None:
    assert smtp(mode="plain").smtp_port == 25
    assert smtp(mode="starttls").smtp_port == 587
    assert smtp(mode="tls").smtp_port == 465


def test_smtp_password_file_is_trimmed() -> None:
    config = smtp(username="mas", password_file=str(FIXTURES / "smtp-password.txt"))
    assert config.password == "smtp-password-from-file"


def test_smtp_needs_mode_and_hostname() -> None:
    assert_config_error(
        lambda: email(transport="smtp", hostname="smtp.example.com"), ("email", "mode"), "'smtp'"
    )
    assert_config_error(lambda: email(transport="smtp", mode="starttls"), ("email", "hostname"), "'smtp'")
    assert_config_error(lambda: smtp(mode="ssl"), ("email", "mode"), "'ssl'")


def test_smtp_username_and_password_go_together() -> None:
    assert_config_error(lambda: smtp(username="mas"), ("email", "password"), "'mas'")
    assert_config_error(lambda: smtp(password="pw"), ("email", "username"), "missing")
    assert_config_error(
        lambda: smtp(username="mas", password="pw", password_file=str(FIXTURES / "smtp-password.txt")),
        ("email", "password"),
        "password_file",
    )


def test_smtp_refuses_command() -> None:
    assert_config_error(lambda: smtp(command="sendmail"), ("email", "command"), "'sendmail'")


def test_smtp_port_range() -> None:
    assert_config_error(lambda: smtp(port=0), ("email", "port"), "0")
    assert_config_error(lambda: smtp(port=70000), ("email", "port"), "70000")


def test_sendmail() -> None:
    config = email(transport="sendmail", command="/usr/sbin/sendmail")
    assert config.command == "/usr/sbin/sendmail"
    assert_config_error(lambda: email(transport="sendmail"), ("email", "command"), "'sendmail'")
    for key, value in (
        ("mode", "tls"),
        ("hostname", "smtp.example.com"),
        ("port", 25),
        ("username", "u"),
        ("password", "p"),
    ):
        assert_config_error(
            lambda: email(transport="sendmail", command="sendmail", **{key: value}),
            ("email", key),
            repr(value),
        )


def test_blackhole_ignores_smtp_keys() -> None:
    config = email(transport="blackhole", hostname="smtp.example.com", command="sendmail")
    assert config.transport == "blackhole"


def test_bad_addresses() -> None:
    assert_config_error(
        lambda: email(transport="blackhole", **{"from": "not an address"}),
        ("email", "from"),
        "'not an address'",
    )
    assert_config_error(
        lambda: smtp(reply_to="Support <support>"), ("email", "reply_to"), "'Support <support>'"
    )


@pytest.mark.parametrize(
    "value,expected",
    [
        ("root@localhost", (None, "root@localhost")),
        ('"Authentication Service" <root@localhost>', ("Authentication Service", "root@localhost")),
        ("Example Support <support@example.com>", ("Example Support", "support@example.com")),
        ('"Quote \\" Inside" <a@b.example>', ('Quote " Inside', "a@b.example")),
    ],
)
def test_parse_mailbox(value: str, expected: tuple) -> None:
    assert parse_mailbox(value) == expected


@pytest.mark.parametrize("value", ["", "no-at-sign", "a@b@c", "<a@b.example", "a@b.example, c@d.example"])
def test_parse_mailbox_rejects(value: str) -> None:
    with pytest.raises(ValueError):
        parse_mailbox(value)
