-- Tandem PostgreSQL schema, version 9: signing in (passwords, sessions, sign-in links, failed
-- sign-in counts) and when API tokens were last used.

CREATE TABLE credentials (
    workspace_id uuid NOT NULL, id uuid NOT NULL, parent_id uuid, version bigint NOT NULL, doc jsonb NOT NULL,
    PRIMARY KEY (workspace_id, id)
);

-- Sessions and sign-in links are found by the SHA-256 of their secret, whatever their workspace.
-- As with API tokens, uniqueness is per workspace (tenant-local keys) and a lookup that finds a
-- secret in two workspaces authenticates nobody.
CREATE TABLE sessions (
    workspace_id uuid NOT NULL, id uuid NOT NULL, parent_id uuid, version bigint NOT NULL, doc jsonb NOT NULL,
    secret_sha256 text NOT NULL,
    PRIMARY KEY (workspace_id, id),
    CONSTRAINT sessions_secret UNIQUE (workspace_id, secret_sha256)
);
CREATE INDEX sessions_secret_lookup ON sessions (secret_sha256);
CREATE INDEX sessions_user ON sessions (workspace_id, parent_id, id);

CREATE TABLE sign_in_links (
    workspace_id uuid NOT NULL, id uuid NOT NULL, parent_id uuid, version bigint NOT NULL, doc jsonb NOT NULL,
    secret_sha256 text NOT NULL,
    PRIMARY KEY (workspace_id, id),
    CONSTRAINT sign_in_links_secret UNIQUE (workspace_id, secret_sha256)
);
CREATE INDEX sign_in_links_secret_lookup ON sign_in_links (secret_sha256);
CREATE INDEX sign_in_links_user ON sign_in_links (workspace_id, parent_id, id);

-- Failed sign-ins per key (an account's address, a network address): operational state that
-- every server shares, so a lockout holds across restarts and servers.
CREATE TABLE login_throttles (
    workspace_id uuid NOT NULL,
    key text NOT NULL,
    failures integer NOT NULL,
    window_start_ms bigint NOT NULL,
    locked_until_ms bigint,
    PRIMARY KEY (workspace_id, key)
);

ALTER TABLE api_tokens ADD COLUMN last_used_ms bigint;
