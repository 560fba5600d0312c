//! Cases: one input shape ([`CaseInput`]) whatever the format it came in
//! (JSON, an NDJSON line, a CSV row), and one set of field validators.
//!
//! Validation happens in two steps. [`validate_case`] checks each field on
//! its own (pure, per row); the staff reference is then resolved for a whole
//! batch at once against the integration's groups (see `store::cases`).

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::canonical_enum;
pub use super::values::{DataColumns, Scalar};
use super::values::{data_json, scalar, text, within_years};
use crate::error::{ErrorCode, FieldError, excerpt};

/// The longest `external_id` (the client's Case ID).
pub const MAX_EXTERNAL_ID_CHARS: usize = 255;
/// The longest Staff ID or External Staff ID.
pub const MAX_STAFF_ID_CHARS: usize = 255;

macro_rules! case_enum {
    ($(#[doc = $doc:literal])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[doc = $doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
            /// Lenient: case-insensitive, spaces or hyphens for underscores.
            pub fn parse(input: &str) -> Option<$name> {
                let canonical = canonical_enum(input);
                $name::ALL.iter().copied().find(|v| v.as_str() == canonical)
            }
            pub fn names() -> String {
                $name::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }
    };
}

case_enum! {
    /// How the interaction came in. (`automated_hotline` exists but cannot be imported.)
    Channel { Form = "form", LiveHotline = "live_hotline", Survey = "survey" }
}
case_enum! {
    /// Where the case stands (default `open`).
    CaseStatus { Open = "open", InProgress = "in_progress", Closed = "closed" }
}
case_enum! {
    /// How urgent the case is.
    Priority { Low = "low", Medium = "medium", High = "high", Critical = "critical" }
}

/// One case as sent in JSON or NDJSON. Fields take any scalar so that a
/// wrong type is a row error (`invalid_type`), not a broken request.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "external_id": "T-1", "staff_id": "DEMO-A1", "channel": "live_hotline", "priority": "high",
    "category": "General", "occurred_at": "2026-11-20T14:05:00Z", "data": {"Duration": 312, "Caller": "+420 601 123 456"}
}))]
pub struct CaseInput {
    /// The client's Case ID: required, at most 255 characters, unique per integration.
    #[serde(default, deserialize_with = "scalar")]
    #[schema(value_type = String, required = true)]
    pub external_id: Option<Scalar>,
    /// The system's Staff ID of the staff member involved.
    #[serde(default, deserialize_with = "scalar")]
    #[schema(value_type = Option<String>)]
    pub staff_id: Option<Scalar>,
    /// The client system's ID of the staff member (at least one of the two).
    #[serde(default, deserialize_with = "scalar")]
    #[schema(value_type = Option<String>)]
    pub external_staff_id: Option<Scalar>,
    /// `form`, `live_hotline` or `survey`.
    #[serde(default, deserialize_with = "scalar")]
    #[schema(value_type = Option<Channel>)]
    pub channel: Option<Scalar>,
    /// `open` (default), `in_progress` or `closed`.
    #[serde(default, deserialize_with = "scalar")]
    #[schema(value_type = Option<CaseStatus>)]
    pub status: Option<Scalar>,
    /// `low`, `medium`, `high` or `critical`.
    #[serde(default, deserialize_with = "scalar")]
    #[schema(value_type = Option<Priority>)]
    pub priority: Option<Scalar>,
    /// One of the configured categories.
    #[serde(default, deserialize_with = "scalar")]
    #[schema(value_type = Option<String>)]
    pub category: Option<Scalar>,
    /// RFC 3339 (`2026-11-20T14:05:00Z`).
    #[serde(default, deserialize_with = "scalar")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub occurred_at: Option<Scalar>,
    /// Custom columns: text, numbers or booleans, kept in order.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub data: DataColumns,
}

/// How dates may be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DateInput {
    /// JSON: RFC 3339 only.
    Rfc3339,
    /// CSV and spreadsheets: RFC 3339, or `DD-MM-YYYY HH:MM` read as UTC.
    Spreadsheet,
}

/// What validation needs besides the case.
pub struct CaseRules<'a> {
    /// The configured category names.
    pub categories: &'a [String],
    pub dates: DateInput,
}

/// Which staff member a case names (resolved later, per batch).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StaffRef {
    pub staff_id: Option<String>,
    pub external_staff_id: Option<String>,
}

/// A case whose fields are valid (its staff not yet resolved).
#[derive(Clone, Debug, PartialEq)]
pub struct ValidCase {
    pub external_id: String,
    pub staff: StaffRef,
    pub channel: Option<Channel>,
    /// As sent (a new case without one is `open`; an updated one keeps its own).
    pub status: Option<CaseStatus>,
    pub priority: Option<Priority>,
    pub category: Option<String>,
    pub occurred_at: Option<DateTime<Utc>>,
    /// The custom columns as a JSON object, in order.
    pub data: String,
}

fn enum_value<T: Copy>(
    field: &str,
    raw: Option<String>,
    parse: impl Fn(&str) -> Option<T>,
    names: impl Fn() -> String,
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    let raw = raw?;
    let parsed = parse(&raw);
    if parsed.is_none() {
        errors.push(FieldError::field(
            field,
            ErrorCode::InvalidEnum,
            format!(
                "{:?} is not a {field}; expected one of: {}",
                excerpt(&raw),
                names()
            ),
        ));
    }
    parsed
}

pub fn parse_case_date(raw: &str, dates: DateInput) -> Result<DateTime<Utc>, String> {
    let in_range = |t| within_years(t, raw);
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return in_range(t.with_timezone(&Utc));
    }
    if dates == DateInput::Spreadsheet
        && let Ok(t) = NaiveDateTime::parse_from_str(raw, "%d-%m-%Y %H:%M")
    {
        return in_range(t.and_utc());
    }
    let expected = match dates {
        DateInput::Rfc3339 => "RFC 3339, e.g. 2026-11-20T14:05:00Z",
        DateInput::Spreadsheet => "DD-MM-YYYY HH:MM (UTC), e.g. 20-11-2026 14:05, or RFC 3339",
    };
    Err(format!(
        "{:?} is not a date; expected {expected}",
        excerpt(raw)
    ))
}

/// Checks every field of one case; answers every problem found.
pub fn validate_case(input: &CaseInput, rules: &CaseRules) -> Result<ValidCase, Vec<FieldError>> {
    let mut errors = Vec::new();

    let external_id = text("external_id", &input.external_id, true, &mut errors);
    let type_error = |errors: &[FieldError], fields: &[&str]| {
        errors
            .iter()
            .any(|e| e.field.as_deref().is_some_and(|f| fields.contains(&f)))
    };
    match &external_id {
        None if !type_error(&errors, &["external_id"]) => {
            errors.push(FieldError::field(
                "external_id",
                ErrorCode::MissingExternalId,
                "external_id (the Case ID) is required",
            ));
        }
        Some(id) if id.chars().count() > MAX_EXTERNAL_ID_CHARS => errors.push(FieldError::field(
            "external_id",
            ErrorCode::TooLong,
            format!(
                "external_id has {} characters; at most {MAX_EXTERNAL_ID_CHARS} are allowed",
                id.chars().count()
            ),
        )),
        _ => {}
    }

    let staff_id = text("staff_id", &input.staff_id, true, &mut errors);
    let external_staff_id = text(
        "external_staff_id",
        &input.external_staff_id,
        true,
        &mut errors,
    );
    if staff_id.is_none()
        && external_staff_id.is_none()
        && !type_error(&errors, &["staff_id", "external_staff_id"])
    {
        errors.push(FieldError::field(
            "staff_id",
            ErrorCode::MissingStaffId,
            "staff_id or external_staff_id is required",
        ));
    }
    for (field, value) in [
        ("staff_id", &staff_id),
        ("external_staff_id", &external_staff_id),
    ] {
        if let Some(v) = value
            && v.chars().count() > MAX_STAFF_ID_CHARS
        {
            errors.push(FieldError::field(
                field,
                ErrorCode::TooLong,
                format!("{field} has at most {MAX_STAFF_ID_CHARS} characters"),
            ));
        }
    }

    let raw_channel = text("channel", &input.channel, false, &mut errors);
    let channel = match raw_channel {
        Some(raw) if canonical_enum(&raw) == "automated_hotline" => {
            errors.push(FieldError::field(
                "channel",
                ErrorCode::ChannelNotImportable,
                "cases of the automated hotline channel cannot be imported",
            ));
            None
        }
        raw => enum_value("channel", raw, Channel::parse, Channel::names, &mut errors),
    };
    let status_raw = text("status", &input.status, false, &mut errors);
    let status = enum_value(
        "status",
        status_raw,
        CaseStatus::parse,
        CaseStatus::names,
        &mut errors,
    );
    let priority_raw = text("priority", &input.priority, false, &mut errors);
    let priority = enum_value(
        "priority",
        priority_raw,
        Priority::parse,
        Priority::names,
        &mut errors,
    );

    let category = match text("category", &input.category, false, &mut errors) {
        None => None,
        Some(raw) => {
            let wanted = canonical_enum(&raw);
            let found = rules
                .categories
                .iter()
                .find(|c| canonical_enum(c) == wanted)
                .cloned();
            if found.is_none() {
                errors.push(FieldError::field(
                    "category",
                    ErrorCode::UnknownCategory,
                    format!("{:?} is not a configured category", excerpt(&raw)),
                ));
            }
            found
        }
    };

    let occurred_at = match text("occurred_at", &input.occurred_at, false, &mut errors) {
        None => None,
        Some(raw) => match parse_case_date(&raw, rules.dates) {
            Ok(t) => Some(t),
            Err(message) => {
                errors.push(FieldError::field(
                    "occurred_at",
                    ErrorCode::InvalidDate,
                    message,
                ));
                None
            }
        },
    };

    let data = data_json("data", &input.data, &mut errors);

    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(ValidCase {
        external_id: external_id.unwrap_or_default(),
        staff: StaffRef {
            staff_id,
            external_staff_id,
        },
        channel,
        status,
        priority,
        category,
        occurred_at,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_written_as_json_text_escaped_where_needed() {
        let columns = DataColumns(vec![
            ("plain".into(), Some(Scalar::Text("value 1".into()))),
            (
                "say \"hi\"".into(),
                Some(Scalar::Text("back\\slash\ttab\nline\ré".into())),
            ),
            (
                "n".into(),
                Some(Scalar::Number(serde_json::Number::from(7))),
            ),
            ("gone".into(), None),
        ]);
        let mut errors = Vec::new();
        let text = data_json("data", &columns, &mut errors);
        assert!(errors.is_empty());
        assert_eq!(
            text,
            r#"{"plain":"value 1","say \"hi\"":"back\\slash\ttab\nline\ré","n":7}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(parsed["say \"hi\""], "back\\slash\ttab\nline\ré");
    }

    fn case(json: &str) -> CaseInput {
        serde_json::from_str(json).expect("parses")
    }

    fn categories() -> Vec<String> {
        vec!["Billing".to_string(), "Technical issue".to_string()]
    }

    fn codes(result: Result<ValidCase, Vec<FieldError>>) -> Vec<(String, ErrorCode)> {
        result
            .expect_err("invalid")
            .into_iter()
            .map(|e| (e.field.unwrap_or_default(), e.code))
            .collect()
    }

    #[test]
    fn a_full_case_is_canonical() {
        let categories = categories();
        let rules = CaseRules {
            categories: &categories,
            dates: DateInput::Rfc3339,
        };
        let valid = validate_case(
            &case(r#"{"external_id": " T-1 ", "staff_id": 1001, "channel": "Live hotline", "status": "In-Progress",
                      "priority": "HIGH", "category": "technical  issue", "occurred_at": "2026-11-20T16:05:00+02:00",
                      "data": {"b": 1, "a": "x", "c": true, "skip": null}}"#),
            &rules,
        )
        .expect("valid");
        assert_eq!(valid.external_id, "T-1");
        assert_eq!(valid.staff.staff_id.as_deref(), Some("1001"));
        assert_eq!(valid.channel, Some(Channel::LiveHotline));
        assert_eq!(valid.status, Some(CaseStatus::InProgress));
        assert_eq!(valid.priority, Some(Priority::High));
        assert_eq!(valid.category.as_deref(), Some("Technical issue"));
        assert_eq!(
            valid.occurred_at.map(|t| t.to_rfc3339()),
            Some("2026-11-20T14:05:00+00:00".into())
        );
        assert_eq!(
            valid.data, r#"{"b":1,"a":"x","c":true}"#,
            "order kept, nulls dropped"
        );
    }

    #[test]
    fn every_problem_of_a_case_is_reported() {
        let categories = categories();
        let rules = CaseRules {
            categories: &categories,
            dates: DateInput::Rfc3339,
        };
        let found = codes(validate_case(
            &case(
                r#"{"channel": "automated hotline", "priority": "urgent", "category": "Sales",
                      "occurred_at": "20-11-2026 14:05", "status": true, "data": {"": 1, "x": 1, " x": 2}}"#,
            ),
            &rules,
        ));
        assert_eq!(
            found,
            vec![
                ("external_id".into(), ErrorCode::MissingExternalId),
                ("staff_id".into(), ErrorCode::MissingStaffId),
                ("channel".into(), ErrorCode::ChannelNotImportable),
                ("status".into(), ErrorCode::InvalidType),
                ("priority".into(), ErrorCode::InvalidEnum),
                ("category".into(), ErrorCode::UnknownCategory),
                ("occurred_at".into(), ErrorCode::InvalidDate),
                ("data[0]".into(), ErrorCode::EmptyDataKey),
                ("data.x".into(), ErrorCode::DuplicateDataKey),
            ]
        );
    }

    #[test]
    fn custom_columns_are_written_as_valid_json() {
        let columns = DataColumns(vec![
            (
                "q\"uote".into(),
                Some(Scalar::Text("a\"b\\c\nd\te ü 😀".into())),
            ),
            (
                "n".into(),
                Some(Scalar::Number(
                    serde_json::Number::from_f64(1.5).expect("n"),
                )),
            ),
            ("b".into(), Some(Scalar::Bool(false))),
            ("none".into(), None),
        ]);
        let mut errors = Vec::new();
        let text = data_json("data", &columns, &mut errors);
        assert!(errors.is_empty());
        let parsed: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(
            parsed,
            serde_json::json!({"q\"uote": "a\"b\\c\nd\te ü 😀", "n": 1.5, "b": false})
        );
        assert_eq!(
            text,
            serde_json::to_string(&parsed).expect("text"),
            "same text as serde_json"
        );
    }

    #[test]
    fn ids_are_bounded() {
        let rules = CaseRules {
            categories: &[],
            dates: DateInput::Rfc3339,
        };
        let long = "x".repeat(256);
        let found = codes(validate_case(
            &case(&format!(r#"{{"external_id": "{long}", "staff_id": "A"}}"#)),
            &rules,
        ));
        assert_eq!(found, vec![("external_id".into(), ErrorCode::TooLong)]);
        let ok = "x".repeat(255);
        assert!(
            validate_case(
                &case(&format!(r#"{{"external_id": "{ok}", "staff_id": "A"}}"#)),
                &rules
            )
            .is_ok()
        );
    }

    #[test]
    fn spreadsheet_dates_also_take_the_day_first_format() {
        let t = parse_case_date("20-11-2026 14:05", DateInput::Spreadsheet).expect("date");
        assert_eq!(t.to_rfc3339(), "2026-11-20T14:05:00+00:00");
        assert!(parse_case_date("20-11-2026 14:05", DateInput::Rfc3339).is_err());
        assert!(parse_case_date("31-02-2026 10:00", DateInput::Spreadsheet).is_err());
        assert!(parse_case_date("20-11-12026 14:05", DateInput::Spreadsheet).is_err());
        assert!(parse_case_date("20-11-0000 14:05", DateInput::Spreadsheet).is_err());
    }

    #[test]
    fn unknown_fields_break_the_request() {
        assert!(
            serde_json::from_str::<CaseInput>(r#"{"external_id": "T", "chanel": "form"}"#).is_err()
        );
        assert!(serde_json::from_str::<CaseInput>(r#"{"external_id": {"nested": 1}}"#).is_err());
    }
}
