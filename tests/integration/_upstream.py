# SPDX-License-Identifier: AGPL-3.0-only
"""The upstream OpenID Provider of the upstream login tests: npm ``oidc-provider``
(``tests/integration/upstream/op.mjs``), installed with ``npm ci`` from its lock file."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import requests
from jwcrypto.jwk import JWK

from tests.integration._harness import eventually

OP_DIR = Path(__file__).resolve().parent / "upstream"


def npm_ci() -> None:
    if (OP_DIR / "node_modules" / "oidc-provider").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise AssertionError("npm is missing: apt-get install nodejs npm (scripts/setup.sh test does)")
    subprocess.run([npm, "ci", "--silent", "--no-audit", "--no-fund"], cwd=OP_DIR, check=True, timeout=300)


class OpenIDProvider:
    """``node op.mjs`` with a config file; :meth:`restart` with new keys rotates them."""

    def __init__(self, workdir: Path, port: int):
        self.workdir = workdir
        self.port = port
        # localhost, not 127.0.0.1: the provider's cookies and ours stay apart.
        self.issuer = f"http://localhost:{port}"
        self.clients: list[dict[str, Any]] = []
        self.proc: subprocess.Popen | None = None
        self.key = self.new_key("op-key-1")
        #: Claims that replace an account's defaults, read by the provider at each request.
        self.claims_file = workdir / "op-claims.json"

    def set_claims(self, account: str, **claims: Any) -> None:
        """From now on, ``account``'s claims include these (the provider changed them)."""
        overrides = json.loads(self.claims_file.read_text()) if self.claims_file.exists() else {}
        overrides.setdefault(account, {}).update(claims)
        self.claims_file.write_text(json.dumps(overrides))

    @staticmethod
    def new_key(kid: str) -> dict[str, Any]:
        key = JWK.generate(kty="RSA", size=2048, kid=kid, use="sig", alg="RS256")
        return json.loads(key.export_private())

    def start(self) -> None:
        config = {
            "port": self.port,
            "issuer": self.issuer,
            "clients": self.clients,
            "keys": [self.key],
            "claims_file": str(self.claims_file),
        }
        path = self.workdir / "op.json"
        path.write_text(json.dumps(config))
        self.log = open(self.workdir / "op.log", "ab")
        self.proc = subprocess.Popen(
            ["node", str(OP_DIR / "op.mjs"), str(path)], cwd=OP_DIR, stdout=self.log, stderr=subprocess.STDOUT
        )

        def ready() -> bool:
            assert self.proc is not None and self.proc.poll() is None, (self.workdir / "op.log").read_text()
            try:
                return requests.get(self.issuer + "/.well-known/openid-configuration", timeout=2).ok
            except requests.RequestException:
                return False

        eventually(ready, timeout=30, what="the OpenID Provider")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.log.close()
            self.proc = None

    def restart(self, key: dict[str, Any]) -> None:
        self.stop()
        self.key = key
        self.start()
