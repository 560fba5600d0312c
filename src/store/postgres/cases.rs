//! The PostgreSQL arm of the case writer: new cases by `COPY … FROM STDIN
//! (FORMAT binary)` into `cases` (one COPY kept open across batches that
//! bring only new cases), updated ones by a COPY into a temporary staging
//! table joined by one `UPDATE`.

use super::copy::CopyRows;
use crate::store::StoreError;
use crate::store::cases::{CaseBatch, CaseRow, Writer};
use crate::store::customers::merge_object_sql;

impl Writer {
    /// PostgreSQL, one transaction: a `COPY` into `cases` is kept open
    /// across batches that bring only new cases; a batch with updates
    /// closes it (the updates go through a staging table) and the next new
    /// cases open another.
    pub(in crate::store) async fn stream_postgres(
        &mut self,
        tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    ) -> Result<(), StoreError> {
        let mut staging_ready = false;
        let mut next = self.batches.recv().await;
        while let Some(batch) = next.take() {
            if !batch.updates.is_empty() {
                self.update_postgres(tx, &mut staging_ready, &batch.updates)
                    .await?;
            }
            if batch.inserts.is_empty() {
                self.acknowledge();
                next = self.batches.recv().await;
                continue;
            }
            let mut copy =
                CopyRows::open(tx, "cases", self.integration_id, self.list_id, self.at).await?;
            copy.send(&batch.inserts).await?;
            self.written.send_modify(|n| *n += 1);
            next = loop {
                match self.batches.recv().await {
                    Some(batch) if batch.updates.is_empty() => {
                        copy.send(&batch.inserts).await?;
                        self.written.send_modify(|n| *n += 1);
                    }
                    other => break other,
                }
            };
            copy.finish().await?;
        }
        Ok(())
    }

    /// Writes one batch into `tx`, statements of its own.
    pub(in crate::store) async fn write_postgres(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
        batch: &CaseBatch,
    ) -> Result<(), StoreError> {
        let (integration_id, list_id, at) = (self.integration_id, self.list_id, self.at);
        let (inserts, updates) = (&batch.inserts, &batch.updates);
        if !inserts.is_empty() {
            let mut copy = CopyRows::open(tx, "cases", integration_id, list_id, at).await?;
            copy.send(inserts).await?;
            copy.finish().await?;
        }
        if !updates.is_empty() {
            self.update_postgres(tx, &mut false, updates).await?;
        }
        Ok(())
    }

    /// Stored cases take the values of `rows`: COPY into a staging table,
    /// then one `UPDATE … FROM` it.
    async fn update_postgres(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
        staging_ready: &mut bool,
        rows: &[CaseRow],
    ) -> Result<(), StoreError> {
        // Dropped at commit; a transaction that writes several batches of
        // updates empties it between them.
        if *staging_ready {
            sqlx::query("TRUNCATE cases_stage")
                .execute(&mut **tx)
                .await?;
        } else {
            sqlx::query(
                "CREATE TEMP TABLE cases_stage (LIKE cases INCLUDING DEFAULTS) ON COMMIT DROP",
            )
            .execute(&mut **tx)
            .await?;
            *staging_ready = true;
        }
        let mut copy = CopyRows::open(
            tx,
            "cases_stage",
            self.integration_id,
            self.list_id,
            self.at,
        )
        .await?;
        copy.send(rows).await?;
        copy.finish().await?;
        // Only what the input carried: a value not sent is NULL (a status
        // ""), and `data` is merged into the stored columns in order.
        let sql = format!(
            "UPDATE cases c SET staff_id = s.staff_id, external_staff_id = s.external_staff_id, \
             list_id = COALESCE(s.list_id, c.list_id), group_id = s.group_id, \
             channel = COALESCE(s.channel, c.channel), status = COALESCE(NULLIF(s.status, ''), c.status), \
             priority = COALESCE(s.priority, c.priority), category = COALESCE(s.category, c.category), \
             occurred_at = COALESCE(s.occurred_at, c.occurred_at), data = {}, updated_at = s.updated_at \
             FROM cases_stage s WHERE c.id = s.id",
            merge_object_sql(true, "c.data", "s.data")
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}
