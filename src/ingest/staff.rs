//! The staff a case may name: looked up per batch, or, for the small
//! requests of client systems pushing cases as they happen, from a cache of
//! the integration's groups' whole staff directory.
//!
//! The cache is keyed by the staff directory's generation, which every
//! change to staff replaces (in Redis where configured, so that every
//! replica drops what it cached at once; else in this process): an entry
//! of another generation is never used. Entries also expire after
//! [`CACHE_TTL`]. Groups with more than [`MAX_CACHED_STAFF`] staff are not
//! cached (their requests look staff up per batch).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::domain::case::StaffRef;
use crate::error::{ErrorCode, FieldError, excerpt};
use crate::ids::GroupId;
use crate::store::cases::StaffMatch;
use crate::store::{Store, StoreError};

/// How long a cached directory is used at most: without Redis, how long a
/// change made through another process may go unseen (as for the cached
/// access of an integration).
pub const CACHE_TTL: Duration = Duration::from_secs(3);
/// The largest staff directory (of an integration's groups) cached.
pub const MAX_CACHED_STAFF: usize = 10_000;

/// What a case whose External Staff ID is not the one stored for its
/// Staff ID gets: `staff_id_mismatch` as an error (the JSON API: both IDs
/// must name the one staff member) or as a warning (the spreadsheet
/// uploader's rule: the Staff ID names the staff member, the External Staff
/// ID is stored as sent).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExternalIdDrift {
    #[default]
    Refused,
    Warned,
}

/// The staff of one batch, by Staff ID and by External Staff ID.
pub struct StaffDirectory {
    by_staff_id: HashMap<String, StaffMatch>,
    by_external_id: HashMap<String, Vec<StaffMatch>>,
}

impl StaffDirectory {
    pub fn new(matches: Vec<StaffMatch>) -> Self {
        let mut by_staff_id = HashMap::new();
        let mut by_external_id: HashMap<String, Vec<StaffMatch>> = HashMap::new();
        for staff in matches {
            if let Some(external) = &staff.external_id {
                let entry = by_external_id.entry(external.clone()).or_default();
                if !entry.iter().any(|s| s.staff_id == staff.staff_id) {
                    entry.push(staff.clone());
                }
            }
            by_staff_id.insert(staff.staff_id.clone(), staff);
        }
        Self {
            by_staff_id,
            by_external_id,
        }
    }

    /// The one active staff member a case names, and the warning of an
    /// External Staff ID not the one stored for its Staff ID where `drift`
    /// lets it through. "Does not exist" and "belongs to another group" are
    /// the same answer.
    pub fn resolve(
        &self,
        staff: &StaffRef,
        drift: ExternalIdDrift,
    ) -> Result<(&StaffMatch, Option<FieldError>), FieldError> {
        let mut warning = None;
        let found = match (&staff.staff_id, &staff.external_staff_id) {
            (Some(staff_id), external) => {
                let found = self.by_staff_id.get(staff_id).ok_or_else(|| {
                    FieldError::field(
                        "staff_id",
                        ErrorCode::UnknownStaffId,
                        format!(
                            "{:?} is not the Staff ID of a staff member in your groups",
                            excerpt(staff_id)
                        ),
                    )
                })?;
                if let Some(external) = external
                    && found.external_id.as_deref() != Some(external.as_str())
                {
                    let stored = match &found.external_id {
                        Some(stored) => format!("{:?}", excerpt(stored)),
                        None => "none".to_string(),
                    };
                    let mismatch = FieldError::field(
                        "external_staff_id",
                        ErrorCode::StaffIdMismatch,
                        format!(
                            "the External Staff ID {:?} is not the one stored for Staff ID {:?} ({stored})",
                            excerpt(external),
                            excerpt(staff_id)
                        ),
                    );
                    match drift {
                        ExternalIdDrift::Refused => return Err(mismatch),
                        ExternalIdDrift::Warned => {
                            warning = Some(FieldError {
                                message: format!(
                                    "{}; the case is stored with the staff member of Staff ID {:?} and the External Staff ID as sent",
                                    mismatch.message,
                                    excerpt(staff_id)
                                ),
                                ..mismatch
                            });
                        }
                    }
                }
                found
            }
            (None, Some(external)) => match self.by_external_id.get(external).map(Vec::as_slice) {
                Some([one]) => one,
                Some([_, _, ..]) => {
                    return Err(FieldError::field(
                        "external_staff_id",
                        ErrorCode::AmbiguousExternalStaffId,
                        format!(
                            "the External Staff ID {:?} belongs to several staff members; send staff_id",
                            excerpt(external)
                        ),
                    ));
                }
                _ => {
                    return Err(FieldError::field(
                        "external_staff_id",
                        ErrorCode::UnknownStaffId,
                        format!(
                            "{:?} is not the External Staff ID of a staff member in your groups",
                            excerpt(external)
                        ),
                    ));
                }
            },
            (None, None) => {
                return Err(FieldError::field(
                    "staff_id",
                    ErrorCode::MissingStaffId,
                    "staff_id or external_staff_id is required",
                ));
            }
        };
        if !found.active {
            return Err(FieldError::field(
                if staff.staff_id.is_some() {
                    "staff_id"
                } else {
                    "external_staff_id"
                },
                ErrorCode::StaffInactive,
                format!(
                    "the staff member {:?} is inactive",
                    excerpt(&found.staff_id)
                ),
            ));
        }
        Ok((found, warning))
    }
}

/// The cached staff directories, by the groups they cover.
#[derive(Default)]
pub struct StaffCache {
    entries: Mutex<HashMap<Vec<GroupId>, Cached>>,
}

struct Cached {
    generation: u64,
    loaded: Instant,
    directory: Option<Arc<StaffDirectory>>,
}

impl StaffCache {
    /// The whole staff directory of `groups` as of `generation`, loaded
    /// once per generation; `None` where it is too large to cache.
    pub async fn directory(
        &self,
        store: &Store,
        groups: &[GroupId],
        generation: u64,
    ) -> Result<Option<Arc<StaffDirectory>>, StoreError> {
        let mut key = groups.to_vec();
        key.sort_unstable();
        if let Ok(entries) = self.entries.lock()
            && let Some(cached) = entries.get(&key)
            && cached.generation == generation
            && cached.loaded.elapsed() < CACHE_TTL
        {
            return Ok(cached.directory.clone());
        }
        let staff = store.staff_of_groups(groups, MAX_CACHED_STAFF + 1).await?;
        let directory =
            (staff.len() <= MAX_CACHED_STAFF).then(|| Arc::new(StaffDirectory::new(staff)));
        if let Ok(mut entries) = self.entries.lock() {
            // A few integrations' group sets: drop the expired ones now and then.
            if entries.len() > 1_000 {
                entries.retain(|_, c| c.loaded.elapsed() < CACHE_TTL);
            }
            entries.insert(
                key,
                Cached {
                    generation,
                    loaded: Instant::now(),
                    directory: directory.clone(),
                },
            );
        }
        Ok(directory)
    }
}
