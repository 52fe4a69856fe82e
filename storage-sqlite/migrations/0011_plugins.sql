-- Tandem SQLite schema, version 11: plugins — installations (one per plugin per workspace; the
-- component's bytes are a blob keyed by its SHA-256) and their key-value state.

CREATE TABLE plugin_installations (
    workspace_id BLOB NOT NULL, id BLOB NOT NULL, parent_id BLOB, version INTEGER NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (workspace_id, id)
);

-- State entries: parent_id is the installation; the record's version is the entry's version
-- for compare-and-swap.
CREATE TABLE plugin_state (
    workspace_id BLOB NOT NULL, id BLOB NOT NULL, parent_id BLOB, version INTEGER NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX plugin_state_installation ON plugin_state (workspace_id, parent_id, id);
