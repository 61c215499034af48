# SPDX-License-Identifier: AGPL-3.0-only
"""MAS's policies, ported from Rego to Python (``policies/`` in MAS, inventory §11).

Each policy is a pure function ``evaluate_<name>(input, data) -> list[Violation]`` over the
JSON input MAS gives its entrypoint and the policy data; :class:`PolicyEngine`
(``server.get_policy()``) binds them to the configured data and builds their inputs.
"""

from __future__ import annotations

from mas_twisted.policy.authorization_grant import evaluate_authorization_grant
from mas_twisted.policy.client_registration import evaluate_client_registration
from mas_twisted.policy.compat_login import evaluate_compat_login
from mas_twisted.policy.email import evaluate_email
from mas_twisted.policy.engine import PolicyEngine, build_policy_data
from mas_twisted.policy.model import (
    LOGIN_PASSWORD,
    LOGIN_SSO,
    LOGIN_TOKEN,
    EvaluationResult,
    Requester,
    SessionCounts,
    Violation,
)
from mas_twisted.policy.register import evaluate_register

__all__ = [
    "EvaluationResult",
    "LOGIN_PASSWORD",
    "LOGIN_SSO",
    "LOGIN_TOKEN",
    "PolicyEngine",
    "Requester",
    "SessionCounts",
    "Violation",
    "build_policy_data",
    "evaluate_authorization_grant",
    "evaluate_client_registration",
    "evaluate_compat_login",
    "evaluate_email",
    "evaluate_register",
]
