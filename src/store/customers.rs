//! Customers: the answer types, batched lookups, read queries and the
//! bulk upsert's façade.
//!
//! A batch is written in the request's transaction. On PostgreSQL
//! (`postgres::customers`) it is COPied into a temporary staging table and
//! moved into `customers` by one `INSERT … SELECT … ON CONFLICT
//! (campaign_id, phone)`; on SQLite (`sqlite::customers`) by prepared
//! multi-row `INSERT … ON CONFLICT`. Either way an update touches only the
//! fields the input carried: a field not sent is NULL in the batch and
//! `COALESCE` keeps the stored value; custom fields are merged in order
//! (`merge_object_sql`, shared with the cases' updates); each checkbox
//! touches only what it names (the `ON CONFLICT` text, shared, is here).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;
use utoipa::ToSchema;

use super::imports::{Checkpoint, write_checkpoint};
use super::writer::{WriterTx, begin, commit};
use super::{Pool, Store, StoreError, now, postgres, sqlite, with_pool};
use crate::ids::{CampaignId, CustomerId, GroupId};

/// Values bound by one SQLite lookup (well under its variable limit).
pub(super) const SQLITE_CHUNK: usize = 2_000;

/// A stored customer.
#[derive(Clone, Debug, Serialize, ToSchema, sqlx::FromRow)]
#[schema(example = json!({
    "id": "019a8c20-1111-7000-8000-000000000010", "campaign_id": "019a8c0f-3333-7000-8000-000000000004",
    "name": "Dana Levi", "phone": "+972502345678", "phone_raw": "050-234-5678", "status": "new",
    "agent_staff_id": "DEMO-A1", "follow_up_at": "2026-11-24T07:30:00Z", "source_created_at": null,
    "do_not_call": false, "contact_allowed_at": null, "fields": {"Plan": "Gold"},
    "created_at": "2026-11-22T09:00:00Z", "updated_at": "2026-11-22T09:00:00Z"
}))]
pub struct Customer {
    #[schema(value_type = uuid::Uuid)]
    pub id: CustomerId,
    #[schema(value_type = uuid::Uuid)]
    pub campaign_id: CampaignId,
    pub name: String,
    /// E.164.
    pub phone: String,
    /// As last sent.
    pub phone_raw: String,
    pub status: String,
    /// The assigned agent's Staff ID.
    pub agent_staff_id: Option<String>,
    pub follow_up_at: Option<DateTime<Utc>>,
    pub source_created_at: Option<DateTime<Utc>>,
    pub do_not_call: bool,
    pub contact_allowed_at: Option<DateTime<Utc>>,
    /// Custom fields.
    #[schema(value_type = Object)]
    pub fields: Json<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub(super) const CUSTOMER_COLUMNS: &str = "id, campaign_id, name, phone, phone_raw, status, agent_staff_id, follow_up_at, \
     source_created_at, do_not_call, contact_allowed_at, fields, created_at, updated_at";

/// A customer to create, or the carried fields of one to update.
#[derive(Clone, Debug)]
pub struct CustomerRow {
    pub id: CustomerId,
    pub name: String,
    pub phone: String,
    pub phone_raw: String,
    pub agent_staff_id: Option<String>,
    pub follow_up_at: Option<DateTime<Utc>>,
    pub source_created_at: Option<DateTime<Utc>>,
    /// `do_not_call` as sent (absent: false on a new customer, kept on a
    /// stored one unless `update_contact_allowed` clears it).
    pub do_not_call: Option<bool>,
    /// JSON object text.
    pub fields: String,
}

impl CustomerRow {
    /// The `do_not_call` written for this row.
    pub(super) fn do_not_call(&self) -> bool {
        self.do_not_call.unwrap_or(false)
    }

    /// The `contact_allowed_at` written for this row: `update_contact_allowed`'s
    /// time, unless the row itself says `do_not_call: true` (its value wins).
    pub(super) fn contact_allowed_at(&self, at: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        at.filter(|_| self.do_not_call != Some(true))
    }
}

/// How a request's batches are written.
#[derive(Clone, Debug)]
pub struct UpsertPolicy {
    pub campaign_id: CampaignId,
    /// The upload's status (new customers; updated ones with `reset_status`).
    pub status: String,
    /// Existing customers are updated in the fields the input carries.
    pub override_existing: bool,
    /// Existing customers take the upload's status (even without
    /// `override_existing`).
    pub reset_status: bool,
    /// Existing customers lose their do-not-call block (even without
    /// `override_existing`).
    pub update_contact_allowed: bool,
    /// `unique_mode: move`: the caller's groups, whose other campaigns lose
    /// the phones written.
    pub move_from_groups: Option<Vec<GroupId>>,
    /// `unique_mode: skip_if_elsewhere`: the caller's groups, whose other
    /// campaigns holding a phone keep a new row for it from being written
    /// (checked by the writer under their locks, not only by the lookups).
    pub skip_if_elsewhere_in: Option<Vec<GroupId>>,
    /// Take the campaign's lock (see [`Store::customer_writer`]). A writer
    /// of one row without `move` needs none: holding one row, it can wait
    /// for another request but never be waited for in a cycle, and it is
    /// not held up behind a long upload into the same campaign.
    pub exclusive: bool,
}

/// Filters of `GET /v1/campaigns/{id}/customers`.
#[derive(Clone, Debug, Default)]
pub struct CustomerFilter {
    /// E.164.
    pub phone: Option<String>,
    pub status: Option<String>,
}

impl Store {
    /// The active agents of a group: (exact name, Staff ID).
    pub async fn active_agents(
        &self,
        group_id: GroupId,
    ) -> Result<Vec<(String, String)>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT name, staff_id FROM staff WHERE group_id = $1 AND role = 'agent' AND active",
            )
            .bind(group_id)
            .fetch_all(pool)
            .await?
        }))
    }

    /// The campaign's customers with these E.164 phones: phone → id.
    pub async fn customers_with_phones(
        &self,
        campaign_id: CampaignId,
        phones: &[&str],
    ) -> Result<HashMap<String, CustomerId>, StoreError> {
        let mut found = HashMap::with_capacity(phones.len());
        match &self.reads {
            Pool::Postgres(pool) => {
                // One index probe per phone whatever the statistics say
                // (see `Store::existing_cases`: a plain join was planned as
                // a scan of the campaign on a table not yet analyzed).
                let rows: Vec<(String, CustomerId)> = sqlx::query_as(
                    "SELECT k.phone, c.id FROM unnest($2::text[]) AS k(phone) \
                     CROSS JOIN LATERAL (SELECT id FROM customers WHERE campaign_id = $1 \
                     AND phone = k.phone OFFSET 0) AS c",
                )
                .bind(campaign_id)
                .bind(phones)
                .fetch_all(pool)
                .await?;
                found.extend(rows);
            }
            Pool::Sqlite(pool) => {
                for chunk in phones.chunks(SQLITE_CHUNK) {
                    let sql = format!(
                        "SELECT phone, id FROM customers WHERE campaign_id = ? AND phone IN ({})",
                        marks(chunk.len())
                    );
                    let mut query =
                        sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(campaign_id);
                    for phone in chunk {
                        query = query.bind(*phone);
                    }
                    let rows: Vec<(String, CustomerId)> = query.fetch_all(pool).await?;
                    found.extend(rows);
                }
            }
        }
        Ok(found)
    }

    /// Which of these phones this campaign does not hold and other
    /// campaigns of `groups` do: one query a batch, on a reader (the
    /// writer checks again under the campaigns' locks).
    pub async fn phones_in_other_campaigns(
        &self,
        campaign_id: CampaignId,
        groups: &[GroupId],
        phones: &[&str],
    ) -> Result<HashSet<String>, StoreError> {
        if groups.is_empty() || phones.is_empty() {
            return Ok(HashSet::new());
        }
        match &self.reads {
            Pool::Postgres(pool) => {
                held_elsewhere_postgres(&mut *pool.acquire().await?, campaign_id, groups, phones)
                    .await
            }
            Pool::Sqlite(pool) => {
                held_elsewhere_sqlite(&mut *pool.acquire().await?, campaign_id, groups, phones)
                    .await
            }
        }
    }

    /// Opens the transaction of one request's upsert.
    ///
    /// On PostgreSQL it first takes the campaign's lock (with `unique_mode:
    /// move` or `skip_if_elsewhere`, the lock of every campaign of the
    /// caller's groups, in one order): upserts into one campaign are written
    /// one after another, so two requests never wait for each other's rows
    /// (a deadlock), and each sees what the one before it committed. SQLite
    /// writes one transaction at a time anyway.
    pub async fn customer_writer(
        &self,
        policy: UpsertPolicy,
    ) -> Result<CustomerWriter, StoreError> {
        let mut tx = begin(self).await?;
        if let (WriterTx::Postgres(pg), true) = (&mut tx, policy.exclusive) {
            let mut campaigns = vec![policy.campaign_id];
            if let Some(groups) = policy
                .move_from_groups
                .as_ref()
                .or(policy.skip_if_elsewhere_in.as_ref())
            {
                let others: Vec<(CampaignId,)> =
                    sqlx::query_as("SELECT id FROM campaigns WHERE group_id = ANY($1)")
                        .bind(groups)
                        .fetch_all(&mut **pg)
                        .await?;
                campaigns.extend(others.into_iter().map(|(id,)| id));
            }
            let mut keys: Vec<i64> = campaigns.iter().map(|id| lock_key(*id)).collect();
            keys.sort_unstable();
            keys.dedup();
            for key in keys {
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(key)
                    .execute(&mut **pg)
                    .await?;
            }
        }
        Ok(CustomerWriter {
            tx,
            policy,
            staging_ready: false,
        })
    }

    /// A campaign's customers in creation order.
    pub async fn list_customers(
        &self,
        campaign_id: CampaignId,
        filter: &CustomerFilter,
        after: Option<CustomerId>,
        limit: i64,
    ) -> Result<Vec<Customer>, StoreError> {
        let sql = format!(
            "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE campaign_id = $1 AND ($2 IS NULL OR id > $2) \
             AND ($3 IS NULL OR phone = $3) AND ($4 IS NULL OR status = $4) ORDER BY id LIMIT $5"
        );
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(campaign_id)
                .bind(after)
                .bind(filter.phone.as_deref())
                .bind(filter.status.as_deref())
                .bind(limit)
                .fetch_all(pool)
                .await?
        }))
    }

    pub async fn get_customer(&self, id: CustomerId) -> Result<Option<Customer>, StoreError> {
        let sql = format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id = $1");
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(id)
                .fetch_optional(pool)
                .await?
        }))
    }
}

/// The advisory lock key of a campaign's writers (its id's last 8 bytes,
/// the random part of a v7 id; a collision only makes two campaigns share a
/// lock).
fn lock_key(campaign_id: CampaignId) -> i64 {
    let bytes = campaign_id.as_uuid().as_bytes();
    let mut tail = [0u8; 8];
    tail.copy_from_slice(&bytes[8..]);
    i64::from_be_bytes(tail)
}

/// SQL merging the JSON object `new` into the JSON object `old`, keeping
/// order: `old`'s keys where they are (those `new` also carries take its
/// value), then `new`'s other keys in the order sent. SQLite's `json_patch`
/// keeps that order itself; PostgreSQL's `jsonb ||` would sort the keys,
/// so the objects are walked as `json` (which keeps the text's order).
pub(super) fn merge_object_sql(postgres: bool, old: &str, new: &str) -> String {
    if !postgres {
        return format!("json_patch({old}, {new})");
    }
    format!(
        "(SELECT COALESCE(json_object_agg(m.key, m.value ORDER BY m.part, m.ord), '{{}}'::json) FROM ( \
         SELECT 0 AS part, o.ord, o.key, COALESCE(n.value, o.value) AS value \
         FROM json_each({old}) WITH ORDINALITY AS o(key, value, ord) \
         LEFT JOIN json_each({new}) AS n(key, value) ON n.key = o.key \
         UNION ALL SELECT 1, n.ord, n.key, n.value \
         FROM json_each({new}) WITH ORDINALITY AS n(key, value, ord) \
         WHERE NOT EXISTS (SELECT 1 FROM json_each({old}) AS o(key, value) WHERE o.key = n.key)) AS m)"
    )
}

pub(super) fn marks(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// What one row's write stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Written {
    pub id: CustomerId,
    /// Created by this write (else an existing customer was updated).
    pub created: bool,
}

/// What one batch's write did.
#[derive(Debug, Default)]
pub struct WriteOutcome {
    /// By phone: what was stored for each row written.
    pub written: HashMap<String, Written>,
    /// `skip_if_elsewhere`: the phones not written because another campaign
    /// of the caller's groups held them when the batch was written.
    pub elsewhere: HashSet<String>,
}

/// An open transaction upserting the customers of one request.
pub struct CustomerWriter {
    tx: WriterTx,
    policy: UpsertPolicy,
    staging_ready: bool,
}

impl CustomerWriter {
    /// The `DO UPDATE SET …` (or `DO NOTHING`) of the upsert, the same text
    /// on both databases. Each ticked option touches only what it names:
    /// `override_existing` the fields the input carries, `reset_status` the
    /// status, `update_contact_allowed` `do_not_call` and
    /// `contact_allowed_at`. `do_not_call_sent`: the rows carry
    /// `do_not_call` (set with `override_existing`; with
    /// `update_contact_allowed` the row's value is written either way).
    fn on_conflict(&self, do_not_call_sent: bool) -> String {
        let policy = &self.policy;
        if !(policy.override_existing || policy.reset_status || policy.update_contact_allowed) {
            return "ON CONFLICT (campaign_id, phone) DO NOTHING".to_string();
        }
        let mut set = Vec::new();
        if policy.override_existing {
            set.extend([
                "name = excluded.name".to_string(),
                "phone_raw = excluded.phone_raw".to_string(),
                "agent_staff_id = COALESCE(excluded.agent_staff_id, customers.agent_staff_id)"
                    .to_string(),
                "follow_up_at = COALESCE(excluded.follow_up_at, customers.follow_up_at)".to_string(),
                "source_created_at = COALESCE(excluded.source_created_at, customers.source_created_at)"
                    .to_string(),
                format!(
                    "fields = {}",
                    merge_object_sql(
                        matches!(self.tx, WriterTx::Postgres(_)),
                        "customers.fields",
                        "excluded.fields"
                    )
                ),
            ]);
        }
        if policy.reset_status {
            set.push("status = excluded.status".to_string());
        }
        if policy.update_contact_allowed {
            // The row's `do_not_call` (false unless it sent true), and a
            // `contact_allowed_at` unless it sent true.
            set.push("do_not_call = excluded.do_not_call".to_string());
            set.push(
                "contact_allowed_at = COALESCE(excluded.contact_allowed_at, customers.contact_allowed_at)"
                    .to_string(),
            );
        } else if policy.override_existing && do_not_call_sent {
            set.push("do_not_call = excluded.do_not_call".to_string());
        }
        set.push("updated_at = excluded.updated_at".to_string());
        format!(
            "ON CONFLICT (campaign_id, phone) DO UPDATE SET {}",
            set.join(", ")
        )
    }

    /// Writes one batch: `rows` are created or update their customer. With
    /// `unique_mode: move`, the other campaigns of the caller's groups lose
    /// these phones, as they hold them now (under the campaigns' locks, not
    /// as the batch's lookups saw them).
    /// Answers what was stored for each row, by phone: the customer's id
    /// and whether it was created. A row that met a customer a concurrent
    /// request wrote first is answered as what happened to it (updated,
    /// with that customer's id; or, without `override_existing`, not in
    /// the answer: nothing was written for it).
    pub async fn write(&mut self, rows: &[CustomerRow]) -> Result<WriteOutcome, StoreError> {
        let elsewhere = match self.policy.skip_if_elsewhere_in.clone() {
            Some(groups) => self.held_elsewhere(&groups, rows).await?,
            None => HashSet::new(),
        };
        let kept: Cow<'_, [CustomerRow]> = if elsewhere.is_empty() {
            Cow::Borrowed(rows)
        } else {
            Cow::Owned(
                rows.iter()
                    .filter(|r| !elsewhere.contains(&r.phone))
                    .cloned()
                    .collect(),
            )
        };
        let rows = &*kept;
        let moved: Vec<&str> = match self.policy.move_from_groups {
            Some(_) => rows.iter().map(|r| r.phone.as_str()).collect(),
            None => Vec::new(),
        };
        let at = now();
        let contact_allowed_at = self.policy.update_contact_allowed.then_some(at);
        // Rows that carry `do_not_call` and rows that do not are written by
        // two statements (their `DO UPDATE SET` differ); a batch of one kind
        // (the usual case) as it is.
        let sends = |r: &CustomerRow| r.do_not_call.is_some();
        let parts: Vec<(Cow<'_, [CustomerRow]>, bool)> =
            if rows.iter().all(sends) || !rows.iter().any(sends) {
                vec![(Cow::Borrowed(rows), rows.first().is_some_and(sends))]
            } else {
                let (sent, not_sent): (Vec<CustomerRow>, Vec<CustomerRow>) =
                    rows.iter().cloned().partition(sends);
                vec![(Cow::Owned(not_sent), false), (Cow::Owned(sent), true)]
            };
        let mut stored = Vec::with_capacity(rows.len());
        for (i, (part, do_not_call_sent)) in parts.iter().enumerate() {
            let on_conflict = self.on_conflict(*do_not_call_sent);
            let batch = UpsertBatch {
                policy: &self.policy,
                rows: part,
                // The other campaigns lose the phones once, with the first part.
                moved: if i == 0 { &moved } else { &[] },
                at,
                contact_allowed_at,
                on_conflict: &on_conflict,
            };
            stored.extend(match &mut self.tx {
                WriterTx::Postgres(tx) => {
                    postgres::customers::write(tx, &mut self.staging_ready, &batch).await?
                }
                WriterTx::Sqlite(tx) => sqlite::customers::write(tx, &batch).await?,
            });
        }
        // A row is new when it was created by this statement: a stored
        // customer keeps its earlier `created_at`.
        let written = stored
            .into_iter()
            .map(|(id, phone, created_at)| {
                (
                    phone,
                    Written {
                        id,
                        created: created_at == at,
                    },
                )
            })
            .collect();
        Ok(WriteOutcome { written, elsewhere })
    }

    /// The phones of `rows` that this campaign does not hold and another
    /// campaign of `groups` does, as they are now: read in the writer's
    /// transaction, after the campaigns' locks (PostgreSQL) or the write
    /// lock (SQLite), so that a concurrent upload's new customers count.
    async fn held_elsewhere(
        &mut self,
        groups: &[GroupId],
        rows: &[CustomerRow],
    ) -> Result<HashSet<String>, StoreError> {
        if groups.is_empty() || rows.is_empty() {
            return Ok(HashSet::new());
        }
        let campaign_id = self.policy.campaign_id;
        let phones: Vec<&str> = rows.iter().map(|r| r.phone.as_str()).collect();
        match &mut self.tx {
            WriterTx::Postgres(tx) => {
                held_elsewhere_postgres(tx, campaign_id, groups, &phones).await
            }
            WriterTx::Sqlite(tx) => held_elsewhere_sqlite(tx, campaign_id, groups, &phones).await,
        }
    }

    /// Writes an import job's checkpoint in this transaction (refused when
    /// the job is no longer the writer's to run).
    pub async fn checkpoint(&mut self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        write_checkpoint(&mut self.tx, checkpoint).await
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        commit(self.tx).await
    }
}

/// The phones of `phones` that `campaign_id` does not hold and another
/// campaign of `groups` does (PostgreSQL: probed per phone, stopping at the
/// first other campaign).
async fn held_elsewhere_postgres(
    conn: &mut sqlx::PgConnection,
    campaign_id: CampaignId,
    groups: &[GroupId],
    phones: &[&str],
) -> Result<HashSet<String>, StoreError> {
    let held: Vec<(String,)> = sqlx::query_as(
        "SELECT k.phone FROM unnest($1::text[]) AS k(phone) \
         WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.campaign_id = $2 AND c.phone = k.phone) \
         AND EXISTS (SELECT 1 FROM customers c JOIN campaigns m ON m.id = c.campaign_id \
         WHERE c.phone = k.phone AND c.campaign_id <> $2 AND m.group_id = ANY($3))",
    )
    .bind(phones)
    .bind(campaign_id)
    .bind(groups)
    .fetch_all(conn)
    .await?;
    Ok(held.into_iter().map(|(p,)| p).collect())
}

/// [`held_elsewhere_postgres`] on SQLite, a chunk of phones a query.
async fn held_elsewhere_sqlite(
    conn: &mut sqlx::SqliteConnection,
    campaign_id: CampaignId,
    groups: &[GroupId],
    phones: &[&str],
) -> Result<HashSet<String>, StoreError> {
    let mut found = HashSet::new();
    for chunk in phones.chunks(SQLITE_CHUNK) {
        let sql = format!(
            "SELECT DISTINCT c.phone FROM customers c JOIN campaigns m ON m.id = c.campaign_id \
             WHERE c.phone IN ({}) AND c.campaign_id <> ? AND m.group_id IN ({}) \
             AND NOT EXISTS (SELECT 1 FROM customers h WHERE h.campaign_id = ? AND h.phone = c.phone)",
            marks(chunk.len()),
            marks(groups.len())
        );
        let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()));
        for phone in chunk {
            query = query.bind(*phone);
        }
        query = query.bind(campaign_id);
        for group in groups {
            query = query.bind(*group);
        }
        query = query.bind(campaign_id);
        let held: Vec<(String,)> = query.fetch_all(&mut *conn).await?;
        found.extend(held.into_iter().map(|(p,)| p));
    }
    Ok(found)
}

/// One batch of an upsert, as each backend's arm writes it.
#[derive(Clone, Copy)]
pub(super) struct UpsertBatch<'a> {
    pub(super) policy: &'a UpsertPolicy,
    pub(super) rows: &'a [CustomerRow],
    /// `unique_mode: move`: the phones the other campaigns lose (else empty).
    pub(super) moved: &'a [&'a str],
    pub(super) at: DateTime<Utc>,
    pub(super) contact_allowed_at: Option<DateTime<Utc>>,
    /// [`CustomerWriter::on_conflict`].
    pub(super) on_conflict: &'a str,
}
