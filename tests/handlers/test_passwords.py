# SPDX-License-Identifier: AGPL-3.0-only
"""Password hashing (MAS's ``crates/handlers/src/passwords.rs``): formats, verification of hashes
MAS wrote, peppers, NFKC, upgrades to the newest scheme, zxcvbn, and the bounded hashing pool."""

from __future__ import annotations

import re
import threading
import time
from typing import Any

from twisted.internet import defer, reactor
from twisted.internet.task import deferLater
from twisted.trial import unittest

from mas_twisted.config.passwords import PasswordScheme
from mas_twisted.config.root import RootConfig
from mas_twisted.handlers import passwords as passwords_module
from mas_twisted.handlers.passwords import (
    Hasher,
    PasswordHashError,
    PasswordManager,
    PasswordManagerDisabledError,
    UnknownSchemeError,
    VerificationResult,
    default_pool_size,
    password_strength,
)
from mas_twisted.server import MasServer
from tests.handlers._helpers import use_threadless_password_manager
from tests.unittest import MasTestCase, override_config

PEPPER = b"a-secret-pepper"
WRONG_PEPPER = b"the-wrong-pepper"

# Hashes of "hunter2" from MAS's own test snapshots (crates/handlers/src/snapshots/).
MAS_ARGON2_PEPPERED = (
    "$argon2id$v=19$m=19456,t=2,p=1$eEi11xG8mIOZYxej+ckCaQ$eBeygPqiuImQAaFQOkE6oVkPfqxIGgnqpQd/MwW4YX4"
)
MAS_ARGON2 = (
    "$argon2id$v=19$m=19456,t=2,p=1$1WdxAF1UChkYSTnJ6NDbKg$ajKAfwlUmkbxITSdh55j+Hvoxzppx20ArNUF44oV9Nk"
)
MAS_BCRYPT_PEPPERED = "$2b$10$c/EX8bTbEMfTn4oCvcQyBOR1zPyLmGzZ2pMXoElLASqv2qpq5X15i"
MAS_BCRYPT = "$2b$10$mqjtwG6w3GawhuQQdwBCqOt0TQ0V4vGhB.tMuCZO8WL.ycBHkOLca"
MAS_PBKDF2_PEPPERED = (
    "$pbkdf2-sha256$i=600000,l=32$eEi11xG8mIOZYxej+ckCaQ$uyS+Ip4DieQ9S+m1EcT+vCtuiWpQ3TsDGPLY4mwkOxc"
)
MAS_PBKDF2 = "$pbkdf2-sha256$i=600000,l=32$1WdxAF1UChkYSTnJ6NDbKg$uwgJSFAtjA082fY37K09Q5Hjbw3mBjFI/JLW9sw0F2A"

ARGON2_FORMAT = re.compile(r"^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$")
BCRYPT_FORMAT = re.compile(r"^\$2b\$(\d\d)\$[./A-Za-z0-9]{53}$")
PBKDF2_FORMAT = re.compile(r"^\$pbkdf2-sha256\$i=600000,l=32\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$")


def hasher(
    algorithm: str, pepper: bytes | None = None, *, cost: int | None = None, nfkc: bool = False
) -> Hasher:
    return Hasher(
        PasswordScheme(version=1, algorithm=algorithm, cost=cost, secret=pepper, unicode_normalization=nfkc)
    )


class HashFormatTests(unittest.TestCase):
    """The blocking algorithms, without any server."""

    def test_verifies_argon2id_hashes_made_by_mas(self) -> None:
        self.assertTrue(hasher("argon2id", PEPPER).verify_blocking(MAS_ARGON2_PEPPERED, "hunter2"))
        self.assertFalse(hasher("argon2id", PEPPER).verify_blocking(MAS_ARGON2_PEPPERED, "wrong-password"))
        self.assertFalse(hasher("argon2id", WRONG_PEPPER).verify_blocking(MAS_ARGON2_PEPPERED, "hunter2"))
        self.assertFalse(hasher("argon2id").verify_blocking(MAS_ARGON2_PEPPERED, "hunter2"))
        self.assertTrue(hasher("argon2id").verify_blocking(MAS_ARGON2, "hunter2"))
        self.assertFalse(hasher("argon2id", PEPPER).verify_blocking(MAS_ARGON2, "hunter2"))

    def test_verifies_bcrypt_hashes_made_by_mas(self) -> None:
        self.assertTrue(hasher("bcrypt", PEPPER, cost=10).verify_blocking(MAS_BCRYPT_PEPPERED, "hunter2"))
        self.assertFalse(
            hasher("bcrypt", PEPPER, cost=10).verify_blocking(MAS_BCRYPT_PEPPERED, "wrong-password")
        )
        self.assertFalse(
            hasher("bcrypt", WRONG_PEPPER, cost=10).verify_blocking(MAS_BCRYPT_PEPPERED, "hunter2")
        )
        self.assertFalse(hasher("bcrypt").verify_blocking(MAS_BCRYPT_PEPPERED, "hunter2"))
        self.assertTrue(hasher("bcrypt", cost=10).verify_blocking(MAS_BCRYPT, "hunter2"))
        self.assertFalse(hasher("bcrypt", PEPPER).verify_blocking(MAS_BCRYPT, "hunter2"))

    def test_verifies_pbkdf2_hashes_made_by_mas(self) -> None:
        self.assertTrue(hasher("pbkdf2", PEPPER).verify_blocking(MAS_PBKDF2_PEPPERED, "hunter2"))
        self.assertFalse(hasher("pbkdf2", WRONG_PEPPER).verify_blocking(MAS_PBKDF2_PEPPERED, "hunter2"))
        self.assertTrue(hasher("pbkdf2").verify_blocking(MAS_PBKDF2, "hunter2"))
        self.assertFalse(hasher("pbkdf2").verify_blocking(MAS_PBKDF2, "wrong-password"))

    def test_argon2id_format_and_round_trip(self) -> None:
        for pepper in (None, PEPPER):
            h = hasher("argon2id", pepper)
            hashed = h.hash_blocking("hunter2")
            self.assertRegex(hashed, ARGON2_FORMAT)
            self.assertTrue(h.verify_blocking(hashed, "hunter2"))
            self.assertFalse(h.verify_blocking(hashed, "hunter3"))
        # A fresh salt every time.
        self.assertNotEqual(hasher("argon2id").hash_blocking("x"), hasher("argon2id").hash_blocking("x"))
        # The pepper is the argon2 secret: without it (or with another) nothing matches.
        peppered = hasher("argon2id", PEPPER).hash_blocking("hunter2")
        self.assertFalse(hasher("argon2id").verify_blocking(peppered, "hunter2"))
        self.assertFalse(hasher("argon2id", WRONG_PEPPER).verify_blocking(peppered, "hunter2"))

    def test_bcrypt_format_cost_and_pepper(self) -> None:
        h = hasher("bcrypt", PEPPER, cost=4)
        hashed = h.hash_blocking("hunter2")
        match = BCRYPT_FORMAT.match(hashed)
        assert match is not None, hashed
        self.assertEqual(match.group(1), "04")
        self.assertTrue(h.verify_blocking(hashed, "hunter2"))
        self.assertFalse(hasher("bcrypt", cost=4).verify_blocking(hashed, "hunter2"))
        # The pepper is appended to the password, as MAS does.
        self.assertTrue(hasher("bcrypt", cost=4).verify_blocking(hashed, "hunter2" + PEPPER.decode()))
        # The default cost is 12.
        self.assertTrue(hasher("bcrypt").hash_blocking("x").startswith("$2b$12$"))

    def test_bcrypt_reads_72_bytes(self) -> None:
        h = hasher("bcrypt", cost=4)
        long_password = "a" * 72
        hashed = h.hash_blocking(long_password + "tail")
        self.assertTrue(h.verify_blocking(hashed, long_password + "different tail"))
        self.assertFalse(h.verify_blocking(hashed, "a" * 71))

    def test_pbkdf2_format(self) -> None:
        h = hasher("pbkdf2", PEPPER)
        hashed = h.hash_blocking("hunter2")
        self.assertRegex(hashed, PBKDF2_FORMAT)
        self.assertTrue(h.verify_blocking(hashed, "hunter2"))
        self.assertFalse(hasher("pbkdf2").verify_blocking(hashed, "hunter2"))

    def test_nfkc_normalization(self) -> None:
        # "ﬁ" (U+FB01) and "Ⅸ" (U+2168) are "fi" and "IX" under NFKC.
        normalized = hasher("bcrypt", cost=4, nfkc=True)
        hashed = normalized.hash_blocking("ﬁⅨ")
        self.assertTrue(normalized.verify_blocking(hashed, "fiIX"))
        plain = hasher("bcrypt", cost=4)
        self.assertFalse(plain.verify_blocking(plain.hash_blocking("ﬁⅨ"), "fiIX"))

    def test_malformed_hashes_are_errors(self) -> None:
        for algorithm, bad in (
            ("argon2id", "$argon2id$v=19$m=x,t=2,p=1$aaaa$bbbb"),
            ("argon2id", "not a hash"),
            ("pbkdf2", "$pbkdf2-sha256$i=1$salt"),
            ("bcrypt", "$2b$10$tooshort"),
        ):
            with self.assertRaises(PasswordHashError, msg=bad):
                hasher(algorithm).verify_blocking(bad, "hunter2")

    def test_default_pool_size(self) -> None:
        self.patch(passwords_module.os, "sched_getaffinity", lambda pid: set(range(8)))
        self.assertEqual(default_pool_size(), 7)
        self.patch(passwords_module.os, "sched_getaffinity", lambda pid: {0})
        self.assertEqual(default_pool_size(), 1)

    def test_zxcvbn_scores(self) -> None:
        self.assertEqual(password_strength("password"), 0)
        self.assertEqual(password_strength("correct horse battery staple"), 4)
        # The empty password is guessable, not an error (the admin API sets what it is sent).
        self.assertEqual(password_strength(""), 0)
        # Longer than zxcvbn accepts: judged on its start, not refused with an error.
        long_password = "".join(chr(48 + (i * 37 + i * i) % 75) for i in range(100))
        self.assertEqual(password_strength(long_password), 4)
        self.assertEqual(password_strength("kW8#" * 40), password_strength("kW8#" * 18))


class PasswordManagerTests(MasTestCase):
    """The manager as the server builds it from ``passwords``."""

    def prepare(self, reactor: Any, clock: Any, server: MasServer) -> None:
        self.manager = use_threadless_password_manager(server, reactor)

    def test_default_scheme_is_argon2id(self) -> None:
        version, hashed = self.get_success(self.manager.hash("hunter2"))
        self.assertEqual(version, 1)
        self.assertRegex(hashed, ARGON2_FORMAT)
        self.assertTrue(self.get_success(self.manager.verify(1, "hunter2", hashed)))
        self.assertFalse(self.get_success(self.manager.verify(1, "hunter3", hashed)))

    @override_config(
        {
            "passwords": {
                "schemes": [{"version": 1, "algorithm": "bcrypt", "cost": 10, "secret": "a-secret-pepper"}]
            }
        }
    )
    def test_verify_and_upgrade_with_a_single_scheme(self) -> None:
        self.assertEqual(
            self.get_success(self.manager.verify_and_upgrade(1, "hunter2", MAS_BCRYPT_PEPPERED)),
            VerificationResult(success=True),
        )
        self.assertEqual(
            self.get_success(self.manager.verify_and_upgrade(1, "wrong-password", MAS_BCRYPT_PEPPERED)),
            VerificationResult(success=False),
        )
        # A version no scheme has is an error, not a mismatch.
        self.get_failure(self.manager.verify(2, "hunter2", MAS_BCRYPT_PEPPERED), UnknownSchemeError)

    @override_config(
        {
            "passwords": {
                "schemes": [
                    {"version": 1, "algorithm": "bcrypt", "cost": 10, "secret": "a-secret-pepper"},
                    {"version": 3, "algorithm": "argon2id", "secret": "a-secret-pepper"},
                    {"version": 2, "algorithm": "argon2id"},
                ]
            }
        }
    )
    def test_upgrade_to_the_highest_version(self) -> None:
        # MAS's hash_verify_and_upgrade: old hashes verify and are re-hashed with version 3.
        for version, old in ((1, MAS_BCRYPT_PEPPERED), (2, MAS_ARGON2)):
            result = self.get_success(self.manager.verify_and_upgrade(version, "hunter2", old))
            self.assertTrue(result.success)
            assert result.upgrade is not None
            new_version, new_hash = result.upgrade
            self.assertEqual(new_version, 3)
            self.assertRegex(new_hash, ARGON2_FORMAT)
            # The new hash is peppered like version 3, and needs no further upgrade.
            self.assertTrue(hasher("argon2id", PEPPER).verify_blocking(new_hash, "hunter2"))
            self.assertEqual(
                self.get_success(self.manager.verify_and_upgrade(3, "hunter2", new_hash)),
                VerificationResult(success=True),
            )
            # A wrong password is not upgraded.
            self.assertEqual(
                self.get_success(self.manager.verify_and_upgrade(version, "wrong-password", old)),
                VerificationResult(success=False),
            )
        self.assertEqual(self.get_success(self.manager.hash("hunter2"))[0], 3)

    @override_config(
        {
            "passwords": {
                "schemes": [{"version": 1, "algorithm": "bcrypt", "cost": 4, "unicode_normalization": True}]
            }
        }
    )
    def test_unicode_normalization_setting(self) -> None:
        _, hashed = self.get_success(self.manager.hash("ﬁ"))
        self.assertTrue(self.get_success(self.manager.verify(1, "fi", hashed)))

    @override_config({"passwords": {"minimum_complexity": 3}})
    def test_minimum_complexity(self) -> None:
        self.assertFalse(self.manager.is_password_complex_enough("password"))
        self.assertFalse(self.manager.is_password_complex_enough("hunter2"))
        self.assertTrue(self.manager.is_password_complex_enough("correct horse battery staple"))

    @override_config({"passwords": {"minimum_complexity": 0}})
    def test_minimum_complexity_zero_accepts_anything(self) -> None:
        self.assertTrue(self.manager.is_password_complex_enough("a"))

    @override_config({"passwords": {"enabled": False}})
    def test_disabled(self) -> None:
        self.get_failure(self.manager.hash("hunter2"), PasswordManagerDisabledError)
        self.get_failure(self.manager.verify(1, "hunter2", MAS_ARGON2), PasswordManagerDisabledError)
        with self.assertRaises(PasswordManagerDisabledError):
            self.manager.is_password_complex_enough("correct horse battery staple")


class HashingPoolTests(unittest.TestCase):
    """The hashing pool on the real reactor: bounded, and the reactor keeps running."""

    def make_manager(self, pool_size: int) -> PasswordManager:
        raw = MasTestCase.default_config(MasTestCase("run"))
        server = MasServer(RootConfig(raw), reactor)
        manager = PasswordManager(server, pool_size=pool_size)
        self.addCleanup(manager.stop)
        return manager

    @defer.inlineCallbacks
    def test_concurrent_hashes_never_exceed_the_pool_size(self) -> Any:
        manager = self.make_manager(pool_size=2)
        lock = threading.Lock()
        state = {"running": 0, "peak": 0}
        threads: set[str] = set()
        real_hash = Hasher.hash_blocking

        def counting_hash(self_: Hasher, password: str) -> str:
            with lock:
                state["running"] += 1
                state["peak"] = max(state["peak"], state["running"])
                threads.add(threading.current_thread().name)
            try:
                time.sleep(0.05)
                return real_hash(self_, password)
            finally:
                with lock:
                    state["running"] -= 1

        self.patch(Hasher, "hash_blocking", counting_hash)
        ticks = []
        reactor_thread = threading.current_thread().name

        def tick() -> None:
            ticks.append(time.monotonic())

        # The reactor keeps serving timers while 8 hashes queue on 2 threads.
        timers = [deferLater(reactor, 0.02 * i, tick) for i in range(1, 6)]
        results = yield defer.gatherResults(
            [defer.ensureDeferred(manager.hash(f"password-{i}")) for i in range(8)]
        )
        yield defer.gatherResults(timers)
        self.assertEqual(len(results), 8)
        for version, hashed in results:
            self.assertEqual(version, 1)
            self.assertRegex(hashed, ARGON2_FORMAT)
        self.assertEqual(state["peak"], 2)
        self.assertEqual(len(threads), 2)
        self.assertNotIn(reactor_thread, threads)
        self.assertEqual(len(ticks), 5)

    @defer.inlineCallbacks
    def test_single_thread_pool(self) -> Any:
        manager = self.make_manager(pool_size=1)
        results = yield defer.gatherResults([defer.ensureDeferred(manager.hash("x")) for _ in range(3)])
        self.assertEqual(len({hashed for _, hashed in results}), 3)
        ok = yield defer.ensureDeferred(manager.verify(1, "x", results[0][1]))
        self.assertTrue(ok)
