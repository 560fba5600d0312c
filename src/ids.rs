//! Typed ids: one newtype over [`Uuid`] per kind of entity, so that a group's
//! id cannot be passed where an integration's is expected.
//!
//! Each id is its uuid and nothing more: it serializes as the uuid's text
//! (`#[serde(transparent)]`), is stored as the uuid is on each backend
//! (`#[sqlx(transparent)]`: PostgreSQL `uuid`, SQLite 16-byte BLOB), and
//! displays and parses as the uuid does. OpenAPI schemas name the field's
//! type as `Uuid` (`#[schema(value_type = uuid::Uuid)]`), so the document shows
//! `type: string, format: uuid` as before.
//!
//! A bottom layer: it depends on external crates only.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// Defines one typed id.
macro_rules! typed_id {
    ($( $(#[doc = $doc:literal])* $name:ident; )+) => {
        $(
            $(#[doc = $doc])*
            #[derive(
                Clone,
                Copy,
                Debug,
                PartialEq,
                Eq,
                Hash,
                PartialOrd,
                Ord,
                serde::Serialize,
                serde::Deserialize,
                sqlx::Type,
            )]
            #[serde(transparent)]
            #[sqlx(transparent)]
            pub struct $name(Uuid);

            impl $name {
                /// A new id: a version 7 uuid (time-ordered, as every id
                /// this service creates).
                #[allow(clippy::new_without_default)]
                pub fn new() -> Self {
                    Self(Uuid::now_v7())
                }

                /// The uuid.
                pub const fn as_uuid(&self) -> &Uuid {
                    &self.0
                }
            }

            impl From<Uuid> for $name {
                fn from(id: Uuid) -> Self {
                    Self(id)
                }
            }

            impl From<$name> for Uuid {
                fn from(id: $name) -> Self {
                    id.0
                }
            }

            /// The uuid's text (lowercase, hyphenated).
            impl fmt::Display for $name {
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    fmt::Display::fmt(&self.0, f)
                }
            }

            /// Parses as [`Uuid`] does (same forms, same errors).
            impl FromStr for $name {
                type Err = uuid::Error;
                fn from_str(s: &str) -> Result<Self, Self::Err> {
                    Uuid::from_str(s).map(Self)
                }
            }
        )+
    };
}

typed_id! {
    /// A group (`groups.id`): the unit of access.
    GroupId;
    /// A team inside a group (`teams.id`).
    TeamId;
    /// A staff member's internal id (`staff.id`, orders pagination; never
    /// answered). Not the "Staff ID", which is the staff member's text
    /// `staff_id`.
    StaffId;
    /// An integration (`integrations.id`).
    IntegrationId;
    /// A token's id (`tokens.jti`, the JWT's `jti` claim), of integration
    /// and admin tokens alike.
    TokenId;
    /// A case category (`categories.id`).
    CategoryId;
    /// A case list (`case_lists.id`).
    ListId;
    /// A case (`cases.id`).
    CaseId;
    /// A campaign (`campaigns.id`).
    CampaignId;
    /// A customer (`customers.id`).
    CustomerId;
    /// An import job (`import_jobs.id`).
    ImportId;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_its_uuid_in_text_and_json() {
        let uuid = Uuid::now_v7();
        let id = GroupId::from(uuid);
        assert_eq!(id.to_string(), uuid.to_string());
        assert_eq!(format!("{id:#}"), format!("{uuid:#}"));
        assert_eq!(
            serde_json::to_string(&id).expect("json"),
            serde_json::to_string(&uuid).expect("json")
        );
        let back: GroupId = serde_json::from_str(&format!("\"{uuid}\"")).expect("json");
        assert_eq!(back, id);
        assert_eq!(Uuid::from(back), uuid);
        assert_eq!(*id.as_uuid(), uuid);
    }

    #[test]
    fn parsing_fails_as_a_uuid_does() {
        let id: CaseId = "67e55044-10b1-426f-9247-bb680e5fe0c8".parse().expect("id");
        assert_eq!(id.to_string(), "67e55044-10b1-426f-9247-bb680e5fe0c8");
        for bad in ["", "not-a-uuid", "67e55044-10b1-426f-9247-bb680e5fe0c"] {
            assert_eq!(
                bad.parse::<CaseId>().map_err(|e| e.to_string()),
                Uuid::parse_str(bad)
                    .map(CaseId::from)
                    .map_err(|e| e.to_string())
            );
            let json = format!("\"{bad}\"");
            assert_eq!(
                serde_json::from_str::<CaseId>(&json).map_err(|e| e.to_string()),
                serde_json::from_str::<Uuid>(&json)
                    .map(CaseId::from)
                    .map_err(|e| e.to_string())
            );
        }
    }

    #[test]
    fn new_ids_are_version_7() {
        assert_eq!(IntegrationId::new().as_uuid().get_version_num(), 7);
    }
}
