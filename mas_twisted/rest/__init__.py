# SPDX-License-Identifier: AGPL-3.0-only
"""The HTTP layer: Klein resources that parse requests, call handlers and serialise answers.

The resources are grouped by the listener resource name that mounts them in
:mod:`mas_twisted.rest.registry`; the paths they serve are in :mod:`mas_twisted.urls`.
"""
