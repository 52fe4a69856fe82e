-- Tandem SQLite schema, version 13: scheduled reports (a saved view mailed on a schedule).
-- parent_id is the owner. Reports are few per workspace: the scheduler reads them all.

CREATE TABLE scheduled_reports (
    workspace_id BLOB NOT NULL, id BLOB NOT NULL, parent_id BLOB, version INTEGER NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
