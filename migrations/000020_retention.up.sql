-- Retention (src/adapters/retention-store.ts) finds what is old by creation time. Rows are appended in
-- creation order, so a BRIN index (a few pages, next to nothing per insert) narrows the scan to the
-- oldest blocks; resolved alert states are updated in place, so they get a small partial index.
CREATE INDEX notifications_created ON notifications USING brin (created_at);
CREATE INDEX group_sends_created ON group_sends USING brin (created_at);
CREATE INDEX alert_states_resolved ON alert_states (last_seen_at) WHERE state = 'resolved';
