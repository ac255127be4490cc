-- Retention deletes idle groups (src/adapters/retention-store.ts), so that a high-cardinality
-- group_by (a pod label) does not grow notification_groups without bound. A group recreated after
-- that starts again at window 0, so its messages' Idempotency-Key also names its incarnation: its
-- creation time in ms (src/core/grouping.ts, groupIdempotencyKey). Retention deletes a group only
-- after RETENTION_DAYS (8 at least) idle, so two incarnations of one key never share a ms. Groups
-- created before keep NULL and the key format without it, so that a window in flight across the
-- upgrade reaches its receiver under one key: the default is set after the column is added, so
-- only new rows get it (and the table is not rewritten).

-- Idle groups, by when their last window was due: retention walks them a slice at a time.
CREATE INDEX notification_groups_idle ON notification_groups (next_due_at, group_key) WHERE NOT has_pending;

-- Last: the migrations run in one transaction, and the ALTERs lock the table until it commits.
ALTER TABLE notification_groups ADD COLUMN incarnation bigint;
ALTER TABLE notification_groups
  ALTER COLUMN incarnation SET DEFAULT (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
