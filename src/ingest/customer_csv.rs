//! The customers CSV: headers matched to fields by the upload's `mapping`
//! (file header → field) and, for the headers it does not name,
//! automatically (field names and common aliases, case-insensitive).
//! Unmatched columns go into `fields`. This layer only maps columns and
//! turns rows into [`CustomerInput`]s; every field check is the shared
//! customer validators'.

use std::collections::HashMap;

use crate::domain::canonical_enum;
use crate::domain::case::{DataColumns, Scalar};
use crate::domain::customer::CustomerInput;
use crate::error::{ApiError, Column, ErrorCode, FieldError, excerpt};
use crate::ingest::csv::CsvTable;

/// The fields a column can fill.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Target {
    Name,
    Phone,
    Agent,
    FollowUpAt,
    SourceCreatedAt,
    DoNotCall,
    /// A custom field named by its header.
    Custom,
}

const FIELDS: [(Target, &str); 6] = [
    (Target::Name, "name"),
    (Target::Phone, "phone"),
    (Target::Agent, "agent"),
    (Target::FollowUpAt, "follow_up_at"),
    (Target::SourceCreatedAt, "source_created_at"),
    (Target::DoNotCall, "do_not_call"),
];

/// Headers recognised without a mapping (compared in canonical form:
/// "Follow-up date" → `follow_up_date`).
const ALIASES: [(Target, &[&str]); 6] = [
    (
        Target::Name,
        &[
            "name",
            "full_name",
            "customer_name",
            "customer",
            "lead_name",
        ],
    ),
    (
        Target::Phone,
        &[
            "phone",
            "phone_number",
            "mobile",
            "mobile_number",
            "mobile_phone",
            "telephone",
            "tel",
            "cell",
            "cell_phone",
        ],
    ),
    (Target::Agent, &["agent", "agent_name", "assigned_agent"]),
    (
        Target::FollowUpAt,
        &[
            "follow_up_at",
            "follow_up",
            "follow_up_date",
            "follow_up_time",
            "followup",
            "followup_date",
        ],
    ),
    (
        Target::SourceCreatedAt,
        &[
            "source_created_at",
            "created",
            "created_at",
            "created_date",
            "creation_date",
            "original_creation_date",
        ],
    ),
    (Target::DoNotCall, &["do_not_call", "dnc"]),
];

/// The header of a customers file as a template writes it: one column per
/// field, each an alias above (name, phone, agent, follow-up date, created).
pub const TEMPLATE_HEADER: [&str; 5] = ["Name", "Phone", "Agent", "Follow-up Date", "Created"];

/// The headers recognised for `field` (`name`, `phone`, `agent`,
/// `follow_up_at`, `source_created_at`), in canonical form.
pub fn field_aliases(field: &str) -> &'static [&'static str] {
    FIELDS
        .iter()
        .find(|(_, name)| *name == field)
        .and_then(|(target, _)| ALIASES.iter().find(|(t, _)| t == target))
        .map(|(_, aliases)| *aliases)
        .unwrap_or_default()
}

fn field_name(target: Target) -> &'static str {
    FIELDS
        .iter()
        .find(|(t, _)| *t == target)
        .map(|(_, n)| *n)
        .unwrap_or("fields")
}

/// How the columns of a customers CSV are read.
#[derive(Debug)]
pub struct CustomerColumns {
    targets: Vec<Target>,
    header: Vec<String>,
}

impl CustomerColumns {
    /// Matches the headers to fields. A mapping that names a header the
    /// file lacks or a field that does not exist, or a file without a name
    /// or phone column, answers 422 before any row is read.
    pub fn read(
        table: &mut CsvTable,
        mapping: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> Result<CustomerColumns, ApiError> {
        let header = table.header.clone();
        let mut targets: Vec<Option<Target>> = vec![None; header.len()];
        // The fields taken so far: every check below is a lookup, so the
        // whole match is linear in the header's width.
        let mut taken: std::collections::HashSet<Target> = Default::default();
        let mut problems = Vec::new();
        let mut by_name: HashMap<String, usize> = HashMap::with_capacity(header.len());
        for (i, h) in header.iter().enumerate() {
            by_name.entry(h.to_lowercase()).or_insert(i);
        }
        let position = |name: &str| by_name.get(&name.trim().to_lowercase()).copied();
        for (from, to) in mapping.into_iter().flatten() {
            let field = format!("mapping.{from}");
            let Some(index) = position(from) else {
                problems.push(FieldError::field(
                    field,
                    ErrorCode::InvalidMapping,
                    format!("the file has no column {:?}", excerpt(from)),
                ));
                continue;
            };
            let target = match to.as_str().map(canonical_enum).as_deref() {
                Some("fields" | "custom" | "") => Some(Target::Custom),
                Some(name) => FIELDS.iter().find(|(_, n)| *n == name).map(|(t, _)| *t),
                None => None,
            };
            let Some(target) = target else {
                problems.push(FieldError::field(
                    field,
                    ErrorCode::InvalidMapping,
                    format!(
                        "{} is not a field; map a column to name, phone, agent, follow_up_at, source_created_at, do_not_call or fields",
                        excerpt(&to.to_string())
                    ),
                ));
                continue;
            };
            if target != Target::Custom && !taken.insert(target) {
                problems.push(FieldError::field(
                    field,
                    ErrorCode::InvalidMapping,
                    format!("two columns are mapped to {}", field_name(target)),
                ));
                continue;
            }
            targets[index] = Some(target);
        }
        // Automatic matching of the headers the mapping leaves.
        for (i, name) in header.iter().enumerate() {
            if targets[i].is_some() {
                continue;
            }
            let canonical = canonical_enum(name);
            let found = ALIASES
                .iter()
                .find(|(target, aliases)| {
                    aliases.contains(&canonical.as_str()) && !taken.contains(target)
                })
                .map(|(t, _)| *t);
            if let Some(target) = found {
                taken.insert(target);
            }
            targets[i] = Some(match found {
                Some(target) => target,
                None => Target::Custom,
            });
        }
        let targets: Vec<Target> = targets
            .into_iter()
            .map(|t| t.unwrap_or(Target::Custom))
            .collect();
        let mut code = ErrorCode::InvalidMapping;
        if problems.is_empty() {
            code = ErrorCode::MissingColumn;
            for required in [Target::Name, Target::Phone] {
                if !taken.contains(&required) {
                    problems.push(FieldError {
                        row: Some(1),
                        column: None,
                        field: Some(field_name(required).to_string()),
                        code: ErrorCode::MissingColumn,
                        message: format!(
                            "no column holds the customer's {}: map one with `mapping` (e.g. {{\"Mobile\": \"phone\"}}) or name it {:?}",
                            field_name(required),
                            field_name(required)
                        ),
                    });
                }
            }
        }
        if !problems.is_empty() {
            let detail = match code {
                ErrorCode::InvalidMapping => {
                    "The mapping does not fit the file (see `errors`); no row was read."
                }
                _ => {
                    "The file lacks a column every customer needs (see `errors`); no row was read."
                }
            };
            return Err(ApiError::new(code, detail).with_errors(problems));
        }
        Ok(CustomerColumns { targets, header })
    }

    /// One record as a customer: an empty cell is an absent value.
    pub fn customer(&self, mut cells: Vec<String>) -> CustomerInput {
        let mut input = CustomerInput::default();
        let mut custom = Vec::new();
        for (i, target) in self.targets.iter().enumerate() {
            let Some(cell) = cells.get_mut(i).filter(|c| !c.is_empty()) else {
                continue;
            };
            let value = Some(Scalar::Text(std::mem::take(cell)));
            match target {
                Target::Name => input.name = value,
                Target::Phone => input.phone = value,
                Target::Agent => input.agent = value,
                Target::FollowUpAt => input.follow_up_at = value,
                Target::SourceCreatedAt => input.source_created_at = value,
                Target::DoNotCall => input.do_not_call = value,
                Target::Custom => custom.push((self.header[i].clone(), value)),
            }
        }
        input.fields = DataColumns(custom);
        input
    }

    /// Names the column of a row problem (the field's header).
    pub fn locate(&self, mut error: FieldError) -> FieldError {
        let Some(field) = error.field.as_deref() else {
            return error;
        };
        let index = match field.strip_prefix("fields.") {
            Some(custom) => self
                .header
                .iter()
                .enumerate()
                .position(|(i, h)| self.targets[i] == Target::Custom && h == custom),
            None => FIELDS
                .iter()
                .find(|(_, n)| *n == field)
                .and_then(|(t, _)| self.targets.iter().position(|c| c == t)),
        };
        if let Some(index) = index {
            error.column = Some(Column::Name(self.header[index].clone()));
        }
        error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(header: &[&str]) -> CsvTable {
        CsvTable {
            header: header.iter().map(|h| h.to_string()).collect(),
            ..Default::default()
        }
    }

    fn mapping(json: &str) -> serde_json::Map<String, serde_json::Value> {
        serde_json::from_str(json).expect("works")
    }

    #[test]
    fn aliases_match_without_a_mapping() {
        let mut t = table(&[
            "Full name",
            "Mobile",
            "Agent",
            "Follow-up date",
            "Created",
            "Plan",
            "Comments",
        ]);
        let columns = CustomerColumns::read(&mut t, None).expect("works");
        let cells: Vec<String> = ["Dana", "050", "Jana", "01-12-2026 10:00", "", "Gold", "hi"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let input = columns.customer(cells);
        assert_eq!(input.name, Some(Scalar::Text("Dana".into())));
        assert_eq!(input.phone, Some(Scalar::Text("050".into())));
        assert_eq!(input.agent, Some(Scalar::Text("Jana".into())));
        assert!(
            input.source_created_at.is_none(),
            "an empty cell is no value"
        );
        assert_eq!(
            input.fields.0,
            vec![
                ("Plan".to_string(), Some(Scalar::Text("Gold".into()))),
                ("Comments".to_string(), Some(Scalar::Text("hi".into()))),
            ],
            "a comments column is a custom field like any other"
        );
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
    }

    #[test]
    fn the_template_header_fills_every_field_without_a_mapping() {
        let mut t = table(&TEMPLATE_HEADER);
        let columns = CustomerColumns::read(&mut t, None).expect("works");
        // All but `do_not_call`, which a template leaves out.
        let targets: Vec<Target> = FIELDS
            .iter()
            .map(|(t, _)| *t)
            .filter(|t| *t != Target::DoNotCall)
            .collect();
        assert_eq!(columns.targets, targets);
    }

    #[test]
    fn a_mapping_overrides_and_completes_the_aliases() {
        let mut t = table(&["Client", "Number", "Phone"]);
        let m = mapping(r#"{"client": "name", "Number": "phone", "Phone": "fields"}"#);
        let columns = CustomerColumns::read(&mut t, Some(&m)).expect("works");
        let input = columns.customer(vec!["A".into(), "1".into(), "2".into()]);
        assert_eq!(input.phone, Some(Scalar::Text("1".into())));
        assert_eq!(
            input.fields.0,
            vec![("Phone".to_string(), Some(Scalar::Text("2".into())))]
        );
    }

    #[test]
    fn a_bad_mapping_is_refused_before_any_row() {
        let mut t = table(&["Name", "Phone"]);
        let m = mapping(r#"{"Telefon": "phone", "Name": "surname"}"#);
        let err = CustomerColumns::read(&mut t, Some(&m)).expect_err("fails");
        assert_eq!(err.code, ErrorCode::InvalidMapping);
        assert_eq!(err.errors.len(), 2);
        let mut t = table(&["Name", "Plan"]);
        let err = CustomerColumns::read(&mut t, None).expect_err("fails");
        assert_eq!(err.code, ErrorCode::MissingColumn);
    }
}
