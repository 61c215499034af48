# SPDX-License-Identifier: AGPL-3.0-only
"""The human pages (resource ``human``; MAS's ``human_router``): ``/``, ``/login``, ``/logout``.

Shared pieces: :mod:`._forms` (parsing, redirects, ``X-Frame-Options``; the pages go out
through :func:`mas_twisted.rest._base.html_response` with their security headers),
:mod:`._errors` (HTML error pages), :mod:`._session` (the signed-in session or the
account-inactive page).
"""
