//! The PostgreSQL arm of the customers' upsert: a batch is COPied (text
//! format) into a temporary staging table and moved into `customers` by one
//! `INSERT … SELECT … ON CONFLICT (campaign_id, phone)`, in phone order.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::copy::{COPY_CHUNK_BYTES, copy_row, copy_time};
use crate::ids::CustomerId;
use crate::store::StoreError;
use crate::store::customers::{CUSTOMER_COLUMNS, CustomerRow, UpsertBatch, UpsertPolicy};

/// Writes one batch in `tx` (see [`CustomerWriter::write`]): the rows
/// stored, as (id, phone, created_at). `staging_ready`: the staging table
/// was created by an earlier batch of the transaction.
///
/// [`CustomerWriter::write`]: crate::store::customers::CustomerWriter::write
pub(crate) async fn write(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    staging_ready: &mut bool,
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
    let mut stored = Vec::new();
    if let (Some(groups), false) = (&policy.move_from_groups, moved.is_empty()) {
        sqlx::query(
            "DELETE FROM customers WHERE phone = ANY($1) AND campaign_id <> $2 \
             AND campaign_id IN (SELECT id FROM campaigns WHERE group_id = ANY($3))",
        )
        .bind(moved)
        .bind(policy.campaign_id)
        .bind(groups)
        .execute(&mut **tx)
        .await?;
    }
    if !rows.is_empty() {
        if *staging_ready {
            sqlx::query("TRUNCATE customers_stage")
                .execute(&mut **tx)
                .await?;
        } else {
            sqlx::query(
                "CREATE TEMP TABLE customers_stage (LIKE customers INCLUDING DEFAULTS) ON COMMIT DROP",
            )
            .execute(&mut **tx)
            .await?;
            *staging_ready = true;
        }
        copy_customers(tx, policy, rows, at, contact_allowed_at).await?;
        // In phone order: rows are locked in one order.
        let sql = format!(
            "INSERT INTO customers ({CUSTOMER_COLUMNS}) SELECT {CUSTOMER_COLUMNS} FROM customers_stage \
             ORDER BY phone {on_conflict} RETURNING id, phone, created_at"
        );
        stored = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut **tx)
            .await?;
    }
    Ok(stored)
}

async fn copy_customers(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    policy: &UpsertPolicy,
    rows: &[CustomerRow],
    at: DateTime<Utc>,
    contact_allowed_at: Option<DateTime<Utc>>,
) -> Result<(), StoreError> {
    let statement = format!("COPY customers_stage ({CUSTOMER_COLUMNS}) FROM STDIN");
    let mut copy = tx.copy_in_raw(&statement).await?;
    let campaign = policy.campaign_id.to_string();
    let mut at_text = String::new();
    let at: &str = copy_time(at, &mut at_text);
    let mut contact_text = String::new();
    let contact = contact_allowed_at.map(|t| copy_time(t, &mut contact_text).to_string());
    let (mut follow_up_text, mut source_created_text) = (String::new(), String::new());
    let mut buffer = Vec::with_capacity(COPY_CHUNK_BYTES + 64 * 1024);
    let mut id_text = Uuid::encode_buffer();
    for row in rows {
        let id: &str = row.id.as_uuid().hyphenated().encode_lower(&mut id_text);
        let follow_up = row.follow_up_at.map(|t| copy_time(t, &mut follow_up_text));
        let source_created = row
            .source_created_at
            .map(|t| copy_time(t, &mut source_created_text));
        let fields: [Option<&str>; 14] = [
            Some(id),
            Some(&campaign),
            Some(&row.name),
            Some(&row.phone),
            Some(&row.phone_raw),
            Some(&policy.status),
            row.agent_staff_id.as_deref(),
            follow_up,
            source_created,
            Some(if row.do_not_call() { "t" } else { "f" }),
            row.contact_allowed_at(contact_allowed_at)
                .and(contact.as_deref()),
            Some(&row.fields),
            Some(at),
            Some(at),
        ];
        copy_row(&mut buffer, &fields);
        if buffer.len() >= COPY_CHUNK_BYTES {
            copy.send(std::mem::take(&mut buffer)).await?;
            buffer.reserve(COPY_CHUNK_BYTES + 64 * 1024);
        }
    }
    if !buffer.is_empty() {
        copy.send(buffer).await?;
    }
    copy.finish().await?;
    Ok(())
}
