-- Tandem SQLite schema, version 6: workflow automations.

CREATE TABLE automation_rules (
    workspace_id BLOB NOT NULL, id BLOB NOT NULL, parent_id BLOB, version INTEGER NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (workspace_id, id)
);

-- The run log: one row per firing (or stopped firing), its parent the item it acted on.
CREATE TABLE automation_runs (
    workspace_id BLOB NOT NULL, id BLOB NOT NULL, parent_id BLOB, version INTEGER NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX automation_runs_item ON automation_runs (workspace_id, parent_id, id);

-- One row per workspace: windowed firing counters and round-robin positions.
CREATE TABLE automation_state (
    workspace_id BLOB NOT NULL, id BLOB NOT NULL, parent_id BLOB, version INTEGER NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
