//! `intake seed-demo`: a demo group with a team, an agent, an evaluator, a
//! category, a campaign and an integration, and a token for it.

use std::time::Duration;

use crate::auth::Scope;
use crate::auth::jwt::JwtKeys;
use crate::auth::tokens::{DEFAULT_TTL_SECONDS, mint_integration_token};
use crate::domain::{DEFAULT_CUSTOMER_STATUSES, StaffRole};
use crate::ids::{CampaignId, GroupId, IntegrationId};
use crate::store::models::{CampaignFields, CsvLimits, IntegrationFields, NewStaff};
use crate::store::{Store, StoreError};

/// What the demo created.
pub struct Demo {
    pub group_id: GroupId,
    pub integration_id: IntegrationId,
    pub campaign_id: CampaignId,
    pub token: String,
}

pub const DEMO_GROUP: &str = "Demo";

/// Creates the demo data; refuses when a group named `Demo` exists.
pub async fn seed(store: &Store, keys: &JwtKeys) -> anyhow::Result<Demo> {
    let group = match store.create_group(DEMO_GROUP).await {
        Err(StoreError::Duplicate(_)) => anyhow::bail!(
            "demo data is already there (a group named {DEMO_GROUP:?} exists); mint another token with \
             `intake token --integration <id> --scope …`"
        ),
        other => other?,
    };
    let team = store.create_team(group.id, "Demo team").await?;
    for (staff_id, name, role) in [
        ("DEMO-A1", "Dana Demo", StaffRole::Agent),
        ("DEMO-E1", "Eli Evaluator", StaffRole::Evaluator),
    ] {
        store
            .create_staff(&NewStaff {
                staff_id: staff_id.into(),
                external_id: Some(format!("crm-{staff_id}")),
                name: name.into(),
                role,
                group_id: group.id,
                team_id: Some(team.id),
                active: true,
            })
            .await?;
    }
    if let Err(e) = store.create_category("General").await
        && !matches!(e, StoreError::Duplicate(_))
    {
        return Err(e.into());
    }
    let campaign = store
        .create_campaign(&CampaignFields {
            name: "Demo campaign".into(),
            group_id: group.id,
            default_region: "GB".into(),
            timezone: "Europe/London".into(),
            statuses: DEFAULT_CUSTOMER_STATUSES
                .iter()
                .map(|s| s.to_string())
                .collect(),
        })
        .await?;
    let integration = store
        .create_integration(&IntegrationFields {
            label: "Demo integration".into(),
            description: "Created by `intake seed-demo`".into(),
            groups: vec![group.id],
            enabled: true,
            csv_limits: CsvLimits::default(),
            rate_limit: None,
        })
        .await?;
    let scopes: Vec<Scope> = Scope::ALL
        .into_iter()
        .filter(|s| *s != Scope::Admin)
        .collect();
    let (token, _) = mint_integration_token(
        store,
        keys,
        integration.id,
        &scopes,
        Duration::from_secs(DEFAULT_TTL_SECONDS),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{}", e.detail))?;
    Ok(Demo {
        group_id: group.id,
        integration_id: integration.id,
        campaign_id: campaign.id,
        token,
    })
}
