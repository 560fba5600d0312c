-- A statement of cases ran nine queries in its reference check (migration
-- 0005), whatever its size: for the single-case requests of client systems
-- that was as much work as the insert itself. Now one query locks (FOR KEY
-- SHARE, as before) and counts the statement's distinct staff, group and
-- integration references that exist (one pass over the statement's rows),
-- and says whether it names lists; only
-- when something is missing (or lists are named) do the detailed checks of
-- 0005 run, to lock the lists and to name what is missing.
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
    -- One pass over the statement's rows (its distinct references), then
    -- the few references: counted, and locked where they exist.
    WITH refs AS MATERIALIZED (
        SELECT DISTINCT staff_id, group_id, integration_id, list_id FROM new_cases
    ), triples AS MATERIALIZED (
        SELECT DISTINCT staff_id, group_id, integration_id FROM refs
    )
    SELECT (SELECT count(*) FROM triples),
           (SELECT count(*) FROM (
                SELECT 1 FROM triples r
                JOIN staff s ON s.staff_id = r.staff_id
                JOIN groups g ON g.id = r.group_id
                JOIN integrations i ON i.id = r.integration_id
                FOR KEY SHARE OF s, g, i) AS locked),
           EXISTS (SELECT 1 FROM refs WHERE list_id IS NOT NULL)
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
