# SPDX-License-Identifier: AGPL-3.0-only
"""The admin REST API (``/api/admin/v1``, inventory §6): the declarative route layer
(:mod:`.spec`), the operations (:mod:`.routes`) and the ``adminapi`` resource (:mod:`.resource`)."""
