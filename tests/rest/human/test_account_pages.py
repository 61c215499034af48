# SPDX-License-Identifier: AGPL-3.0-only
"""The account pages (issue 13): MSC4191 action routing, profile, sessions and devices,
password, cross-signing reset, deactivation and the plan tab; the switches of ``account``
hide each control and refuse its POST; CSRF; another user's ids are 404s."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from mas_twisted.oauth2.scope import Scope, device_scope_tokens
from tests.rest.human._account import NEW_PASSWORD, PASSWORD, AccountTestCase
from tests.rest.human._base import csrf_from
from tests.unittest import override_config

API_SCOPE = "urn:matrix:client:api:*"


class ActionRoutingTests(AccountTestCase):
    def test_signed_out_goes_through_login_and_comes_back(self) -> None:
        self.factory.user()
        channel = self.browse("GET", "/account/?action=org.matrix.session_view&device_id=DEVICEAAAA")
        self.assertEqual(channel.code, 303)
        parts = urlsplit(channel.location or "")
        self.assertEqual(parts.path, "/login")
        self.assertEqual(
            parse_qs(parts.query),
            {"kind": ["manage_account"], "action": ["org.matrix.session_view"], "device_id": ["DEVICEAAAA"]},
        )
        done = self.login("alice", PASSWORD, query=f"?{parts.query}")
        self.assertEqual(done.location, "/account/?action=org.matrix.session_view&device_id=DEVICEAAAA")
        self.assertEqual(self.browse("GET", done.location).location, "/account/devices/DEVICEAAAA")

    def test_every_action_lands_on_its_page(self) -> None:
        self.sign_in()
        expected = {
            "org.matrix.profile": None,
            "profile": None,
            "org.matrix.devices_list": "/account/sessions",
            "org.matrix.sessions_list": "/account/sessions",
            "sessions_list": "/account/sessions",
            "org.matrix.device_view": "/account/devices/DEVICEAAAA",
            "org.matrix.session_view": "/account/devices/DEVICEAAAA",
            "session_view": "/account/devices/DEVICEAAAA",
            "org.matrix.device_delete": "/account/devices/DEVICEAAAA?end=1",
            "org.matrix.session_end": "/account/devices/DEVICEAAAA?end=1",
            "session_end": "/account/devices/DEVICEAAAA?end=1",
            "org.matrix.cross_signing_reset": "/account/reset-cross-signing",
        }
        for action, target in expected.items():
            channel = self.browse("GET", f"/account/?action={action}&device_id=DEVICEAAAA")
            if target is None:
                self.assertEqual(channel.code, 200, action)
                self.assertIn("Your account", channel.text_body)
            else:
                self.assertEqual((channel.code, channel.location), (303, target), action)
        # A device action without its device_id, or an unknown action, lands on a list or here.
        self.assertEqual(self.browse("GET", "/account/?action=session_view").location, "/account/sessions")
        self.assertEqual(self.browse("GET", "/account/?action=nonsense").code, 200)

    def test_unknown_account_paths_are_404_pages(self) -> None:
        self.sign_in()
        for path in ("/account/nothing", "/account/sessions/x/y", "/account/emails", "/nowhere/<b>"):
            # The listener's fallback answers paths no resource serves: the 404 page of the
            # service's templates for a browser...
            page = self.browse("GET", path, headers=(("Accept", "text/html,application/xhtml+xml"),))
            self.assertEqual(page.code, 404, path)
            self.assertTrue(page.header("Content-Type").startswith("text/html"), path)
            self.assertIn("Page not found", page.text_body)
            self.assertIn("Go to the start page", page.text_body)
            self.assertNotIn("<b>", page.text_body)
            # ... and plain text for an API client, as before.
            plain = self.browse("GET", path, headers=(("Accept", "application/json"),))
            self.assertEqual(plain.code, 404, path)
            self.assertTrue(plain.header("Content-Type").startswith("text/plain"), path)
            self.assertTrue(plain.text_body.startswith("Not Found: GET "), plain.text_body)
        self.assertEqual(self.browse("GET", "/account").code, 308)

    def test_change_password_well_known(self) -> None:
        channel = self.browse("GET", "/.well-known/change-password")
        self.assertEqual((channel.code, channel.location), (303, "/account/password/change"))


class ProfileTests(AccountTestCase):
    def test_profile_shows_the_homeserver_profile_and_changes_the_display_name(self) -> None:
        self.sign_in()
        page = self.browse("GET", "/account/")
        self.assertIn("Alice Liddell", page.text_body)
        self.assertIn("mxc://example.com/alice", page.text_body)
        self.assertIn("@alice:example.com", page.text_body)
        done = self.post_form("/account/", {"action": "set_display_name", "display_name": "Queen of Hearts"})
        self.assertEqual((done.code, done.location), (303, "/account/?saved=1"))
        self.assertEqual(
            self.homeserver.calls("set_displayname"),
            [{"localpart": "alice", "displayname": "Queen of Hearts"}],
        )
        self.assertIn("Queen of Hearts", self.browse("GET", "/account/?saved=1").text_body)
        # An empty name removes it.
        self.post_form("/account/", {"action": "set_display_name", "display_name": "  "})
        self.assertEqual(self.homeserver.calls("unset_displayname"), [{"localpart": "alice"}])

    def test_homeserver_down(self) -> None:
        self.sign_in()
        self.homeserver.down = True
        page = self.browse("GET", "/account/")
        self.assertEqual(page.code, 200)
        self.assertIn("cannot be reached", page.text_body)
        refused = self.browse(
            "POST",
            "/account/",
            form={"csrf": csrf_from(page), "action": "set_display_name", "display_name": "X"},
        )
        self.assertEqual(refused.code, 200)
        self.assertIn("The homeserver cannot be reached right now", refused.text_body)

    @override_config({"account": {"displayname_change_allowed": False}})
    def test_display_name_change_disabled(self) -> None:
        self.sign_in()
        page = self.browse("GET", "/account/")
        self.assertNotIn("display-name-form", page.text_body)
        refused = self.browse(
            "POST",
            "/account/",
            form={"csrf": csrf_from(page), "action": "set_display_name", "display_name": "X"},
        )
        self.assertEqual(refused.code, 403)
        self.assertEqual(self.homeserver.calls("set_displayname"), [])

    def test_post_without_csrf_changes_nothing(self) -> None:
        self.sign_in()
        for form in ({}, {"csrf": "wrong"}):
            channel = self.browse(
                "POST", "/account/", form={**form, "action": "set_display_name", "display_name": "X"}
            )
            self.assertEqual(channel.code, 400)
        self.assertEqual(self.homeserver.calls("set_displayname"), [])


class SessionTests(AccountTestCase):
    def setup_sessions(self) -> Any:
        user = self.sign_in()
        client = self.factory.client(
            client_name="Element Test", redirect_uris=("https://app.example.com/cb",)
        )
        scope = f"openid {API_SCOPE} {device_scope_tokens('OAUTHDEVICE')[0]}"
        oauth, oauth_token, _ = self.factory.oauth2_session(client, user=user, scope=scope)
        compat, compat_token, _ = self.factory.compat_session(user, device_id="COMPATDEVICE")
        return user, oauth, oauth_token, compat, compat_token

    def test_sessions_list_and_detail_pages(self) -> None:
        _, oauth, _, compat, _ = self.setup_sessions()
        page = self.browse("GET", "/account/sessions")
        self.assertEqual(page.code, 200)
        for text in ("OAUTHDEVICE", "COMPATDEVICE", "Element Test", "Legacy login", "(this browser)"):
            self.assertIn(text, page.text_body)
        for session in (oauth, compat):
            detail = self.browse("GET", f"/account/sessions/{session.id}")
            self.assertEqual(detail.code, 200)
        device = self.browse("GET", "/account/devices/COMPATDEVICE")
        self.assertIn("COMPATDEVICE", device.text_body)
        confirm = self.browse("GET", "/account/devices/OAUTHDEVICE?end=1")
        self.assertIn("out of your account?", confirm.text_body)

    def test_ending_a_session_kills_its_token_and_syncs_devices(self) -> None:
        user, oauth, oauth_token, compat, compat_token = self.setup_sessions()
        self.assertTrue(self.introspect(compat_token.access_token)["active"])
        self.assertTrue(self.introspect(oauth_token.access_token)["active"])
        done = self.post_form("/account/devices/COMPATDEVICE", {"action": "end"})
        self.assertEqual((done.code, done.location), (303, "/account/sessions"))
        self.assertFalse(self.introspect(compat_token.access_token)["active"])
        self.assertTrue(self.introspect(oauth_token.access_token)["active"])
        self.assertEqual(self.jobs("sync-devices")[-1], {"user_id": user.id})
        done = self.post_form(f"/account/sessions/{oauth.id}", {"action": "end"})
        self.assertEqual(done.code, 303)
        self.assertFalse(self.introspect(oauth_token.access_token)["active"])
        listed = self.browse("GET", "/account/sessions").text_body
        self.assertNotIn("COMPATDEVICE", listed)
        self.assertNotIn("OAUTHDEVICE", listed)
        # The device is gone: its page is a 404 now.
        self.assertEqual(self.browse("GET", "/account/devices/COMPATDEVICE").code, 404)

    def test_rename_a_device(self) -> None:
        _, _, _, compat, _ = self.setup_sessions()
        done = self.post_form("/account/devices/COMPATDEVICE", {"action": "rename", "name": "Work laptop"})
        self.assertEqual(done.code, 200)
        self.assertIn("Work laptop", done.text_body)
        self.assertEqual(
            self.homeserver.calls("update_device_display_name"),
            [{"localpart": "alice", "device_id": "COMPATDEVICE", "display_name": "Work laptop"}],
        )
        self.assertIn("Work laptop", self.browse("GET", "/account/sessions").text_body)
        refused = self.post_form("/account/devices/COMPATDEVICE", {"action": "rename", "name": " "})
        self.assertIn("Fill in this field.", refused.text_body)

    def test_post_without_csrf_ends_nothing(self) -> None:
        _, oauth, oauth_token, compat, compat_token = self.setup_sessions()
        for path in (f"/account/sessions/{oauth.id}", "/account/devices/COMPATDEVICE"):
            channel = self.browse("POST", path, form={"action": "end"})
            self.assertEqual(channel.code, 400, path)
        self.assertTrue(self.introspect(compat_token.access_token)["active"])
        self.assertTrue(self.introspect(oauth_token.access_token)["active"])
        self.assertEqual(self.jobs("sync-devices"), [])

    def test_another_users_ids_are_404(self) -> None:
        self.sign_in()
        bob = self.factory.user("bob")
        bob_browser = self.factory.browser_session(bob)
        bob_compat, bob_token, _ = self.factory.compat_session(bob, device_id="BOBSDEVICE")
        page = self.browse("GET", "/account/sessions")
        for session_id in (bob_browser.id, bob_compat.id, "01H00000000000000000000000", "not-a-ulid"):
            self.assertEqual(self.browse("GET", f"/account/sessions/{session_id}").code, 404, session_id)
            channel = self.browse(
                "POST", f"/account/sessions/{session_id}", form={"csrf": csrf_from(page), "action": "end"}
            )
            self.assertEqual(channel.code, 404, session_id)
        self.assertEqual(self.browse("GET", "/account/devices/BOBSDEVICE").code, 404)
        channel = self.browse(
            "POST", "/account/devices/BOBSDEVICE", form={"csrf": csrf_from(page), "action": "end"}
        )
        self.assertEqual(channel.code, 404)
        self.assertTrue(self.introspect(bob_token.access_token)["active"])

    def test_sign_out_of_other_browsers(self) -> None:
        user = self.sign_in()
        other = self.factory.browser_session(user)
        page = self.browse("GET", "/account/sessions/browsers")
        self.assertIn("Sign out of every other browser", page.text_body)
        done = self.browse(
            "POST", "/account/sessions/browsers", form={"csrf": csrf_from(page), "action": "end_others"}
        )
        self.assertIn("Signed out of 1 other browser.", done.text_body)
        ended = self.get_success(self.server.get_stores().browser_sessions.get_browser_session(other.id))
        self.assertIsNotNone(ended.finished_at)
        # This browser is still signed in.
        self.assertEqual(self.browse("GET", "/account/sessions").code, 200)

    def test_device_ids_with_special_characters(self) -> None:
        user = self.sign_in()
        self.factory.compat_session(user, device_id="odd/device+id")
        channel = self.browse("GET", "/account/devices/" + quote("odd/device+id", safe="/"))
        self.assertEqual(channel.code, 200)
        self.assertIn("odd/device+id", channel.text_body)


class PersonalSessionListTests(AccountTestCase):
    """Issue 13 item 5: the personal sessions acting as the user are in the list, with their
    name, scope, device and expiry; ending one revokes its token at once."""

    def issue(
        self, user: Any, name: str, *, device: str | None, owner: Any = None, expires_in: int | None
    ) -> Any:
        scope = API_SCOPE + (f" {device_scope_tokens(device)[0]}" if device else "")
        found, text = self.get_success(
            self.server.get_personal_session_handler().issue(
                owner_user_id=(owner or user).id,
                owner_client_id=None,
                actor_user_id=user.id,
                human_name=name,
                scope=Scope.parse(scope),
                expires_in=expires_in,
            )
        )
        return found.session, text

    def test_listed_with_name_scope_device_and_expiry(self) -> None:
        user = self.sign_in()
        admin = self.factory.user("root")
        bot, _ = self.issue(user, "Backup bot", device="BOTDEVICE", expires_in=86_400)
        forever, _ = self.issue(user, "Made by an admin", device=None, owner=admin, expires_in=None)
        revoked, _ = self.issue(user, "Revoked one", device=None, expires_in=None)
        self.get_success(self.server.get_personal_session_handler().revoke(revoked.id))
        listed = self.browse("GET", "/account/sessions").text_body
        for text in ("Backup bot", "BOTDEVICE", "Made by an admin", "Never expires", "Personal access token"):
            self.assertIn(text, listed)
        self.assertIn("Expires ", listed)
        self.assertNotIn("Revoked one", listed)
        detail = self.browse("GET", f"/account/sessions/{bot.id}")
        self.assertEqual(detail.code, 200)
        for text in ("Backup bot", "BOTDEVICE", API_SCOPE, "Expires", "Revoke this token"):
            self.assertIn(text, detail.text_body)
        # No rename form: a personal session's name is its token's.
        self.assertNotIn('value="rename"', detail.text_body)
        self.assertIn("BOTDEVICE", self.browse("GET", "/account/devices/BOTDEVICE").text_body)
        self.assertIn("Never", self.browse("GET", f"/account/sessions/{forever.id}").text_body)

    def test_ending_one_revokes_its_token_and_syncs_devices(self) -> None:
        user = self.sign_in()
        bot, bot_token = self.issue(user, "Backup bot", device="BOTDEVICE", expires_in=3600)
        other, other_token = self.issue(user, "Other bot", device=None, expires_in=None)
        self.assertTrue(self.introspect(bot_token)["active"])
        refused = self.browse("POST", f"/account/sessions/{bot.id}", form={"action": "end"})
        self.assertEqual(refused.code, 400)
        self.assertTrue(self.introspect(bot_token)["active"])
        self.assertEqual(self.jobs("sync-devices"), [])
        done = self.post_form("/account/devices/BOTDEVICE", {"action": "end"})
        self.assertEqual((done.code, done.location), (303, "/account/sessions"))
        self.assertEqual(self.introspect(bot_token), {"active": False})
        self.assertTrue(self.introspect(other_token)["active"])
        self.assertEqual(self.jobs("sync-devices"), [{"user_id": user.id}])
        listed = self.browse("GET", "/account/sessions").text_body
        self.assertNotIn("Backup bot", listed)
        self.assertIn("Other bot", listed)
        # Ended: its device page is gone, its session page says when it was revoked.
        self.assertEqual(self.browse("GET", "/account/devices/BOTDEVICE").code, 404)
        detail = self.browse("GET", f"/account/sessions/{bot.id}")
        self.assertIn("Signed out", detail.text_body)
        self.assertNotIn("Revoke this token", detail.text_body)
        done = self.post_form(f"/account/sessions/{other.id}", {"action": "end"})
        self.assertEqual(done.code, 303)
        self.assertEqual(self.introspect(other_token), {"active": False})

    def test_another_users_personal_session_is_404(self) -> None:
        self.sign_in()
        bob = self.factory.user("bob")
        bobs, bobs_token = self.issue(bob, "Bob's bot", device="BOBDEVICE", expires_in=None)
        page = self.browse("GET", "/account/sessions")
        self.assertNotIn("Bob's bot", page.text_body)
        self.assertEqual(self.browse("GET", f"/account/sessions/{bobs.id}").code, 404)
        self.assertEqual(self.browse("GET", "/account/devices/BOBDEVICE").code, 404)
        channel = self.browse(
            "POST", f"/account/sessions/{bobs.id}", form={"csrf": csrf_from(page), "action": "end"}
        )
        self.assertEqual(channel.code, 404)
        self.assertTrue(self.introspect(bobs_token)["active"])


class PasswordTests(AccountTestCase):
    def test_change_password(self) -> None:
        self.sign_in()
        refused = self.post_form(
            "/account/password/change",
            {"current_password": "wrong", "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD},
        )
        self.assertEqual(refused.code, 200)
        self.assertIn("That is not your password.", refused.text_body)
        weak = self.post_form(
            "/account/password/change",
            {"current_password": PASSWORD, "new_password": "password", "new_password_confirm": "password"},
        )
        self.assertIn("This password is too weak", weak.text_body)
        mismatch = self.post_form(
            "/account/password/change",
            {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "new_password_confirm": "other"},
        )
        self.assertIn("The two passwords are different.", mismatch.text_body)
        done = self.post_form(
            "/account/password/change",
            {
                "current_password": PASSWORD,
                "new_password": NEW_PASSWORD,
                "new_password_confirm": NEW_PASSWORD,
            },
        )
        self.assertEqual((done.code, done.location), (303, "/account/password/change?changed=1"))
        self.jar.clear()
        self.assertEqual(self.login("alice", PASSWORD).code, 200)
        self.assertEqual(self.login("alice", NEW_PASSWORD).code, 303)

    def test_signed_out_comes_back_to_the_password_page(self) -> None:
        channel = self.browse("GET", "/account/password/change")
        self.assertEqual(channel.location, "/login?kind=change_password")

    @override_config({"account": {"password_change_allowed": False}})
    def test_password_change_disabled(self) -> None:
        self.sign_in()
        page = self.browse("GET", "/account/")
        self.assertNotIn('href="/account/password/change"', page.text_body)
        self.assertEqual(self.browse("GET", "/account/password/change").code, 404)
        refused = self.browse(
            "POST",
            "/account/password/change",
            form={
                "csrf": csrf_from(page),
                "current_password": PASSWORD,
                "new_password": NEW_PASSWORD,
                "new_password_confirm": NEW_PASSWORD,
            },
        )
        self.assertEqual(refused.code, 403)
        self.jar.clear()
        self.assertEqual(self.login("alice", NEW_PASSWORD).code, 200)


class CrossSigningResetTests(AccountTestCase):
    def test_allow_reset(self) -> None:
        self.sign_in()
        page = self.browse("GET", "/account/reset-cross-signing")
        self.assertIn("Reset your identity", page.text_body)
        self.assertEqual(self.browse("POST", "/account/reset-cross-signing", form={}).code, 400)
        self.assertEqual(self.homeserver.calls("allow_cross_signing_reset"), [])
        done = self.browse("POST", "/account/reset-cross-signing", form={"csrf": csrf_from(page)})
        self.assertIn("Go back to your Matrix app", done.text_body)
        self.assertEqual(self.homeserver.calls("allow_cross_signing_reset"), [{"localpart": "alice"}])


class DeactivationTests(AccountTestCase):
    def user_row(self, user_id: str) -> Any:
        return self.get_success(self.server.get_stores().users.get_user(user_id))

    def test_deactivate(self) -> None:
        user = self.sign_in()
        _, token, _ = self.factory.compat_session(user)
        wrong = self.post_form("/account/deactivate", {"password": "nope", "confirm": "on"})
        self.assertIn("That is not your password.", wrong.text_body)
        unconfirmed = self.post_form("/account/deactivate", {"password": PASSWORD})
        self.assertIn("Tick the box to confirm.", unconfirmed.text_body)
        self.assertIsNone(self.user_row(user.id).deactivated_at)
        self.assertEqual(self.jobs("deactivate-user"), [])
        done = self.post_form("/account/deactivate", {"password": PASSWORD, "confirm": "on", "erase": "on"})
        self.assertEqual((done.code, done.location), (303, "/account/"))
        self.assertIsNotNone(self.user_row(user.id).deactivated_at)
        self.assertEqual(self.jobs("deactivate-user"), [{"user_id": user.id, "hs_erase": True}])
        self.assertFalse(self.introspect(token.access_token)["active"])
        self.assertIn("Account deactivated", self.browse("GET", "/account/").text_body)

    @override_config({"account": {"account_deactivation_allowed": False}})
    def test_deactivation_disabled(self) -> None:
        user = self.sign_in()
        page = self.browse("GET", "/account/")
        self.assertNotIn("/account/deactivate", page.text_body)
        self.assertEqual(self.browse("GET", "/account/deactivate").code, 404)
        refused = self.browse(
            "POST",
            "/account/deactivate",
            form={"csrf": csrf_from(page), "password": PASSWORD, "confirm": "on"},
        )
        self.assertEqual(refused.code, 403)
        self.assertIsNone(self.user_row(user.id).deactivated_at)

    def test_post_without_csrf(self) -> None:
        user = self.sign_in()
        channel = self.browse("POST", "/account/deactivate", form={"password": PASSWORD, "confirm": "on"})
        self.assertEqual(channel.code, 400)
        self.assertIsNone(self.user_row(user.id).deactivated_at)


class PlanTests(AccountTestCase):
    def test_no_plan_page_without_the_setting(self) -> None:
        self.sign_in()
        self.assertEqual(self.browse("GET", "/account/plan").code, 404)
        self.assertNotIn('href="/account/plan"', self.browse("GET", "/account/sessions").text_body)

    @override_config({"experimental": {"plan_management_iframe_uri": "https://billing.example.net/plan?x=1"}})
    def test_plan_page_frames_exactly_that_origin(self) -> None:
        self.sign_in()
        self.assertIn('href="/account/plan"', self.browse("GET", "/account/sessions").text_body)
        page = self.browse("GET", "/account/plan")
        self.assertEqual(page.code, 200)
        self.assertIn('src="https://billing.example.net/plan?x=1"', page.text_body)
        csp = page.header("Content-Security-Policy") or ""
        self.assertIn("frame-src https://billing.example.net", csp.split("; "))
        self.assertNotIn("frame-src", self.browse("GET", "/account/").header("Content-Security-Policy") or "")


class EmailTests(AccountTestCase):
    def latest_code(self) -> str:
        rows = self.get_success(
            self.db_pool.execute(
                "latest_code",
                "SELECT code FROM user_email_authentication_codes"
                " ORDER BY created_at DESC, user_email_authentication_code_id DESC",
            )
        )
        return str(rows[0][0])

    def emails(self, user_id: str) -> list[str]:
        return [
            e.email for e in self.get_success(self.server.get_stores().user_emails.list_user_emails(user_id))
        ]

    def start(self, email: str, password: str = PASSWORD) -> Any:
        return self.post_form("/account/", {"action": "add_email", "email": email, "password": password})

    def test_add_an_email_with_a_code(self) -> None:
        user = self.sign_in()
        wrong = self.start("new@example.org", "nope")
        self.assertEqual(wrong.code, 200)
        self.assertIn("That is not your password.", wrong.text_body)
        self.assertIn("This value is not valid.", self.start("not an address").text_body)
        self.assertEqual(self.count_rows("user_email_authentications"), 0)
        started = self.start("new@example.org")
        self.assertEqual(started.code, 303)
        verify_path = urlsplit(started.location or "").path
        self.assertRegex(verify_path, r"^/account/emails/[0-9A-Z]{26}/verify$")
        (sent,) = self.jobs("send-email")
        self.assertIn("new@example.org", str(sent))
        refused = self.post_form(
            verify_path, {"code": "000000" if self.latest_code() != "000000" else "111111"}
        )
        self.assertIn("This value is not valid.", refused.text_body)
        self.assertEqual(self.emails(user.id), [])
        done = self.post_form(verify_path, {"code": self.latest_code()})
        self.assertEqual((done.code, done.location), (303, "/account/?email=added"))
        self.assertEqual(self.emails(user.id), ["new@example.org"])
        self.assertEqual(self.jobs("provision-user")[-1]["user_id"], user.id)
        page = self.browse("GET", "/account/?email=added")
        self.assertIn("The address was added", page.text_body)
        # The authentication is spent: its page goes back to the account.
        self.assertEqual(self.browse("GET", verify_path).location, "/account/")

    def test_address_of_another_account(self) -> None:
        user = self.sign_in()
        self.factory.user("bob", emails=["taken@example.org"])
        verify_path = urlsplit(self.start("taken@example.org").location or "").path
        done = self.post_form(verify_path, {"code": self.latest_code()})
        self.assertEqual(done.location, verify_path.replace("/verify", "/in-use"))
        page = self.browse("GET", done.location or "")
        self.assertIn("belongs to another account", page.text_body)
        self.assertEqual(self.emails(user.id), [])

    def test_remove_but_never_the_last_one(self) -> None:
        self.factory.user(emails=["one@example.org", "two@example.org"])
        self.login("alice", PASSWORD)
        user = self.get_success(self.server.get_stores().users.find_user_by_username("alice"))
        page = self.browse("GET", "/account/")
        self.assertIn("Remove one@example.org", page.text_body)
        first_id, second_id = (
            e.id for e in self.get_success(self.server.get_stores().user_emails.list_user_emails(user.id))
        )
        done = self.browse(
            "POST",
            "/account/",
            form={"csrf": csrf_from(page), "action": "remove_email", "email_id": first_id},
        )
        self.assertEqual(done.location, "/account/?email=removed")
        self.assertEqual(self.emails(user.id), ["two@example.org"])
        page = self.browse("GET", "/account/")
        self.assertNotIn("Remove two@example.org", page.text_body)
        refused = self.browse(
            "POST",
            "/account/",
            form={"csrf": csrf_from(page), "action": "remove_email", "email_id": second_id},
        )
        self.assertEqual(refused.location, "/account/?email=email_required")
        self.assertEqual(self.emails(user.id), ["two@example.org"])
        # Someone else's address is a 404, and stays.
        bob = self.factory.user("bob", emails=["bob@example.org"])
        (bobs,) = self.get_success(self.server.get_stores().user_emails.list_user_emails(bob.id))
        channel = self.browse(
            "POST", "/account/", form={"csrf": csrf_from(page), "action": "remove_email", "email_id": bobs.id}
        )
        self.assertEqual(channel.code, 404)
        self.assertEqual(self.emails(bob.id), ["bob@example.org"])

    def test_another_users_authentication_is_404(self) -> None:
        self.sign_in()
        verify_path = urlsplit(self.start("mine@example.org").location or "").path
        self.jar.clear()
        self.sign_in("bob")
        self.assertEqual(self.browse("GET", verify_path).code, 404)
        page = self.browse("GET", "/account/")
        channel = self.browse("POST", verify_path, form={"csrf": csrf_from(page), "code": self.latest_code()})
        self.assertEqual(channel.code, 404)
        self.assertEqual(self.count_rows("user_emails"), 0)

    def test_post_without_csrf(self) -> None:
        self.sign_in()
        channel = self.browse(
            "POST", "/account/", form={"action": "add_email", "email": "x@example.org", "password": PASSWORD}
        )
        self.assertEqual(channel.code, 400)
        self.assertEqual(self.count_rows("user_email_authentications"), 0)

    @override_config({"account": {"email_change_allowed": False}})
    def test_email_change_disabled(self) -> None:
        self.sign_in()
        page = self.browse("GET", "/account/")
        self.assertNotIn("add-email-form", page.text_body)
        channel = self.browse(
            "POST",
            "/account/",
            form={
                "csrf": csrf_from(page),
                "action": "add_email",
                "email": "x@example.org",
                "password": PASSWORD,
            },
        )
        self.assertEqual(channel.code, 403)
        self.assertEqual(self.count_rows("user_email_authentications"), 0)
