# SPDX-License-Identifier: AGPL-3.0-only
"""Tests of util/: random generation."""
