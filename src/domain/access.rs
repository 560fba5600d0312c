//! The groups a caller sees, and the data that belongs to one group. Every
//! lookup of group-owned data made for an integration goes through a
//! [`GroupAccess`]: rows outside it do not exist.

use std::sync::Arc;

use crate::ids::{GroupId, IntegrationId};
use crate::store::cases::{Case, CaseList};
use crate::store::models::{Campaign, Staff, Team};

/// The groups a caller sees. Every lookup of group-owned data made for an
/// integration goes through one of these: rows outside it do not exist.
#[derive(Clone, Debug)]
pub struct GroupAccess {
    pub integration_id: IntegrationId,
    groups: Arc<[GroupId]>,
    /// The staff directory's generation when the request was authorized
    /// (`None`: unknown; nothing cached of the staff is used).
    pub staff_generation: Option<u64>,
}

/// Data that belongs to one group.
pub trait InGroup {
    fn group_id(&self) -> GroupId;
}

impl GroupAccess {
    pub fn new(integration_id: IntegrationId, groups: Vec<GroupId>) -> Self {
        Self {
            integration_id,
            groups: groups.into(),
            staff_generation: None,
        }
    }

    /// The same access, knowing the staff directory's generation.
    pub fn with_staff_generation(mut self, generation: Option<u64>) -> Self {
        self.staff_generation = generation;
        self
    }

    pub fn groups(&self) -> &[GroupId] {
        &self.groups
    }

    pub fn contains(&self, group_id: GroupId) -> bool {
        self.groups.contains(&group_id)
    }

    /// The row if the caller may see it; `None` exactly as if it did not exist.
    pub fn visible<T: InGroup>(&self, row: Option<T>) -> Option<T> {
        row.filter(|r| self.contains(r.group_id()))
    }
}

impl InGroup for Case {
    fn group_id(&self) -> GroupId {
        self.group_id
    }
}

impl InGroup for CaseList {
    fn group_id(&self) -> GroupId {
        self.group_id
    }
}

impl InGroup for Campaign {
    fn group_id(&self) -> GroupId {
        self.group_id
    }
}

impl InGroup for Staff {
    fn group_id(&self) -> GroupId {
        self.group_id
    }
}

impl InGroup for Team {
    fn group_id(&self) -> GroupId {
        self.group_id
    }
}
