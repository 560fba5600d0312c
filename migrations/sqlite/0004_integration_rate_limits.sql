-- An integration's own rate limit (both NULL: the server's default).
-- (Idempotency keys live in a SQLite file of their own, beside this one.)
ALTER TABLE integrations ADD COLUMN rate_per_second REAL CHECK (rate_per_second >= 0);
ALTER TABLE integrations ADD COLUMN rate_burst INTEGER CHECK (rate_burst >= 1);
