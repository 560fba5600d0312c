//! Admin-managed entities: groups, teams, staff, categories, campaigns.
//! Every query here reads the same on SQLite and PostgreSQL.

use sqlx::types::Json;

use super::models::{Campaign, CampaignFields, Category, Group, NewStaff, Staff, Team};
use super::{Store, StoreError, group_clause, now, with_pool};
use crate::ids::{CampaignId, CategoryId, GroupId, StaffId, TeamId};

/// The staff columns, in [`Staff`]'s order (a literal, for `concat!`).
macro_rules! staff_columns {
    () => {
        " id, staff_id, external_id, name, role, group_id, team_id, active, created_at, updated_at "
    };
}

impl Store {
    // ---- groups -----------------------------------------------------------

    pub async fn create_group(&self, name: &str) -> Result<Group, StoreError> {
        let group = Group {
            id: GroupId::new(),
            name: name.to_string(),
            created_at: now(),
        };
        with_pool!(self, |pool| {
            sqlx::query("INSERT INTO groups (id, name, created_at) VALUES ($1, $2, $3)")
                .bind(group.id)
                .bind(&group.name)
                .bind(group.created_at)
                .execute(pool)
                .await?;
        });
        Ok(group)
    }

    pub async fn list_groups(
        &self,
        after: Option<GroupId>,
        limit: i64,
    ) -> Result<Vec<Group>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, name, created_at FROM groups WHERE ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2",
            )
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?
        }))
    }

    pub async fn get_group(&self, id: GroupId) -> Result<Option<Group>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as("SELECT id, name, created_at FROM groups WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        }))
    }

    pub async fn rename_group(&self, id: GroupId, name: &str) -> Result<Option<Group>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "UPDATE groups SET name = $2 WHERE id = $1 RETURNING id, name, created_at",
            )
            .bind(id)
            .bind(name)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// `Ok(false)`: no such group. A group still referenced is a
    /// [`StoreError::Reference`].
    pub async fn delete_group(&self, id: GroupId) -> Result<bool, StoreError> {
        let done = with_pool!(self, |pool| {
            sqlx::query("DELETE FROM groups WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done > 0)
    }

    // ---- teams ------------------------------------------------------------

    pub async fn create_team(&self, group_id: GroupId, name: &str) -> Result<Team, StoreError> {
        let team = Team {
            id: TeamId::new(),
            group_id,
            name: name.to_string(),
            created_at: now(),
        };
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO teams (id, group_id, name, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(team.id)
            .bind(team.group_id)
            .bind(&team.name)
            .bind(team.created_at)
            .execute(pool)
            .await?;
        });
        Ok(team)
    }

    pub async fn list_teams(
        &self,
        group_id: Option<GroupId>,
        after: Option<TeamId>,
        limit: i64,
    ) -> Result<Vec<Team>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, group_id, name, created_at FROM teams \
                 WHERE ($1 IS NULL OR group_id = $1) AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3",
            )
            .bind(group_id)
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?
        }))
    }

    pub async fn get_team(&self, id: TeamId) -> Result<Option<Team>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as("SELECT id, group_id, name, created_at FROM teams WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        }))
    }

    pub async fn rename_team(&self, id: TeamId, name: &str) -> Result<Option<Team>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "UPDATE teams SET name = $2 WHERE id = $1 RETURNING id, group_id, name, created_at",
            )
            .bind(id)
            .bind(name)
            .fetch_optional(pool)
            .await?
        }))
    }

    pub async fn delete_team(&self, id: TeamId) -> Result<bool, StoreError> {
        let done = with_pool!(self, |pool| {
            sqlx::query("DELETE FROM teams WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done > 0)
    }

    // ---- staff ------------------------------------------------------------

    pub async fn create_staff(&self, new: &NewStaff) -> Result<Staff, StoreError> {
        let id = StaffId::new();
        let now = now();
        let sql = concat!(
            "INSERT INTO staff (",
            staff_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING",
            staff_columns!()
        );
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(sql)
                .bind(id)
                .bind(&new.staff_id)
                .bind(&new.external_id)
                .bind(&new.name)
                .bind(new.role.as_str())
                .bind(new.group_id)
                .bind(new.team_id)
                .bind(new.active)
                .bind(now)
                .fetch_one(pool)
                .await?
        }))
    }

    pub async fn list_staff(
        &self,
        group_id: Option<GroupId>,
        after: Option<StaffId>,
        limit: i64,
    ) -> Result<Vec<Staff>, StoreError> {
        let sql = concat!(
            "SELECT",
            staff_columns!(),
            "FROM staff \
             WHERE ($1 IS NULL OR group_id = $1) AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
        );
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(sql)
                .bind(group_id)
                .bind(after)
                .bind(limit)
                .fetch_all(pool)
                .await?
        }))
    }

    pub async fn get_staff(&self, staff_id: &str) -> Result<Option<Staff>, StoreError> {
        let sql = concat!("SELECT", staff_columns!(), "FROM staff WHERE staff_id = $1");
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(sql)
                .bind(staff_id)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Replaces every field of the staff member `staff_id` (which stays).
    pub async fn update_staff(&self, staff: &NewStaff) -> Result<Option<Staff>, StoreError> {
        let sql = concat!(
            "UPDATE staff SET external_id = $2, name = $3, role = $4, group_id = $5, team_id = $6, \
             active = $7, updated_at = $8 WHERE staff_id = $1 RETURNING",
            staff_columns!()
        );
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(sql)
                .bind(&staff.staff_id)
                .bind(&staff.external_id)
                .bind(&staff.name)
                .bind(staff.role.as_str())
                .bind(staff.group_id)
                .bind(staff.team_id)
                .bind(staff.active)
                .bind(now())
                .fetch_optional(pool)
                .await?
        }))
    }

    pub async fn delete_staff(&self, staff_id: &str) -> Result<bool, StoreError> {
        let done = with_pool!(self, |pool| {
            sqlx::query("DELETE FROM staff WHERE staff_id = $1")
                .bind(staff_id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done > 0)
    }

    /// Inserts or replaces each staff member by `staff_id`, all in one
    /// transaction: either every row is written or none. Answers each row
    /// with whether it was created.
    pub async fn upsert_staff(&self, rows: &[NewStaff]) -> Result<Vec<(Staff, bool)>, StoreError> {
        let now = now();
        let insert = concat!(
            "INSERT INTO staff (",
            staff_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) \
             ON CONFLICT (staff_id) DO UPDATE SET external_id = excluded.external_id, name = excluded.name, \
             role = excluded.role, group_id = excluded.group_id, team_id = excluded.team_id, \
             active = excluded.active, updated_at = excluded.updated_at RETURNING",
            staff_columns!()
        );
        Ok(with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let new_id = StaffId::new();
                let staff: Staff = sqlx::query_as(insert)
                    .bind(new_id)
                    .bind(&row.staff_id)
                    .bind(&row.external_id)
                    .bind(&row.name)
                    .bind(row.role.as_str())
                    .bind(row.group_id)
                    .bind(row.team_id)
                    .bind(row.active)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?;
                // The conflict path keeps the existing row's id.
                let created = staff.id == new_id;
                out.push((staff, created));
            }
            tx.commit().await?;
            out
        }))
    }

    // ---- categories -------------------------------------------------------

    pub async fn create_category(&self, name: &str) -> Result<Category, StoreError> {
        let category = Category {
            id: CategoryId::new(),
            name: name.to_string(),
            created_at: now(),
        };
        with_pool!(self, |pool| {
            sqlx::query("INSERT INTO categories (id, name, created_at) VALUES ($1, $2, $3)")
                .bind(category.id)
                .bind(&category.name)
                .bind(category.created_at)
                .execute(pool)
                .await?;
        });
        Ok(category)
    }

    pub async fn list_categories(
        &self,
        after: Option<CategoryId>,
        limit: i64,
    ) -> Result<Vec<Category>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, name, created_at FROM categories WHERE ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2",
            )
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?
        }))
    }

    pub async fn get_category(&self, id: CategoryId) -> Result<Option<Category>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as("SELECT id, name, created_at FROM categories WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        }))
    }

    pub async fn rename_category(
        &self,
        id: CategoryId,
        name: &str,
    ) -> Result<Option<Category>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "UPDATE categories SET name = $2 WHERE id = $1 RETURNING id, name, created_at",
            )
            .bind(id)
            .bind(name)
            .fetch_optional(pool)
            .await?
        }))
    }

    pub async fn delete_category(&self, id: CategoryId) -> Result<bool, StoreError> {
        let done = with_pool!(self, |pool| {
            sqlx::query("DELETE FROM categories WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done > 0)
    }

    // ---- campaigns --------------------------------------------------------

    pub async fn create_campaign(&self, fields: &CampaignFields) -> Result<Campaign, StoreError> {
        let now = now();
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "INSERT INTO campaigns (id, name, group_id, default_region, timezone, statuses, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
                 RETURNING id, name, group_id, default_region, timezone, statuses, created_at, updated_at",
            )
            .bind(CampaignId::new())
            .bind(&fields.name)
            .bind(fields.group_id)
            .bind(&fields.default_region)
            .bind(&fields.timezone)
            .bind(Json(&fields.statuses))
            .bind(now)
            .fetch_one(pool)
            .await?
        }))
    }

    /// Campaigns in creation order; `groups` restricts them (`None`: all).
    pub async fn list_campaigns(
        &self,
        groups: Option<&[GroupId]>,
        after: Option<CampaignId>,
        limit: i64,
    ) -> Result<Vec<Campaign>, StoreError> {
        let sql = format!(
            "SELECT id, name, group_id, default_region, timezone, statuses, created_at, updated_at FROM campaigns \
             WHERE ($1 IS NULL OR id > $1) AND {} ORDER BY id LIMIT $2",
            group_clause("group_id", groups, 3)
        );
        Ok(with_pool!(self, |pool| {
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(after)
                .bind(limit);
            for group in groups.unwrap_or_default() {
                query = query.bind(*group);
            }
            query.fetch_all(pool).await?
        }))
    }

    pub async fn get_campaign(&self, id: CampaignId) -> Result<Option<Campaign>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, name, group_id, default_region, timezone, statuses, created_at, updated_at \
                 FROM campaigns WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        }))
    }

    pub async fn update_campaign(
        &self,
        id: CampaignId,
        fields: &CampaignFields,
    ) -> Result<Option<Campaign>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "UPDATE campaigns SET name = $2, group_id = $3, default_region = $4, timezone = $5, statuses = $6, \
                 updated_at = $7 WHERE id = $1 \
                 RETURNING id, name, group_id, default_region, timezone, statuses, created_at, updated_at",
            )
            .bind(id)
            .bind(&fields.name)
            .bind(fields.group_id)
            .bind(&fields.default_region)
            .bind(&fields.timezone)
            .bind(Json(&fields.statuses))
            .bind(now())
            .fetch_optional(pool)
            .await?
        }))
    }

    pub async fn delete_campaign(&self, id: CampaignId) -> Result<bool, StoreError> {
        let done = with_pool!(self, |pool| {
            sqlx::query("DELETE FROM campaigns WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done > 0)
    }
}
