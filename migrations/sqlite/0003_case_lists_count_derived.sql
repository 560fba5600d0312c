-- A list's case count is read from its cases (cases move between lists when
-- an upload updates them), not kept in a column that could drift.
ALTER TABLE case_lists DROP COLUMN case_count;
