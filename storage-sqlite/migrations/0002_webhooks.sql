-- Tandem SQLite schema, version 2: outgoing webhooks, the cursors event-log consumers (the webhook
-- relay) keep their place with, and job claims by kind in due order.

CREATE TABLE webhooks (
    workspace_id BLOB NOT NULL, id BLOB NOT NULL, parent_id BLOB, version INTEGER NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (workspace_id, id)
);

-- One row per (workspace, consumer); the id is derived from both (`EventCursor::id_for`).
CREATE TABLE event_cursors (
    workspace_id BLOB NOT NULL, id BLOB NOT NULL, parent_id BLOB, version INTEGER NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (workspace_id, id)
);

-- Workers claim one kind at a time, oldest due first: read in this order, a claim never sorts the
-- backlog of other kinds.
CREATE INDEX jobs_due_kind ON jobs (state, kind, run_at_ms);
