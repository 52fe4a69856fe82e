-- Tandem PostgreSQL schema, version 15: the knowledge base (categories, articles) and live chat (chats,
-- their messages). Search over articles ranks in memory over what the reader may see, so no
-- full-text index here.

CREATE TABLE kb_categories (
    workspace_id uuid NOT NULL, id uuid NOT NULL, parent_id uuid, version bigint NOT NULL, doc jsonb NOT NULL,
    PRIMARY KEY (workspace_id, id)
);

-- Articles: parent_id is the category.
CREATE TABLE kb_articles (
    workspace_id uuid NOT NULL, id uuid NOT NULL, parent_id uuid, version bigint NOT NULL, doc jsonb NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX kb_articles_category ON kb_articles (workspace_id, parent_id);

-- Chats: parent_id is the signed-in requester (their profile lists them).
CREATE TABLE chats (
    workspace_id uuid NOT NULL, id uuid NOT NULL, parent_id uuid, version bigint NOT NULL, doc jsonb NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX chats_requester ON chats (workspace_id, parent_id);

-- Chat messages: parent_id is the chat.
CREATE TABLE chat_messages (
    workspace_id uuid NOT NULL, id uuid NOT NULL, parent_id uuid, version bigint NOT NULL, doc jsonb NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX chat_messages_chat ON chat_messages (workspace_id, parent_id);
