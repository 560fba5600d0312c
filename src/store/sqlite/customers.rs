//! The SQLite arm of the customers' upsert: prepared multi-row `INSERT …
//! ON CONFLICT (campaign_id, phone)`.

use chrono::{DateTime, Utc};

use crate::ids::CustomerId;
use crate::store::StoreError;
use crate::store::customers::{CUSTOMER_COLUMNS, SQLITE_CHUNK, UpsertBatch, marks};

/// Rows per multi-row upsert on SQLite (14 columns each).
const SQLITE_UPSERT_ROWS: usize = 500;

/// Writes one batch in `tx` (see [`CustomerWriter::write`]): the rows
/// stored, as (id, phone, created_at).
///
/// [`CustomerWriter::write`]: crate::store::customers::CustomerWriter::write
pub(crate) async fn write(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    batch: &UpsertBatch<'_>,
) -> Result<Vec<(CustomerId, String, DateTime<Utc>)>, StoreError> {
    let UpsertBatch {
        policy,
        rows,
        moved,
        at,
        contact_allowed_at,
        on_conflict,
    } = *batch;
    let mut stored: Vec<(CustomerId, String, DateTime<Utc>)> = Vec::with_capacity(rows.len());
    if let (Some(groups), false) = (&policy.move_from_groups, moved.is_empty()) {
        for chunk in moved.chunks(SQLITE_CHUNK) {
            let sql = format!(
                "DELETE FROM customers WHERE phone IN ({}) AND campaign_id <> ? \
                 AND campaign_id IN (SELECT id FROM campaigns WHERE group_id IN ({}))",
                marks(chunk.len()),
                marks(groups.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
            for phone in chunk {
                query = query.bind(*phone);
            }
            query = query.bind(policy.campaign_id);
            for group in groups {
                query = query.bind(*group);
            }
            query.execute(&mut **tx).await?;
        }
    }
    for chunk in rows.chunks(SQLITE_UPSERT_ROWS) {
        let values = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()];
        let sql = format!(
            "INSERT INTO customers ({CUSTOMER_COLUMNS}) VALUES {} {on_conflict} \
             RETURNING id, phone, created_at",
            values.join(", ")
        );
        let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()));
        for row in chunk {
            query = query
                .bind(row.id)
                .bind(policy.campaign_id)
                .bind(&row.name)
                .bind(&row.phone)
                .bind(&row.phone_raw)
                .bind(&policy.status)
                .bind(&row.agent_staff_id)
                .bind(row.follow_up_at)
                .bind(row.source_created_at)
                .bind(row.do_not_call())
                .bind(row.contact_allowed_at(contact_allowed_at))
                .bind(&row.fields)
                .bind(at)
                .bind(at);
        }
        let chunk_stored: Vec<(CustomerId, String, DateTime<Utc>)> =
            query.fetch_all(&mut **tx).await?;
        stored.extend(chunk_stored);
    }
    Ok(stored)
}
