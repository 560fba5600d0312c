-- Idempotency keys where Redis is not configured: one row per caller and
-- key. A row with a lease_token is a request in progress (until
-- lease_until_ms); a row with a status is a finished request whose answer
-- is replayed until expires_at_ms. Times in milliseconds since the epoch.
CREATE TABLE idempotency_keys (
    owner TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    lease_token TEXT,
    lease_until_ms BIGINT,
    body_hash TEXT,
    status INTEGER,
    headers TEXT,
    body BYTEA,
    expires_at_ms BIGINT NOT NULL,
    PRIMARY KEY (owner, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at_ms);

-- An integration's own rate limit (both NULL: the server's default).
ALTER TABLE integrations
    ADD COLUMN rate_per_second DOUBLE PRECISION CHECK (rate_per_second >= 0),
    ADD COLUMN rate_burst INTEGER CHECK (rate_burst >= 1),
    ADD CONSTRAINT integrations_rate_limit_whole CHECK ((rate_per_second IS NULL) = (rate_burst IS NULL));
