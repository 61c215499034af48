# SPDX-License-Identifier: AGPL-3.0-only
"""The display name a new device gets on the homeserver (MAS's ``templates/device_name.txt``):
"<client> on <device>", the device being the phone model, else "<browser> for <OS>", else the
browser, else "Unknown device". The User-Agent is parsed with ``ua-parser`` (uap-core's
patterns, a maintained library rather than our own guesses)."""

from __future__ import annotations

from functools import lru_cache

UNKNOWN_DEVICE = "Unknown device"


@lru_cache(maxsize=512)
def describe_user_agent(user_agent: str | None) -> str:
    """The device part of the name, from a User-Agent header."""
    if not user_agent:
        return UNKNOWN_DEVICE
    import ua_parser

    result = ua_parser.parse(user_agent)
    device = result.device
    if device is not None and device.model and device.model != "Other":
        return device.model
    name = result.user_agent.family if result.user_agent is not None else None
    if not name or name == "Other":
        return UNKNOWN_DEVICE
    platform = result.os.family if result.os is not None else None
    if platform and platform != "Other":
        return f"{name} for {platform}"
    return name


def device_display_name(client_name: str | None, client_id: str, user_agent: str | None) -> str:
    return f"{client_name or client_id} on {describe_user_agent(user_agent)}"
