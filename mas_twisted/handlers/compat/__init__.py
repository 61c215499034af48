# SPDX-License-Identifier: AGPL-3.0-only
"""The legacy Matrix login API (Matrix client-server API v1.x §"Login", MAS's
``crates/handlers/src/compat/``; inventory §3), one module per endpoint as in MAS:

- :mod:`.login`: ``GET|POST /login`` (:class:`~.login.CompatLoginHandler`, also behind
  ``mas-cli manage issue-compatibility-token``);
- :mod:`.logout`: ``POST /logout`` and ``/logout/all`` (:class:`~.logout.CompatLogoutHandler`);
- :mod:`.refresh`: ``POST /refresh`` (:class:`~.refresh.CompatRefreshHandler`);
- :mod:`.sso`: the web half of ``m.login.sso`` (:class:`~.sso.CompatSsoHandler`).

A compatibility session is one device logged in without OAuth 2.0. The handlers hold the
rules of each endpoint, in MAS's order; the resources in ``rest/compat`` only parse and
serialise. Every refusal is a :class:`~mas_twisted.api.errors.MatrixError` subclass with MAS's
status, ``errcode`` and text, raised before anything is written. Each handler comes from the
container (``server.get_compat_login_handler()`` ...).
"""
