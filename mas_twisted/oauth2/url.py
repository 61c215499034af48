# SPDX-License-Identifier: AGPL-3.0-only
"""Absolute URLs parsed and written out as the WHATWG URL Standard does.

MAS keeps every URL of a client (redirect URIs, ``client_uri``, ``jwks_uri`` …) as a parsed
URL (the ``url`` crate, a WHATWG implementation) and compares and stores its serialisation:
``HTTPS://Example.COM`` becomes ``https://example.com/``, a default port disappears, and
spaces or non-ASCII characters are percent-encoded. Policies and redirect-URI matching work
on that form, so this module reproduces it for the parts clients use:

- special schemes (``http``, ``https``, ``ws``, ``wss``, ``ftp``, ``file``): lower-cased
  scheme and host (IDNA for non-ASCII hosts), IPv4 hosts in dotted decimal (``127.1`` is
  ``127.0.0.1``), IPv6 hosts compressed, default port dropped, ``\\`` read as ``/``, ``.`` and
  ``..`` path segments resolved, an empty path written ``/``;
- other schemes (``com.example.app:/callback``, ``mailto:x``): the scheme lower-cased, the
  rest kept, with the same percent-encoding;
- tabs and newlines removed, leading and trailing spaces and controls trimmed.

A relative reference, an empty or invalid host in a special URL, or a bad port is refused
with :class:`InvalidUrlError`.
"""

from __future__ import annotations

import ipaddress
import re

import attrs

SPECIAL_SCHEMES: dict[str, int | None] = {
    "ftp": 21,
    "file": None,
    "http": 80,
    "https": 443,
    "ws": 80,
    "wss": 443,
}

_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_C0_OR_SPACE = "".join(chr(c) for c in range(0x21))
_FORBIDDEN_HOST = set("\x00\t\n\r #/:<>?@[\\]^|")
_FORBIDDEN_DOMAIN = _FORBIDDEN_HOST | set("%\x7f") | {chr(c) for c in range(0x20)}

# rust-url's percent-encode sets.
_CONTROLS = frozenset(range(0x20)) | {0x7F}
_FRAGMENT_SET = _CONTROLS | {ord(c) for c in ' "<>`'}
_QUERY_SET = _CONTROLS | {ord(c) for c in ' "#<>'}
_SPECIAL_QUERY_SET = _QUERY_SET | {ord("'")}
_PATH_SET = _FRAGMENT_SET | {ord(c) for c in "#?{}"}
_USERINFO_SET = _PATH_SET | {ord(c) for c in "/:;=@[\\]^|"}


class InvalidUrlError(ValueError):
    """Not an absolute URL."""

    def __init__(self, value: str, reason: str):
        super().__init__(f"invalid URL {value!r}: {reason}")
        self.value = value
        self.reason = reason


@attrs.frozen
class Url:
    """A parsed absolute URL; ``str(url)`` is its WHATWG serialisation."""

    scheme: str
    username: str = ""
    password: str = ""
    #: The host as serialised (``example.com``, ``127.0.0.1``, ``[::1]``), or ``None``.
    host: str | None = None
    port: int | None = None
    path: str = ""
    query: str | None = None
    fragment: str | None = None

    @property
    def is_special(self) -> bool:
        return self.scheme in SPECIAL_SCHEMES

    @property
    def has_authority(self) -> bool:
        return self.host is not None

    def __str__(self) -> str:
        out = self.scheme + ":"
        if self.host is not None:
            out += "//"
            if self.username or self.password:
                out += self.username
                if self.password:
                    out += ":" + self.password
                out += "@"
            out += self.host
            if self.port is not None:
                out += f":{self.port}"
        elif self.path.startswith("//"):
            out += "/."
        out += self.path
        if self.query is not None:
            out += "?" + self.query
        if self.fragment is not None:
            out += "#" + self.fragment
        return out

    def with_port(self, port: int | None) -> Url:
        return attrs.evolve(self, port=port)

    def with_query(self, query: str | None) -> Url:
        return attrs.evolve(self, query=query)

    def with_fragment(self, fragment: str | None) -> Url:
        return attrs.evolve(self, fragment=fragment)


def _percent_encode(text: str, encode_set: frozenset[int] | set[int]) -> str:
    out = []
    for ch in text:
        code = ord(ch)
        if code < 0x80 and code not in encode_set:
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8"))
    return "".join(out)


def _parse_ipv4_number(part: str) -> int | None:
    if part == "":
        return None
    radix = 10
    if part[:2] in ("0x", "0X"):
        part, radix = part[2:], 16
    elif len(part) > 1 and part[0] == "0":
        part, radix = part[1:], 8
    if part == "":
        return 0
    try:
        return int(part, radix)
    except ValueError:
        return None


def _ends_in_a_number(host: str) -> bool:
    parts = host.split(".")
    if parts[-1] == "":
        if len(parts) == 1:
            return False
        parts = parts[:-1]
    last = parts[-1]
    if last and all(c in "0123456789" for c in last):
        return True
    return _parse_ipv4_number(last) is not None


def _parse_ipv4(value: str, host: str) -> str:
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts = parts[:-1]
    if len(parts) > 4:
        raise InvalidUrlError(value, "invalid IPv4 address")
    numbers = []
    for part in parts:
        number = _parse_ipv4_number(part)
        if number is None:
            raise InvalidUrlError(value, "invalid IPv4 address")
        numbers.append(number)
    if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        raise InvalidUrlError(value, "invalid IPv4 address")
    address = numbers[-1]
    for i, n in enumerate(numbers[:-1]):
        address += n * 256 ** (3 - i)
    return str(ipaddress.IPv4Address(address))


def _unquote_host(text: str) -> str:
    raw = bytearray()
    i = 0
    data = text.encode("utf-8")
    while i < len(data):
        if data[i] == 0x25 and i + 2 < len(data) and re.fullmatch(rb"[0-9A-Fa-f]{2}", data[i + 1 : i + 3]):
            raw.append(int(data[i + 1 : i + 3], 16))
            i += 3
        else:
            raw.append(data[i])
            i += 1
    return raw.decode("utf-8", errors="replace")


def _parse_host(value: str, host: str, special: bool) -> str:
    if host.startswith("["):
        if not host.endswith("]"):
            raise InvalidUrlError(value, "invalid IPv6 address")
        try:
            address = ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise InvalidUrlError(value, "invalid IPv6 address") from None
        return f"[{address.compressed}]"
    if not special:
        if any(c in _FORBIDDEN_HOST for c in host):
            raise InvalidUrlError(value, "invalid host")
        return _percent_encode(host, _CONTROLS)
    domain = _unquote_host(host)
    if any(ord(c) > 0x7F for c in domain):
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            raise InvalidUrlError(value, "invalid international domain name") from None
    domain = domain.lower()
    if not domain or any(c in _FORBIDDEN_DOMAIN for c in domain):
        raise InvalidUrlError(value, "invalid host")
    if _ends_in_a_number(domain):
        return _parse_ipv4(value, domain)
    return domain


def _normalize_path(segments: list[str], special: bool) -> str:
    out: list[str] = []
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        lowered = segment.lower()
        if lowered in ("..", ".%2e", "%2e.", "%2e%2e"):
            if out:
                out.pop()
            if last:
                out.append("")
        elif lowered in (".", "%2e"):
            if last:
                out.append("")
        else:
            out.append(_percent_encode(segment, _PATH_SET))
    return "/" + "/".join(out)


def parse_url(value: str) -> Url:
    """Parse an absolute URL (WHATWG URL Standard, as the ``url`` crate does).

    Raises:
        InvalidUrlError: relative reference, bad host or port.
    """
    if not isinstance(value, str):
        raise InvalidUrlError(repr(value), "not a string")
    text = value.strip(_C0_OR_SPACE).replace("\t", "").replace("\n", "").replace("\r", "")
    match = _SCHEME_RE.match(text)
    if match is None:
        raise InvalidUrlError(value, "relative URL without a base")
    scheme = match.group(1).lower()
    rest = text[match.end() :]
    special = scheme in SPECIAL_SCHEMES

    fragment: str | None = None
    if "#" in rest:
        rest, fragment = rest.split("#", 1)
        fragment = _percent_encode(fragment, _FRAGMENT_SET)
    query: str | None = None
    if "?" in rest:
        rest, query = rest.split("?", 1)
        query = _percent_encode(query, _SPECIAL_QUERY_SET if special else _QUERY_SET)

    if special:
        rest = rest.replace("\\", "/")
        if scheme != "file":
            # Special URLs always have an authority, however many slashes precede it.
            authority, _, path = rest.lstrip("/").partition("/")
            return _with_authority(value, scheme, authority, "/" + path, query, fragment, special)
        if rest.startswith("//"):
            authority, _, path = rest[2:].partition("/")
            host = _parse_host(value, authority, True) if authority else ""
            if host == "localhost":
                host = ""
            segments = path.split("/") if path else [""]
            return Url(
                scheme, host=host, path=_normalize_path(segments, True), query=query, fragment=fragment
            )
        segments = rest.lstrip("/").split("/")
        return Url(scheme, host="", path=_normalize_path(segments, True), query=query, fragment=fragment)

    if rest.startswith("//"):
        authority, slash, path = rest[2:].partition("/")
        return _with_authority(value, scheme, authority, slash + path, query, fragment, special)
    if rest.startswith("/"):
        return Url(scheme, path=_normalize_path(rest[1:].split("/"), False), query=query, fragment=fragment)
    # An opaque path (``mailto:x``, ``urn:…``).
    return Url(scheme, path=_percent_encode(rest, _CONTROLS), query=query, fragment=fragment)


def _with_authority(
    value: str,
    scheme: str,
    authority: str,
    path: str,
    query: str | None,
    fragment: str | None,
    special: bool,
) -> Url:
    username = password = ""
    if "@" in authority:
        userinfo, authority = authority.rsplit("@", 1)
        username, _, password = userinfo.partition(":")
        username = _percent_encode(username, _USERINFO_SET)
        password = _percent_encode(password, _USERINFO_SET)
    host_text, port_text = authority, ""
    if authority.startswith("["):
        end = authority.find("]")
        if end != -1:
            host_text, port_text = authority[: end + 1], authority[end + 1 :]
            if port_text and not port_text.startswith(":"):
                raise InvalidUrlError(value, "invalid port")
            port_text = port_text[1:]
    elif ":" in authority:
        host_text, port_text = authority.split(":", 1)

    if host_text == "":
        if special or username or password or port_text:
            raise InvalidUrlError(value, "empty host")
        host = ""
    else:
        host = _parse_host(value, host_text, special)

    port: int | None = None
    if port_text:
        if not port_text.isdigit() or not port_text.isascii():
            raise InvalidUrlError(value, "invalid port")
        port = int(port_text)
        if port > 65535:
            raise InvalidUrlError(value, "invalid port")
        if port == SPECIAL_SCHEMES.get(scheme, -1):
            port = None

    if special:
        normalized_path = _normalize_path(path[1:].split("/"), True)
    elif path:
        normalized_path = _normalize_path(path[1:].split("/"), False)
    else:
        normalized_path = ""
    return Url(
        scheme,
        username=username,
        password=password,
        host=host,
        port=port,
        path=normalized_path,
        query=query,
        fragment=fragment,
    )


def normalize_url(value: str) -> str:
    """``str(parse_url(value))``."""
    return str(parse_url(value))


def host_of(url: Url) -> str | None:
    """The host without IPv6 brackets, or ``None``."""
    if url.host is None:
        return None
    if url.host.startswith("["):
        return url.host[1:-1]
    return url.host


# -- application/x-www-form-urlencoded ------------------------------------------------------------
_FORM_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789*-._")


def form_urlencode(pairs: list[tuple[str, str]] | tuple[tuple[str, str], ...]) -> str:
    """Encode ``pairs`` as the WHATWG ``application/x-www-form-urlencoded`` serializer does.

    Alphanumerics and ``*-._`` are kept, a space becomes ``+``, every other byte is ``%XX``.
    """

    def encode(text: str) -> str:
        out = []
        for byte in text.encode("utf-8"):
            if byte in _FORM_SAFE:
                out.append(chr(byte))
            elif byte == 0x20:
                out.append("+")
            else:
                out.append(f"%{byte:02X}")
        return "".join(out)

    return "&".join(f"{encode(k)}={encode(v)}" for k, v in pairs)
