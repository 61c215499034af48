# SPDX-License-Identifier: AGPL-3.0-only
"""The page templates: every template renders with every sample (MAS's ``templates check``),
the pages are accessible and escaped, and overrides work."""

from __future__ import annotations

import random
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from mas_twisted.config.root import RootConfig
from mas_twisted.templating import (
    PAGE_CONTEXTS,
    FormPostContext,
    NotFoundContext,
    Templates,
    builtin_templates_dir,
    simplify_url,
)
from mas_twisted.templating.samples import SAMPLES, account_inactive_samples, consent_samples
from mas_twisted.urls import UrlBuilder
from tests.unittest import MasTestCase

NOW_MS = 1_700_000_000_000


def config(**extra: Any) -> RootConfig:
    raw = MasTestCase.default_config(MasTestCase("run"))
    raw.update(extra)
    return RootConfig(raw)


def templates(**extra: Any) -> Templates:
    cfg = config(**extra)
    return Templates.from_config(cfg, UrlBuilder(cfg.http), strict=True)


class PageAudit(HTMLParser):
    """What a page holds, as far as the checks below need."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.label_for: set[str] = set()
        self.open_forms: list[dict[str, Any]] = []
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "label" and attributes.get("for"):
            self.label_for.add(str(attributes["for"]))
        if tag == "form":
            form = {"attrs": attributes, "inputs": []}
            self.open_forms.append(form)
            self.forms.append(form)
        if tag in ("input", "button") and self.open_forms:
            self.open_forms[-1]["inputs"].append(attributes)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self.open_forms:
            self.open_forms.pop()


def all_renders() -> dict[tuple[str, str], str]:
    return templates(
        branding={
            "policy_uri": "https://example.com/p",
            "tos_uri": "https://example.com/t",
            "imprint": "Example Ltd",
        }
    ).check_render(NOW_MS, random.Random(42))


def test_every_template_renders_with_every_sample() -> None:
    renders = all_renders()
    assert set(SAMPLES) == set(PAGE_CONTEXTS)
    expected = set()
    for cls in PAGE_CONTEXTS:
        names = getattr(cls, "TEMPLATES", (cls.TEMPLATE,))
        count = len(SAMPLES[cls](NOW_MS, random.Random(42)))
        assert count >= 1, cls
        expected |= {(name, f"index={i}") for name in names for i in range(count)}
    assert set(renders) == expected
    for name in (
        "pages/login.html",
        "pages/consent.html",
        "pages/device_link.html",
        "pages/device_consent.html",
        "pages/policy_violation.html",
        "pages/error.html",
        "pages/404.html",
        "form_post.html",
        "pages/account/locked.html",
        "pages/account/deactivated.html",
        "pages/account/logged_out.html",
        "pages/index.html",
    ):
        assert (name, "index=0") in renders, name


def test_pages_are_accessible() -> None:
    for (name, sample), html in all_renders().items():
        where = f"{name} {sample}"
        assert html.startswith("<!DOCTYPE html>"), where
        audit = PageAudit()
        audit.feed(html)
        tags = {tag: attrs for tag, attrs in audit.tags if tag in ("html", "title")}
        assert tags["html"].get("lang") == "en", where
        assert "title" in tags, where
        metas = [attrs for tag, attrs in audit.tags if tag == "meta"]
        assert {"name": "viewport", "content": "width=device-width, initial-scale=1"} in metas, where
        for tag, attrs in audit.tags:
            if tag == "input" and attrs.get("type") not in ("hidden", "submit"):
                assert attrs.get("id") in audit.label_for, f"{where}: input {attrs} has no label"
            if tag == "img":
                assert "alt" in attrs, where
        for form in audit.forms:
            if name == "form_post.html":
                continue
            # Every form of ours posts with a CSRF token.
            assert (form["attrs"].get("method") or "").lower() == "post", where
            assert any(i.get("name") == "csrf" and i.get("type") == "hidden" for i in form["inputs"]), where
            assert any(i.get("type") == "submit" for i in form["inputs"]), where


def test_values_are_escaped() -> None:
    t = templates()
    html = t.render_not_found(
        NotFoundContext(method="GET", version="HTTP/1.1", uri='/x?<script>alert("1")</script>')
    )
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#34;1&#34;)&lt;/script&gt;" in html
    post = t.render_form_post(
        FormPostContext(redirect_uri="https://c.example/cb?a=1&b=2", params={"state": '"><b>'})
    )
    assert 'action="https://c.example/cb?a=1&amp;b=2"' in post
    assert 'value="&#34;&gt;&lt;b&gt;"' in post


def test_form_post_submits_itself_and_works_without_javascript() -> None:
    html = templates().render_form_post(
        FormPostContext(redirect_uri="https://c.example/cb", params={"code": "abc", "state": "xyz"})
    )
    audit = PageAudit()
    audit.feed(html)
    (form,) = audit.forms
    assert form["attrs"]["method"] == "post" and form["attrs"]["action"] == "https://c.example/cb"
    hidden = {i["name"]: i["value"] for i in form["inputs"] if i.get("type") == "hidden"}
    assert hidden == {"code": "abc", "state": "xyz"}
    assert any(i.get("type") == "submit" for i in form["inputs"])
    # The submit script is a static file (no inline script under the Content-Security-Policy).
    assert '<script src="/assets/form_post.js"></script>' in html
    script = (Path(__file__).resolve().parents[2] / "res" / "assets" / "form_post.js").read_text()
    assert 'document.getElementById("form-post").submit()' in script
    assert "<noscript>" in html


def test_account_inactive_picks_the_page() -> None:
    t = templates()
    samples = account_inactive_samples(NOW_MS, random.Random(1))
    assert "Account locked" in t.render_account_inactive(samples[0])
    assert "Account deactivated" in t.render_account_inactive(samples[1])
    assert "You were signed out" in t.render_account_inactive(samples[2])


def test_consent_page_describes_scopes() -> None:
    t = templates()
    safe, dangerous = consent_samples(NOW_MS, random.Random(7))
    html = t.render_consent(safe)
    assert "Allow Example Chat to use your account?" in html
    assert "Read your messages, rooms and account data" in html
    assert "device:ABCDEFGHIJ" not in html
    assert 'name="action" value="consent"' in html and 'name="action" value="reject"' in html
    assert f'action="/consent/{safe.grant.id}"' in html
    assert "@alice:example.com" in html
    html = t.render_consent(dangerous)
    assert html.count("Powerful access:") == 2
    # A client without a name is shown by its id.
    assert f"Allow {dangerous.client.client_id} to use your account?" in html


def test_simplify_url() -> None:
    assert simplify_url("https://www.example.org:8448/path/?q=1") == "www.example.org"
    assert (
        simplify_url("https://sso.example.org/realms/main/", keep_path=True) == "sso.example.org/realms/main"
    )
    assert simplify_url("") == ""


def test_override_one_template(tmp_path: Path) -> None:
    (tmp_path / "pages").mkdir()
    (tmp_path / "pages" / "404.html").write_text(
        '{% extends "base.html" %}{% block content %}<h1>Custom 404 for {{ uri }}</h1>{% endblock %}'
    )
    t = templates(templates={"path": str(tmp_path)})
    html = t.render_not_found(NotFoundContext(method="GET", version="HTTP/1.1", uri="/nope"))
    assert "<h1>Custom 404 for /nope</h1>" in html
    # The layout and every other page still come from the shipped templates.
    assert '<link rel="stylesheet" href="/assets/mas.css">' in html
    assert t.search_path == [str(tmp_path), builtin_templates_dir()]
    t.check_render(NOW_MS, random.Random(3))
