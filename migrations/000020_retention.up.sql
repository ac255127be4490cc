-- Retention (src/adapters/retention-store.ts) finds finished rows by when they last changed: partial
-- indexes hold only those rows (one entry when a row finishes; rows move on update, so creation order
-- is no guide to where an old row is). Resolved alert states likewise. A finished group send now can
-- be deleted, once no notification row names it (migration 000017 dropped the foreign key on that).
CREATE INDEX notifications_finished ON notifications (updated_at) WHERE status IN ('SENT', 'FAILED', 'SILENCED');
CREATE INDEX group_sends_finished ON group_sends (updated_at) WHERE status IN ('SENT', 'FAILED');
CREATE INDEX alert_states_resolved ON alert_states (last_seen_at) WHERE state = 'resolved';
