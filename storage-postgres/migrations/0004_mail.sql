-- Tandem PostgreSQL schema, version 4: email intake.

CREATE TABLE mail_settings (
    workspace_id uuid NOT NULL, id uuid NOT NULL, parent_id uuid, version bigint NOT NULL, doc jsonb NOT NULL,
    PRIMARY KEY (workspace_id, id)
);

-- Every workspace's inbound addresses, derived from mail_settings: mail arrives before its tenant
-- is known, and an address belongs to one workspace only. Keyed by address, not by tenant: when
-- distributing by tenant this is a reference table.
CREATE TABLE mail_addresses (
    address text PRIMARY KEY,
    workspace_id uuid NOT NULL
);
CREATE INDEX mail_addresses_workspace ON mail_addresses (workspace_id);

CREATE TABLE inbound_mails (
    workspace_id uuid NOT NULL, id uuid NOT NULL, parent_id uuid, version bigint NOT NULL, doc jsonb NOT NULL,
    dedupe_key text NOT NULL,
    status text NOT NULL,
    received_ms bigint NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE UNIQUE INDEX inbound_mails_dedupe ON inbound_mails (workspace_id, dedupe_key);
CREATE INDEX inbound_mails_item ON inbound_mails (workspace_id, parent_id, id);
CREATE INDEX inbound_mails_status ON inbound_mails (workspace_id, status, received_ms);

-- Message-ID → item, for threading replies: derived from inbound mails that name an item and from
-- messages carrying email headers. The first item a Message-ID was stored for keeps it.
CREATE TABLE mail_thread_ids (
    workspace_id uuid NOT NULL,
    message_id text NOT NULL,
    item_id uuid NOT NULL,
    PRIMARY KEY (workspace_id, message_id)
);
