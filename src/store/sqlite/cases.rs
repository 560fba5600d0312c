//! The SQLite arm of the case writer: new cases by prepared multi-row
//! `INSERT`s, updated ones by one `UPDATE` each.

use crate::store::StoreError;
use crate::store::cases::{CaseBatch, Writer, bind_case_rows, insert_cases_sql};
use crate::store::customers::merge_object_sql;

/// Rows per multi-row INSERT on SQLite (15 columns each: under 32,766 variables).
const SQLITE_INSERT_ROWS: usize = 500;

impl Writer {
    /// Writes one batch into `tx`, statements of its own.
    pub(in crate::store) async fn write_sqlite(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
        batch: &CaseBatch,
    ) -> Result<(), StoreError> {
        let (integration_id, list_id, at) = (self.integration_id, self.list_id, self.at);
        let (inserts, updates) = (&batch.inserts, &batch.updates);
        for chunk in inserts.chunks(SQLITE_INSERT_ROWS) {
            // Full chunks share one SQL text, so one prepared statement.
            let sql = insert_cases_sql(false, chunk.len());
            let query = bind_case_rows!(
                sqlx::query(sqlx::AssertSqlSafe(sql.as_str())),
                chunk.iter().map(|row| (row, integration_id)),
                list_id,
                at
            );
            query.execute(&mut **tx).await?;
        }
        // Only what the input carried: a value not sent is NULL (a status
        // ""), and `data` is merged into the stored columns in order.
        let update = format!(
            "UPDATE cases SET staff_id = $2, external_staff_id = $3, list_id = COALESCE($4, list_id), \
             group_id = $5, channel = COALESCE($6, channel), status = COALESCE(NULLIF($7, ''), status), \
             priority = COALESCE($8, priority), category = COALESCE($9, category), \
             occurred_at = COALESCE($10, occurred_at), data = {}, updated_at = $12 WHERE id = $1",
            merge_object_sql(false, "data", "$11")
        );
        for row in updates {
            sqlx::query(sqlx::AssertSqlSafe(update.as_str()))
                .bind(row.id)
                .bind(&row.staff_id)
                .bind(&row.external_staff_id)
                .bind(list_id)
                .bind(row.group_id)
                .bind(row.channel)
                .bind(row.status)
                .bind(row.priority)
                .bind(&row.category)
                .bind(row.occurred_at)
                .bind(&row.data)
                .bind(at)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}
