# SPDX-License-Identifier: AGPL-3.0-only
"""Tests of the Python port of MAS's policies (ported from its policies/*/*_test.rego)."""
