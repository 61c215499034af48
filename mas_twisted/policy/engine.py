# SPDX-License-Identifier: AGPL-3.0-only
"""``PolicyEngine``: the policies with this server's data, fed MAS-shaped inputs.

MAS behaviour (``crates/policy/src/lib.rs``, inventory §11): the policies see ``data`` =
``{"server_name": matrix.homeserver, "session_limit": experimental.session_limit or null}``
with the config's ``policy.data`` merged over it (objects recurse, arrays concatenate,
scalars and ``null`` replace; other mixes are a configuration error), and later the dynamic
data set through the admin API (the latest ``policy_data`` row, ``handlers/policy_data.py``)
merged over that. Each ``evaluate_*`` builds the input MAS
builds for its entrypoint, so requesters always carry both ``ip_address`` and
``user_agent`` (``null`` when unknown), users and clients are serialised with all their fields.
"""

from __future__ import annotations

import copy
import enum
import json
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from mas_twisted.api.errors import ConfigError
from mas_twisted.policy._rego import merge_data
from mas_twisted.policy.authorization_grant import evaluate_authorization_grant
from mas_twisted.policy.client_registration import evaluate_client_registration
from mas_twisted.policy.compat_login import evaluate_compat_login
from mas_twisted.policy.email import evaluate_email
from mas_twisted.policy.model import LOGIN_SSO, EvaluationResult, Requester, SessionCounts, Violation
from mas_twisted.policy.register import evaluate_register

if TYPE_CHECKING:
    from mas_twisted.config.root import RootConfig
    from mas_twisted.server import MasServer

logger = logging.getLogger(__name__)


def _jsonable(value: Any) -> Any:
    """``value`` as plain JSON values: attrs objects field by field, mappings as objects,
    sequences and sets as arrays, enums by value."""
    if attrs.has(type(value)):
        value = attrs.asdict(value, recurse=True)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _object(value: object, **aliases: str) -> dict[str, Any] | None:
    """A user, client or session count as a JSON object (``None`` stays ``null``); each
    ``alias="field"`` adds the key ``alias`` with the value of ``field`` unless it is there."""
    if value is None:
        return None
    out = _jsonable(value)
    if not isinstance(out, dict):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    for alias, field in aliases.items():
        if field in out:
            out.setdefault(alias, out[field])
    return out


def _requester(requester: Requester | None) -> dict[str, Any]:
    """The ``requester`` input: both keys always, ``null`` when unknown."""
    return (requester or Requester()).to_json()


def _session_limit_data(config: Any) -> Any:
    experimental = getattr(config, "experimental", None)
    limit = getattr(experimental, "session_limit", None)
    if limit is None:
        return None
    return {
        "soft_limit": limit.soft_limit,
        "hard_limit": limit.hard_limit,
        "max_session_threshold": limit.max_session_threshold,
        "dangerous_hard_limit_eviction": limit.dangerous_hard_limit_eviction,
    }


def build_policy_data(config: RootConfig) -> Any:
    """The static policy data of a configuration (base data with ``policy.data`` merged over).

    Raises:
        ConfigError: ``policy.data`` cannot be merged over the base data.
    """
    base = {
        "server_name": config.matrix.homeserver,
        "session_limit": _session_limit_data(config),
    }
    extra = copy.deepcopy(getattr(getattr(config, "policy", None), "data", {}))
    try:
        return merge_data(base, extra)
    except ValueError as e:
        raise ConfigError(f"cannot merge it with the built-in policy data: {e}", ("policy", "data")) from None


_SMOKE_REQUESTER = {"ip_address": "192.0.2.1", "user_agent": "Mozilla/5.0"}
_SMOKE_USER = {"id": "01ARZ3NDEKTSV4RRFFQ69G5FAV", "sub": "01ARZ3NDEKTSV4RRFFQ69G5FAV", "username": "alice"}
_SMOKE_COUNTS = {"total": 1, "oauth2": 1, "compat": 0, "personal": 0}
#: One input per entrypoint, touching each rule that reads the data.
_SMOKE_INPUTS: tuple[tuple[Callable[[dict[str, Any], Any], list[Violation]], dict[str, Any]], ...] = (
    (
        evaluate_register,
        {
            "registration_method": "password",
            "username": "alice",
            "email": "alice@example.com",
            "requester": _SMOKE_REQUESTER,
        },
    ),
    (evaluate_email, {"email": "alice@example.com", "requester": _SMOKE_REQUESTER}),
    (
        evaluate_client_registration,
        {
            "client_metadata": {
                "client_uri": "https://example.com/",
                "redirect_uris": ["https://example.com/callback"],
                "grant_types": ["authorization_code", "client_credentials"],
                "token_endpoint_auth_method": "client_secret_basic",
            },
            "requester": _SMOKE_REQUESTER,
        },
    ),
    (
        evaluate_authorization_grant,
        {
            "user": _SMOKE_USER,
            "session_counts": _SMOKE_COUNTS,
            "client": {"id": "01ARZ3NDEKTSV4RRFFQ69G5FAV", "client_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV"},
            "scope": "openid urn:matrix:client:api:* urn:mas:admin",
            "grant_type": "authorization_code",
            "requester": _SMOKE_REQUESTER,
        },
    ),
    (
        evaluate_authorization_grant,
        {
            "user": None,
            "session_counts": None,
            "client": {"id": "01ARZ3NDEKTSV4RRFFQ69G5FAV", "client_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV"},
            "scope": "urn:mas:admin urn:synapse:admin:*",
            "grant_type": "client_credentials",
            "requester": _SMOKE_REQUESTER,
        },
    ),
    (
        evaluate_compat_login,
        {
            "user": _SMOKE_USER,
            "session_counts": _SMOKE_COUNTS,
            "session_replaced": False,
            "login": {"type": LOGIN_SSO, "redirect_uri": "https://example.com/"},
            "requester": _SMOKE_REQUESTER,
        },
    ),
)


class PolicyEngine:
    """The ``client_registration``, ``authorization_grant``, ``register``, ``email`` and
    ``compat_login`` policies, evaluated against this server's data."""

    def __init__(self, server: MasServer):
        self._static_data = build_policy_data(server.config)
        self._data = self._static_data
        self._dynamic_version: str | None = None

    @property
    def data(self) -> Any:
        """The data the policies currently see (a copy)."""
        return copy.deepcopy(self._data)

    @property
    def dynamic_version(self) -> str | None:
        """The id of the dynamic policy data in force (``None``: the static data alone)."""
        return self._dynamic_version

    def check_dynamic_data(self, data: Any) -> Any:
        """The data the policies would see with ``data`` merged over the static data, after
        evaluating every entrypoint once with it (MAS instantiates the policy with new data
        before swapping it in, ``PolicyFactory::set_dynamic_data``).

        Raises:
            ValueError: ``data`` is not an object, cannot be merged, or breaks an entrypoint.
        """
        if not isinstance(data, dict):
            raise ValueError("the policy data must be a JSON object")
        merged = merge_data(copy.deepcopy(self._static_data), copy.deepcopy(data))
        if not isinstance(merged, dict):
            raise ValueError("the merged policy data is not an object")
        try:
            for evaluate, input in _SMOKE_INPUTS:
                evaluate(copy.deepcopy(input), merged)
        except Exception as e:
            raise ValueError(f"the policies cannot be evaluated with this data: {e!r}") from None
        return merged

    def set_dynamic_data(self, version: str, data: Any) -> bool:
        """Merge the admin API's dynamic policy data (the ``policy_data`` row ``version``) over
        the static data.

        Returns:
            ``False`` if ``version`` is already applied (nothing changes), else ``True``.

        Raises:
            ValueError: the data is refused by :meth:`check_dynamic_data`; the previous data
                stays in force.
        """
        if version == self._dynamic_version:
            return False
        self._data = self.check_dynamic_data(data)
        self._dynamic_version = version
        return True

    def _run(
        self, name: str, evaluate: Callable[[dict[str, Any], Any], list[Violation]], input: dict[str, Any]
    ) -> EvaluationResult:
        result = EvaluationResult.from_violations(evaluate(input, self._data))
        if not result.valid:
            logger.info("policy %s denied: %s (input %s)", name, result, json.dumps(input, default=str))
        return result

    # -- entrypoints ----------------------------------------------------------------------------
    def evaluate_client_registration(
        self, metadata: Any, *, requester: Requester | None = None
    ) -> EvaluationResult:
        """``client_registration``: ``metadata`` is a validated
        :class:`~mas_twisted.oauth2.registration.ClientMetadata` or its JSON."""
        client_metadata = metadata.to_json() if hasattr(metadata, "to_json") else _jsonable(metadata)
        return self._run(
            "client_registration",
            evaluate_client_registration,
            {"client_metadata": client_metadata, "requester": _requester(requester)},
        )

    def evaluate_authorization_grant(
        self,
        *,
        client: Any,
        scope: Any,
        grant_type: str,
        user: Any = None,
        session_counts: SessionCounts | Mapping[str, int] | None = None,
        requester: Requester | None = None,
    ) -> EvaluationResult:
        """``authorization_grant``: ``grant_type`` is ``authorization_code``,
        ``client_credentials`` or ``urn:ietf:params:oauth:grant-type:device_code``; ``user``
        and ``session_counts`` are ``None`` for ``client_credentials``."""
        return self._run(
            "authorization_grant",
            evaluate_authorization_grant,
            {
                "user": _object(user, sub="id"),
                "session_counts": _object(session_counts),
                "client": _object(client, client_id="id"),
                "scope": str(scope),
                "grant_type": grant_type,
                "requester": _requester(requester),
            },
        )

    def evaluate_register(
        self,
        *,
        registration_method: str,
        username: str,
        email: str | None = None,
        requester: Requester | None = None,
    ) -> EvaluationResult:
        """``register``: ``registration_method`` is ``password`` or ``upstream-oauth2``."""
        input: dict[str, Any] = {"registration_method": registration_method, "username": username}
        if email is not None:
            input["email"] = email
        input["requester"] = _requester(requester)
        return self._run("register", evaluate_register, input)

    def evaluate_email(self, *, email: str, requester: Requester | None = None) -> EvaluationResult:
        """``email``: may a user add or register with this address?"""
        return self._run("email", evaluate_email, {"email": email, "requester": _requester(requester)})

    def evaluate_compat_login(
        self,
        *,
        user: Any,
        session_counts: SessionCounts | Mapping[str, int],
        session_replaced: bool,
        login_type: str,
        redirect_uri: str | None = None,
        requester: Requester | None = None,
    ) -> EvaluationResult:
        """``compat_login``: ``login_type`` is ``m.login.sso`` (with its ``redirect_uri``),
        ``m.login.token`` or ``m.login.password``."""
        login: dict[str, Any] = {"type": login_type}
        if login_type == LOGIN_SSO:
            login["redirect_uri"] = redirect_uri
        return self._run(
            "compat_login",
            evaluate_compat_login,
            {
                "user": _object(user, sub="id"),
                "session_counts": _object(session_counts),
                "session_replaced": session_replaced,
                "login": login,
                "requester": _requester(requester),
            },
        )
