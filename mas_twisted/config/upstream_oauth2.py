# SPDX-License-Identifier: AGPL-3.0-only
"""The ``upstream_oauth2`` section: external OpenID Connect / OAuth 2.0 identity providers.

MAS behaviour (``crates/config/src/sections/upstream_oauth2.rs``, ``crates/cli/src/sync.rs``):
``providers`` (required once the section is present) lists providers, each with a ULID
``id``, a ``client_id``, a ``token_endpoint_auth_method`` and the optional keys of
:class:`UpstreamProvider`. MAS then checks, per provider and in this order:

- ``issuer`` is required unless ``discovery_mode`` is ``disabled``;
- a client secret is required by ``client_secret_basic``/``_post``/``_jwt`` and refused by
  ``none``, ``private_key_jwt`` and ``sign_in_with_apple``;
- ``token_endpoint_auth_signing_alg`` is required by ``client_secret_jwt``/``private_key_jwt``
  and refused by the other methods;
- ``sign_in_with_apple`` is required by, and only allowed with, that method;
- ``claims_imports.skip_confirmation`` needs ``localpart.action: require`` and no
  ``suggest`` action on ``email`` or ``displayname``;
- ``localpart.on_conflict`` other than ``fail`` needs ``localpart.action`` ``force`` or
  ``require``.

``config sync`` also parses ``scope`` as an RFC 6749 §3.3 scope (refused here, at load).
A provider with discovery disabled but no ``authorization_endpoint``/``token_endpoint`` is
accepted, as in MAS, whose ``config sync`` only logs it. Providers are stored in the
database by ``config sync``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import attrs

from mas_twisted.api.errors import ConfigError
from mas_twisted.config._base import Config, JsonDict, Reader, describe, read_file
from mas_twisted.config.clients import read_client_secret
from mas_twisted.config.http import normalize_url

TOKEN_AUTH_METHODS: tuple[str, ...] = (
    "none",
    "client_secret_basic",
    "client_secret_post",
    "client_secret_jwt",
    "private_key_jwt",
    "sign_in_with_apple",
)
_SECRET_METHODS = frozenset({"client_secret_basic", "client_secret_post", "client_secret_jwt"})
_JWT_METHODS = frozenset({"client_secret_jwt", "private_key_jwt"})

DISCOVERY_MODES: tuple[str, ...] = ("oidc", "insecure", "disabled")
PKCE_METHODS: tuple[str, ...] = ("auto", "always", "never")
RESPONSE_MODES: tuple[str, ...] = ("query", "form_post")
ON_BACKCHANNEL_LOGOUT: tuple[str, ...] = ("do_nothing", "logout_browser_only", "logout_all")
IMPORT_ACTIONS: tuple[str, ...] = ("ignore", "suggest", "force", "require")
ON_CONFLICT: tuple[str, ...] = ("fail", "add", "replace", "set")
#: ``claims_imports.displayname.on_login`` / ``email.on_login`` (beyond MAS, #3117).
ON_LOGIN: tuple[str, ...] = ("keep", "sync")

DEFAULT_SCOPE = "openid"
DEFAULT_ID_TOKEN_SIGNED_RESPONSE_ALG = "RS256"

#: Default claim templates, applied where ``template`` is not set.
DEFAULT_SUBJECT_TEMPLATE = "{{ user.sub }}"
DEFAULT_LOCALPART_TEMPLATE = "{{ user.preferred_username }}"
DEFAULT_DISPLAYNAME_TEMPLATE = "{{ user.name }}"
DEFAULT_EMAIL_TEMPLATE = "{{ user.email }}"

# RFC 6749 appendix A.4: scope-token = 1*NQCHAR
_SCOPE_TOKEN_RE = re.compile(r"^[\x21\x23-\x5B\x5D-\x7E]+$")


@attrs.frozen
class ImportPreference:
    """How one claim is imported (``claims_imports.localpart`` / ``displayname`` / ``email``)."""

    action: str = "ignore"
    #: The configured template, or None for the claim's default template.
    template: str | None = None
    #: Only meaningful for ``localpart``.
    on_conflict: str = "fail"
    #: Beyond MAS (its #3117), ``displayname`` and ``email`` only: ``sync`` re-imports the
    #: claim on every sign-in through the provider when it changed since the last one (the
    #: display name pushed to the homeserver, the new address replacing the old one);
    #: ``keep`` (the default, MAS's behaviour) imports it at registration only.
    on_login: str = "keep"

    @classmethod
    def parse(
        cls, r: Reader, *, with_on_conflict: bool = False, with_on_login: bool = False
    ) -> ImportPreference:
        return cls(
            action=r.enum("action", IMPORT_ACTIONS, "ignore"),
            template=r.str("template"),
            on_conflict=r.enum("on_conflict", ON_CONFLICT, "fail") if with_on_conflict else "fail",
            on_login=r.enum("on_login", ON_LOGIN, "keep") if with_on_login else "keep",
        )

    def to_dict(self, *, with_on_conflict: bool = False) -> dict[str, Any]:
        """The non-default members, as MAS serialises an import preference."""
        out: dict[str, Any] = {}
        if self.action != "ignore":
            out["action"] = self.action
        if self.template is not None:
            out["template"] = self.template
        if with_on_conflict and self.on_conflict != "fail":
            out["on_conflict"] = self.on_conflict
        if self.on_login != "keep":
            out["on_login"] = self.on_login
        return out


@attrs.frozen
class ClaimsImports:
    """``claims_imports``: how the upstream claims become the local account's attributes."""

    subject_template: str | None = None
    skip_confirmation: bool = False
    localpart: ImportPreference = ImportPreference()
    displayname: ImportPreference = ImportPreference()
    email: ImportPreference = ImportPreference()
    account_name_template: str | None = None

    @classmethod
    def parse(cls, r: Reader) -> ClaimsImports:
        claims = cls(
            subject_template=r.child("subject").str("template"),
            skip_confirmation=r.bool("skip_confirmation", False),
            localpart=ImportPreference.parse(r.child("localpart"), with_on_conflict=True),
            displayname=ImportPreference.parse(r.child("displayname"), with_on_login=True),
            email=ImportPreference.parse(r.child("email"), with_on_login=True),
            account_name_template=r.child("account_name").str("template"),
        )
        if claims.skip_confirmation:
            if claims.localpart.action != "require":
                raise ConfigError(
                    f"must be 'require' when skip_confirmation is true, got {claims.localpart.action!r}",
                    r.at("localpart") + ("action",),
                )
            for key in ("email", "displayname"):
                action = getattr(claims, key).action
                if action == "suggest":
                    raise ConfigError(
                        f"must not be 'suggest' when skip_confirmation is true, got {action!r}",
                        r.at(key) + ("action",),
                    )
        if claims.localpart.on_conflict != "fail" and claims.localpart.action not in ("force", "require"):
            raise ConfigError(
                f"must be 'force' or 'require' when on_conflict is {claims.localpart.on_conflict!r},"
                f" got {claims.localpart.action!r}",
                r.at("localpart") + ("action",),
            )
        return claims

    @property
    def subject(self) -> str:
        return self.subject_template or DEFAULT_SUBJECT_TEMPLATE

    def to_dict(self) -> dict[str, Any]:
        """The non-default parts, in MAS's order (an empty mapping for all defaults)."""
        out: dict[str, Any] = {}
        if self.subject_template is not None:
            out["subject"] = {"template": self.subject_template}
        if self.skip_confirmation:
            out["skip_confirmation"] = True
        for key, preference in (
            ("localpart", self.localpart.to_dict(with_on_conflict=True)),
            ("displayname", self.displayname.to_dict()),
            ("email", self.email.to_dict()),
        ):
            if preference:
                out[key] = preference
        if self.account_name_template is not None:
            out["account_name"] = {"template": self.account_name_template}
        return out


@attrs.frozen
class SignInWithApple:
    """``sign_in_with_apple``: Apple's client-assertion key and identifiers."""

    team_id: str
    key_id: str
    #: The PEM private key: ``private_key`` if set, else the content of ``private_key_file``.
    private_key: str | None = None
    private_key_file: str | None = None
    #: Whether ``private_key`` was given inline (rather than read from ``private_key_file``).
    private_key_inline: bool = attrs.field(default=False, eq=False)

    @classmethod
    def parse(cls, r: Reader, *, load_files: bool = True) -> SignInWithApple:
        private_key = r.str("private_key")
        private_key_file = r.str("private_key_file")
        # MAS lets both be set: the inline key wins and the file is not read.
        if private_key is None and private_key_file is not None and load_files:
            private_key = read_file(private_key_file, r.at("private_key_file"))
        return cls(
            team_id=r.str("team_id", required=True),
            key_id=r.str("key_id", required=True),
            private_key=private_key,
            private_key_file=private_key_file,
            private_key_inline=r.has("private_key"),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.private_key_file is not None:
            out["private_key_file"] = self.private_key_file
        if self.private_key_inline:
            out["private_key"] = self.private_key
        out["team_id"] = self.team_id
        out["key_id"] = self.key_id
        return out


@attrs.frozen
class UpstreamProvider:
    """One entry of ``upstream_oauth2.providers``."""

    id: str
    client_id: str
    token_endpoint_auth_method: str
    enabled: bool = True
    synapse_idp_id: str | None = None
    issuer: str | None = None
    human_name: str | None = None
    brand_name: str | None = None
    #: The secret's value (read, trimmed, from ``client_secret_file`` when that was given).
    client_secret: str | None = None
    sign_in_with_apple: SignInWithApple | None = None
    token_endpoint_auth_signing_alg: str | None = None
    id_token_signed_response_alg: str = DEFAULT_ID_TOKEN_SIGNED_RESPONSE_ALG
    scope: str = DEFAULT_SCOPE
    discovery_mode: str = "oidc"
    pkce_method: str = "auto"
    fetch_userinfo: bool = False
    userinfo_signed_response_alg: str | None = None
    authorization_endpoint: str | None = None
    userinfo_endpoint: str | None = None
    token_endpoint: str | None = None
    jwks_uri: str | None = None
    response_mode: str | None = None
    claims_imports: ClaimsImports = ClaimsImports()
    additional_authorization_parameters: Mapping[str, str] = attrs.field(factory=dict)
    forward_login_hint: bool = False
    on_backchannel_logout: str = "do_nothing"
    registration_token_required: bool = False
    #: The file the client secret was read from, if it was (``config dump`` prints this path).
    client_secret_file: str | None = attrs.field(default=None, eq=False)

    @classmethod
    def parse(cls, r: Reader) -> UpstreamProvider:
        enabled = r.bool("enabled", True)
        params = r.mapping("additional_authorization_parameters", {})
        for key, value in params.items():
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise r.error(
                    "additional_authorization_parameters",
                    f"expected a string for {key!r}, got {describe(value)}",
                )
        provider = cls(
            id=r.ulid("id", required=True),
            client_id=r.str("client_id", required=True),
            token_endpoint_auth_method=r.enum(
                "token_endpoint_auth_method", TOKEN_AUTH_METHODS, required=True
            ),
            enabled=enabled,
            synapse_idp_id=r.str("synapse_idp_id"),
            issuer=r.str("issuer"),
            human_name=r.str("human_name"),
            brand_name=r.str("brand_name"),
            client_secret=read_client_secret(r),
            sign_in_with_apple=(
                SignInWithApple.parse(r.child("sign_in_with_apple"), load_files=enabled)
                if r.has("sign_in_with_apple")
                else None
            ),
            token_endpoint_auth_signing_alg=r.str("token_endpoint_auth_signing_alg"),
            id_token_signed_response_alg=r.str(
                "id_token_signed_response_alg", DEFAULT_ID_TOKEN_SIGNED_RESPONSE_ALG
            ),
            scope=r.str("scope", DEFAULT_SCOPE),
            discovery_mode=r.enum("discovery_mode", DISCOVERY_MODES, "oidc"),
            pkce_method=r.enum("pkce_method", PKCE_METHODS, "auto"),
            fetch_userinfo=r.bool("fetch_userinfo", False),
            userinfo_signed_response_alg=r.str("userinfo_signed_response_alg"),
            authorization_endpoint=r.url("authorization_endpoint"),
            userinfo_endpoint=r.url("userinfo_endpoint"),
            token_endpoint=r.url("token_endpoint"),
            jwks_uri=r.url("jwks_uri"),
            response_mode=r.enum("response_mode", RESPONSE_MODES),
            claims_imports=ClaimsImports.parse(r.child("claims_imports")),
            additional_authorization_parameters={str(k): str(v) for k, v in params.items()},
            forward_login_hint=r.bool("forward_login_hint", False),
            on_backchannel_logout=r.enum("on_backchannel_logout", ON_BACKCHANNEL_LOGOUT, "do_nothing"),
            registration_token_required=r.bool("registration_token_required", False),
            client_secret_file=r.str("client_secret_file"),
        )
        provider._validate(r)
        return provider

    def to_dict(self) -> dict[str, Any]:
        """As MAS serialises a ``Provider``: defaults MAS skips are left out, the secret's
        file path is printed rather than its content."""
        out: dict[str, Any] = {}
        if not self.enabled:
            out["enabled"] = False
        out["id"] = self.id
        for key in ("synapse_idp_id", "issuer", "human_name", "brand_name"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        out["client_id"] = self.client_id
        if self.client_secret_file is not None:
            out["client_secret_file"] = self.client_secret_file
        elif self.client_secret is not None:
            out["client_secret"] = self.client_secret
        out["token_endpoint_auth_method"] = self.token_endpoint_auth_method
        if self.sign_in_with_apple is not None:
            out["sign_in_with_apple"] = self.sign_in_with_apple.to_dict()
        if self.token_endpoint_auth_signing_alg is not None:
            out["token_endpoint_auth_signing_alg"] = self.token_endpoint_auth_signing_alg
        if self.id_token_signed_response_alg != DEFAULT_ID_TOKEN_SIGNED_RESPONSE_ALG:
            out["id_token_signed_response_alg"] = self.id_token_signed_response_alg
        if self.scope != DEFAULT_SCOPE:
            out["scope"] = self.scope
        if self.discovery_mode != "oidc":
            out["discovery_mode"] = self.discovery_mode
        if self.pkce_method != "auto":
            out["pkce_method"] = self.pkce_method
        out["fetch_userinfo"] = self.fetch_userinfo
        if self.userinfo_signed_response_alg is not None:
            out["userinfo_signed_response_alg"] = self.userinfo_signed_response_alg
        for key in ("authorization_endpoint", "userinfo_endpoint", "token_endpoint", "jwks_uri"):
            if getattr(self, key) is not None:
                out[key] = normalize_url(getattr(self, key))
        if self.response_mode is not None:
            out["response_mode"] = self.response_mode
        claims = self.claims_imports.to_dict()
        if claims:
            out["claims_imports"] = claims
        if self.additional_authorization_parameters:
            # A BTreeMap in MAS: sorted by key.
            out["additional_authorization_parameters"] = dict(
                sorted(self.additional_authorization_parameters.items())
            )
        out["forward_login_hint"] = self.forward_login_hint
        if self.on_backchannel_logout != "do_nothing":
            out["on_backchannel_logout"] = self.on_backchannel_logout
        out["registration_token_required"] = self.registration_token_required
        return out

    def _validate(self, r: Reader) -> None:
        method = self.token_endpoint_auth_method
        if self.discovery_mode != "disabled" and self.issuer is None:
            raise r.error("issuer", f"missing required value (discovery_mode is {self.discovery_mode!r})")
        secret_key = "client_secret_file" if r.has("client_secret_file") else "client_secret"
        if method in _SECRET_METHODS:
            if self.client_secret is None:
                raise r.error(
                    "client_secret", f"missing required value for token_endpoint_auth_method {method!r}"
                )
        elif self.client_secret is not None:
            raise r.error(secret_key, f"not allowed with token_endpoint_auth_method {method!r}")
        if method in _JWT_METHODS:
            if self.token_endpoint_auth_signing_alg is None:
                raise r.error(
                    "token_endpoint_auth_signing_alg",
                    f"missing required value for token_endpoint_auth_method {method!r}",
                )
        elif self.token_endpoint_auth_signing_alg is not None:
            raise r.error(
                "token_endpoint_auth_signing_alg",
                f"not allowed with token_endpoint_auth_method {method!r},"
                f" got {self.token_endpoint_auth_signing_alg!r}",
            )
        if method == "sign_in_with_apple":
            if self.sign_in_with_apple is None:
                raise r.error(
                    "sign_in_with_apple", f"missing required value for token_endpoint_auth_method {method!r}"
                )
        elif self.sign_in_with_apple is not None:
            raise r.error("sign_in_with_apple", f"not allowed with token_endpoint_auth_method {method!r}")
        for token in self.scope.split(" "):
            if not _SCOPE_TOKEN_RE.match(token):
                raise r.error("scope", f"expected space-separated scope tokens, got {self.scope!r}")

    @property
    def effective_additional_authorization_parameters(self) -> dict[str, str]:
        """The templates to add to authorization requests, with the deprecated
        ``forward_login_hint`` turned into a ``login_hint`` entry as MAS's sync does."""
        params = dict(self.additional_authorization_parameters)
        if self.forward_login_hint and "login_hint" not in params:
            params["login_hint"] = "{{ params.login_hint }}"
        return params


class UpstreamOAuth2Config(Config):
    """``config.upstream_oauth2``: the configured providers, in configuration order
    (which is also the order of the buttons on the login page)."""

    section = "upstream_oauth2"

    providers: list[UpstreamProvider]

    def read_config(self, r: Reader, raw: JsonDict) -> None:
        if raw.get(self.section) is None:
            self.providers = []
            return
        if not r.has("providers"):
            raise r.error("providers", "missing required value (use [] for none)")
        self.providers = [UpstreamProvider.parse(pr) for pr in r.children("providers")]

    def to_dict(self) -> dict[str, Any]:
        return {"providers": [provider.to_dict() for provider in self.providers]}

    def is_default(self) -> bool:
        return not self.providers

    @property
    def enabled_providers(self) -> list[UpstreamProvider]:
        return [p for p in self.providers if p.enabled]

    @classmethod
    def generate_config_section(cls, **kwargs: Any) -> str:
        return """\
# Log in through other identity providers (`mas-cli config sync` stores them).
#upstream_oauth2:
#  providers:
#    - id: 01H8PKNWKKRPCBW4YGH1RWV279   # a ULID, never reused
#      human_name: Example
#      issuer: https://id.example.com/
#      client_id: mas
#      client_secret: "..."
#      token_endpoint_auth_method: client_secret_basic
#      scope: "openid profile email"
#      claims_imports:
#        localpart:
#          action: require
#          template: "{{ user.preferred_username }}"
#        displayname:
#          action: suggest
#          on_login: sync   # beyond MAS: re-import it on every sign-in (keep: registration only)
#        email:
#          action: suggest
"""
