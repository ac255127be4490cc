-- Nothing to undo in the schema. Rows of a rule with mute windows keep its route: the code before
-- this version computes another route for them, so their alerts are notified once more, as after any
-- change of a client's routes.
SELECT 1;
