-- The reference check's fast path (migration 0007) as plain subqueries.
-- Measured with pgbench, 32 clients inserting one case per statement on two
-- cores: 0007's materialized CTEs held the database to about 4,300 inserts/s,
-- these to about 5,300 (a table with no check: about 8,500); a 100,000-row
-- INSERT … SELECT takes the same time with either. The slow path (something
-- missing, or lists named) is 0007's, unchanged.
CREATE OR REPLACE FUNCTION cases_check_references() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    staff_ids TEXT[];
    group_ids UUID[];
    integration_ids UUID[];
    list_ids UUID[];
    missing TEXT;
    wanted BIGINT;
    present BIGINT;
    with_lists BOOLEAN;
BEGIN
    -- The statement's distinct references, counted, and joined to the rows
    -- they name (locked FOR KEY SHARE where they exist). Plain subqueries:
    -- for the one-row statements of client systems, the materialized CTEs
    -- of 0007 cost the database as much as the insert itself; for a bulk
    -- statement the extra pass over its rows is lost in the noise.
    SELECT (SELECT count(*) FROM (SELECT DISTINCT staff_id, group_id, integration_id FROM new_cases) AS t),
           (SELECT count(*) FROM (
                SELECT 1 FROM (SELECT DISTINCT staff_id, group_id, integration_id FROM new_cases) AS r
                JOIN staff s ON s.staff_id = r.staff_id
                JOIN groups g ON g.id = r.group_id
                JOIN integrations i ON i.id = r.integration_id
                FOR KEY SHARE OF s, g, i) AS locked),
           EXISTS (SELECT 1 FROM new_cases WHERE list_id IS NOT NULL)
      INTO wanted, present, with_lists;
    IF wanted = present AND NOT with_lists THEN
        RETURN NULL;
    END IF;

    -- One pass over the statement's rows: the few distinct references.
    SELECT array_agg(DISTINCT staff_id), array_agg(DISTINCT group_id),
           array_agg(DISTINCT integration_id), array_agg(DISTINCT list_id) FILTER (WHERE list_id IS NOT NULL)
      INTO staff_ids, group_ids, integration_ids, list_ids
      FROM (SELECT DISTINCT staff_id, group_id, integration_id, list_id FROM new_cases) AS refs;

    PERFORM 1 FROM staff WHERE staff_id = ANY (staff_ids) FOR KEY SHARE;
    SELECT k INTO missing FROM unnest(staff_ids) AS k WHERE NOT EXISTS (SELECT 1 FROM staff WHERE staff_id = k) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'insert or update on table "cases" violates foreign key constraint "cases_staff_id_fkey"'
            USING ERRCODE = 'foreign_key_violation', TABLE = 'cases', CONSTRAINT = 'cases_staff_id_fkey',
                  DETAIL = format('Key (staff_id)=(%s) is not present in table "staff".', missing);
    END IF;
    PERFORM 1 FROM groups WHERE id = ANY (group_ids) FOR KEY SHARE;
    SELECT k INTO missing FROM unnest(group_ids) AS k WHERE NOT EXISTS (SELECT 1 FROM groups WHERE id = k) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'insert or update on table "cases" violates foreign key constraint "cases_group_id_fkey"'
            USING ERRCODE = 'foreign_key_violation', TABLE = 'cases', CONSTRAINT = 'cases_group_id_fkey',
                  DETAIL = format('Key (group_id)=(%s) is not present in table "groups".', missing);
    END IF;
    PERFORM 1 FROM integrations WHERE id = ANY (integration_ids) FOR KEY SHARE;
    SELECT k INTO missing FROM unnest(integration_ids) AS k WHERE NOT EXISTS (SELECT 1 FROM integrations WHERE id = k) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'insert or update on table "cases" violates foreign key constraint "cases_integration_id_fkey"'
            USING ERRCODE = 'foreign_key_violation', TABLE = 'cases', CONSTRAINT = 'cases_integration_id_fkey',
                  DETAIL = format('Key (integration_id)=(%s) is not present in table "integrations".', missing);
    END IF;
    PERFORM 1 FROM case_lists WHERE id = ANY (list_ids) FOR KEY SHARE;
    SELECT k INTO missing FROM unnest(list_ids) AS k WHERE NOT EXISTS (SELECT 1 FROM case_lists WHERE id = k) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'insert or update on table "cases" violates foreign key constraint "cases_list_id_fkey"'
            USING ERRCODE = 'foreign_key_violation', TABLE = 'cases', CONSTRAINT = 'cases_list_id_fkey',
                  DETAIL = format('Key (list_id)=(%s) is not present in table "case_lists".', missing);
    END IF;
    RETURN NULL;
END
$$;
