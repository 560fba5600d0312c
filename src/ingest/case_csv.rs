//! The cases CSV (the spreadsheet uploader's contract): `Staff ID`,
//! `External Staff ID`, `Case ID`, then the client's own columns and,
//! optionally, the known ones (`Channel`, `Status`, `Priority`, `Category`,
//! `Occurred At`). Every other column goes into the case's `data`, whatever
//! its header says (nothing sent is dropped). This layer only checks the header layout and turns rows
//! into [`CaseInput`]s; every field check is the shared case validators'.

use crate::domain::case::{CaseInput, DataColumns, Scalar};
use crate::error::{Column, ErrorCode, FieldError, excerpt};
use crate::ingest::csv::{CsvTable, at};

const MANDATORY: [(&str, ErrorCode, &str); 3] = [
    ("staff id", ErrorCode::FirstColumnNotStaffId, "Staff ID"),
    (
        "external staff id",
        ErrorCode::SecondColumnNotExternalStaffId,
        "External Staff ID",
    ),
    ("case id", ErrorCode::ThirdColumnNotCaseId, "Case ID"),
];

/// The known columns, by normalized header, and the field each fills.
const KNOWN: [(&str, &str); 5] = [
    ("channel", "channel"),
    ("status", "status"),
    ("priority", "priority"),
    ("category", "category"),
    ("occurred at", "occurred_at"),
];

/// The header of a cases file as a template writes it: the mandatory
/// columns, then the known ones (each read as [`KNOWN`] says).
pub const TEMPLATE_HEADER: [&str; 8] = [
    "Staff ID",
    "External Staff ID",
    "Case ID",
    "Channel",
    "Status",
    "Priority",
    "Category",
    "Occurred At",
];

/// Lower case, with runs of spaces, underscores and hyphens as one space.
fn normalize(header: &str) -> String {
    header
        .to_lowercase()
        .split(|c: char| c.is_whitespace() || c == '_' || c == '-')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Mandatory,
    Known(&'static str),
    Data,
}

/// How the columns of a cases CSV are read.
pub struct CaseColumns {
    roles: Vec<Role>,
    header: Vec<String>,
}

impl CaseColumns {
    /// Checks the header layout, adding problems (and warnings) to `table`;
    /// `None` when the rows cannot be read as cases.
    pub fn read(table: &mut CsvTable) -> Option<CaseColumns> {
        let problems_before = table.errors.len();
        let normalized: Vec<String> = table.header.iter().map(|h| normalize(h)).collect();
        let mandatory_names: Vec<&str> = MANDATORY.iter().map(|(n, _, _)| *n).collect();
        if !normalized
            .iter()
            .any(|h| mandatory_names.contains(&h.as_str()))
        {
            table.errors.push(at(
                1,
                None,
                ErrorCode::MissingHeaderRow,
                "the first line looks like data, not headers: it must start with Staff ID, External Staff ID, Case ID",
            ));
            return None;
        }
        let mut layout_ok = true;
        for (i, (name, code, label)) in MANDATORY.iter().enumerate() {
            if normalized.get(i).map(String::as_str) != Some(*name) {
                layout_ok = false;
                let found = table.header.get(i).cloned().unwrap_or_default();
                table.errors.push(at(
                    1,
                    Some(Column::Index(i + 1)),
                    *code,
                    format!(
                        "column {} must be {label:?}, not {:?}",
                        i + 1,
                        excerpt(&found)
                    ),
                ));
            }
        }
        let mut roles = Vec::with_capacity(normalized.len());
        // The known columns found so far: (field, column index).
        let mut known_at: Vec<(&str, usize)> = Vec::new();
        for (i, name) in normalized.iter().enumerate() {
            let role = if i < 3 {
                Role::Mandatory
            } else if let Some((_, field)) = KNOWN.iter().find(|(known, _)| known == name) {
                match known_at.iter().find(|(f, _)| f == field) {
                    // Headers equal but for letter case are reported by
                    // the table already; "Occurred At" and "occurred_at"
                    // are not, and one would overwrite the other.
                    Some((_, first))
                        if table.header[*first].to_lowercase()
                            != table.header[i].to_lowercase() =>
                    {
                        table.errors.push(at(
                            1,
                            Some(table.column(i)),
                            ErrorCode::DuplicateHeader,
                            format!(
                                "the header {:?} (column {}) names the same field as {:?} (column {})",
                                excerpt(&table.header[i]),
                                i + 1,
                                excerpt(&table.header[*first]),
                                first + 1
                            ),
                        ));
                    }
                    Some(_) => {}
                    None => known_at.push((field, i)),
                }
                Role::Known(field)
            } else {
                Role::Data
            };
            roles.push(role);
        }
        if layout_ok && !roles.contains(&Role::Data) {
            table.errors.push(at(
                1,
                None,
                ErrorCode::NoDataColumns,
                "after Staff ID, External Staff ID and Case ID the file needs at least one column of your own data",
            ));
        }
        // Rows breaking a CSV rule leave the columns readable: the other
        // rows still go through the validators, to report every problem.
        let readable =
            layout_ok && table.header_problems == 0 && table.errors.len() == problems_before;
        readable.then(|| CaseColumns {
            roles,
            header: table.header.clone(),
        })
    }

    /// One record as a case: an empty cell is an absent value.
    pub fn case(&self, mut cells: Vec<String>) -> CaseInput {
        let mut cell = |i: usize| {
            cells
                .get_mut(i)
                .filter(|c| !c.is_empty())
                .map(|c| Scalar::Text(std::mem::take(c)))
        };
        let mut case = CaseInput {
            staff_id: cell(0),
            external_staff_id: cell(1),
            external_id: cell(2),
            ..Default::default()
        };
        let mut data = Vec::new();
        for (i, role) in self.roles.iter().enumerate() {
            match role {
                Role::Known("channel") => case.channel = cell(i),
                Role::Known("status") => case.status = cell(i),
                Role::Known("priority") => case.priority = cell(i),
                Role::Known("category") => case.category = cell(i),
                Role::Known(_) => case.occurred_at = cell(i),
                Role::Data => {
                    if let Some(value) = cell(i) {
                        data.push((self.header[i].clone(), Some(value)));
                    }
                }
                Role::Mandatory => {}
            }
        }
        case.data = DataColumns(data);
        case
    }

    /// Names the column of a field error (`staff_id` → `Staff ID`, `data.X` → `X`).
    pub fn locate(&self, mut error: FieldError) -> FieldError {
        let index = match error.field.as_deref() {
            Some("staff_id") => Some(0),
            Some("external_staff_id") => Some(1),
            Some("external_id") => Some(2),
            Some(field) => self
                .roles
                .iter()
                .position(|r| *r == Role::Known(known_field(field)))
                .or_else(|| {
                    field
                        .strip_prefix("data.")
                        .and_then(|name| self.header.iter().position(|h| h == name))
                }),
            None => None,
        };
        if let Some(i) = index {
            error.column = Some(Column::Name(self.header[i].clone()));
        }
        error.message = in_column_names(error.code, &error.message);
        error
    }
}

/// A validator's message in the uploader's column names, not the JSON
/// fields' (`external_id` → `Case ID`).
fn in_column_names(code: ErrorCode, message: &str) -> String {
    match code {
        ErrorCode::MissingExternalId => return "the Case ID is required".into(),
        ErrorCode::MissingStaffId => {
            return "the Staff ID (or the External Staff ID) is required".into();
        }
        _ => {}
    }
    for (field, label) in [
        ("external_staff_id", "External Staff ID"),
        ("staff_id", "Staff ID"),
        ("external_id", "Case ID"),
        ("occurred_at", "Occurred At"),
    ] {
        if let Some(rest) = message.strip_prefix(field) {
            return format!("{label}{rest}");
        }
    }
    message.to_string()
}

fn known_field(field: &str) -> &'static str {
    KNOWN
        .iter()
        .find(|(_, f)| *f == field)
        .map(|(_, f)| *f)
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::csv::read_table;
    use crate::store::models::CsvLimits;

    fn columns(csv: &str) -> (Option<CaseColumns>, Vec<ErrorCode>, Vec<ErrorCode>) {
        let mut table = read_table(csv.as_bytes(), &CsvLimits::default(), None, "cases");
        let columns = CaseColumns::read(&mut table);
        (
            columns,
            table.errors.iter().map(|e| e.code).collect(),
            table.warnings.iter().map(|e| e.code).collect(),
        )
    }

    #[test]
    fn the_first_three_columns_are_fixed() {
        let (_, errors, _) = columns("Staff ID,Case ID,External Staff ID,Film\n1,2,3,4\n");
        assert_eq!(
            errors,
            vec![
                ErrorCode::SecondColumnNotExternalStaffId,
                ErrorCode::ThirdColumnNotCaseId
            ]
        );
        let (_, errors, _) = columns("A-1,crm-1,T-1,Jaws\nA-2,crm-2,T-2,Alien\n");
        assert_eq!(errors, vec![ErrorCode::MissingHeaderRow]);
        let (_, errors, _) = columns("staff_id, EXTERNAL STAFF ID ,Case-ID\nA-1,,T-1\n");
        assert_eq!(errors, vec![ErrorCode::NoDataColumns]);
    }

    #[test]
    fn the_template_header_is_read_as_the_known_columns() {
        let header = format!("{},Reason\nA-1,,T-1,,,,,,x\n", TEMPLATE_HEADER.join(","));
        let (columns, errors, warnings) = columns(&header);
        assert!(
            errors.is_empty() && warnings.is_empty(),
            "{errors:?} {warnings:?}"
        );
        let columns = columns.expect("readable");
        let fields: Vec<Role> = KNOWN.iter().map(|(_, field)| Role::Known(field)).collect();
        assert_eq!(columns.roles[3..8], fields[..]);
        assert_eq!(columns.roles[8], Role::Data);
    }

    #[test]
    fn known_columns_and_every_other_column_as_data() {
        let (columns, errors, warnings) = columns(
            "Staff ID,External Staff ID,Case ID,Film,Channel,Comments,Occurred At\nA-1,,T-1,Jaws,Form,hi,\n",
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert!(warnings.is_empty(), "{warnings:?}");
        let columns = columns.expect("readable");
        let case = columns.case(
            ["A-1", "", "T-1", "Jaws", "Form", "hi", ""]
                .map(String::from)
                .to_vec(),
        );
        assert_eq!(case.staff_id, Some(Scalar::Text("A-1".into())));
        assert_eq!(case.external_staff_id, None, "an empty cell is absent");
        assert_eq!(case.channel, Some(Scalar::Text("Form".into())));
        assert_eq!(case.occurred_at, None);
        assert_eq!(
            case.data.0,
            vec![
                ("Film".to_string(), Some(Scalar::Text("Jaws".into()))),
                ("Comments".to_string(), Some(Scalar::Text("hi".into()))),
            ]
        );
    }
}
