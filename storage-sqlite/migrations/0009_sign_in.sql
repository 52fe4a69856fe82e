-- Tandem SQLite schema, version 9: signing in (passwords, sessions, sign-in links, failed
-- sign-in counts) and when API tokens were last used.

CREATE TABLE credentials (
    workspace_id BLOB NOT NULL, id BLOB NOT NULL, parent_id BLOB, version INTEGER NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (workspace_id, id)
);

-- Sessions and sign-in links are found by the SHA-256 of their secret, whatever their workspace.
CREATE TABLE sessions (
    workspace_id BLOB NOT NULL, id BLOB NOT NULL, parent_id BLOB, version INTEGER NOT NULL, doc TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE UNIQUE INDEX sessions_secret ON sessions (secret_sha256);
CREATE INDEX sessions_user ON sessions (workspace_id, parent_id, id);

CREATE TABLE sign_in_links (
    workspace_id BLOB NOT NULL, id BLOB NOT NULL, parent_id BLOB, version INTEGER NOT NULL, doc TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE UNIQUE INDEX sign_in_links_secret ON sign_in_links (secret_sha256);
CREATE INDEX sign_in_links_user ON sign_in_links (workspace_id, parent_id, id);

-- Failed sign-ins per key (an account's address, a network address): operational state that
-- every server shares, so a lockout holds across restarts and servers.
CREATE TABLE login_throttles (
    workspace_id BLOB NOT NULL,
    key TEXT NOT NULL,
    failures INTEGER NOT NULL,
    window_start_ms INTEGER NOT NULL,
    locked_until_ms INTEGER,
    PRIMARY KEY (workspace_id, key)
) WITHOUT ROWID;

ALTER TABLE api_tokens ADD COLUMN last_used_ms INTEGER;
