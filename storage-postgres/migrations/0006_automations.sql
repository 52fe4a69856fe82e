-- Tandem PostgreSQL schema, version 6: workflow automations.

CREATE TABLE automation_rules (
    workspace_id uuid NOT NULL, id uuid NOT NULL, parent_id uuid, version bigint NOT NULL, doc jsonb NOT NULL,
    PRIMARY KEY (workspace_id, id)
);

-- The run log: one row per firing (or stopped firing), its parent the item it acted on.
CREATE TABLE automation_runs (
    workspace_id uuid NOT NULL, id uuid NOT NULL, parent_id uuid, version bigint NOT NULL, doc jsonb NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX automation_runs_item ON automation_runs (workspace_id, parent_id, id);

-- One row per workspace: windowed firing counters and round-robin positions.
CREATE TABLE automation_state (
    workspace_id uuid NOT NULL, id uuid NOT NULL, parent_id uuid, version bigint NOT NULL, doc jsonb NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
