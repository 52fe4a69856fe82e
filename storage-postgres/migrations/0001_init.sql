-- Tandem PostgreSQL schema, version 1.
--
-- Every table but server_settings is keyed by workspace_id first, and every unique key includes
-- it, so the schema can be distributed by tenant (Citus: distribution column workspace_id).
-- Records are stored whole as JSONB in `doc`, beside the columns queries filter and sort on;
-- those columns are derived from the record and rewritten on every put.

-- Search folds diacritics ("zurich" finds "Zürich") and does no stemming: `simple` with the
-- `unaccent` filter dictionary in front of it. Indexing, queries and snippets all use this one
-- configuration, so snippets show the original text with the folded match found in it.
CREATE EXTENSION IF NOT EXISTS unaccent;
-- Lets a GIN index lead with workspace_id, so a search reads only its tenant's postings.
CREATE EXTENSION IF NOT EXISTS btree_gin;
CREATE TEXT SEARCH CONFIGURATION tandem_search (COPY = pg_catalog.simple);
ALTER TEXT SEARCH CONFIGURATION tandem_search
    ALTER MAPPING FOR asciiword, word, numword, asciihword, hword, numhword, hword_asciipart, hword_part, hword_numpart
    WITH unaccent, simple;

CREATE TABLE workspace_counters (
    workspace_id uuid PRIMARY KEY,
    next_item_number bigint NOT NULL DEFAULT 1,
    next_event_seq bigint NOT NULL DEFAULT 1
);

-- A workspace is its own tenant: workspace_id = id.
CREATE TABLE workspaces (
    workspace_id uuid NOT NULL, id uuid NOT NULL, parent_id uuid, version bigint NOT NULL, doc jsonb NOT NULL,
    PRIMARY KEY (workspace_id, id)
);

CREATE TABLE portfolios (
    workspace_id uuid NOT NULL, id uuid NOT NULL, parent_id uuid, version bigint NOT NULL, doc jsonb NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX portfolios_parent ON portfolios (workspace_id, parent_id, id);

CREATE TABLE projects (
    workspace_id uuid NOT NULL, id uuid NOT NULL, parent_id uuid, version bigint NOT NULL, doc jsonb NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX projects_parent ON projects (workspace_id, parent_id, id);

CREATE TABLE folders (
    workspace_id uuid NOT NULL, id uuid NOT NULL, parent_id uuid, version bigint NOT NULL, doc jsonb NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX folders_parent ON folders (workspace_id, parent_id, id);

CREATE TABLE item_types (
    workspace_id uuid NOT NULL, id uuid NOT NULL, parent_id uuid, version bigint NOT NULL, doc jsonb NOT NULL,
    PRIMARY KEY (workspace_id, id)
);

CREATE TABLE teams (
    workspace_id uuid NOT NULL, id uuid NOT NULL, parent_id uuid, version bigint NOT NULL, doc jsonb NOT NULL,
    PRIMARY KEY (workspace_id, id)
);

CREATE TABLE users (
    workspace_id uuid NOT NULL, id uuid NOT NULL, parent_id uuid, version bigint NOT NULL, doc jsonb NOT NULL,
    email text,
    handle text,
    PRIMARY KEY (workspace_id, id),
    CONSTRAINT users_email UNIQUE (workspace_id, email),
    CONSTRAINT users_handle UNIQUE (workspace_id, handle)
);

CREATE TABLE items (
    workspace_id uuid NOT NULL, id uuid NOT NULL, parent_id uuid, version bigint NOT NULL, doc jsonb NOT NULL,
    number bigint NOT NULL,
    item_type uuid NOT NULL,
    kind text NOT NULL,
    project_id uuid,
    folder_id uuid,
    status text NOT NULL,
    category text NOT NULL,
    priority bigint NOT NULL,
    requester_id uuid,
    -- Milliseconds since the epoch: exactly the value a keyset cursor carries (`SortKey::value`).
    created_ms bigint NOT NULL,
    updated_ms bigint NOT NULL,
    -- Bounded so no record can exceed tsvector's 1 MB limit; words past the bound are not indexed.
    search tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('tandem_search', left(coalesce(doc->>'title', ''), 2000)), 'A')
        || setweight(to_tsvector('tandem_search', left(coalesce(doc->>'description', ''), 100000)), 'B')
    ) STORED,
    PRIMARY KEY (workspace_id, id),
    CONSTRAINT items_number UNIQUE (workspace_id, number)
);
CREATE INDEX items_created ON items (workspace_id, created_ms, number);
CREATE INDEX items_updated ON items (workspace_id, updated_ms, number);
CREATE INDEX items_priority ON items (workspace_id, priority, number);
CREATE INDEX items_type_status ON items (workspace_id, item_type, status);
CREATE INDEX items_project ON items (workspace_id, project_id, number);
CREATE INDEX items_folder ON items (workspace_id, folder_id, number);
CREATE INDEX items_requester ON items (workspace_id, requester_id);
CREATE INDEX items_parent ON items (workspace_id, parent_id);
CREATE INDEX items_search ON items USING gin (workspace_id, search);

CREATE TABLE item_assignees (
    workspace_id uuid NOT NULL, item_id uuid NOT NULL, assignee_kind text NOT NULL, assignee_id uuid NOT NULL,
    PRIMARY KEY (workspace_id, item_id, assignee_id)
);
CREATE INDEX item_assignees_by_assignee ON item_assignees (workspace_id, assignee_id);

CREATE TABLE item_followers (
    workspace_id uuid NOT NULL, item_id uuid NOT NULL, user_id uuid NOT NULL,
    PRIMARY KEY (workspace_id, item_id, user_id)
);
CREATE INDEX item_followers_by_user ON item_followers (workspace_id, user_id);

CREATE TABLE messages (
    workspace_id uuid NOT NULL, id uuid NOT NULL, parent_id uuid, version bigint NOT NULL, doc jsonb NOT NULL,
    internal boolean NOT NULL,
    created_ms bigint NOT NULL,
    search tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('tandem_search', left(coalesce(doc->>'text', ''), 100000)), 'C')
    ) STORED,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX messages_item ON messages (workspace_id, parent_id, created_ms);
CREATE INDEX messages_search ON messages USING gin (workspace_id, search);

CREATE TABLE attachments (
    workspace_id uuid NOT NULL, id uuid NOT NULL, parent_id uuid, version bigint NOT NULL, doc jsonb NOT NULL,
    sha256 text NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX attachments_item ON attachments (workspace_id, parent_id, id);

CREATE TABLE item_links (
    workspace_id uuid NOT NULL, id uuid NOT NULL, parent_id uuid, version bigint NOT NULL, doc jsonb NOT NULL,
    other_id uuid NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX item_links_from ON item_links (workspace_id, parent_id);
CREATE INDEX item_links_to ON item_links (workspace_id, other_id);

CREATE TABLE notifications (
    workspace_id uuid NOT NULL, id uuid NOT NULL, parent_id uuid, version bigint NOT NULL, doc jsonb NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX notifications_user ON notifications (workspace_id, parent_id, id);

-- A secret is unique within its workspace (a distributed unique key must include the tenant);
-- authentication looks it up across workspaces through api_tokens_secret_lookup and refuses a
-- secret that more than one workspace holds.
CREATE TABLE api_tokens (
    workspace_id uuid NOT NULL, id uuid NOT NULL, parent_id uuid, version bigint NOT NULL, doc jsonb NOT NULL,
    secret_sha256 text NOT NULL,
    PRIMARY KEY (workspace_id, id),
    CONSTRAINT api_tokens_secret UNIQUE (workspace_id, secret_sha256)
);
CREATE INDEX api_tokens_secret_lookup ON api_tokens (secret_sha256);
CREATE INDEX api_tokens_user ON api_tokens (workspace_id, parent_id, id);

CREATE TABLE blobs (
    workspace_id uuid NOT NULL,
    sha256 text NOT NULL,
    size bigint NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (workspace_id, sha256)
);

CREATE TABLE events (
    workspace_id uuid NOT NULL,
    seq bigint NOT NULL,
    at timestamptz NOT NULL,
    actor jsonb NOT NULL,
    item_id uuid,
    kind text NOT NULL,
    data jsonb NOT NULL,
    PRIMARY KEY (workspace_id, seq)
);
CREATE INDEX events_item ON events (workspace_id, item_id, seq);

CREATE TABLE jobs (
    workspace_id uuid NOT NULL,
    id uuid NOT NULL,
    kind text NOT NULL,
    payload jsonb NOT NULL,
    idempotency_key text NOT NULL,
    state text NOT NULL CHECK (state IN ('queued', 'running', 'done', 'dead')),
    attempts integer NOT NULL,
    max_attempts integer NOT NULL,
    run_at timestamptz NOT NULL,
    lease_until timestamptz,
    last_error text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, id),
    CONSTRAINT jobs_idempotency UNIQUE (workspace_id, idempotency_key)
);
-- complete/fail/retry name a job by id alone.
CREATE INDEX jobs_id ON jobs (id);
-- What claimers scan, in order and without sorting the backlog: due queued jobs, and running
-- jobs by lease expiry.
CREATE INDEX jobs_due ON jobs (run_at, id) WHERE state = 'queued';
CREATE INDEX jobs_lease ON jobs (lease_until) WHERE state = 'running';
CREATE INDEX jobs_listing ON jobs (workspace_id, created_at, id);

-- Settings of the server itself, outside any workspace (a Citus reference table).
CREATE TABLE server_settings (key text PRIMARY KEY, value text NOT NULL);
