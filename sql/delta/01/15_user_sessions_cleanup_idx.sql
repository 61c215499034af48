-- SPDX-License-Identifier: AGPL-3.0-only
-- The indexes the cleanup jobs of browser sessions page through (inventory §9):
-- `cleanup-finished-user-sessions` by `finished_at`, `cleanup-inactive-user-session-ips`
-- by `last_active_at` of the sessions that still hold an address.
CREATE INDEX user_sessions_finished_at_idx ON user_sessions (finished_at)
    WHERE finished_at IS NOT NULL;
CREATE INDEX user_sessions_inactive_ips_idx ON user_sessions (last_active_at)
    WHERE last_active_ip IS NOT NULL AND last_active_at IS NOT NULL;
