# SPDX-License-Identifier: AGPL-3.0-only
"""MAS-format configuration: ``RootConfig`` in :mod:`mas_twisted.config.root`, one module per section."""
