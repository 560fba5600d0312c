-- One case at a time, the check of 0008 costs the database more than the
-- insert itself: the statement trigger collects a transition table, runs
-- plpgsql and three queries over it. The server's one-case statement
-- (`INSERT … SELECT … JOIN staff, groups, integrations … FOR KEY SHARE`)
-- checks and locks the case's references itself, as a foreign key would,
-- and sets `intake.references_checked` for the rest of its transaction
-- (`set_config(…, true)`: it ends with the statement, which runs in a
-- transaction of its own). The trigger does not fire while it is set.
-- Measured with pgbench, 32 clients, one case per statement on two cores:
-- about 5,800–7,000 inserts/s through the trigger, 7,200–7,800 checked
-- inline (a table with no check at all: 9,200–10,900).
--
-- Every other statement (bulk COPY, multi-row INSERT, UPDATE) is checked by
-- the trigger as before. The setting only skips a check: a session that sets
-- it by hand can write cases whose references are missing, as one that
-- drops the trigger could; it is not a permission.
DROP TRIGGER cases_references_on_insert ON cases;
CREATE TRIGGER cases_references_on_insert AFTER INSERT ON cases
    REFERENCING NEW TABLE AS new_cases
    FOR EACH STATEMENT
    WHEN (current_setting('intake.references_checked', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION cases_check_references();
