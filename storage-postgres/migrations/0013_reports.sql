-- Tandem PostgreSQL schema, version 13: scheduled reports (a saved view mailed on a schedule).
-- parent_id is the owner. Reports are few per workspace: the scheduler reads them all.

CREATE TABLE scheduled_reports (
    workspace_id uuid NOT NULL, id uuid NOT NULL, parent_id uuid, version bigint NOT NULL, doc jsonb NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
