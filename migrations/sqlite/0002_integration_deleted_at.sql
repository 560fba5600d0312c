-- Deleting an integration keeps its cases and lists (they are the client's
-- data) but ends the integration: it and its tokens stop existing for the API.
ALTER TABLE integrations ADD COLUMN deleted_at TEXT;
CREATE INDEX tokens_revoked_idx ON tokens (revoked_at) WHERE revoked_at IS NOT NULL;
