# SPDX-License-Identifier: AGPL-3.0-only
"""The schema version this code expects (Synapse's ``synapse/storage/schema/__init__.py``).

``SCHEMA_VERSION`` is the highest ``sql/delta/<NN>/`` folder this code applies and
understands. Bump it when a release needs a new folder; adding a file to the current folder
does not need a bump.

``SCHEMA_COMPAT_VERSION`` is the oldest ``SCHEMA_VERSION`` that can still run against a
database this code has upgraded. It is recorded in ``schema_version.compat_version``, and
:func:`mas_twisted.storage.prepare_database.prepare_database` refuses to start code whose
``SCHEMA_VERSION`` is lower than the recorded value (a rollback onto a schema it would
misread). Raise it only when a delta breaks older code (dropping or renaming a column it
reads, say).
"""

from __future__ import annotations

SCHEMA_VERSION = 1

SCHEMA_COMPAT_VERSION = 1
