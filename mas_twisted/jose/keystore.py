# SPDX-License-Identifier: AGPL-3.0-only
"""The signing keystore: public JWKS (RFC 7517), key choice per JWS algorithm, JWT signing (RFC 7515/7519).

Behaviour follows MAS (``crates/keystore``, ``crates/jose/src/jwk``):

- each key is published with its public parameters, ``use: "sig"`` and ``kid``, and no
  ``alg`` (MAS leaves it out, so one RSA key serves RS* and PS*);
- the advertised signing algorithms are the union over all keys, in MAS's algorithm order
  (RS256, RS384, RS512, ES256, ES384, PS256, PS384, PS512, ES256K);
- when several keys can sign with an algorithm, MAS picks the *last* of them in
  configuration order (its constraint filter keeps order and takes the final match), so
  ``keys_dir`` keys come before inline ones and a key appended to ``secrets.keys`` takes
  over signing for its algorithms;
- a signed JWT's protected header is ``{"alg": ..., "kid": ...}``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
from jwcrypto.jwk import JWK, JWKSet
from jwcrypto.jws import JWS

from mas_twisted.jose.keys import JWS_ALGORITHM_ORDER, PrivateKey

if TYPE_CHECKING:
    from mas_twisted.config.secrets import SecretsConfig

logger = logging.getLogger(__name__)


class NoSigningKeyError(Exception):
    """No loaded key can sign with the requested algorithm (and ``kid``)."""

    def __init__(self, alg: str, kid: str | None = None):
        self.alg = alg
        self.kid = kid
        which = f" with kid {kid!r}" if kid is not None else ""
        super().__init__(f"no signing key{which} can sign with {alg}")


@attrs.frozen(eq=False)
class SigningKey:
    """One key of the keystore, with its effective ``kid``."""

    kid: str
    private_key: PrivateKey
    #: Private jwcrypto key (with ``kid`` and ``use``), for signing.
    jwk: JWK

    @classmethod
    def create(cls, private_key: PrivateKey, kid: str | None = None) -> SigningKey:
        """``kid`` defaults to the key's RFC 7638 thumbprint, as in MAS."""
        kid = private_key.thumbprint() if kid is None else kid
        return cls(kid=kid, private_key=private_key, jwk=private_key.to_jwk(kid))

    @property
    def algorithms(self) -> tuple[str, ...]:
        return self.private_key.algorithms

    def public_jwk(self) -> dict[str, str]:
        """The JWK as MAS publishes it: public parameters, then ``use`` and ``kid``."""
        jwk = self.private_key.public_parameters()
        jwk["use"] = "sig"
        jwk["kid"] = self.kid
        return jwk


class Keystore:
    """The configured signing keys (``secrets.keys`` and ``secrets.keys_dir``)."""

    def __init__(self, keys: Iterable[SigningKey] = ()):
        self._keys: tuple[SigningKey, ...] = tuple(keys)

    @classmethod
    def from_config(cls, secrets: SecretsConfig) -> Keystore:
        """Build the keystore from the keys parsed at configuration load."""
        keystore = cls(SigningKey.create(k.private_key, k.kid) for k in secrets.keys)
        seen: set[str] = set()
        for key in keystore.keys:
            logger.info("Loaded signing key %s (%s)", key.kid, key.private_key.description)
            if key.kid in seen:
                logger.warning(
                    "Several signing keys share the kid %r; relying parties cannot tell them apart", key.kid
                )
            seen.add(key.kid)
        if not keystore.keys:
            logger.warning(
                "No signing keys configured in secrets.keys or secrets.keys_dir; ID tokens cannot be signed"
            )
        return keystore

    @property
    def keys(self) -> Sequence[SigningKey]:
        return self._keys

    def public_jwks(self) -> dict[str, Any]:
        """The body of ``/oauth2/keys.json``: ``{"keys": [...]}`` with public members only."""
        return {"keys": [key.public_jwk() for key in self._keys]}

    def public_jwk_set(self) -> JWKSet:
        """The public keys as a jwcrypto set, for verifying what this keystore signed."""
        keyset = JWKSet()
        for key in self._keys:
            keyset.add(JWK(**key.public_jwk()))
        return keyset

    def signing_algorithms(self) -> list[str]:
        """JWS algorithms at least one key can sign with, in MAS's order (for discovery)."""
        available = {alg for key in self._keys for alg in key.algorithms}
        return [alg for alg in JWS_ALGORITHM_ORDER if alg in available]

    def find_signing_key(self, alg: str, kid: str | None = None) -> SigningKey | None:
        """The key MAS would sign with for ``alg``: the last able one, or the one named ``kid``."""
        for key in reversed(self._keys):
            if alg in key.algorithms and (kid is None or key.kid == kid):
                return key
        return None

    def signing_key_for(self, alg: str, kid: str | None = None) -> JWK:
        """The private JWK to sign with ``alg`` (see :meth:`find_signing_key`).

        Raises:
            NoSigningKeyError: no key can sign with ``alg`` (or none has that ``kid``).
        """
        key = self.find_signing_key(alg, kid)
        if key is None:
            raise NoSigningKeyError(alg, kid)
        return key.jwk

    def sign_jwt(self, claims: Mapping[str, Any], alg: str, kid: str | None = None) -> str:
        """A compact JWS of ``claims`` with header ``{"alg", "kid"}`` (ID tokens, signed userinfo).

        Raises:
            NoSigningKeyError: no key can sign with ``alg``.
        """
        key = self.find_signing_key(alg, kid)
        if key is None:
            raise NoSigningKeyError(alg, kid)
        payload = json.dumps(dict(claims), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        protected = json.dumps({"alg": alg, "kid": key.kid}, separators=(",", ":"))
        token = JWS(payload)
        token.add_signature(key.jwk, alg=alg, protected=protected)
        return token.serialize(compact=True)
