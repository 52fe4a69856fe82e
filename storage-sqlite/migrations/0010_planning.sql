-- Tandem SQLite schema, version 10: planning — working calendars per workspace and per user,
-- timesheet entries and saved views.
-- (Planning fields of tasks and dependency timing live in the item and link documents.)

CREATE TABLE work_calendars (
    workspace_id BLOB NOT NULL, id BLOB NOT NULL, parent_id BLOB, version INTEGER NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (workspace_id, id)
);

-- Timesheet entries: parent_id is the item. A person has at most one running timer.
CREATE TABLE time_entries (
    workspace_id BLOB NOT NULL, id BLOB NOT NULL, parent_id BLOB, version INTEGER NOT NULL, doc TEXT NOT NULL,
    user_id BLOB NOT NULL,
    status TEXT NOT NULL,
    started_ms INTEGER NOT NULL,
    running INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX time_entries_item ON time_entries (workspace_id, parent_id, started_ms);
CREATE INDEX time_entries_user ON time_entries (workspace_id, user_id, started_ms);
CREATE INDEX time_entries_status ON time_entries (workspace_id, status, started_ms);
CREATE UNIQUE INDEX time_entries_one_running ON time_entries (workspace_id, user_id) WHERE running = 1;

-- Saved views: parent_id is the owner.
CREATE TABLE saved_views (
    workspace_id BLOB NOT NULL, id BLOB NOT NULL, parent_id BLOB, version INTEGER NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
