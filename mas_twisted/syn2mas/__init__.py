# SPDX-License-Identifier: AGPL-3.0-only
"""syn2mas: moving a Synapse deployment's accounts, devices and tokens into this service
(inventory §13, synapse-integration.md §7-§8, issue 16).

- :mod:`.synapse_config`: the parts of Synapse's configuration files a migration needs.
- :mod:`.checks`: what ``check`` reports (errors block, warnings inform).
- :mod:`.migrate`: the mapping rules, row by row, and the streaming of one migration.
- :mod:`.runner`: one ``check`` or ``migrate`` run (locks, checks, the transaction).

The SQL lives in :mod:`mas_twisted.storage.synapse_reader` (reading Synapse's database) and
:mod:`mas_twisted.storage.syn2mas` (writing ours), as every SQL statement does.
"""
