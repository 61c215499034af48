# SPDX-License-Identifier: AGPL-3.0-only
"""The ``http`` section: listeners, trusted proxies, the public base URL and the issuer.

Follows MAS's ``crates/config/src/sections/http.rs`` key for key:

- ``listeners[]``: ``name``, ``resources[]`` (each a mapping tagged by ``name``: ``health``,
  ``prometheus``, ``discovery``, ``human``, ``graphql`` {``playground``,
  ``undocumented_oauth2_access``}, ``oauth``, ``compat``, ``assets`` {``path``}, ``adminapi``,
  ``connection-info``), ``prefix``, ``binds[]``, ``proxy_protocol`` and ``tls``.
- A bind is, in the order MAS tries them, ``{host?, port}``, ``{address}`` (``"[::]:8080"``),
  ``{socket, mode?}`` or ``{fd?, kind?}`` (``fd`` counts from the first socket the service
  manager passes, file descriptor 3). ``mode`` is a *string* of octal digits (``"660"``),
  which MAS parses in base 8 when it binds. A YAML number is refused, as MAS refuses it:
  ``mode: 660``, ``mode: 0660`` (YAML 1.2 reads both as decimal 660) and ``mode: 0o660``
  (the number 432) cannot be told apart once loaded, and guessing wrong would hand out
  permissions nobody asked for.
- ``trusted_proxies`` (MAS's private ranges and loopback by default), ``public_base``
  (required when the section is present) and ``issuer`` (``public_base`` by default).

Without an ``http`` section MAS uses its built-in default: a ``web`` listener on
``[::]:8080`` and an ``internal`` one on ``localhost:8081`` serving ``/health``, with
``http://[::]:8080/`` as public base. :func:`bind_to_endpoint` turns a bind into a Twisted
endpoint description; TLS certificates and keys are loaded, and checked against each
other, while the configuration is read.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import attr
from cryptography import x509
from OpenSSL import SSL

from mas_twisted.config._base import Config, JsonDict, Reader, describe
from mas_twisted.jose.keys import KeyLoadError, load_private_key

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: MAS's ``default_trusted_proxies()``, in its order (note ``10.0.0.0/10``, as MAS has it).
DEFAULT_TRUSTED_PROXIES: tuple[str, ...] = (
    "192.168.0.0/16",
    "172.16.0.0/12",
    "10.0.0.0/10",
    "127.0.0.1/8",
    "fd00::/8",
    "::1/128",
)

#: MAS's ``default_public_base()``, as its URL type prints it.
DEFAULT_PUBLIC_BASE = "http://[::]:8080/"

#: MAS's default ``assets`` folder in its packaged ("dist") build.
DEFAULT_ASSETS_PATH = "./share/assets/"

#: Every resource name MAS accepts, spelled as its serde tags are.
RESOURCE_NAMES: tuple[str, ...] = (
    "health",
    "prometheus",
    "discovery",
    "human",
    "graphql",
    "oauth",
    "compat",
    "assets",
    "adminapi",
    "connection-info",
)

FD_KINDS: tuple[str, ...] = ("tcp", "unix")


# -- listeners --------------------------------------------------------------------------------


@attr.s(frozen=True, slots=True, auto_attribs=True)
class ResourceConfig:
    """One entry of ``http.listeners[].resources``.

    ``path`` is only set for ``assets``; ``playground`` and ``undocumented_oauth2_access``
    only matter for ``graphql``.
    """

    name: str
    path: str | None = None
    playground: bool = False
    undocumented_oauth2_access: bool = False

    @classmethod
    def parse(cls, r: Reader) -> ResourceConfig:
        name = r.str("name")
        if name is None:
            raise r.error("name", "missing required value (a resource is written `- name: health`)")
        if name not in RESOURCE_NAMES:
            raise r.error(
                "name", f"unknown resource {describe(name)}; expected one of {', '.join(RESOURCE_NAMES)}"
            )
        if name == "assets":
            return cls(name=name, path=r.str("path", DEFAULT_ASSETS_PATH, allow_empty=False))
        if name == "graphql":
            return cls(
                name=name,
                playground=r.bool("playground", False),
                undocumented_oauth2_access=r.bool("undocumented_oauth2_access", False),
            )
        return cls(name=name)

    def to_dict(self) -> dict[str, Any]:
        """As MAS's tagged ``Resource`` serialises: options only where they differ from the default."""
        out: dict[str, Any] = {"name": self.name}
        if self.name == "graphql":
            if self.playground:
                out["playground"] = True
            if self.undocumented_oauth2_access:
                out["undocumented_oauth2_access"] = True
        elif self.name == "assets" and self.path != DEFAULT_ASSETS_PATH:
            out["path"] = self.path
        return out


@attr.s(frozen=True, slots=True, auto_attribs=True)
class ListenBind:
    """``{host, port}``: a TCP socket; without ``host``, every address (``[::]``, else ``0.0.0.0``)."""

    host: str | None
    port: int

    def describe(self) -> str:
        host = self.host if self.host is not None else "[::]"
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"{host}:{self.port}"

    def to_dict(self) -> dict[str, Any]:
        return {"port": self.port} if self.host is None else {"host": self.host, "port": self.port}


@attr.s(frozen=True, slots=True, auto_attribs=True)
class AddressBind:
    """``{address: "[::1]:8080"}``: an IP address and a port, as MAS's ``SocketAddr`` parses them."""

    address: str
    host: str
    port: int

    def describe(self) -> str:
        return self.address

    def to_dict(self) -> dict[str, Any]:
        return {"address": self.address}


@attr.s(frozen=True, slots=True, auto_attribs=True)
class UnixBind:
    """``{socket, mode}``: a unix domain socket; ``mode`` is the permission bits (``None``: umask)."""

    socket: str
    mode: int | None
    #: ``mode`` as the configuration spelled it (``"0660"``), for ``config dump``.
    mode_text: str | None = attr.ib(default=None, eq=False)

    def describe(self) -> str:
        return f"unix socket {self.socket}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"socket": self.socket}
        if self.mode is not None:
            out["mode"] = self.mode_text if self.mode_text is not None else f"{self.mode:o}"
        return out


@attr.s(frozen=True, slots=True, auto_attribs=True)
class FdBind:
    """``{fd, kind}``: a listening socket inherited from the service manager.

    ``fd`` is an index: ``0`` is file descriptor 3 (``SD_LISTEN_FDS_START``), as with MAS's
    ``listenfd``.
    """

    fd: int
    kind: str

    def describe(self) -> str:
        return f"inherited {self.kind} socket #{self.fd} (file descriptor {self.fd + 3})"

    def to_dict(self) -> dict[str, Any]:
        return {"fd": self.fd, "kind": self.kind}


BindConfig = ListenBind | AddressBind | UnixBind | FdBind


def parse_socket_address(value: str) -> tuple[str, int]:
    """Split ``"127.0.0.1:8080"`` / ``"[::1]:8080"`` into an IP literal and a port.

    Raises:
        ValueError: not an IP address with a port (host names are not accepted, as in MAS).
    """
    if value.startswith("["):
        end = value.find("]")
        if end < 0 or value[end + 1 : end + 2] != ":":
            raise ValueError("expected [IPv6]:port")
        host, port_text = value[1:end], value[end + 2 :]
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv6Address(host)
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep:
            raise ValueError("expected address:port")
        ip = ipaddress.IPv4Address(host)
    if not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError("the port must be a number from 0 to 65535")
    return str(ip) if ip.version == 4 else host, int(port_text)


_MODE_EXAMPLE = 'octal permissions as a string, such as "660"'


def _parse_mode(r: Reader) -> int | None:
    """``mode``: octal text, as MAS's ``u32::from_str_radix(mode, 8)`` reads it."""
    value = r.raw("mode")
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        # MAS's field is a string and refuses a YAML number; so do we, rather than guess
        # whether 432 was written 0o660 or is meant as the digits 4, 3, 2.
        raise r.error("mode", f"expected {_MODE_EXAMPLE} (quote the value in YAML), got the number {value}")
    if not isinstance(value, str):
        raise r.error("mode", f"expected {_MODE_EXAMPLE}, got {describe(value)}")
    text = value.strip()
    if text.startswith(("0o", "0O")):
        text = text[2:]
    if not text or any(c not in "01234567" for c in text):
        raise r.error("mode", f"expected {_MODE_EXAMPLE}, got {describe(value)}")
    mode = int(text, 8)
    if mode > 0o7777:
        raise r.error("mode", f"expected {_MODE_EXAMPLE} (at most 7777), got {describe(value)}")
    return mode


def parse_bind(r: Reader) -> BindConfig:
    """One ``binds[]`` entry, recognised by its keys in the order MAS's untagged enum tries them."""
    if r.has("port"):
        host = r.str("host", allow_empty=False)
        return ListenBind(host=host, port=r.int("port", required=True, min=0, max=65535))
    if r.has("address"):
        address = r.str("address", required=True)
        try:
            host, port = parse_socket_address(address)
        except ValueError as e:
            raise r.error(
                "address",
                f'expected an IP address and port such as "[::]:8080", got {describe(address)} ({e})',
            )
        return AddressBind(address=address, host=host, port=port)
    if r.has("socket"):
        mode = _parse_mode(r)
        return UnixBind(
            socket=r.str("socket", required=True, allow_empty=False),
            mode=mode,
            mode_text=r.str("mode") if mode is not None else None,
        )
    if r.has("host"):
        raise r.error("port", "missing required value (host needs a port)")
    if r.has("fd") or r.has("kind") or not r.data:
        return FdBind(fd=r.int("fd", 0, min=0), kind=r.enum("kind", FD_KINDS, "tcp"))
    raise r.error(
        None, f"expected one of port, address, socket or fd; got keys {', '.join(sorted(map(str, r.data)))}"
    )


def _quote(value: str) -> str:
    """Escape a value for a Twisted endpoint description (``\\`` and ``:`` are special)."""
    return value.replace("\\", "\\\\").replace(":", "\\:")


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def bind_to_endpoint(bind: BindConfig, *, proxy_protocol: bool = False) -> str:
    """The Twisted endpoint description (``serverFromString``) for a bind.

    ``tcp:port=8080:interface=\\:\\:``, ``unix:address=/run/mas.sock:mode=660:lockfile=0``,
    ``systemd:domain=INET:index=0``; with ``proxy_protocol`` the description is wrapped in
    ``haproxy:``, which reads a PROXY v1 or v2 header before anything else (TLS included).
    """
    if isinstance(bind, ListenBind):
        interface = bind.host if bind.host is not None else "::"
        description = f"tcp:port={bind.port}:interface={_quote(interface)}"
    elif isinstance(bind, AddressBind):
        description = f"tcp:port={bind.port}:interface={_quote(bind.host)}"
    elif isinstance(bind, UnixBind):
        # Without a mode MAS leaves the socket as the umask made it; Twisted always chmods,
        # so give it what the umask would have given.
        mode = bind.mode if bind.mode is not None else 0o777 & ~current_umask()
        description = f"unix:address={_quote(bind.socket)}:mode={mode:o}:lockfile=0"
    elif isinstance(bind, FdBind):
        domain = "INET" if bind.kind == "tcp" else "UNIX"
        description = f"systemd:domain={domain}:index={bind.fd}"
    else:  # pragma: no cover - the union is closed
        raise TypeError(f"not a bind: {bind!r}")
    if proxy_protocol:
        description = "haproxy:" + description
    return description


# -- TLS --------------------------------------------------------------------------------------


@attr.s(frozen=True, slots=True, auto_attribs=True, eq=False)
class TlsConfig:
    """``http.listeners[].tls``: the certificate chain and key, loaded and checked.

    ``certificate_chain`` and ``private_key`` are ``cryptography`` objects; :meth:`context`
    is the ``OpenSSL.SSL.Context`` every connection of the listener shares.
    """

    certificate_chain: tuple[x509.Certificate, ...]
    private_key: Any
    context: SSL.Context
    #: The keys as configured (``certificate`` or ``certificate_file``, ``key`` or
    #: ``key_file``, ``password`` or ``password_file``), for ``config dump``.
    configured: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, r: Reader) -> TlsConfig:
        password = r.secret("password", binary=True)
        if r.has("certificate") and r.has("certificate_file"):
            raise r.error("certificate", "only one of certificate or certificate_file can be set at a time")
        if not r.has("certificate") and not r.has("certificate_file"):
            raise r.error(
                "certificate",
                "TLS configuration is missing a certificate (set certificate or certificate_file)",
            )
        if r.has("key") and r.has("key_file"):
            raise r.error("key", "only one of key or key_file can be set at a time")
        if not r.has("key") and not r.has("key_file"):
            raise r.error("key", "TLS configuration is missing a private key (set key or key_file)")

        key_at = "key" if r.has("key") else "key_file"
        key_data = r.secret("key", binary=True)
        if key_at == "key" and b"-----BEGIN" not in key_data:
            # MAS reads an inline key as PEM only; DER is for key_file.
            raise r.error(key_at, "could not decode the private key: expected a PEM document")
        try:
            # The keystore's loader: the key types and encodings MAS's TLS listener takes.
            key = load_private_key(key_data, password).key
        except KeyLoadError as e:
            raise r.error(key_at, f"could not load the private key: {e}")

        cert_at = "certificate" if r.has("certificate") else "certificate_file"
        cert_data = r.secret("certificate", binary=True)
        try:
            chain = tuple(x509.load_pem_x509_certificates(cert_data))
        except ValueError:
            chain = ()
        if not chain:
            raise r.error(cert_at, "TLS certificate chain is empty (or invalid)")

        try:
            context = make_server_context(chain, key)
        except SSL.Error as e:
            raise r.error(key_at, f"the private key does not match the certificate ({_ssl_reason(e)})")
        configured = tuple(
            (name, r.str(name))
            for name in ("certificate", "certificate_file", "key", "key_file", "password", "password_file")
            if r.has(name)
        )
        return cls(certificate_chain=chain, private_key=key, context=context, configured=configured)

    def to_dict(self) -> dict[str, Any]:
        """As MAS serialises it: the values as configured (file paths, not their contents)."""
        return dict(self.configured)


def _ssl_reason(error: SSL.Error) -> str:
    try:
        return ", ".join(str(part[2]) for part in error.args[0]) or str(error)
    except (IndexError, TypeError):
        return str(error)


def make_server_context(chain: tuple[x509.Certificate, ...], key: Any) -> SSL.Context:
    """A TLS 1.2+ server context offering ``http/1.1`` over ALPN.

    Raises:
        OpenSSL.SSL.Error: the key is not the certificate's.
    """
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
    ctx.set_options(SSL.OP_NO_COMPRESSION | SSL.OP_CIPHER_SERVER_PREFERENCE)
    ctx.use_certificate(chain[0])
    for extra in chain[1:]:
        ctx.add_extra_chain_cert(extra)
    ctx.use_privatekey(key)
    ctx.check_privatekey()
    ctx.set_session_id(b"mas-twisted")

    def select_alpn(conn: SSL.Connection, offered: list[bytes]) -> Any:
        return b"http/1.1" if b"http/1.1" in offered else SSL.NO_OVERLAPPING_PROTOCOLS

    ctx.set_alpn_select_callback(select_alpn)
    return ctx


@attr.s(frozen=True, slots=True, auto_attribs=True, eq=False)
class ListenerConfig:
    """One entry of ``http.listeners``.

    ``name`` is the configured name, or ``listener-<index>`` for an unnamed listener
    (``configured_name`` is then ``None``). ``prefix`` is normalised: ``""`` for none,
    otherwise ``"/path"`` without a trailing slash (MAS trims trailing slashes too).
    """

    index: int
    name: str
    configured_name: str | None
    resources: tuple[ResourceConfig, ...]
    prefix: str
    binds: tuple[BindConfig, ...]
    proxy_protocol: bool = False
    tls: TlsConfig | None = None
    #: ``prefix`` as configured (None when absent), for ``config dump``.
    configured_prefix: str | None = None

    @classmethod
    def parse(cls, r: Reader, index: int) -> ListenerConfig:
        name = r.str("name")
        if not r.has("resources"):
            raise r.error("resources", "missing required value")
        resources = tuple(ResourceConfig.parse(item) for item in r.children("resources"))
        if not resources:
            raise r.error("resources", "listener has no resources")
        prefix_raw = r.str("prefix")
        prefix = ""
        if prefix_raw is not None:
            if prefix_raw and not prefix_raw.startswith("/"):
                raise r.error("prefix", f"must start with a slash, got {describe(prefix_raw)}")
            prefix = prefix_raw.rstrip("/")
        if not r.has("binds"):
            raise r.error("binds", "missing required value")
        binds = tuple(parse_bind(item) for item in r.children("binds"))
        if not binds:
            raise r.error("binds", "listener does not bind to any address")
        tls = TlsConfig.parse(r.child("tls")) if r.has("tls") else None
        return cls(
            index=index,
            name=name if name is not None else f"listener-{index}",
            configured_name=name,
            resources=resources,
            prefix=prefix,
            binds=binds,
            proxy_protocol=r.bool("proxy_protocol", False),
            tls=tls,
            configured_prefix=prefix_raw,
        )

    def to_dict(self) -> dict[str, Any]:
        """As MAS serialises a ``ListenerConfig``."""
        out: dict[str, Any] = {}
        if self.configured_name is not None:
            out["name"] = self.configured_name
        out["resources"] = [resource.to_dict() for resource in self.resources]
        if self.configured_prefix is not None:
            out["prefix"] = self.configured_prefix
        out["binds"] = [bind.to_dict() for bind in self.binds]
        out["proxy_protocol"] = self.proxy_protocol
        if self.tls is not None:
            out["tls"] = self.tls.to_dict()
        return out

    @property
    def resource_names(self) -> tuple[str, ...]:
        return tuple(resource.name for resource in self.resources)

    @property
    def scheme(self) -> str:
        return "https" if self.tls is not None else "http"


def default_listeners() -> list[ListenerConfig]:
    """MAS's built-in listeners, used when the configuration has no ``http`` section."""
    return [
        ListenerConfig(
            index=0,
            name="web",
            configured_name="web",
            resources=(
                ResourceConfig("discovery"),
                ResourceConfig("human"),
                ResourceConfig("oauth"),
                ResourceConfig("compat"),
                ResourceConfig("graphql"),
                ResourceConfig("assets", path=DEFAULT_ASSETS_PATH),
            ),
            prefix="",
            binds=(AddressBind(address="[::]:8080", host="::", port=8080),),
        ),
        ListenerConfig(
            index=1,
            name="internal",
            configured_name="internal",
            resources=(ResourceConfig("health"),),
            prefix="",
            binds=(ListenBind(host="localhost", port=8081),),
        ),
    ]


# -- URLs -------------------------------------------------------------------------------------

_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_url(value: str) -> str:
    """Spell a URL the way MAS's URL type prints it: lower-case scheme and host, no default
    port, and ``/`` as the path of an ``http(s)`` URL that has none."""
    parts = urlsplit(value)
    scheme = parts.scheme.lower()
    netloc = parts.netloc
    if scheme in _DEFAULT_PORTS:
        userinfo, at, hostport = netloc.rpartition("@")
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        try:
            port = parts.port
        except ValueError:
            port = None
        netloc = (
            (userinfo + at if at else "")
            + host
            + (f":{port}" if port not in (None, _DEFAULT_PORTS[scheme]) else "")
        )
    path = parts.path or ("/" if scheme in _DEFAULT_PORTS else "")
    return urlunsplit((scheme, netloc, path, parts.query, parts.fragment))


def _read_public_base(r: Reader) -> str:
    value = r.url("public_base", required=True)
    parts = urlsplit(value)
    # MAS's UrlBuilder refuses these when the server starts; we refuse them while loading.
    if parts.scheme.lower() not in ("http", "https"):
        raise r.error("public_base", f"must be an http or https URL, got {describe(value)}")
    if parts.query:
        raise r.error("public_base", f"must not contain a query, got {describe(value)}")
    if parts.fragment:
        raise r.error("public_base", f"must not contain a fragment, got {describe(value)}")
    if parts.username is not None or parts.password is not None:
        raise r.error("public_base", "must not contain credentials")
    try:
        _ = parts.port  # raises ValueError on a port that is not a number in range
    except ValueError:
        raise r.error("public_base", f"has an invalid port: {describe(value)}")
    return normalize_url(value)


# -- the section ------------------------------------------------------------------------------


class HttpConfig(Config):
    """``http``: what to listen on and how the service is reached from outside."""

    section = "http"

    def read_config(self, r: Reader, raw: JsonDict) -> None:
        #: False when the file has no ``http`` section and MAS's defaults apply.
        self.configured: bool = raw.get(self.section) is not None
        self.listeners: list[ListenerConfig]
        self.trusted_proxies: list[IPNetwork]
        self.public_base: str
        self.issuer: str
        #: Whether ``issuer`` was given (MAS's default section has one; a configured
        #: section without it falls back to ``public_base``), for ``config dump``.
        self.issuer_configured: bool
        #: The proxies as MAS prints them: address bits kept, prefix length always shown.
        self._trusted_proxies_text: list[str]
        if not self.configured:
            self.listeners = default_listeners()
            self._set_trusted_proxies(list(DEFAULT_TRUSTED_PROXIES))
            self.public_base = DEFAULT_PUBLIC_BASE
            self.issuer = DEFAULT_PUBLIC_BASE
            self.issuer_configured = True
            return

        # A present section without listeners has none, as in MAS (its list defaults to empty).
        self.listeners = [ListenerConfig.parse(item, i) for i, item in enumerate(r.children("listeners"))]
        if r.has("trusted_proxies"):
            items = r.list("trusted_proxies")
            for i, item in enumerate(items):
                r.ip_network("trusted_proxies", item, i)
            self._set_trusted_proxies([str(item) for item in items])
        else:
            self._set_trusted_proxies(list(DEFAULT_TRUSTED_PROXIES))
        self.public_base = _read_public_base(r)
        issuer = r.url("issuer")
        self.issuer = normalize_url(issuer) if issuer is not None else self.public_base
        self.issuer_configured = issuer is not None

    def _set_trusted_proxies(self, items: list[str]) -> None:
        self.trusted_proxies = [ipaddress.ip_network(item, strict=False) for item in items]
        self._trusted_proxies_text = [str(ipaddress.ip_interface(item)) for item in items]

    def to_dict(self) -> dict[str, Any]:
        """As MAS serialises ``HttpConfig`` (its built-in listeners when the section is absent)."""
        out: dict[str, Any] = {
            "listeners": [listener.to_dict() for listener in self.listeners],
            "trusted_proxies": list(self._trusted_proxies_text),
            "public_base": self.public_base,
        }
        if self.issuer_configured:
            out["issuer"] = self.issuer
        return out

    def listener(self, name: str) -> ListenerConfig | None:
        """The listener called ``name`` (the first one, should two share it)."""
        for listener in self.listeners:
            if listener.name == name:
                return listener
        return None

    @classmethod
    def generate_config_section(cls, **kwargs: Any) -> str:
        return """\
http:
  listeners:
    # The public listener: OIDC discovery, the OAuth 2.0 API, the login pages, the
    # legacy Matrix login API and static assets.
    - name: web
      resources:
        - name: discovery
        - name: human
        - name: oauth
        - name: compat
        - name: graphql
        - name: assets
      binds:
        - address: '[::]:8080'
      proxy_protocol: false
    # The internal listener, for health checks.
    - name: internal
      resources:
        - name: health
      binds:
        - host: localhost
          port: 8081
      proxy_protocol: false
  # Reverse proxies allowed to set X-Forwarded-For.
  trusted_proxies:
    - 192.168.0.0/16
    - 172.16.0.0/12
    - 10.0.0.0/10
    - 127.0.0.1/8
    - fd00::/8
    - ::1/128
  # The URL clients reach the service at; the OIDC issuer defaults to it.
  public_base: http://[::]:8080/
  issuer: http://[::]:8080/
"""
