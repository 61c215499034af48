# SPDX-License-Identifier: AGPL-3.0-only
"""Our homeserver connections against a real Synapse (``synapse-integration.md`` §3), on the
real reactor: what each call changes is read back from Synapse itself (its client API, its
``/_synapse/mas`` answers, its own database), never from our side.

Synapse comes from :mod:`tests.integration._synapse` (installed once into ``.test-venvs``):
Synapse 1.163.2 with ``matrix_authentication_service`` for the modern and read-only kinds, and
Synapse 1.156.0 with ``experimental_features.msc3861`` (whose ``admin_token`` is the shared
secret) for ``synapse_legacy``: newer Synapse no longer lets the secret into its admin API.
No authentication service runs here: neither API needs one when called with the secret.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from twisted.internet import defer, reactor
from twisted.trial import unittest

from mas_twisted.homeserver import HomeserverConnection, HomeserverError, ProvisionRequest
from mas_twisted.homeserver._http import HttpTransport
from mas_twisted.homeserver.legacy import LegacySynapseConnection
from mas_twisted.homeserver.modern import SynapseConnection
from mas_twisted.homeserver.read_only import ReadOnlyConnection
from tests.integration._synapse import SynapseServer, legacy_synapse, synapse  # noqa: F401 (pytest fixtures)


def new_localpart(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class _SynapseTestCase(unittest.TestCase):
    synapse: SynapseServer
    #: The pytest fixture giving this class's Synapse.
    synapse_fixture = "synapse"

    @pytest.fixture(autouse=True)
    def _use_synapse(self, request: Any) -> None:
        self.synapse = request.getfixturevalue(self.synapse_fixture)

    def connect(self, cls: type = SynapseConnection, *, secret: str | None = None) -> HomeserverConnection:
        conn = cls(
            self.synapse.server_name,
            self.synapse.base_url,
            secret or self.synapse.secret,
            HttpTransport(reactor),
            user_agent="mas-twisted/test",
        )
        # Persistent HTTP connections must be closed before trial checks for a clean reactor.
        self.addCleanup(lambda: defer.ensureDeferred(conn.close()))
        return conn

    def displayname(self, localpart: str) -> Any:
        response = self.synapse.profile(localpart)
        if response.status == 404 and response.json().get("errcode") == "M_NOT_FOUND":
            return None  # Synapse's answer for a profile with neither name nor avatar
        assert response.status == 200, (response.status, response.body)
        return response.json().get("displayname")

    async def provision(self, conn: HomeserverConnection, localpart: str, **kwargs: Any) -> None:
        created = await conn.provision_user(
            ProvisionRequest(localpart, "01SUB" + localpart.upper(), **kwargs)
        )
        self.assertTrue(created)


class _BehaviourTests:
    """What every writing connection must do to Synapse, whichever API it uses."""

    connection_class: type = SynapseConnection
    conn: HomeserverConnection

    def setUp(self) -> None:
        self.conn = self.connect(self.connection_class)  # type: ignore[attr-defined]

    async def test_provision_and_query(self) -> None:
        localpart = new_localpart("alice")
        request = (
            ProvisionRequest(localpart, "01SUBALICE", locked=False)
            .set_displayname("Alice")
            .set_avatar_url("mxc://localhost/avatar")
            .set_emails([f"{localpart}@example.test"])
        )
        self.assertIs(await self.conn.provision_user(request), True)
        user = await self.conn.query_user(localpart)
        self.assertEqual(user.mxid, self.synapse.mxid(localpart))
        self.assertEqual((user.displayname, user.avatar_url), ("Alice", "mxc://localhost/avatar"))
        self.assertFalse(user.deactivated)
        self.assertIs(user.suspended, False)
        self.assertEqual(
            self.synapse.query("SELECT medium, address FROM user_threepids WHERE user_id = ?", (user.mxid,)),
            [("email", f"{localpart}@example.test")],
        )

        # Again: an update, not a creation. Unsetting the emails removes them; the lock is stored.
        again = (
            ProvisionRequest(localpart, "01SUBALICE", locked=True).set_displayname("Alice B").unset_emails()
        )
        self.assertIs(await self.conn.provision_user(again), False)
        self.assertEqual(self.displayname(localpart), "Alice B")
        self.assertEqual(
            self.synapse.query("SELECT address FROM user_threepids WHERE user_id = ?", (user.mxid,)), []
        )
        # The modern API stores the lock; the admin API has no such field (MAS sends none).
        locked = 0 if self.connection_class is LegacySynapseConnection else 1
        self.assertEqual(
            self.synapse.query("SELECT locked FROM users WHERE name = ?", (user.mxid,)), [(locked,)]
        )

    async def test_query_unknown_user(self) -> None:
        with self.assertRaises(HomeserverError) as caught:
            await self.conn.query_user(new_localpart("ghost"))
        e = caught.exception
        self.assertEqual(
            (e.call, e.status, e.errcode, e.retryable), ("query_user", 404, "M_NOT_FOUND", False)
        )

    async def test_is_localpart_available(self) -> None:
        localpart = new_localpart("taken")
        self.assertIs(await self.conn.is_localpart_available(localpart), True)
        await self.provision(self.conn, localpart)
        self.assertIs(await self.conn.is_localpart_available(localpart), False)
        # Upper case and spaces are not allowed in Matrix localparts: M_INVALID_USERNAME.
        self.assertIs(await self.conn.is_localpart_available("Not Valid"), False)

    async def test_non_ascii_is_unavailable_without_asking(self) -> None:
        before = self.synapse.log_path.read_text(errors="replace").count("Processed request")
        self.assertIs(await self.conn.is_localpart_available("zoë"), False)
        after = self.synapse.log_path.read_text(errors="replace").count("Processed request")
        self.assertEqual(before, after)

    async def test_devices(self) -> None:
        localpart = new_localpart("dev")
        await self.provision(self.conn, localpart)
        await self.conn.upsert_device(localpart, "DEV1", "Phone")
        await self.conn.upsert_device(localpart, "DEV2")
        self.assertEqual(self.synapse.devices(localpart), {"DEV1": "Phone", "DEV2": None})
        # Upserting an existing device keeps it, and Synapse renames it to the name given.
        await self.conn.upsert_device(localpart, "DEV1", "Other name")
        self.assertEqual(self.synapse.devices(localpart), {"DEV1": "Other name", "DEV2": None})
        await self.conn.upsert_device(localpart, "DEV1")
        self.assertEqual(self.synapse.devices(localpart), {"DEV1": "Other name", "DEV2": None})

        await self.conn.update_device_display_name(localpart, "DEV2", "Laptop")
        self.assertEqual(self.synapse.devices(localpart), {"DEV1": "Other name", "DEV2": "Laptop"})

        await self.conn.sync_devices(localpart, {"DEV2", "DEV3"})
        self.assertEqual(self.synapse.devices(localpart), {"DEV2": "Laptop", "DEV3": None})

        await self.conn.delete_device(localpart, "DEV3")
        self.assertEqual(self.synapse.devices(localpart), {"DEV2": "Laptop"})

        await self.conn.sync_devices(localpart, set())
        self.assertEqual(self.synapse.devices(localpart), {})

    async def test_device_of_unknown_user(self) -> None:
        with self.assertRaises(HomeserverError) as caught:
            await self.conn.upsert_device(new_localpart("ghost"), "DEV1")
        self.assertEqual((caught.exception.status, caught.exception.errcode), (404, "M_NOT_FOUND"))

    async def test_displayname(self) -> None:
        localpart = new_localpart("name")
        await self.provision(self.conn, localpart)
        await self.conn.set_displayname(localpart, "Zoë 🦊")
        self.assertEqual(self.displayname(localpart), "Zoë 🦊")
        self.assertEqual((await self.conn.query_user(localpart)).displayname, "Zoë 🦊")
        await self.conn.unset_displayname(localpart)
        self.assertIsNone(self.displayname(localpart))
        self.assertIsNone((await self.conn.query_user(localpart)).displayname)

    async def test_delete_and_reactivate(self) -> None:
        localpart = new_localpart("gone")
        await self.provision(self.conn, localpart)
        await self.conn.upsert_device(localpart, "DEV1")
        await self.conn.delete_user(localpart, erase=True)
        self.assertTrue((await self.conn.query_user(localpart)).deactivated)
        mxid = self.synapse.mxid(localpart)
        self.assertEqual(self.synapse.devices(localpart), {})
        self.assertEqual(
            self.synapse.query("SELECT user_id FROM erased_users WHERE user_id = ?", (mxid,)), [(mxid,)]
        )
        # Deleting again is harmless.
        await self.conn.delete_user(localpart, erase=True)

        await self.conn.reactivate_user(localpart)
        self.assertFalse((await self.conn.query_user(localpart)).deactivated)

    async def test_delete_without_erase(self) -> None:
        localpart = new_localpart("keep")
        await self.provision(self.conn, localpart)
        await self.conn.delete_user(localpart, erase=False)
        self.assertTrue((await self.conn.query_user(localpart)).deactivated)
        mxid = self.synapse.mxid(localpart)
        self.assertEqual(
            self.synapse.query("SELECT user_id FROM erased_users WHERE user_id = ?", (mxid,)), []
        )

    async def test_synapse_down_then_back(self) -> None:
        localpart = new_localpart("down")
        self.synapse.stop()
        try:
            with self.assertRaises(HomeserverError) as caught:
                await self.conn.provision_user(ProvisionRequest(localpart, "01SUB"))
            e = caught.exception
            self.assertTrue(e.retryable)
            self.assertIsNone(e.status)
            self.assertNotIn(self.synapse.secret, str(e))
        finally:
            self.synapse.start()
        # The same connection works again once Synapse is back.
        self.assertIs(await self.conn.provision_user(ProvisionRequest(localpart, "01SUB")), True)


class ModernTestCase(_BehaviourTests, _SynapseTestCase):
    """``matrix.kind: synapse``: the ``/_synapse/mas`` API of Synapse 1.163."""

    async def test_allow_cross_signing_reset(self) -> None:
        localpart = new_localpart("xsign")
        await self.provision(self.conn, localpart)
        # Without cross-signing keys Synapse accepts it and does nothing.
        await self.conn.allow_cross_signing_reset(localpart)

    async def test_wrong_secret(self) -> None:
        conn = self.connect(secret="not-the-secret")
        with self.assertRaises(HomeserverError) as caught:
            await conn.query_user("anyone")
        e = caught.exception
        self.assertEqual((e.status, e.errcode, e.retryable), (403, "M_UNKNOWN", False))
        self.assertNotIn("not-the-secret", str(e))


class ReadOnlyTestCase(_SynapseTestCase):
    """``matrix.kind: synapse_read_only``: reads reach Synapse, writes change nothing there."""

    async def test_reads_only(self) -> None:
        modern = self.connect()
        conn = ReadOnlyConnection(self.connect())
        existing = new_localpart("ro")
        await self.provision(modern, existing)
        await modern.set_displayname(existing, "Before")
        await modern.upsert_device(existing, "KEEP")

        self.assertEqual((await conn.query_user(existing)).displayname, "Before")
        self.assertIs(await conn.is_localpart_available(existing), False)

        fresh = new_localpart("ro")
        self.assertIs(await conn.provision_user(ProvisionRequest(fresh, "01SUB").set_displayname("X")), False)
        self.assertIs(await conn.is_localpart_available(fresh), True)
        await conn.set_displayname(existing, "After")
        await conn.unset_displayname(existing)
        await conn.upsert_device(existing, "NEW")
        await conn.update_device_display_name(existing, "KEEP", "Renamed")
        await conn.sync_devices(existing, set())
        await conn.delete_device(existing, "KEEP")
        await conn.delete_user(existing, erase=True)
        await conn.reactivate_user(existing)
        await conn.allow_cross_signing_reset(existing)

        user = await modern.query_user(existing)
        self.assertEqual((user.displayname, user.deactivated), ("Before", False))
        self.assertEqual(self.synapse.devices(existing), {"KEEP": None})


class LegacyTestCase(_BehaviourTests, _SynapseTestCase):
    """``matrix.kind: synapse_legacy``: the admin API of Synapse 1.156 in ``msc3861`` mode."""

    synapse_fixture = "legacy_synapse"
    connection_class = LegacySynapseConnection

    async def test_allow_cross_signing_reset(self) -> None:
        localpart = new_localpart("xsign")
        await self.provision(self.conn, localpart)
        # The admin API refuses when the user has no cross-signing key (the modern API
        # accepts and does nothing).
        with self.assertRaises(HomeserverError) as caught:
            await self.conn.allow_cross_signing_reset(localpart)
        e = caught.exception
        self.assertEqual((e.status, e.errcode, e.retryable), (404, "M_NOT_FOUND", False))


class LegacyOnModernSynapseTestCase(_SynapseTestCase):
    """``matrix.kind: synapse_legacy`` against Synapse 1.163: the admin API does not take the
    shared secret under the stable integration (it introspects it at the authentication
    service, which is not running here), so every call fails, as a :class:`HomeserverError`,
    and nothing changes on Synapse."""

    async def test_admin_api_refuses_the_secret(self) -> None:
        conn = self.connect(LegacySynapseConnection)
        localpart = new_localpart("legacy")
        with self.assertRaises(HomeserverError) as caught:
            await conn.provision_user(ProvisionRequest(localpart, "01SUB").set_displayname("L"))
        e = caught.exception
        self.assertEqual(e.call, "provision_user")
        # 503 "Unable to introspect the access token" with no authentication service up; our
        # service, when up, calls the secret an inactive token (401).
        self.assertIn(e.status, (401, 503))
        self.assertNotIn(self.synapse.secret, str(e))
        modern = self.connect()
        self.assertIs(await modern.is_localpart_available(localpart), True)
