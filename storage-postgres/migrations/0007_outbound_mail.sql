-- Tandem PostgreSQL schema, version 7: outbound mail — the audit of what Tandem mailed whom and
-- the history the rate limits count. An outbound mail's Message-ID also goes into mail_thread_ids.

CREATE TABLE outbound_mails (
    workspace_id uuid NOT NULL, id uuid NOT NULL, parent_id uuid, version bigint NOT NULL, doc jsonb NOT NULL,
    recipient text NOT NULL,
    status text NOT NULL,
    at_ms bigint NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX outbound_mails_recent ON outbound_mails (workspace_id, at_ms);
CREATE INDEX outbound_mails_recipient ON outbound_mails (workspace_id, recipient, at_ms);
CREATE INDEX outbound_mails_item ON outbound_mails (workspace_id, parent_id, at_ms);
CREATE INDEX outbound_mails_status ON outbound_mails (workspace_id, status, at_ms);
