# SPDX-License-Identifier: AGPL-3.0-only
"""The jobs the worker runs, by subject (MAS's ``crates/tasks/src/*.rs``)."""
