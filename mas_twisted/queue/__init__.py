# SPDX-License-Identifier: AGPL-3.0-only
"""The job queue and its worker (inventory §9): :mod:`.base` (jobs, scheduling),
:mod:`.worker` (the worker and its service), :mod:`.registry` (jobs and cron schedules),
:mod:`.jobs` (what the jobs do)."""
