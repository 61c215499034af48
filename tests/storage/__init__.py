# SPDX-License-Identifier: AGPL-3.0-only
"""Tests of the storage layer: the pool, the engines, migrations and config sync."""
