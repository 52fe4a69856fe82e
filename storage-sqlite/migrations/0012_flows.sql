-- Tandem SQLite schema, version 12: flows (trigger → filters → steps), their runs and poll
-- state, and incoming webhook endpoints.

CREATE TABLE flows (
    workspace_id BLOB NOT NULL, id BLOB NOT NULL, parent_id BLOB, version INTEGER NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (workspace_id, id)
);

-- Runs: parent_id is the flow; ids are time-ordered, so id order is start order.
CREATE TABLE flow_runs (
    workspace_id BLOB NOT NULL, id BLOB NOT NULL, parent_id BLOB, version INTEGER NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX flow_runs_flow ON flow_runs (workspace_id, parent_id, id);

-- A poll-triggered flow's cursor and recently seen ids (id = the flow's id, parent_id the flow).
CREATE TABLE flow_poll_states (
    workspace_id BLOB NOT NULL, id BLOB NOT NULL, parent_id BLOB, version INTEGER NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (workspace_id, id)
);

CREATE TABLE hook_endpoints (
    workspace_id BLOB NOT NULL, id BLOB NOT NULL, parent_id BLOB, version INTEGER NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
