-- Tandem SQLite schema, version 5: organizations, project membership, portal visibility.

-- Customers' organizations and email domains: derived from each user's record, for the portal's
-- "my organization's items" scope and for joining contacts when a domain is added.
ALTER TABLE users ADD COLUMN email_domain TEXT;
ALTER TABLE users ADD COLUMN organization_id BLOB;
UPDATE users SET email_domain = substr(email, instr(email, '@') + 1) WHERE instr(email, '@') > 0;
CREATE INDEX users_email_domain ON users (workspace_id, email_domain, id);
CREATE INDEX users_organization ON users (workspace_id, organization_id, id);

CREATE TABLE organizations (
    workspace_id BLOB NOT NULL, id BLOB NOT NULL, parent_id BLOB, version INTEGER NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (workspace_id, id)
);

-- Derived from organizations: a domain belongs to one organization of a workspace.
CREATE TABLE organization_domains (
    workspace_id BLOB NOT NULL,
    domain TEXT NOT NULL,
    organization_id BLOB NOT NULL,
    PRIMARY KEY (workspace_id, domain)
) WITHOUT ROWID;
CREATE INDEX organization_domains_org ON organization_domains (workspace_id, organization_id);

-- parent_id is the member's user: read on every request of a collaborator or customer.
CREATE TABLE project_members (
    workspace_id BLOB NOT NULL, id BLOB NOT NULL, parent_id BLOB, version INTEGER NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX project_members_user ON project_members (workspace_id, parent_id, id);

-- parent_id is the project.
CREATE TABLE join_requests (
    workspace_id BLOB NOT NULL, id BLOB NOT NULL, parent_id BLOB, version INTEGER NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX join_requests_project ON join_requests (workspace_id, parent_id, id);

CREATE TABLE portal_settings (
    workspace_id BLOB NOT NULL, id BLOB NOT NULL, parent_id BLOB, version INTEGER NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
