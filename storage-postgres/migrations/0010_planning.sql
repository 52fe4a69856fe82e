-- Tandem PostgreSQL schema, version 10: planning — working calendars per workspace and per user,
-- timesheet entries and saved views.
-- (Planning fields of tasks and dependency timing live in the item and link documents.)

CREATE TABLE work_calendars (
    workspace_id uuid NOT NULL, id uuid NOT NULL, parent_id uuid, version bigint NOT NULL, doc jsonb NOT NULL,
    PRIMARY KEY (workspace_id, id)
);

-- Timesheet entries: parent_id is the item. A person has at most one running timer.
CREATE TABLE time_entries (
    workspace_id uuid NOT NULL, id uuid NOT NULL, parent_id uuid, version bigint NOT NULL, doc jsonb NOT NULL,
    user_id uuid NOT NULL,
    status text NOT NULL,
    started_ms bigint NOT NULL,
    running boolean NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX time_entries_item ON time_entries (workspace_id, parent_id, started_ms);
CREATE INDEX time_entries_user ON time_entries (workspace_id, user_id, started_ms);
CREATE INDEX time_entries_status ON time_entries (workspace_id, status, started_ms);
CREATE UNIQUE INDEX time_entries_one_running ON time_entries (workspace_id, user_id) WHERE running;

-- Saved views: parent_id is the owner.
CREATE TABLE saved_views (
    workspace_id uuid NOT NULL, id uuid NOT NULL, parent_id uuid, version bigint NOT NULL, doc jsonb NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
