# SPDX-License-Identifier: AGPL-3.0-only
"""The legacy Matrix client-server login API (resource ``compat``; inventory §3)."""
