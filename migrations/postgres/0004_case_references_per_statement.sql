-- Cases arrive in bulk (COPY of thousands of rows). PostgreSQL checks a
-- foreign key with one query per row and key: four per case, which was most
-- of a COPY's time (61 of 75 ms for 1,000 cases with 100 data fields each).
-- The same references are checked here once per statement, as sets, over the
-- statement's new rows; the referenced rows are locked FOR KEY SHARE as the
-- foreign keys locked them, so that a concurrent delete waits for the writer
-- and then sees its cases. Deleting a referenced row is refused as before
-- (RESTRICT), and renaming a Staff ID still carries over to its cases
-- (ON UPDATE CASCADE). SQLite keeps its foreign keys: its checks are cheap.
ALTER TABLE cases
    DROP CONSTRAINT cases_staff_id_fkey,
    DROP CONSTRAINT cases_list_id_fkey,
    DROP CONSTRAINT cases_integration_id_fkey,
    DROP CONSTRAINT cases_group_id_fkey;

CREATE FUNCTION cases_check_references() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing TEXT;
BEGIN
    PERFORM 1 FROM staff WHERE staff_id IN (SELECT staff_id FROM new_cases) FOR KEY SHARE;
    SELECT n.staff_id INTO missing FROM new_cases n
        WHERE NOT EXISTS (SELECT 1 FROM staff s WHERE s.staff_id = n.staff_id) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'insert or update on table "cases" violates foreign key constraint "cases_staff_id_fkey"'
            USING ERRCODE = 'foreign_key_violation', TABLE = 'cases', CONSTRAINT = 'cases_staff_id_fkey',
                  DETAIL = format('Key (staff_id)=(%s) is not present in table "staff".', missing);
    END IF;

    PERFORM 1 FROM groups WHERE id IN (SELECT group_id FROM new_cases) FOR KEY SHARE;
    SELECT n.group_id INTO missing FROM new_cases n
        WHERE NOT EXISTS (SELECT 1 FROM groups g WHERE g.id = n.group_id) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'insert or update on table "cases" violates foreign key constraint "cases_group_id_fkey"'
            USING ERRCODE = 'foreign_key_violation', TABLE = 'cases', CONSTRAINT = 'cases_group_id_fkey',
                  DETAIL = format('Key (group_id)=(%s) is not present in table "groups".', missing);
    END IF;

    PERFORM 1 FROM integrations WHERE id IN (SELECT integration_id FROM new_cases) FOR KEY SHARE;
    SELECT n.integration_id INTO missing FROM new_cases n
        WHERE NOT EXISTS (SELECT 1 FROM integrations i WHERE i.id = n.integration_id) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'insert or update on table "cases" violates foreign key constraint "cases_integration_id_fkey"'
            USING ERRCODE = 'foreign_key_violation', TABLE = 'cases', CONSTRAINT = 'cases_integration_id_fkey',
                  DETAIL = format('Key (integration_id)=(%s) is not present in table "integrations".', missing);
    END IF;

    PERFORM 1 FROM case_lists WHERE id IN (SELECT list_id FROM new_cases) FOR KEY SHARE;
    SELECT n.list_id INTO missing FROM new_cases n
        WHERE n.list_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM case_lists l WHERE l.id = n.list_id) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'insert or update on table "cases" violates foreign key constraint "cases_list_id_fkey"'
            USING ERRCODE = 'foreign_key_violation', TABLE = 'cases', CONSTRAINT = 'cases_list_id_fkey',
                  DETAIL = format('Key (list_id)=(%s) is not present in table "case_lists".', missing);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER cases_references_on_insert AFTER INSERT ON cases
    REFERENCING NEW TABLE AS new_cases
    FOR EACH STATEMENT EXECUTE FUNCTION cases_check_references();
CREATE TRIGGER cases_references_on_update AFTER UPDATE ON cases
    REFERENCING NEW TABLE AS new_cases
    FOR EACH STATEMENT EXECUTE FUNCTION cases_check_references();

-- A referenced row may not go, nor change its key (RESTRICT / NO ACTION).
-- TG_ARGV: the column of cases, the key column of the referenced table.
CREATE FUNCTION cases_restrict_referenced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    referenced BOOLEAN;
    key TEXT;
BEGIN
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM cases WHERE %I = ($1).%I), ($1).%I::text',
                   TG_ARGV[0], TG_ARGV[1], TG_ARGV[1])
        INTO referenced, key USING OLD;
    IF referenced THEN
        RAISE EXCEPTION 'update or delete on table "%" violates foreign key constraint "cases_%_fkey" on table "cases"',
                TG_TABLE_NAME, TG_ARGV[0]
            USING ERRCODE = 'foreign_key_violation', TABLE = TG_TABLE_NAME,
                  CONSTRAINT = format('cases_%s_fkey', TG_ARGV[0]),
                  DETAIL = format('Key (%s)=(%s) is still referenced from table "cases".', TG_ARGV[1], key);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER cases_restrict_delete AFTER DELETE ON groups
    FOR EACH ROW EXECUTE FUNCTION cases_restrict_referenced('group_id', 'id');
CREATE TRIGGER cases_restrict_key AFTER UPDATE OF id ON groups
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION cases_restrict_referenced('group_id', 'id');
CREATE TRIGGER cases_restrict_delete AFTER DELETE ON integrations
    FOR EACH ROW EXECUTE FUNCTION cases_restrict_referenced('integration_id', 'id');
CREATE TRIGGER cases_restrict_key AFTER UPDATE OF id ON integrations
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION cases_restrict_referenced('integration_id', 'id');
CREATE TRIGGER cases_restrict_delete AFTER DELETE ON case_lists
    FOR EACH ROW EXECUTE FUNCTION cases_restrict_referenced('list_id', 'id');
CREATE TRIGGER cases_restrict_key AFTER UPDATE OF id ON case_lists
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION cases_restrict_referenced('list_id', 'id');
CREATE TRIGGER cases_restrict_delete AFTER DELETE ON staff
    FOR EACH ROW EXECUTE FUNCTION cases_restrict_referenced('staff_id', 'staff_id');

-- ON UPDATE CASCADE of a Staff ID.
CREATE FUNCTION cases_follow_staff_id() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE cases SET staff_id = NEW.staff_id WHERE staff_id = OLD.staff_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER cases_follow_staff_id AFTER UPDATE OF staff_id ON staff
    FOR EACH ROW WHEN (OLD.staff_id IS DISTINCT FROM NEW.staff_id) EXECUTE FUNCTION cases_follow_staff_id();
