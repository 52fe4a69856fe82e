-- Tandem SQLite schema, version 2: outgoing webhooks, and the cursors event-log consumers (the
-- webhook relay) keep their place with.

CREATE TABLE webhooks (
    workspace_id BLOB NOT NULL, id BLOB NOT NULL, parent_id BLOB, version INTEGER NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (workspace_id, id)
);

-- One row per (workspace, consumer); the id is derived from both (`EventCursor::id_for`).
CREATE TABLE event_cursors (
    workspace_id BLOB NOT NULL, id BLOB NOT NULL, parent_id BLOB, version INTEGER NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
