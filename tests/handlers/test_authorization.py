# SPDX-License-Identifier: AGPL-3.0-only
"""The pure rules of ``handlers/authorization.py``: response mode resolution and callback
destinations (MAS's ``resolve_response_mode`` and ``CallbackDestination``)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from mas_twisted.api.errors import AccessDeniedError, PageError
from mas_twisted.handlers.authorization import CallbackDestination, resolve_response_mode
from mas_twisted.oauth2.requests import ResponseType


def test_response_mode_defaults() -> None:
    assert resolve_response_mode(ResponseType.parse("code"), None) == "query"
    assert resolve_response_mode(ResponseType.parse("code"), "fragment") == "fragment"
    assert resolve_response_mode(ResponseType.parse("code id_token"), None) == "fragment"
    assert resolve_response_mode(ResponseType.parse("id_token"), "form_post") == "form_post"
    with pytest.raises(PageError):
        resolve_response_mode(ResponseType.parse("code id_token"), "query")
    with pytest.raises(PageError):
        resolve_response_mode(ResponseType.parse("token"), "query")


def test_destination_refusals() -> None:
    with pytest.raises(PageError):
        CallbackDestination.try_new("query", "https://a.example/cb#x", None)
    with pytest.raises(PageError):
        CallbackDestination.try_new("web_message", "https://a.example/cb", None)


def test_query_callback_keeps_existing_params_and_ends_with_an_empty_fragment() -> None:
    destination = CallbackDestination.try_new("query", "https://a.example/cb?x=1", "s t")
    url = destination.go([("code", "abc")]).url
    assert url.endswith("#")
    parts = urlsplit(url)
    assert parse_qs(parts.query) == {"x": ["1"], "state": ["s t"], "code": ["abc"]}


def test_fragment_and_form_post_callbacks() -> None:
    fragment = CallbackDestination.try_new("fragment", "https://a.example/cb", "st").error(
        AccessDeniedError()
    )
    values = parse_qs(urlsplit(fragment.url).fragment)
    assert values["error"] == ["access_denied"] and values["state"] == ["st"]
    form_post = CallbackDestination.try_new("form_post", "https://a.example/cb", None).go([("code", "c")])
    assert form_post.is_form_post
    assert form_post.form_params == {"code": "c"}
