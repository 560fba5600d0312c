//! Integrations, their groups and their tokens. Same SQL on both backends.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::models::{AdminToken, CsvLimits, Integration, IntegrationFields, TokenInfo};
use super::{Store, StoreError, now, with_pool};
use crate::ids::{GroupId, IntegrationId, TokenId};
use crate::settings::RatePolicy;

/// What an integration may do right now.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct IntegrationAccess {
    pub enabled: bool,
    pub groups: Vec<GroupId>,
    /// Its own rate limit; `None`: the default of the settings.
    #[serde(default)]
    pub rate_limit: Option<crate::settings::RatePolicy>,
}

#[derive(sqlx::FromRow)]
struct IntegrationRow {
    id: IntegrationId,
    label: String,
    description: String,
    enabled: bool,
    csv_max_records: i32,
    csv_max_columns: i32,
    csv_max_cell_chars: i32,
    rate_per_second: Option<f64>,
    rate_burst: Option<i32>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// The rate limit stored in the two columns (both set, or neither).
fn rate_limit(per_second: Option<f64>, burst: Option<i32>) -> Option<RatePolicy> {
    Some(RatePolicy {
        per_second: per_second?,
        burst: burst?.max(1) as u32,
    })
}

impl IntegrationRow {
    fn with_groups(self, groups: Vec<GroupId>) -> Integration {
        Integration {
            id: self.id,
            label: self.label,
            description: self.description,
            groups,
            enabled: self.enabled,
            csv_limits: CsvLimits {
                max_records: self.csv_max_records.max(0) as u32,
                max_columns: self.csv_max_columns.max(0) as u32,
                max_cell_chars: self.csv_max_cell_chars.max(0) as u32,
            },
            rate_limit: rate_limit(self.rate_per_second, self.rate_burst),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    jti: TokenId,
    integration_id: IntegrationId,
    scopes: String,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl From<TokenRow> for TokenInfo {
    fn from(row: TokenRow) -> Self {
        TokenInfo {
            jti: row.jti,
            integration_id: row.integration_id,
            scopes: row
                .scopes
                .split_ascii_whitespace()
                .map(str::to_string)
                .collect(),
            created_at: row.created_at,
            expires_at: row.expires_at,
            last_used_at: row.last_used_at,
            revoked_at: row.revoked_at,
        }
    }
}

/// Links an integration to its groups in the transaction `$tx` (either backend).
macro_rules! link_groups {
    ($tx:expr, $id:expr, $groups:expr) => {
        for group in $groups {
            sqlx::query(
                "INSERT INTO integration_groups (integration_id, group_id) VALUES ($1, $2)",
            )
            .bind($id)
            .bind(group)
            .execute(&mut *$tx)
            .await?;
        }
    };
}

const INTEGRATION_COLUMNS: &str = "id, label, description, enabled, csv_max_records, csv_max_columns, \
     csv_max_cell_chars, rate_per_second, rate_burst, created_at, updated_at";

const TOKEN_COLUMNS: &str =
    "jti, integration_id, scopes, created_at, expires_at, last_used_at, revoked_at";

impl Store {
    pub async fn create_integration(
        &self,
        fields: &IntegrationFields,
    ) -> Result<Integration, StoreError> {
        let id = IntegrationId::new();
        let at = now();
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO integrations (id, label, description, enabled, csv_max_records, csv_max_columns, \
                 csv_max_cell_chars, rate_per_second, rate_burst, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
            )
            .bind(id)
            .bind(&fields.label)
            .bind(&fields.description)
            .bind(fields.enabled)
            .bind(fields.csv_limits.max_records as i32)
            .bind(fields.csv_limits.max_columns as i32)
            .bind(fields.csv_limits.max_cell_chars as i32)
            .bind(fields.rate_limit.map(|r| r.per_second))
            .bind(fields.rate_limit.map(|r| r.burst as i32))
            .bind(at)
            .execute(&mut *tx)
            .await?;
            link_groups!(tx, id, &fields.groups);
            tx.commit().await?;
        });
        Ok(Integration {
            id,
            label: fields.label.clone(),
            description: fields.description.clone(),
            groups: fields.groups.clone(),
            enabled: fields.enabled,
            csv_limits: fields.csv_limits,
            rate_limit: fields.rate_limit,
            created_at: at,
            updated_at: at,
        })
    }

    /// A live (not deleted) integration.
    pub async fn get_integration(
        &self,
        id: IntegrationId,
    ) -> Result<Option<Integration>, StoreError> {
        let sql = format!(
            "SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE id = $1 AND deleted_at IS NULL"
        );
        let row: Option<IntegrationRow> = with_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        match row {
            None => Ok(None),
            Some(row) => {
                let groups = self.integration_groups(id).await?;
                Ok(Some(row.with_groups(groups)))
            }
        }
    }

    async fn integration_groups(&self, id: IntegrationId) -> Result<Vec<GroupId>, StoreError> {
        let rows: Vec<(GroupId,)> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT group_id FROM integration_groups WHERE integration_id = $1 ORDER BY group_id")
                .bind(id)
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(|(g,)| g).collect())
    }

    pub async fn list_integrations(
        &self,
        after: Option<IntegrationId>,
        limit: i64,
    ) -> Result<Vec<Integration>, StoreError> {
        let sql = format!(
            "SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE deleted_at IS NULL AND ($1 IS NULL OR id > $1) \
             ORDER BY id LIMIT $2"
        );
        let rows: Vec<IntegrationRow> = with_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(after)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        let (Some(first), Some(last)) = (rows.first().map(|r| r.id), rows.last().map(|r| r.id))
        else {
            return Ok(Vec::new());
        };
        // The page is a contiguous id range: one query fetches its groups.
        let links: Vec<(IntegrationId, GroupId)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT integration_id, group_id FROM integration_groups \
                 WHERE integration_id >= $1 AND integration_id <= $2 ORDER BY integration_id, group_id",
            )
            .bind(first)
            .bind(last)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|row| {
                let groups = links
                    .iter()
                    .filter(|(i, _)| *i == row.id)
                    .map(|(_, g)| *g)
                    .collect();
                row.with_groups(groups)
            })
            .collect())
    }

    /// Replaces every field and the group set, in one transaction.
    pub async fn update_integration(
        &self,
        id: IntegrationId,
        fields: &IntegrationFields,
    ) -> Result<Option<Integration>, StoreError> {
        let at = now();
        let updated = with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let updated = sqlx::query(
                "UPDATE integrations SET label = $2, description = $3, enabled = $4, csv_max_records = $5, \
                 csv_max_columns = $6, csv_max_cell_chars = $7, rate_per_second = $8, rate_burst = $9, \
                 updated_at = $10 WHERE id = $1 AND deleted_at IS NULL",
            )
            .bind(id)
            .bind(&fields.label)
            .bind(&fields.description)
            .bind(fields.enabled)
            .bind(fields.csv_limits.max_records as i32)
            .bind(fields.csv_limits.max_columns as i32)
            .bind(fields.csv_limits.max_cell_chars as i32)
            .bind(fields.rate_limit.map(|r| r.per_second))
            .bind(fields.rate_limit.map(|r| r.burst as i32))
            .bind(at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if updated > 0 {
                sqlx::query("DELETE FROM integration_groups WHERE integration_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                link_groups!(tx, id, &fields.groups);
            }
            tx.commit().await?;
            updated
        });
        if updated == 0 {
            return Ok(None);
        }
        self.get_integration(id).await
    }

    /// Ends an integration: marked deleted and disabled, its tokens revoked
    /// (their jtis are answered), its data kept. `None`: no such integration.
    pub async fn delete_integration(
        &self,
        id: IntegrationId,
    ) -> Result<Option<Vec<TokenId>>, StoreError> {
        let at = now();
        Ok(with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let deleted = sqlx::query(
                "UPDATE integrations SET deleted_at = $2, enabled = FALSE, updated_at = $2 \
                 WHERE id = $1 AND deleted_at IS NULL",
            )
            .bind(id)
            .bind(at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if deleted == 0 {
                None
            } else {
                let revoked: Vec<(TokenId,)> = sqlx::query_as(
                    "UPDATE tokens SET revoked_at = $2 WHERE integration_id = $1 AND revoked_at IS NULL RETURNING jti",
                )
                .bind(id)
                .bind(at)
                .fetch_all(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM integration_groups WHERE integration_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Some(revoked.into_iter().map(|(jti,)| jti).collect())
            }
        }))
    }

    /// What a token of this integration may do; `None` if it is gone.
    pub async fn integration_access(
        &self,
        id: IntegrationId,
    ) -> Result<Option<IntegrationAccess>, StoreError> {
        let enabled: Option<(bool, Option<f64>, Option<i32>)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT enabled, rate_per_second, rate_burst FROM integrations \
                 WHERE id = $1 AND deleted_at IS NULL",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        match enabled {
            None => Ok(None),
            Some((enabled, per_second, burst)) => Ok(Some(IntegrationAccess {
                enabled,
                groups: self.integration_groups(id).await?,
                rate_limit: rate_limit(per_second, burst),
            })),
        }
    }

    // ---- tokens ---------------------------------------------------------------

    pub async fn insert_token(&self, token: &TokenInfo) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO tokens (jti, integration_id, scopes, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(token.jti)
            .bind(token.integration_id)
            .bind(token.scopes.join(" "))
            .bind(token.created_at)
            .bind(token.expires_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    pub async fn list_tokens(
        &self,
        integration_id: IntegrationId,
        after: Option<TokenId>,
        limit: i64,
    ) -> Result<Vec<TokenInfo>, StoreError> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE integration_id = $1 AND ($2 IS NULL OR jti > $2) \
             ORDER BY jti LIMIT $3"
        );
        let rows: Vec<TokenRow> = with_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(integration_id)
                .bind(after)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(TokenInfo::from).collect())
    }

    /// Revokes one token of the integration (idempotent: a revoked token
    /// keeps its first `revoked_at`). `None`: no such token.
    pub async fn revoke_token(
        &self,
        integration_id: IntegrationId,
        jti: TokenId,
    ) -> Result<Option<TokenInfo>, StoreError> {
        let sql = format!(
            "UPDATE tokens SET revoked_at = COALESCE(revoked_at, $3) WHERE integration_id = $1 AND jti = $2 \
             RETURNING {TOKEN_COLUMNS}"
        );
        let row: Option<TokenRow> = with_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(integration_id)
                .bind(jti)
                .bind(now())
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(TokenInfo::from))
    }

    /// Revoked tokens that have not expired yet.
    pub async fn revoked_jtis(&self) -> Result<Vec<TokenId>, StoreError> {
        let rows: Vec<(TokenId,)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT jti FROM tokens WHERE revoked_at IS NOT NULL AND expires_at > $1",
            )
            .bind(now())
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(|(jti,)| jti).collect())
    }

    pub async fn is_token_revoked(&self, jti: TokenId) -> Result<bool, StoreError> {
        let row: Option<(Option<DateTime<Utc>>,)> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT revoked_at FROM tokens WHERE jti = $1")
                .bind(jti)
                .fetch_optional(pool)
                .await?
        });
        Ok(matches!(row, Some((Some(_),))))
    }

    pub async fn touch_token(&self, jti: TokenId, at: DateTime<Utc>) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("UPDATE tokens SET last_used_at = $2 WHERE jti = $1")
                .bind(jti)
                .bind(at)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    // ---- admin tokens (rows of `tokens` without an integration) ---------------

    pub async fn insert_admin_token(
        &self,
        jti: TokenId,
        created_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO tokens (jti, integration_id, scopes, created_at, expires_at) \
                 VALUES ($1, NULL, 'admin', $2, $3)",
            )
            .bind(jti)
            .bind(created_at)
            .bind(expires_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Whether `jti` is a recorded admin token, neither revoked nor expired.
    pub async fn admin_token_live(&self, jti: TokenId) -> Result<bool, StoreError> {
        let row: Option<(i32,)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT 1 FROM tokens WHERE jti = $1 AND integration_id IS NULL \
                 AND revoked_at IS NULL AND expires_at > $2",
            )
            .bind(jti)
            .bind(now())
            .fetch_optional(pool)
            .await?
        });
        Ok(row.is_some())
    }

    pub async fn list_admin_tokens(
        &self,
        after: Option<TokenId>,
        limit: i64,
    ) -> Result<Vec<AdminToken>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT jti, created_at, expires_at, revoked_at FROM tokens \
                 WHERE integration_id IS NULL AND ($1 IS NULL OR jti > $1) ORDER BY jti LIMIT $2",
            )
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?
        }))
    }

    /// Revokes an admin token (idempotent). `None`: no such admin token.
    pub async fn revoke_admin_token(&self, jti: TokenId) -> Result<Option<AdminToken>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "UPDATE tokens SET revoked_at = COALESCE(revoked_at, $2) \
                 WHERE jti = $1 AND integration_id IS NULL \
                 RETURNING jti, created_at, expires_at, revoked_at",
            )
            .bind(jti)
            .bind(now())
            .fetch_optional(pool)
            .await?
        }))
    }
}
