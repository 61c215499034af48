# SPDX-License-Identifier: AGPL-3.0-only
"""The HTML pages, rendered with Jinja2 (MAS's ``crates/templates``: one typed context and one
``render_<page>()`` per page, and sample contexts that ``mas-cli templates check`` renders).

Templates are looked up in ``templates.path`` first, then in the ones shipped with the
service (``templates/`` in the data folder), so an operator may override any single file.
Everything is HTML-escaped unless a template says otherwise.

- :class:`Templates` (here) is the renderer; the context classes and :class:`FormState` are
  imported from here too.
- :mod:`~mas_twisted.templating.context`: a frozen ``attrs`` context class per page, with a
  ``TEMPLATE`` name and the fields the page shows.
- :mod:`~mas_twisted.templating.forms`: :class:`FormState`, what a refused form shows back.
- :mod:`~mas_twisted.templating.samples`: representative contexts of every page, which
  :meth:`Templates.check_render` renders (``templates check`` and the tests).

Every render also receives:

- ``branding``: :class:`SiteBranding` (service name, homeserver name, policy and terms links,
  imprint) from the ``branding`` and ``matrix`` sections;
- ``features``: :class:`SiteFeatures` (password login and registration, login with email,
  account recovery, the account pages, upstream login) from ``passwords``, ``account`` and the
  routes the listeners mount: a template links to an optional page only through its feature,
  which is off while no route serves the page;
- ``lang`` (the negotiated language, for ``<html lang>``), gettext's ``_``, ``gettext`` and
  ``ngettext`` (Jinja2's i18n extension, newstyle: ``{% trans %}`` blocks too) bound to that
  language's catalog (:mod:`~mas_twisted.templating.i18n`), the filter ``prefix_url`` (a path
  under ``http.public_base``'s path), ``simplify_url`` (the host, and optionally the path, of
  a URL), ``datetime`` (a time in epoch milliseconds, as the language writes it, UTC) and the
  function
  ``asset(name)`` (the URL of a static asset).
"""

from __future__ import annotations

import functools
import logging
import os
import random
from typing import TYPE_CHECKING, Any

import babel
import jinja2

from mas_twisted.templating.context import (
    ACCOUNT_NAV,
    PAGE_CONTEXTS,
    AccountConnectedAccountsContext,
    AccountCrossSigningResetContext,
    AccountDeactivateContext,
    AccountEmailInUseContext,
    AccountEmailVerifyContext,
    AccountInactiveContext,
    AccountNavEntry,
    AccountPasswordContext,
    AccountPlanContext,
    AccountProfileContext,
    AccountSessionContext,
    AccountSessionsContext,
    AccountTwoFactorContext,
    CaptchaContext,
    CompatLoginPolicyViolationContext,
    CompatSsoContext,
    ConnectedAccountRow,
    ConsentContext,
    DeviceConsentContext,
    DeviceLinkContext,
    EndSessionContext,
    ErrorContext,
    FormPostContext,
    IndexContext,
    LoginContext,
    LoginSecondFactorContext,
    MatrixUser,
    NotFoundContext,
    PageContext,
    PasswordRegisterContext,
    PersonalTokenRow,
    PersonalTokensContext,
    PolicyViolationContext,
    PostAuthContext,
    ProviderLink,
    RecoveryConsumedContext,
    RecoveryDisabledContext,
    RecoveryExpiredContext,
    RecoveryFinishContext,
    RecoveryProgressContext,
    RecoveryStartContext,
    RegisterContext,
    RegisterStepsDisplayNameContext,
    RegisterStepsEmailInUseContext,
    RegisterStepsRegistrationTokenContext,
    RegisterStepsVerifyEmailContext,
    SiteBranding,
    SiteFeatures,
    UpstreamImportContext,
    UpstreamLinkMismatchContext,
    UpstreamRegisterContext,
    UpstreamSuggestLinkContext,
    account_nav,
    simplify_url,
    site_branding,
    site_features,
)
from mas_twisted.templating.forms import FormState
from mas_twisted.templating.i18n import DEFAULT_LOCALE, I18n, format_datetime
from mas_twisted.templating.samples import SAMPLES
from mas_twisted.util.paths import data_dir

if TYPE_CHECKING:
    from mas_twisted.server import MasServer
    from mas_twisted.urls import MountedRoutes, UrlBuilder

__all__ = [
    "ACCOUNT_NAV",
    "AccountCrossSigningResetContext",
    "AccountDeactivateContext",
    "AccountEmailInUseContext",
    "AccountEmailVerifyContext",
    "AccountInactiveContext",
    "AccountNavEntry",
    "AccountPasswordContext",
    "AccountTwoFactorContext",
    "LoginSecondFactorContext",
    "AccountPlanContext",
    "AccountConnectedAccountsContext",
    "ConnectedAccountRow",
    "AccountProfileContext",
    "AccountSessionContext",
    "AccountSessionsContext",
    "account_nav",
    "CompatLoginPolicyViolationContext",
    "CompatSsoContext",
    "ConsentContext",
    "DeviceConsentContext",
    "DeviceLinkContext",
    "EndSessionContext",
    "ErrorContext",
    "FormPostContext",
    "FormState",
    "IndexContext",
    "PersonalTokenRow",
    "PersonalTokensContext",
    "LoginContext",
    "MatrixUser",
    "NotFoundContext",
    "PAGE_CONTEXTS",
    "PageContext",
    "PolicyViolationContext",
    "PostAuthContext",
    "ProviderLink",
    "CaptchaContext",
    "PasswordRegisterContext",
    "RegisterContext",
    "RecoveryConsumedContext",
    "RecoveryDisabledContext",
    "RecoveryExpiredContext",
    "RecoveryFinishContext",
    "RecoveryProgressContext",
    "RecoveryStartContext",
    "RegisterStepsDisplayNameContext",
    "UpstreamImportContext",
    "UpstreamLinkMismatchContext",
    "UpstreamRegisterContext",
    "UpstreamSuggestLinkContext",
    "RegisterStepsEmailInUseContext",
    "RegisterStepsRegistrationTokenContext",
    "RegisterStepsVerifyEmailContext",
    "SiteBranding",
    "SiteFeatures",
    "Templates",
    "builtin_templates_dir",
    "simplify_url",
    "site_branding",
    "site_features",
]

logger = logging.getLogger(__name__)


def builtin_templates_dir() -> str:
    return str(data_dir("templates"))


class Templates:
    """Renders the pages; built by ``MasServer.get_templates()``.

    Args:
        server: reads the ``templates``, ``branding``, ``matrix``, ``passwords`` and
            ``account`` sections and the server's URL builder.
    """

    def __init__(self, server: MasServer):
        self._setup(
            server.config,
            server.get_url_builder(),
            server.get_site_features(),
            strict=False,
            i18n=server.get_i18n(),
        )

    @classmethod
    def from_config(
        cls,
        config: Any,
        url_builder: UrlBuilder,
        *,
        strict: bool = False,
        routes: MountedRoutes | None = None,
    ) -> Templates:
        """Templates without a server (``mas-cli templates check``); ``strict`` fails on undefined
        names; ``routes`` are the mounted routes (``None``: no optional page is served)."""
        self = cls.__new__(cls)
        self._setup(config, url_builder, site_features(config, routes), strict=strict)
        return self

    def _setup(
        self,
        config: Any,
        url_builder: UrlBuilder,
        features: SiteFeatures,
        *,
        strict: bool,
        i18n: I18n | None = None,
    ) -> None:
        self.i18n = i18n if i18n is not None else I18n.from_config(config)
        self.branding = site_branding(config)
        self.features = features
        self._url_builder = url_builder
        builtin = builtin_templates_dir()
        self.search_path: list[str] = []
        configured = getattr(config.templates, "path", None)
        if configured and configured != builtin:
            if not os.path.isdir(configured):
                logger.warning(
                    "templates.path %s is not a directory; using the shipped templates only", configured
                )
            self.search_path.append(configured)
        self.search_path.append(builtin)
        self._strict = strict
        self._envs: dict[str, jinja2.Environment] = {}
        self.env = self.environment(DEFAULT_LOCALE)

    def environment(self, locale: str) -> jinja2.Environment:
        """The Jinja2 environment of one locale, built on first use and kept: its gettext
        callables are the locale's catalog, so a render needs no per-request set-up and
        renders of different locales never share state (they all run on the reactor thread)."""
        env = self._envs.get(locale)
        if env is not None:
            return env
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(self.search_path),
            autoescape=True,
            undefined=jinja2.StrictUndefined if self._strict else jinja2.Undefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            # Templates are read once; a restart picks up changes (as MAS).
            auto_reload=False,
            extensions=["jinja2.ext.i18n"],
        )
        env.install_gettext_translations(self.i18n.translations(locale), newstyle=True)  # type: ignore[attr-defined]
        # ``_(value)`` marks its result safe (newstyle gettext), so a string that may carry
        # request data (a policy message, a client's scope text) is translated through this
        # filter instead, whose plain ``str`` result autoescape still escapes.
        env.filters["translate"] = self.i18n.translations(locale).gettext
        env.filters["prefix_url"] = self.prefix_url
        env.filters["simplify_url"] = simplify_url
        env.filters["datetime"] = functools.partial(format_datetime, locale=locale)
        env.globals["asset"] = self.asset_url
        env.globals["branding"] = self.branding
        env.globals["features"] = self.features
        env.globals["lang"] = babel.Locale.parse(locale).language if locale != DEFAULT_LOCALE else locale
        self._envs[locale] = env
        return env

    def prefix_url(self, path: str) -> str:
        """A path of the service under ``public_base``'s path (what links and forms use)."""
        return self._url_builder.prefix + path

    def asset_url(self, name: str) -> str:
        return self._url_builder.assets_base + name

    # -- rendering ------------------------------------------------------------------------
    def render(self, template: str, ctx: PageContext, *, locale: str | None = None) -> str:
        """Render a page in ``locale``, by default the one negotiated from the request being
        handled (:meth:`I18n.current_locale`)."""
        if locale is None:
            locale = self.i18n.current_locale()
        return self.environment(locale).get_template(template).render(ctx.to_context())

    def render_index(self, ctx: IndexContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_personal_tokens(self, ctx: PersonalTokensContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_login(self, ctx: LoginContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_consent(self, ctx: ConsentContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_policy_violation(self, ctx: PolicyViolationContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_sso_login(self, ctx: CompatSsoContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_compat_login_policy_violation(self, ctx: CompatLoginPolicyViolationContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_device_link(self, ctx: DeviceLinkContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_device_consent(self, ctx: DeviceConsentContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_account_inactive(self, ctx: AccountInactiveContext) -> str:
        """The locked, deactivated or logged-out page, as fits the user."""
        return self.render(ctx.template, ctx)

    def render_account_locked(self, ctx: AccountInactiveContext) -> str:
        return self.render("pages/account/locked.html", ctx)

    def render_account_deactivated(self, ctx: AccountInactiveContext) -> str:
        return self.render("pages/account/deactivated.html", ctx)

    def render_account_logged_out(self, ctx: AccountInactiveContext) -> str:
        return self.render("pages/account/logged_out.html", ctx)

    def render_error(self, ctx: ErrorContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_not_found(self, ctx: NotFoundContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_form_post(self, ctx: FormPostContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_register(self, ctx: RegisterContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_password_register(self, ctx: PasswordRegisterContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_register_steps_registration_token(self, ctx: RegisterStepsRegistrationTokenContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_register_steps_verify_email(self, ctx: RegisterStepsVerifyEmailContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_register_steps_email_in_use(self, ctx: RegisterStepsEmailInUseContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_register_steps_display_name(self, ctx: RegisterStepsDisplayNameContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    # -- the account pages ------------------------------------------------------------------
    def render_account_profile(self, ctx: AccountProfileContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_account_email_verify(self, ctx: AccountEmailVerifyContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_account_email_in_use(self, ctx: AccountEmailInUseContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_account_sessions(self, ctx: AccountSessionsContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_account_session(self, ctx: AccountSessionContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_account_two_factor(self, ctx: AccountTwoFactorContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_login_second_factor(self, ctx: LoginSecondFactorContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_account_password(self, ctx: AccountPasswordContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_account_reset_cross_signing(self, ctx: AccountCrossSigningResetContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_account_deactivate(self, ctx: AccountDeactivateContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_account_plan(self, ctx: AccountPlanContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_account_connected_accounts(self, ctx: AccountConnectedAccountsContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_end_session(self, ctx: EndSessionContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_recovery_start(self, ctx: RecoveryStartContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_recovery_progress(self, ctx: RecoveryProgressContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_recovery_finish(self, ctx: RecoveryFinishContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_recovery_expired(self, ctx: RecoveryExpiredContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_recovery_consumed(self, ctx: RecoveryConsumedContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_recovery_disabled(self, ctx: RecoveryDisabledContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_upstream_register(self, ctx: UpstreamRegisterContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_upstream_link_mismatch(self, ctx: UpstreamLinkMismatchContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_upstream_suggest_link(self, ctx: UpstreamSuggestLinkContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    # -- checking -------------------------------------------------------------------------
    def check_render(
        self, now_ms: int, rng: random.Random, *, locale: str = DEFAULT_LOCALE
    ) -> dict[tuple[str, str], str]:
        """Render every template with every sample in ``locale``: ``{(template, "index=N"): html}``.

        Raises:
            jinja2.TemplateError: a template does not parse or fails to render.
        """
        renders: dict[tuple[str, str], str] = {}
        for cls in PAGE_CONTEXTS:
            samples = SAMPLES[cls](now_ms, rng)
            templates = getattr(cls, "TEMPLATES", (cls.TEMPLATE,))
            for template in templates:
                for index, sample in enumerate(samples):
                    renders[(template, f"index={index}")] = self.render(template, sample, locale=locale)
        return renders
