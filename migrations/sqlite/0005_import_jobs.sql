-- Import jobs: an uploaded file checked and staged row by row, then (once
-- confirmed) written batch by batch by whichever replica holds the job's
-- lease (here: the one process). The table of 0001 was never used.
DROP TABLE import_jobs;

CREATE TABLE import_jobs (
    id              BLOB PRIMARY KEY,
    integration_id  BLOB NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    kind            TEXT NOT NULL CHECK (kind IN ('cases', 'customers')),
    -- `checking`: the upload is still being read (never answered).
    state           TEXT NOT NULL CHECK (state IN ('checking', 'awaiting_confirmation', 'running', 'completed', 'failed', 'cancelled')),
    file_name       TEXT NOT NULL,
    format          TEXT NOT NULL CHECK (format IN ('csv', 'xls', 'xlsx')),
    -- The kind's options as sent, the file's columns, what was detected,
    -- the first rows as parsed and the check's problems (JSON text).
    options         TEXT NOT NULL,
    header          TEXT NOT NULL DEFAULT '[]',
    detected        TEXT,
    preview         TEXT NOT NULL DEFAULT '[]',
    problems        TEXT NOT NULL DEFAULT '{}',
    total           INTEGER NOT NULL DEFAULT 0,
    processed       INTEGER NOT NULL DEFAULT 0,
    succeeded       INTEGER NOT NULL DEFAULT 0,
    skipped         INTEGER NOT NULL DEFAULT 0,
    failed          INTEGER NOT NULL DEFAULT 0,
    -- The last line written (its batch committed with this row).
    next_line       INTEGER NOT NULL DEFAULT 0,
    list_id         BLOB REFERENCES case_lists (id) ON DELETE SET NULL,
    error           TEXT,
    lease_owner     BLOB,
    lease_until     TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    confirmed_at    TEXT,
    finished_at     TEXT,
    expires_at      TEXT NOT NULL
);
CREATE INDEX import_jobs_integration_idx ON import_jobs (integration_id, id);
CREATE INDEX import_jobs_running_idx ON import_jobs (lease_until) WHERE state = 'running';
CREATE INDEX import_jobs_expiry_idx ON import_jobs (expires_at);

-- The file's records as read: their cells (a JSON array of strings) by
-- line. `broken`: the record breaks a CSV rule and is never written.
CREATE TABLE import_rows (
    job_id  BLOB NOT NULL REFERENCES import_jobs (id) ON DELETE CASCADE,
    line    INTEGER NOT NULL,
    cells   TEXT NOT NULL,
    broken  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, line)
);

-- The rows that failed, with their problems (a JSON array).
CREATE TABLE import_failures (
    job_id  BLOB NOT NULL REFERENCES import_jobs (id) ON DELETE CASCADE,
    line    INTEGER NOT NULL,
    errors  TEXT NOT NULL,
    PRIMARY KEY (job_id, line)
);
