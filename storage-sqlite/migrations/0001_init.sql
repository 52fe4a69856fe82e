-- Tandem SQLite schema, version 1. Every table is keyed by workspace_id (tenancy is total);
-- records are stored whole as JSON in `doc`, beside the columns queries filter and sort on.

CREATE TABLE workspaces (
    id BLOB PRIMARY KEY,
    workspace_id BLOB NOT NULL,
    parent_id BLOB,
    version INTEGER NOT NULL,
    doc TEXT NOT NULL
);

CREATE TABLE workspace_counters (
    workspace_id BLOB PRIMARY KEY,
    next_item_number INTEGER NOT NULL DEFAULT 1,
    next_event_seq INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE portfolios (workspace_id BLOB NOT NULL, id BLOB NOT NULL, parent_id BLOB, version INTEGER NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (workspace_id, id));
CREATE INDEX portfolios_parent ON portfolios (workspace_id, parent_id, id);
CREATE TABLE projects (workspace_id BLOB NOT NULL, id BLOB NOT NULL, parent_id BLOB, version INTEGER NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (workspace_id, id));
CREATE INDEX projects_parent ON projects (workspace_id, parent_id, id);
CREATE TABLE folders (workspace_id BLOB NOT NULL, id BLOB NOT NULL, parent_id BLOB, version INTEGER NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (workspace_id, id));
CREATE INDEX folders_parent ON folders (workspace_id, parent_id, id);
CREATE TABLE item_types (workspace_id BLOB NOT NULL, id BLOB NOT NULL, parent_id BLOB, version INTEGER NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (workspace_id, id));
CREATE TABLE teams (workspace_id BLOB NOT NULL, id BLOB NOT NULL, parent_id BLOB, version INTEGER NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (workspace_id, id));

CREATE TABLE users (
    workspace_id BLOB NOT NULL, id BLOB NOT NULL, parent_id BLOB, version INTEGER NOT NULL, doc TEXT NOT NULL,
    email TEXT,
    handle TEXT,
    PRIMARY KEY (workspace_id, id)
);
CREATE UNIQUE INDEX users_email ON users (workspace_id, email);
CREATE UNIQUE INDEX users_handle ON users (workspace_id, handle);

CREATE TABLE items (
    workspace_id BLOB NOT NULL, id BLOB NOT NULL, parent_id BLOB, version INTEGER NOT NULL, doc TEXT NOT NULL,
    number INTEGER NOT NULL,
    item_type BLOB NOT NULL,
    kind TEXT NOT NULL,
    project_id BLOB,
    folder_id BLOB,
    status TEXT NOT NULL,
    category TEXT NOT NULL,
    priority INTEGER NOT NULL,
    requester_id BLOB,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE UNIQUE INDEX items_number ON items (workspace_id, number);
CREATE INDEX items_created ON items (workspace_id, created_ms, number);
CREATE INDEX items_updated ON items (workspace_id, updated_ms, number);
CREATE INDEX items_priority ON items (workspace_id, priority, number);
CREATE INDEX items_type_status ON items (workspace_id, item_type, status);
CREATE INDEX items_project ON items (workspace_id, project_id, number);
CREATE INDEX items_folder ON items (workspace_id, folder_id, number);
CREATE INDEX items_requester ON items (workspace_id, requester_id);
CREATE INDEX items_parent ON items (workspace_id, parent_id);

CREATE TABLE item_assignees (
    workspace_id BLOB NOT NULL, item_id BLOB NOT NULL, assignee_kind TEXT NOT NULL, assignee_id BLOB NOT NULL,
    PRIMARY KEY (workspace_id, item_id, assignee_id)
);
CREATE INDEX item_assignees_by_assignee ON item_assignees (workspace_id, assignee_id);

CREATE TABLE item_followers (
    workspace_id BLOB NOT NULL, item_id BLOB NOT NULL, user_id BLOB NOT NULL,
    PRIMARY KEY (workspace_id, item_id, user_id)
);
CREATE INDEX item_followers_by_user ON item_followers (workspace_id, user_id);

CREATE TABLE messages (
    workspace_id BLOB NOT NULL, id BLOB NOT NULL, parent_id BLOB, version INTEGER NOT NULL, doc TEXT NOT NULL,
    internal INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX messages_item ON messages (workspace_id, parent_id, created_ms);

CREATE TABLE attachments (
    workspace_id BLOB NOT NULL, id BLOB NOT NULL, parent_id BLOB, version INTEGER NOT NULL, doc TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX attachments_item ON attachments (workspace_id, parent_id, id);

CREATE TABLE item_links (
    workspace_id BLOB NOT NULL, id BLOB NOT NULL, parent_id BLOB, version INTEGER NOT NULL, doc TEXT NOT NULL,
    other_id BLOB NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX item_links_from ON item_links (workspace_id, parent_id);
CREATE INDEX item_links_to ON item_links (workspace_id, other_id);

CREATE TABLE notifications (workspace_id BLOB NOT NULL, id BLOB NOT NULL, parent_id BLOB, version INTEGER NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (workspace_id, id));
CREATE INDEX notifications_user ON notifications (workspace_id, parent_id, id);

CREATE TABLE api_tokens (
    workspace_id BLOB NOT NULL, id BLOB NOT NULL, parent_id BLOB, version INTEGER NOT NULL, doc TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE UNIQUE INDEX api_tokens_secret ON api_tokens (secret_sha256);
CREATE INDEX api_tokens_user ON api_tokens (workspace_id, parent_id, id);

CREATE TABLE blobs (
    workspace_id BLOB NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (workspace_id, sha256)
);

CREATE TABLE events (
    workspace_id BLOB NOT NULL,
    seq INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    item_id BLOB,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (workspace_id, seq)
) WITHOUT ROWID;
CREATE INDEX events_item ON events (workspace_id, item_id, seq);

CREATE TABLE jobs (
    id BLOB PRIMARY KEY,
    workspace_id BLOB NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    run_at_ms INTEGER NOT NULL,
    lease_until_ms INTEGER,
    last_error TEXT,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE UNIQUE INDEX jobs_idempotency ON jobs (workspace_id, idempotency_key);
CREATE INDEX jobs_due ON jobs (state, run_at_ms);
CREATE INDEX jobs_lease ON jobs (state, lease_until_ms);

CREATE TABLE server_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);

-- Full-text search. Each FTS row's rowid is the rowid of the row it indexes.
CREATE VIRTUAL TABLE item_fts USING fts5(title, description, tokenize = 'unicode61 remove_diacritics 2');
CREATE VIRTUAL TABLE message_fts USING fts5(text, tokenize = 'unicode61 remove_diacritics 2');
