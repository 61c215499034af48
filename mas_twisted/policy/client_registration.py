# SPDX-License-Identifier: AGPL-3.0-only
"""The ``client_registration`` policy (MAS's ``policies/client_registration/``): may this
client register?

Input ``{"client_metadata": <the validated metadata as JSON>, "requester"}``. Data
``client_registration.{allow_insecure_uris, allow_host_mismatch, allow_missing_client_uri}``
relaxes the rules:

- ``client_uri`` is required, and it, ``tos_uri``, ``policy_uri`` and ``logo_uri`` must be
  ``https`` URLs not on ``localhost``/``127.0.0.1``/``0.0.0.0``/``[::1]`` (unless insecure URIs
  are allowed), the last three on the ``client_uri`` host or a subdomain of it (unless host
  mismatches are allowed);
- the ``client_credentials`` grant needs a client that authenticates (not ``none``);
- ``redirect_uris`` must be an array, non-empty when the client uses ``authorization_code``
  (the default grant) or ``implicit``; each one, for ``application_type: native``, either
  ``http`` on a loopback host or a private-use scheme that is the reverse-DNS form of the
  ``client_uri`` host (``com.example.app:/cb`` for ``https://example.com/``) without an
  authority; otherwise a secure URL on the ``client_uri`` host or a subdomain.

URLs are read with MAS's pattern: lower-case scheme and host names, paths of
``[A-Za-z0-9/._~-]``, so a URL outside it is refused. MAS's quirk is kept: with
``allow_missing_client_uri`` the host checks are skipped altogether (its rule looks for
``client_uri`` in ``data`` instead of ``input``).
"""

from __future__ import annotations

import re
from typing import Any

from mas_twisted.policy._rego import count, defined, get, members, truthy
from mas_twisted.policy.common import violation_set
from mas_twisted.policy.model import Violation

_URL_RE = re.compile(
    r"\A(?P<scheme>[a-z][a-z0-9+.-]*):"
    r"(?://(?P<host>((?:(?:[a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9])\.)*(?:[a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9])"
    r"|127.0.0.1|0.0.0.0|\[::1\])(?::(?P<port>[0-9]+))?))?"
    r"(?P<path>/[A-Za-z0-9/._~-]*)?"
    r"(?P<query>\?[-a-zA-Z0-9()@:%_+.~#?&/=]*)?\Z"
)

_LOCALHOSTS = ("localhost", "127.0.0.1", "[::1]")


def parse_uri(url: Any) -> dict[str, str] | None:
    """The parts of ``url`` by MAS's pattern (``scheme``, ``authority``, ``host``, ``port``,
    ``path``, ``query``; ``""`` when absent), or ``None`` if it does not match."""
    if not isinstance(url, str):
        return None
    match = _URL_RE.match(url)
    if match is None:
        return None
    groups = [g or "" for g in match.groups()]
    return {
        "scheme": groups[0],
        "authority": groups[1],
        "host": groups[2],
        "port": groups[3],
        "path": groups[4],
        "query": groups[5],
    }


def is_subdomain(host: Any, subdomain: Any) -> bool:
    """Whether ``subdomain`` is ``host`` or a name under it, label by label."""
    if not isinstance(host, str) or not isinstance(subdomain, str):
        return False
    host_parts = host.split(".")[::-1]
    sub_parts = subdomain.split(".")[::-1]
    return sub_parts[: len(host_parts)] == host_parts


def reverse_dns_match(host: Any, reverse_dns: Any) -> bool:
    """Whether ``reverse_dns`` (``com.example.app``) starts with ``host`` reversed (``example.com``)."""
    if not isinstance(host, str) or not isinstance(reverse_dns, str):
        return False
    host_parts = host.split(".")[::-1]
    return reverse_dns.split(".")[: len(host_parts)] == host_parts


class _ClientRegistration:
    def __init__(self, input: Any, data: Any):
        self.input = input
        self.data = data
        self.metadata = get(input, "client_metadata")
        self.options = get(data, "client_registration")

    def option(self, name: str) -> bool:
        return truthy(get(self.options, name))

    def secure_url(self, url: Any) -> bool:
        if self.option("allow_insecure_uris"):
            return True
        parsed = parse_uri(url)
        return (
            parsed is not None
            and parsed["scheme"] == "https"
            and parsed["host"] not in (*_LOCALHOSTS, "0.0.0.0")
        )

    def host_matches_client_uri(self, url: Any) -> bool:
        if self.option("allow_host_mismatch"):
            return True
        if self.option("allow_missing_client_uri") and not truthy(
            get(self.data, "client_metadata", "client_uri")
        ):
            return True
        client_uri = parse_uri(get(self.metadata, "client_uri"))
        uri = parse_uri(url)
        return client_uri is not None and uri is not None and is_subdomain(client_uri["host"], uri["host"])

    def uses_grant_type(self, grant_type: str) -> bool:
        grant_types = get(self.metadata, "grant_types")
        if not truthy(grant_types) and grant_type == "authorization_code":
            return True
        return any(grant == grant_type for grant in members(grant_types))

    def valid_native_redirector(self, url: Any) -> bool:
        parsed = parse_uri(url)
        if parsed is None:
            return False
        if parsed["host"] in _LOCALHOSTS and parsed["scheme"] == "http":
            return True
        if parsed["scheme"] in ("http", "https") or parsed["authority"] != "":
            return False
        client_uri = parse_uri(get(self.metadata, "client_uri"))
        return client_uri is not None and reverse_dns_match(client_uri["host"], parsed["scheme"])

    def valid_redirect_uri(self, url: Any) -> bool:
        if get(self.metadata, "application_type") == "native" and self.valid_native_redirector(url):
            return True
        return self.secure_url(url) and self.host_matches_client_uri(url)

    def violations(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        metadata = self.metadata
        client_uri = get(metadata, "client_uri")

        if not self.option("allow_missing_client_uri") and not truthy(client_uri):
            out.append({"msg": "missing client_uri"})
        if defined(client_uri) and not self.secure_url(client_uri):
            out.append({"msg": "invalid client_uri"})

        for name in ("tos_uri", "policy_uri", "logo_uri"):
            value = get(metadata, name)
            if not defined(value):
                continue
            if not self.secure_url(value):
                out.append({"msg": f"invalid {name}"})
            if not self.host_matches_client_uri(value):
                out.append({"msg": f"{name} not on the same host as the client_uri"})

        if (
            self.uses_grant_type("client_credentials")
            and get(metadata, "token_endpoint_auth_method") == "none"
        ):
            out.append({"msg": "client_credentials grant_type requires some form of client authentication"})

        requires_redirect_uris = self.uses_grant_type("authorization_code") or self.uses_grant_type(
            "implicit"
        )
        redirect_uris = get(metadata, "redirect_uris")
        if requires_redirect_uris and not truthy(redirect_uris):
            out.append({"msg": "missing redirect_uris"})
        if defined(redirect_uris) and not isinstance(redirect_uris, list):
            out.append({"msg": "invalid redirect_uris: it must be an array"})
        if requires_redirect_uris and count(redirect_uris) == 0:
            out.append({"msg": "invalid redirect_uris: it must have at least one redirect_uri"})
        for redirect_uri in members(redirect_uris):
            if not self.valid_redirect_uri(redirect_uri):
                out.append({"msg": "invalid redirect_uri", "redirect_uri": redirect_uri})
        return out


def evaluate_client_registration(input: dict[str, Any], data: dict[str, Any]) -> list[Violation]:
    """Evaluate the ``client_registration`` policy."""
    return violation_set(_ClientRegistration(input, data).violations())
