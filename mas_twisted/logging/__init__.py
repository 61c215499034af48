# SPDX-License-Identifier: AGPL-3.0-only
"""Request-scoped logging: the request id every log line carries, and the access log."""
