-- A notification one of its client's silences suppressed (the evaluator decides, src/core/silence.ts):
-- written like any other, so the suppression is recorded and counted and the dedupe key still holds
-- (expiring the silence later never resurrects it), but terminal from the start: never sent.
-- silenced_by is the silence's id; no foreign key, silences live in the control plane.
ALTER TABLE notifications ADD COLUMN silenced_by uuid;
ALTER TABLE notifications DROP CONSTRAINT notifications_status_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_status_check
  CHECK (status IN ('RECEIVED', 'SENDING', 'RETRY', 'SENT', 'FAILED', 'SILENCED'));
ALTER TABLE notifications ADD CONSTRAINT notifications_silenced
  CHECK ((status = 'SILENCED') = (silenced_by IS NOT NULL));
