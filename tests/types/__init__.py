# SPDX-License-Identifier: AGPL-3.0-only
"""Tests of the data model: token formats and random generation."""
