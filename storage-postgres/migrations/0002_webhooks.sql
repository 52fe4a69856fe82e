-- Tandem PostgreSQL schema, version 2: outgoing webhooks, and the cursors event-log consumers
-- (the webhook relay) keep their place with.

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
