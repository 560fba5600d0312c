//! Reference data for integrations: the teams and staff of the caller's
//! groups, as a client needs them to fill `staff_id`, `assign_team`,
//! `assign_evaluator` and `agent`.

use serde::Serialize;
use utoipa::ToSchema;

use super::models::{StaffRole, Team};
use super::{Store, StoreError, group_clause, with_pool};
use crate::ids::{GroupId, StaffId, TeamId};

/// A staff member as an integration sees it.
#[derive(Clone, Debug, Serialize, ToSchema, sqlx::FromRow)]
#[schema(example = json!({
    "staff_id": "DEMO-A1", "external_id": "crm-DEMO-A1", "name": "Dana Demo", "role": "agent",
    "group_id": "019a8c0e-7d1b-7c3a-9a51-0c4f7de3b2aa",
    "team_id": "019a8c0e-9f10-7b0e-8c6d-51a0e1f2c3d4", "team_name": "Tier 1"
}))]
pub struct StaffEntry {
    /// Internal; orders pagination.
    #[serde(skip)]
    pub id: StaffId,
    /// The system's Staff ID (`staff_id` of a case, `assign_evaluator`).
    pub staff_id: String,
    /// The client system's "External Staff ID" (`external_staff_id`).
    pub external_id: Option<String>,
    /// The exact name (a customer's `agent`).
    pub name: String,
    #[sqlx(try_from = "String")]
    pub role: StaffRole,
    #[schema(value_type = uuid::Uuid)]
    pub group_id: GroupId,
    #[schema(value_type = Option<uuid::Uuid>)]
    pub team_id: Option<TeamId>,
    pub team_name: Option<String>,
}

/// Filters of `GET /v1/staff`.
#[derive(Clone, Debug, Default)]
pub struct StaffQuery {
    pub role: Option<StaffRole>,
    pub team_id: Option<TeamId>,
    /// Matched case-insensitively within the name, Staff ID or External ID.
    pub q: Option<String>,
}

impl Store {
    /// The teams of `groups`, in creation order.
    pub async fn list_teams_of(
        &self,
        groups: &[GroupId],
        after: Option<TeamId>,
        limit: i64,
    ) -> Result<Vec<Team>, StoreError> {
        let sql = format!(
            "SELECT id, group_id, name, created_at FROM teams \
             WHERE ($1 IS NULL OR id > $1) AND {} ORDER BY id LIMIT $2",
            group_clause("group_id", Some(groups), 3)
        );
        Ok(with_pool!(self, |pool| {
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(after)
                .bind(limit);
            for group in groups {
                query = query.bind(*group);
            }
            query.fetch_all(pool).await?
        }))
    }

    /// The active staff of `groups`, by `filter`, in creation order.
    pub async fn reference_staff(
        &self,
        groups: &[GroupId],
        filter: &StaffQuery,
        after: Option<StaffId>,
        limit: i64,
    ) -> Result<Vec<StaffEntry>, StoreError> {
        let pattern = filter.q.as_deref().map(like_pattern);
        let sql = format!(
            "SELECT s.id, s.staff_id, s.external_id, s.name, s.role, s.group_id, s.team_id, t.name AS team_name \
             FROM staff s LEFT JOIN teams t ON t.id = s.team_id \
             WHERE s.active AND ($1 IS NULL OR s.id > $1) AND ($2 IS NULL OR s.role = $2) \
             AND ($3 IS NULL OR s.team_id = $3) \
             AND ($4 IS NULL OR LOWER(s.name) LIKE $4 ESCAPE '\\' OR LOWER(s.staff_id) LIKE $4 ESCAPE '\\' \
                  OR LOWER(COALESCE(s.external_id, '')) LIKE $4 ESCAPE '\\') \
             AND {} ORDER BY s.id LIMIT $5",
            group_clause("s.group_id", Some(groups), 6)
        );
        Ok(with_pool!(self, |pool| {
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(after)
                .bind(filter.role.map(StaffRole::as_str))
                .bind(filter.team_id)
                .bind(pattern.as_deref())
                .bind(limit);
            for group in groups {
                query = query.bind(*group);
            }
            query.fetch_all(pool).await?
        }))
    }
}

/// A `LIKE` pattern finding `q` anywhere, lower-cased, its `%`, `_` and
/// `\` taken literally.
fn like_pattern(q: &str) -> String {
    let mut pattern = String::with_capacity(q.len() + 2);
    pattern.push('%');
    for c in q.trim().to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[cfg(test)]
mod tests {
    use super::like_pattern;

    #[test]
    fn a_query_is_found_anywhere_and_its_wildcards_are_literal() {
        assert_eq!(like_pattern(" Ann "), "%ann%");
        assert_eq!(like_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
    }
}
