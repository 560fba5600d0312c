//! The stored entities, as read back and as answered.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use utoipa::ToSchema;

use crate::ids::{CampaignId, CategoryId, GroupId, IntegrationId, StaffId, TeamId, TokenId};

/// The role of a staff member.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StaffRole {
    Agent,
    Supervisor,
    Evaluator,
}

impl StaffRole {
    pub const ALL: [StaffRole; 3] = [
        StaffRole::Agent,
        StaffRole::Supervisor,
        StaffRole::Evaluator,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StaffRole::Agent => "agent",
            StaffRole::Supervisor => "supervisor",
            StaffRole::Evaluator => "evaluator",
        }
    }
}

impl TryFrom<String> for StaffRole {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        // Matched leniently: letter case and surrounding blanks aside.
        let canonical = value.trim().to_lowercase();
        StaffRole::ALL
            .into_iter()
            .find(|r| r.as_str() == canonical)
            .ok_or_else(|| {
                format!(
                    "{:?} is not a role (agent, supervisor, evaluator)",
                    crate::error::excerpt(&value)
                )
            })
    }
}

/// A group: the unit of access.
#[derive(Clone, Debug, Serialize, ToSchema, sqlx::FromRow)]
#[schema(example = json!({"id": "019a8c0e-7d1b-7c3a-9a51-0c4f7de3b2aa", "name": "Support EU", "created_at": "2026-11-22T09:00:00Z"}))]
pub struct Group {
    #[schema(value_type = uuid::Uuid)]
    pub id: GroupId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// A team inside one group.
#[derive(Clone, Debug, Serialize, ToSchema, sqlx::FromRow)]
#[schema(example = json!({"id": "019a8c0e-9f10-7b0e-8c6d-51a0e1f2c3d4", "group_id": "019a8c0e-7d1b-7c3a-9a51-0c4f7de3b2aa", "name": "Tier 1", "created_at": "2026-11-22T09:00:00Z"}))]
pub struct Team {
    #[schema(value_type = uuid::Uuid)]
    pub id: TeamId,
    #[schema(value_type = uuid::Uuid)]
    pub group_id: GroupId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// A person: agent, supervisor or evaluator.
#[derive(Clone, Debug, Serialize, ToSchema, sqlx::FromRow)]
#[schema(example = json!({
    "staff_id": "DEMO-A1", "external_id": "crm-DEMO-A1", "name": "Dana Demo", "role": "agent",
    "group_id": "019a8c0e-7d1b-7c3a-9a51-0c4f7de3b2aa", "team_id": "019a8c0e-9f10-7b0e-8c6d-51a0e1f2c3d4",
    "active": true, "created_at": "2026-11-22T09:00:00Z", "updated_at": "2026-11-22T09:00:00Z"
}))]
pub struct Staff {
    /// Internal; orders pagination.
    #[serde(skip)]
    pub id: StaffId,
    /// The system's Staff ID (unique).
    pub staff_id: String,
    /// The client system's "External Staff ID".
    pub external_id: Option<String>,
    /// The exact name, used to assign customers to agents.
    pub name: String,
    #[sqlx(try_from = "String")]
    pub role: StaffRole,
    #[schema(value_type = uuid::Uuid)]
    pub group_id: GroupId,
    #[schema(value_type = Option<uuid::Uuid>)]
    pub team_id: Option<TeamId>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A case category an admin configured.
#[derive(Clone, Debug, Serialize, ToSchema, sqlx::FromRow)]
#[schema(example = json!({"id": "019a8c0f-0001-7000-8000-000000000001", "name": "Billing", "created_at": "2026-11-22T09:00:00Z"}))]
pub struct Category {
    #[schema(value_type = uuid::Uuid)]
    pub id: CategoryId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// A call-centre campaign in one group.
#[derive(Clone, Debug, Serialize, ToSchema, sqlx::FromRow)]
#[schema(example = json!({
    "id": "019a8c0f-1111-7000-8000-000000000002", "name": "Spring renewals",
    "group_id": "019a8c0e-7d1b-7c3a-9a51-0c4f7de3b2aa", "default_region": "IL", "timezone": "Asia/Jerusalem",
    "statuses": ["new", "follow_up", "waiting", "closed"],
    "created_at": "2026-11-22T09:00:00Z", "updated_at": "2026-11-22T09:00:00Z"
}))]
pub struct Campaign {
    #[schema(value_type = uuid::Uuid)]
    pub id: CampaignId,
    pub name: String,
    #[schema(value_type = uuid::Uuid)]
    pub group_id: GroupId,
    /// ISO 3166-1 alpha-2 region for phone numbers without a country code.
    pub default_region: String,
    /// IANA time zone in which the campaign's file dates are read.
    pub timezone: String,
    /// The customer statuses of this campaign (canonical snake_case).
    #[schema(value_type = Vec<String>)]
    pub statuses: Json<Vec<String>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A new staff member, validated.
#[derive(Clone, Debug)]
pub struct NewStaff {
    pub staff_id: String,
    pub external_id: Option<String>,
    pub name: String,
    pub role: StaffRole,
    pub group_id: GroupId,
    pub team_id: Option<TeamId>,
    pub active: bool,
}

/// A campaign's fields, validated.
#[derive(Clone, Debug)]
pub struct CampaignFields {
    pub name: String,
    pub group_id: GroupId,
    pub default_region: String,
    pub timezone: String,
    pub statuses: Vec<String>,
}

/// The CSV limits of one integration (the spreadsheet uploader's rules).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
#[schema(example = json!({"max_records": 1000, "max_columns": 103, "max_cell_chars": 1000}))]
pub struct CsvLimits {
    /// Records (lines after the header) per file.
    pub max_records: u32,
    /// Columns per file (the three mandatory ones included).
    pub max_columns: u32,
    /// Characters per cell.
    pub max_cell_chars: u32,
}

impl Default for CsvLimits {
    fn default() -> Self {
        Self {
            max_records: 1_000,
            max_columns: 103,
            max_cell_chars: 1_000,
        }
    }
}

/// A source of data with access to one or more groups.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "019a8c10-2222-7000-8000-000000000003", "label": "CRM sync", "description": "Nightly push from the CRM",
    "groups": ["019a8c0e-7d1b-7c3a-9a51-0c4f7de3b2aa"], "enabled": true,
    "csv_limits": {"max_records": 1000, "max_columns": 103, "max_cell_chars": 1000},
    "rate_limit": null,
    "created_at": "2026-11-22T09:00:00Z", "updated_at": "2026-11-22T09:00:00Z"
}))]
pub struct Integration {
    #[schema(value_type = uuid::Uuid)]
    pub id: IntegrationId,
    pub label: String,
    pub description: String,
    /// The groups whose data the integration sees and writes.
    #[schema(value_type = Vec<uuid::Uuid>)]
    pub groups: Vec<GroupId>,
    /// A disabled integration's tokens are refused.
    pub enabled: bool,
    pub csv_limits: CsvLimits,
    /// Its own rate limit; `null`: the server's default (`GET /v1/limits`
    /// shows the one in force).
    pub rate_limit: Option<crate::settings::RatePolicy>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An integration's fields, validated.
#[derive(Clone, Debug)]
pub struct IntegrationFields {
    pub label: String,
    pub description: String,
    pub groups: Vec<GroupId>,
    pub enabled: bool,
    pub csv_limits: CsvLimits,
    pub rate_limit: Option<crate::settings::RatePolicy>,
}

/// A minted token as stored: never the token itself.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "jti": "019a8c11-3333-7000-8000-000000000004", "integration_id": "019a8c10-2222-7000-8000-000000000003",
    "scopes": ["cases:write"], "created_at": "2026-11-22T09:00:00Z", "expires_at": "2026-11-23T09:00:00Z",
    "last_used_at": null, "revoked_at": null
}))]
pub struct TokenInfo {
    #[schema(value_type = uuid::Uuid)]
    pub jti: TokenId,
    #[schema(value_type = uuid::Uuid)]
    pub integration_id: IntegrationId,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Updated at most once a minute.
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// An operator (admin) token as stored: never the token itself.
#[derive(Clone, Debug, Serialize, ToSchema, sqlx::FromRow)]
#[schema(example = json!({
    "jti": "019a8c11-3333-7000-8000-000000000009", "created_at": "2026-11-30T09:00:00Z",
    "expires_at": "2026-11-30T10:00:00Z", "revoked_at": null
}))]
pub struct AdminToken {
    #[schema(value_type = uuid::Uuid)]
    pub jti: TokenId,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}
