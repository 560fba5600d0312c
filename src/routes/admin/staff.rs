//! `/v1/admin/staff`: agents, supervisors and evaluators, keyed by their
//! Staff ID; also a bulk upsert.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashSet};

use actix_web::{HttpResponse, delete, get, patch, post, put, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::teams::unknown_group;
use super::{check_references, reference_error, validate};
use crate::auth::{AdminScope, Authorized};
use crate::domain::{StaffRole, field_errors, no_control, not_blank, valid_role};
use crate::error::{ApiError, ErrorCode, FieldError, Problem};
use crate::ids::{GroupId, TeamId};
use crate::routes::{GroupFilter, Page, PageQuery, double_option};
use crate::startup::AppState;
use crate::store::models::{NewStaff, Staff};
use crate::store::{Store, StoreError};

/// The most staff members one bulk upsert may carry.
pub const MAX_STAFF_PER_UPSERT: usize = 10_000;

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(create_staff)
        .service(upsert_staff)
        .service(list_staff)
        .service(get_staff)
        .service(update_staff)
        .service(delete_staff);
}

/// A staff member, as created or upserted.
#[derive(Clone, Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "staff_id": "DEMO-A2", "external_id": "crm-DEMO-A2", "name": "Alex Agent", "role": "agent",
    "group_id": "019a8c0e-7d1b-7c3a-9a51-0c4f7de3b2aa", "team_id": "019a8c0e-9f10-7b0e-8c6d-51a0e1f2c3d4"
}))]
pub struct StaffInput {
    /// The system's Staff ID: unique, 1 to 255 characters.
    #[validate(length(max = 255), custom(function = "not_blank"))]
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        max_length = 255
    )]
    pub staff_id: String,
    /// The client system's "External Staff ID".
    #[validate(length(min = 1, max = 255), custom(function = "no_control"))]
    pub external_id: Option<String>,
    /// The exact name (stored without surrounding spaces); customers are
    /// assigned to agents by it.
    #[validate(length(max = 200), custom(function = "not_blank"))]
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        max_length = 200
    )]
    pub name: String,
    /// `agent`, `supervisor` or `evaluator` (case and spacing are forgiven).
    #[schema(value_type = StaffRole)]
    #[validate(custom(function = "valid_role"))]
    pub role: String,
    #[schema(value_type = uuid::Uuid)]
    pub group_id: GroupId,
    /// A team of the same group.
    #[schema(value_type = Option<uuid::Uuid>)]
    pub team_id: Option<TeamId>,
    /// Inactive staff cannot be given cases or customers. Default true.
    #[serde(default = "active_by_default")]
    pub active: bool,
}

fn active_by_default() -> bool {
    true
}

impl StaffInput {
    fn to_new(&self) -> NewStaff {
        NewStaff {
            staff_id: self.staff_id.trim().to_string(),
            external_id: self
                .external_id
                .as_deref()
                .map(str::trim)
                .map(str::to_string),
            name: self.name.trim().to_string(),
            // Validated above: an unknown role never gets here.
            role: StaffRole::try_from(self.role.clone()).unwrap_or(StaffRole::Agent),
            group_id: self.group_id,
            team_id: self.team_id,
            active: self.active,
        }
    }
}

/// Changes to a staff member; absent fields stay, `null` clears an optional one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Jana Nováková", "team_id": null, "active": false}))]
pub struct StaffPatch {
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub external_id: Option<Option<String>>,
    pub name: Option<String>,
    #[schema(value_type = Option<StaffRole>)]
    pub role: Option<String>,
    /// Moving to another group also needs a team of that group (or `null`).
    #[schema(value_type = Option<uuid::Uuid>)]
    pub group_id: Option<GroupId>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<uuid::Uuid>)]
    pub team_id: Option<Option<TeamId>>,
    pub active: Option<bool>,
}

/// The body of the bulk upsert. Each member is replaced as sent: a field
/// left out (`external_id`, `team_id`) is cleared.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"staff": [
    {"staff_id": "DEMO-A1", "external_id": "crm-DEMO-A1", "name": "Dana Demo", "role": "agent",
     "group_id": "019a8c0e-7d1b-7c3a-9a51-0c4f7de3b2aa", "team_id": "019a8c0e-9f10-7b0e-8c6d-51a0e1f2c3d4"},
    {"staff_id": "DEMO-A2", "external_id": "crm-DEMO-A2", "name": "Alex Agent", "role": "agent",
     "group_id": "019a8c0e-7d1b-7c3a-9a51-0c4f7de3b2aa", "active": false}
]}))]
pub struct StaffBatch {
    /// 1 to 10,000 staff members, upserted by `staff_id`.
    pub staff: Vec<StaffInput>,
}

/// What the bulk upsert did.
#[derive(Debug, Serialize, ToSchema)]
pub struct StaffUpsertResult {
    pub created: u64,
    pub updated: u64,
    /// Every staff member of the request, as stored, in request order.
    pub staff: Vec<Staff>,
}

fn not_found() -> ApiError {
    ApiError::new(
        ErrorCode::StaffNotFound,
        "No staff member has this Staff ID.",
    )
}

/// Checks that every group exists and every team is in its row's group.
/// `rows` are `(row number, input)`; row 0 means "not in a list".
async fn reference_problems(
    store: &Store,
    rows: &[(u64, &NewStaff)],
) -> Result<Vec<FieldError>, ApiError> {
    let mut groups = BTreeMap::new();
    let mut teams = BTreeMap::new();
    for (_, staff) in rows {
        if let Entry::Vacant(slot) = groups.entry(staff.group_id) {
            slot.insert(store.get_group(staff.group_id).await?.is_some());
        }
        if let Some(team_id) = staff.team_id
            && let Entry::Vacant(slot) = teams.entry(team_id)
        {
            slot.insert(store.get_team(team_id).await?.map(|t| t.group_id));
        }
    }
    let mut errors = Vec::new();
    for (row, staff) in rows {
        let at = |e: FieldError| if *row > 0 { e.at_row(*row) } else { e };
        if !groups[&staff.group_id] {
            errors.push(at(unknown_group(staff.group_id)));
        } else if let Some(team_id) = staff.team_id
            && teams[&team_id] != Some(staff.group_id)
        {
            errors.push(at(FieldError::field(
                "team_id",
                ErrorCode::UnknownTeam,
                format!(
                    "The group {} has no team with the id {team_id}.",
                    staff.group_id
                ),
            )));
        }
    }
    Ok(errors)
}

fn duplicate_staff_id(staff_id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::DuplicateStaffId,
        format!("A staff member with the Staff ID {staff_id:?} already exists."),
    )
}

/// Create a staff member
///
/// The Staff ID is unique across the system; a second staff member with the
/// same one is a 409 `duplicate_staff_id` (use `PUT /v1/admin/staff` to
/// upsert).
#[utoipa::path(
    tag = "admin",
    request_body = StaffInput,
    responses(
        (status = 201, description = "The created staff member", body = Staff),
        (status = 409, description = "`duplicate_staff_id`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`unknown_group`, `unknown_team` or `validation_failed`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
#[post("/staff")]
pub async fn create_staff(
    _auth: Authorized<AdminScope>,
    state: web::Data<AppState>,
    body: web::Json<StaffInput>,
) -> Result<HttpResponse, ApiError> {
    validate(&*body)?;
    let new = body.to_new();
    check_references(reference_problems(&state.store, &[(0, &new)]).await?)?;
    match state.store.create_staff(&new).await {
        Ok(staff) => {
            state.access.staff_changed().await;
            Ok(HttpResponse::Created().json(staff))
        }
        Err(StoreError::Duplicate(_)) => Err(duplicate_staff_id(&new.staff_id)),
        Err(StoreError::Reference(_)) => Err(reference_error(
            reference_problems(&state.store, &[(0, &new)]).await?,
        )),
        Err(e) => Err(e.into()),
    }
}

/// Upsert staff in bulk
///
/// Inserts or replaces up to 10,000 staff members by `staff_id`, in one
/// transaction: if any row is invalid, the answer is 422 listing every
/// problem with its `row` (1-based index in `staff`), and nothing is written.
#[utoipa::path(
    tag = "admin",
    request_body = StaffBatch,
    responses(
        (status = 200, description = "Every row written", body = StaffUpsertResult),
        (status = 422, description = "`validation_failed`, `unknown_group`, `unknown_team`, `too_many_items`; nothing written", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
#[put("/staff")]
pub async fn upsert_staff(
    _auth: Authorized<AdminScope>,
    state: web::Data<AppState>,
    body: web::Json<StaffBatch>,
) -> Result<HttpResponse, ApiError> {
    let rows = &body.staff;
    if rows.is_empty() {
        return Err(ApiError::validation(
            ErrorCode::ValidationFailed,
            vec![FieldError::field(
                "staff",
                ErrorCode::Required,
                "`staff` must list at least one staff member.",
            )],
        ));
    }
    if rows.len() > MAX_STAFF_PER_UPSERT {
        return Err(ApiError::new(
            ErrorCode::TooManyItems,
            format!(
                "One upsert takes at most {MAX_STAFF_PER_UPSERT} staff members; this one has {}.",
                rows.len()
            ),
        ));
    }
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    let mut valid = Vec::with_capacity(rows.len());
    for (i, input) in rows.iter().enumerate() {
        let row = i as u64 + 1;
        match input.validate() {
            Err(report) => errors.extend(field_errors(&report).into_iter().map(|e| e.at_row(row))),
            Ok(()) => {
                let new = input.to_new();
                if !seen.insert(new.staff_id.clone()) {
                    errors.push(
                        FieldError::field(
                            "staff_id",
                            ErrorCode::DuplicateValue,
                            format!("The Staff ID {:?} is listed more than once.", new.staff_id),
                        )
                        .at_row(row),
                    );
                }
                valid.push((row, new));
            }
        }
    }
    let refs: Vec<(u64, &NewStaff)> = valid.iter().map(|(row, new)| (*row, new)).collect();
    errors.extend(reference_problems(&state.store, &refs).await?);
    if !errors.is_empty() {
        errors.sort_by_key(|e| e.row);
        return Err(reference_error(errors));
    }
    let news: Vec<NewStaff> = valid.into_iter().map(|(_, new)| new).collect();
    let written = state.store.upsert_staff(&news).await?;
    state.access.staff_changed().await;
    let created = written.iter().filter(|(_, created)| *created).count() as u64;
    Ok(HttpResponse::Ok().json(StaffUpsertResult {
        created,
        updated: written.len() as u64 - created,
        staff: written.into_iter().map(|(staff, _)| staff).collect(),
    }))
}

/// List staff
///
/// In creation order, a page at a time; `group_id` narrows to one group.
#[utoipa::path(
    operation_id = "admin_list_staff",
    tag = "admin",
    params(PageQuery, GroupFilter),
    responses((status = 200, description = "A page of staff", body = Page<Staff>)),
    security(("bearer" = ["admin"]))
)]
#[get("/staff")]
pub async fn list_staff(
    _auth: Authorized<AdminScope>,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
    filter: web::Query<GroupFilter>,
) -> Result<HttpResponse, ApiError> {
    let page = query.parse()?;
    let rows = state
        .store
        .list_staff(filter.group_id, page.after_id(), page.fetch())
        .await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(rows, page, |s| s.id)))
}

/// Get a staff member
///
/// One staff member by Staff ID.
#[utoipa::path(
    tag = "admin",
    params(("staff_id" = String, Path, description = "The Staff ID")),
    responses(
        (status = 200, description = "The staff member", body = Staff),
        (status = 404, description = "`staff_not_found`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
#[get("/staff/{staff_id}")]
pub async fn get_staff(
    _auth: Authorized<AdminScope>,
    state: web::Data<AppState>,
    staff_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let staff = state
        .store
        .get_staff(&staff_id)
        .await?
        .ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(staff))
}

/// Update a staff member
///
/// Changes only the fields given. The Staff ID itself cannot change.
#[utoipa::path(
    tag = "admin",
    params(("staff_id" = String, Path, description = "The Staff ID")),
    request_body = StaffPatch,
    responses(
        (status = 200, description = "The updated staff member", body = Staff),
        (status = 404, description = "`staff_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`unknown_group`, `unknown_team` or `validation_failed`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
#[patch("/staff/{staff_id}")]
pub async fn update_staff(
    _auth: Authorized<AdminScope>,
    state: web::Data<AppState>,
    staff_id: web::Path<String>,
    body: web::Json<StaffPatch>,
) -> Result<HttpResponse, ApiError> {
    let current = state
        .store
        .get_staff(&staff_id)
        .await?
        .ok_or_else(not_found)?;
    let patch = body.into_inner();
    let merged = StaffInput {
        staff_id: current.staff_id,
        external_id: patch.external_id.unwrap_or(current.external_id),
        name: patch.name.unwrap_or(current.name),
        role: patch
            .role
            .unwrap_or_else(|| current.role.as_str().to_string()),
        group_id: patch.group_id.unwrap_or(current.group_id),
        team_id: patch.team_id.unwrap_or(current.team_id),
        active: patch.active.unwrap_or(current.active),
    };
    validate(&merged)?;
    let new = merged.to_new();
    check_references(reference_problems(&state.store, &[(0, &new)]).await?)?;
    let staff = state
        .store
        .update_staff(&new)
        .await?
        .ok_or_else(not_found)?;
    state.access.staff_changed().await;
    Ok(HttpResponse::Ok().json(staff))
}

/// Delete a staff member
///
/// Only a staff member no case refers to; otherwise 409 `resource_in_use`
/// (set `active: false` instead).
#[utoipa::path(
    tag = "admin",
    params(("staff_id" = String, Path, description = "The Staff ID")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "`staff_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`resource_in_use`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
#[delete("/staff/{staff_id}")]
pub async fn delete_staff(
    _auth: Authorized<AdminScope>,
    state: web::Data<AppState>,
    staff_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    if state.store.delete_staff(&staff_id).await? {
        state.access.staff_changed().await;
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(not_found())
    }
}
