-- Tandem PostgreSQL schema, version 2: outgoing webhooks, the cursors event-log consumers (the
-- webhook relay) keep their place with, and job claims by kind in due order.

CREATE TABLE webhooks (
    workspace_id uuid NOT NULL, id uuid NOT NULL, parent_id uuid, version bigint NOT NULL, doc jsonb NOT NULL,
    PRIMARY KEY (workspace_id, id)
);

-- One row per (workspace, consumer); the id is derived from both (`EventCursor::id_for`). Relays
-- on several servers race to advance it; its version lets exactly one win each batch.
CREATE TABLE event_cursors (
    workspace_id uuid NOT NULL, id uuid NOT NULL, parent_id uuid, version bigint NOT NULL, doc jsonb NOT NULL,
    PRIMARY KEY (workspace_id, id)
);

-- Workers claim one kind at a time, oldest due first: read in this order, a claim never walks past
-- the backlog of other kinds.
CREATE INDEX jobs_due_kind ON jobs (kind, run_at, id) WHERE state = 'queued';
