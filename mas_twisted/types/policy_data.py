# SPDX-License-Identifier: AGPL-3.0-only
"""Dynamic policy data (MAS's ``crates/data-model/src/policy_data.rs``): one version of the
data an operator set through the admin API, merged over ``policy.data`` while it is the latest.

Timestamps are milliseconds since the epoch.
"""

from __future__ import annotations

from typing import Any

import attrs

from mas_twisted.types.columns import INT, JSON, Row, column, mapped


@mapped
@attrs.frozen
class PolicyData(Row):
    """One row of ``policy_data``: ``data`` is any JSON value (an object to merge)."""

    id: str = attrs.field(metadata=column("policy_data_id"))
    created_at: int = attrs.field(metadata=column(codec=INT))
    data: Any = attrs.field(metadata=column(codec=JSON))
