-- intake schema, PostgreSQL.
-- The rules that must hold whatever the code does are constraints here:
-- unique Staff IDs, one external case id per integration, one phone per
-- campaign, a staff member's team inside the staff member's group.

CREATE TABLE groups (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200),
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE teams (
    id          UUID PRIMARY KEY,
    group_id    UUID NOT NULL REFERENCES groups (id) ON DELETE RESTRICT,
    name        TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  TIMESTAMPTZ NOT NULL,
    UNIQUE (group_id, name),
    -- target of staff's composite key: a team is used only inside its group
    UNIQUE (id, group_id)
);

CREATE TABLE staff (
    id          UUID PRIMARY KEY,            -- internal, orders pagination
    staff_id    TEXT NOT NULL UNIQUE CHECK (length(staff_id) BETWEEN 1 AND 255),
    external_id TEXT CHECK (length(external_id) BETWEEN 1 AND 255),
    name        TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    role        TEXT NOT NULL CHECK (role IN ('agent', 'supervisor', 'evaluator')),
    group_id    UUID NOT NULL REFERENCES groups (id) ON DELETE RESTRICT,
    team_id     UUID,
    active      BOOLEAN NOT NULL DEFAULT TRUE,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    FOREIGN KEY (team_id, group_id) REFERENCES teams (id, group_id) ON DELETE RESTRICT
);
CREATE INDEX staff_group_external_idx ON staff (group_id, external_id);
CREATE INDEX staff_group_name_idx ON staff (group_id, name);

CREATE TABLE integrations (
    id                  UUID PRIMARY KEY,
    label               TEXT NOT NULL CHECK (length(label) BETWEEN 1 AND 200),
    description         TEXT NOT NULL DEFAULT '',
    enabled             BOOLEAN NOT NULL DEFAULT TRUE,
    csv_max_records     INTEGER NOT NULL DEFAULT 1000 CHECK (csv_max_records > 0),
    csv_max_columns     INTEGER NOT NULL DEFAULT 103 CHECK (csv_max_columns >= 4),
    csv_max_cell_chars  INTEGER NOT NULL DEFAULT 1000 CHECK (csv_max_cell_chars > 0),
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL
);

CREATE TABLE integration_groups (
    integration_id  UUID NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    group_id        UUID NOT NULL REFERENCES groups (id) ON DELETE RESTRICT,
    PRIMARY KEY (integration_id, group_id)
);
CREATE INDEX integration_groups_group_idx ON integration_groups (group_id);

-- Tokens are never stored: only their id, scopes and lifetime.
CREATE TABLE tokens (
    jti             UUID PRIMARY KEY,
    integration_id  UUID REFERENCES integrations (id) ON DELETE CASCADE, -- NULL: admin
    scopes          TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL,
    last_used_at    TIMESTAMPTZ,
    revoked_at      TIMESTAMPTZ
);
CREATE INDEX tokens_integration_idx ON tokens (integration_id);

CREATE TABLE categories (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200),
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE case_lists (
    id               UUID PRIMARY KEY,
    name             TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    integration_id   UUID NOT NULL REFERENCES integrations (id) ON DELETE RESTRICT,
    group_id         UUID NOT NULL REFERENCES groups (id) ON DELETE RESTRICT,
    assignment_kind  TEXT NOT NULL CHECK (assignment_kind IN ('group', 'team', 'evaluator')),
    assignment_id    TEXT NOT NULL,
    source           TEXT NOT NULL CHECK (source IN ('api', 'csv', 'import')),
    case_count       BIGINT NOT NULL DEFAULT 0,
    created_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX case_lists_integration_idx ON case_lists (integration_id, id);

CREATE TABLE cases (
    id                 UUID PRIMARY KEY,
    external_id        TEXT NOT NULL CHECK (length(external_id) BETWEEN 1 AND 255),
    staff_id           TEXT NOT NULL REFERENCES staff (staff_id) ON UPDATE CASCADE ON DELETE RESTRICT,
    external_staff_id  TEXT,
    list_id            UUID REFERENCES case_lists (id) ON DELETE RESTRICT,
    integration_id     UUID NOT NULL REFERENCES integrations (id) ON DELETE RESTRICT,
    group_id           UUID NOT NULL REFERENCES groups (id) ON DELETE RESTRICT,
    channel            TEXT CHECK (channel IN ('form', 'live_hotline', 'survey')),
    status             TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'in_progress', 'closed')),
    priority           TEXT CHECK (priority IN ('low', 'medium', 'high', 'critical')),
    category           TEXT,
    occurred_at        TIMESTAMPTZ,
    -- JSON, not JSONB: the client's columns keep their order.
    data               JSON NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL,
    UNIQUE (integration_id, external_id)
);
CREATE INDEX cases_list_idx ON cases (list_id, id);
CREATE INDEX cases_staff_idx ON cases (staff_id, id);
CREATE INDEX cases_group_idx ON cases (group_id, id);

CREATE TABLE campaigns (
    id              UUID PRIMARY KEY,
    name            TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    group_id        UUID NOT NULL REFERENCES groups (id) ON DELETE RESTRICT,
    default_region  TEXT NOT NULL CHECK (length(default_region) = 2),
    timezone        TEXT NOT NULL,
    statuses        JSONB NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    UNIQUE (group_id, name)
);

CREATE TABLE customers (
    id                  UUID PRIMARY KEY,
    campaign_id         UUID NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    name                TEXT NOT NULL,
    phone               TEXT NOT NULL CHECK (phone LIKE '+%'),
    phone_raw           TEXT NOT NULL,
    status              TEXT NOT NULL,
    agent_staff_id      TEXT REFERENCES staff (staff_id) ON UPDATE CASCADE ON DELETE SET NULL,
    follow_up_at        TIMESTAMPTZ,
    source_created_at   TIMESTAMPTZ,
    do_not_call         BOOLEAN NOT NULL DEFAULT FALSE,
    contact_allowed_at  TIMESTAMPTZ,
    fields              JSON NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL,
    UNIQUE (campaign_id, phone)
);
CREATE INDEX customers_phone_idx ON customers (phone);
CREATE INDEX customers_campaign_idx ON customers (campaign_id, id);

CREATE TABLE import_jobs (
    id              UUID PRIMARY KEY,
    integration_id  UUID NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    kind            TEXT NOT NULL CHECK (kind IN ('cases', 'customers')),
    state           TEXT NOT NULL CHECK (state IN ('awaiting_confirmation', 'running', 'completed', 'failed', 'cancelled')),
    file_name       TEXT NOT NULL,
    options         JSONB NOT NULL,
    preview         JSONB NOT NULL,
    errors          JSONB NOT NULL,
    total           BIGINT NOT NULL DEFAULT 0,
    processed       BIGINT NOT NULL DEFAULT 0,
    succeeded       BIGINT NOT NULL DEFAULT 0,
    failed          BIGINT NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX import_jobs_integration_idx ON import_jobs (integration_id, id);
