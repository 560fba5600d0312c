//! Customers (leads of a campaign): one input shape ([`CustomerInput`])
//! whatever the format (JSON, an NDJSON line, a CSV row), phone numbers
//! normalized to E.164, dates read as the upload says.
//!
//! Like cases, validation has two steps: [`validate_customer`] checks each
//! field of a row on its own; the agent, the campaign's existing customers
//! and the other campaigns are then looked up for a whole batch
//! (`ingest::customers`).

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::values::{DataColumns, Scalar, data_json, scalar, text, within_years};
use crate::error::{ErrorCode, FieldError, excerpt};

/// The longest customer name.
pub const MAX_NAME_CHARS: usize = 255;
/// The longest phone number as sent (longer is not a phone number).
pub const MAX_PHONE_CHARS: usize = 64;
/// The date format of the dialer's uploader.
pub const DEFAULT_DATE_FORMAT: &str = "DD-MM-YYYY HH:MM";

/// One customer as sent. Fields take any scalar so that a wrong type is a
/// row error (`invalid_type`), not a broken request.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "Dana Levi", "phone": "+972 50-234-5678", "agent": "Jana Novak",
    "follow_up_at": "2026-11-24T09:30:00+02:00", "fields": {"Plan": "Gold", "Score": 7}
}))]
pub struct CustomerInput {
    /// Required; at most 255 characters.
    #[serde(default, deserialize_with = "scalar")]
    #[schema(value_type = String)]
    pub name: Option<Scalar>,
    /// Required: any common format; normalized to E.164 (national numbers are
    /// read in the campaign's `default_region` unless `international_format`).
    #[serde(default, deserialize_with = "scalar")]
    #[schema(value_type = String)]
    pub phone: Option<Scalar>,
    /// The exact name of an active agent of the campaign's group (surrounding
    /// spaces ignored; letter case and inner spaces must match).
    #[serde(default, deserialize_with = "scalar")]
    #[schema(value_type = Option<String>)]
    pub agent: Option<Scalar>,
    /// RFC 3339 in JSON; `date_format` in `timezone` in CSV.
    #[serde(default, deserialize_with = "scalar")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub follow_up_at: Option<Scalar>,
    /// When the lead was created in the source system (same formats).
    #[serde(default, deserialize_with = "scalar")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub source_created_at: Option<Scalar>,
    /// The customer asked not to be called (a boolean; in CSV `true`/`false`,
    /// `yes`/`no`, `1`/`0`). Sent, it is the customer's value even where
    /// `update_contact_allowed` is ticked: `true` keeps or sets the block.
    /// Not sent: a new customer is not blocked; a stored one keeps its value
    /// (unless `update_contact_allowed` clears it).
    #[serde(default, deserialize_with = "scalar")]
    #[schema(value_type = Option<bool>)]
    pub do_not_call: Option<Scalar>,
    /// Custom fields: text, numbers or booleans. On an update they are
    /// merged into the stored ones.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub fields: DataColumns,
}

/// What `unique_mode` does with a phone other campaigns hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UniqueMode {
    /// Add whatever other campaigns hold.
    #[default]
    Allow,
    /// Remove the customer from the other campaigns, add it here.
    Move,
    /// Add only if no other campaign holds the phone (else skipped,
    /// `exists_in_other_campaign`).
    SkipIfElsewhere,
}

impl UniqueMode {
    pub fn parse(input: &str) -> Option<UniqueMode> {
        match super::canonical_enum(input).as_str() {
            "allow" => Some(UniqueMode::Allow),
            "move" => Some(UniqueMode::Move),
            "skip_if_elsewhere" => Some(UniqueMode::SkipIfElsewhere),
            _ => None,
        }
    }
}

/// The dialer's checkboxes. All default to false / `allow`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CustomerOptions {
    /// Phone numbers carry their country code (`+…` or `00…`); otherwise
    /// they are read in the campaign's `default_region`.
    pub international_format: bool,
    /// A customer already in this campaign (same E.164 phone) is updated in
    /// the fields the input carries; without it (and without
    /// `update_contact_allowed` and `reset_status`), it is skipped
    /// (`already_exists`).
    pub override_existing: bool,
    /// Clear a do-not-call block and set `contact_allowed_at` to now, on
    /// new customers and on existing ones: ticked alone, it updates an
    /// existing customer in these two fields only (outcome `updated`). A
    /// row that sends `do_not_call: true` keeps its block (the row's value
    /// wins) and its `contact_allowed_at` is left as it was.
    pub update_contact_allowed: bool,
    /// Set an existing customer's status to the upload's status: ticked
    /// alone, it updates an existing customer in its status only (outcome
    /// `updated`). Without it, an updated customer keeps its status.
    pub reset_status: bool,
    /// Whether other campaigns (of the integration's groups) may hold the phone too.
    pub unique_mode: UniqueMode,
    /// CSV only: how dates in the file are written (default `DD-MM-YYYY HH:MM`;
    /// tokens `DD`, `MM`, `YYYY`, `YY`, `HH`, `MM`/`mm` after `HH` for minutes,
    /// `SS`; separators `-` `/` `.` `:` space `T`).
    pub date_format: Option<String>,
    /// CSV only: the IANA time zone of the file's dates (default the campaign's).
    pub timezone: Option<String>,
}

/// How dates are read: RFC 3339 (JSON), or a spreadsheet format in a time
/// zone (CSV; RFC 3339 is accepted there too).
#[derive(Clone, Debug)]
pub enum DateRule {
    Rfc3339,
    Local {
        format: DateFormat,
        tz: chrono_tz::Tz,
    },
}

/// A `date_format` such as `DD-MM-YYYY HH:MM`, compiled for chrono.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DateFormat {
    /// As the user wrote it (shown in `invalid_date` messages).
    pub display: String,
    chrono: String,
    has_time: bool,
}

impl DateFormat {
    /// Reads a format written with the tokens `DD`, `MM`, `YYYY`, `YY`,
    /// `HH`, minutes (`MM` after `HH`, or `mm`) and `SS`.
    pub fn parse(spec: &str) -> Result<DateFormat, String> {
        let spec = spec.trim();
        let mut chrono = String::new();
        let (mut day, mut month, mut year, mut hour) = (false, false, false, false);
        let bytes = spec.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let rest = &spec[i..];
            let (token, len) = if rest.starts_with("YYYY") || rest.starts_with("yyyy") {
                year = true;
                ("%Y", 4)
            } else if rest.starts_with("YY") || rest.starts_with("yy") {
                year = true;
                ("%y", 2)
            } else if rest.starts_with("DD") || rest.starts_with("dd") {
                day = true;
                ("%d", 2)
            } else if rest.starts_with("HH") || rest.starts_with("hh") {
                hour = true;
                ("%H", 2)
            } else if rest.starts_with("mm") || (rest.starts_with("MM") && hour) {
                ("%M", 2)
            } else if rest.starts_with("MM") {
                month = true;
                ("%m", 2)
            } else if rest.starts_with("SS") || rest.starts_with("ss") {
                ("%S", 2)
            } else {
                match bytes[i] {
                    b'-' => ("-", 1),
                    b'/' => ("/", 1),
                    b'.' => (".", 1),
                    b':' => (":", 1),
                    b' ' => (" ", 1),
                    b'T' => ("T", 1),
                    b',' => (",", 1),
                    _ => {
                        return Err(format!(
                            "{:?} is not a date format: use DD, MM, YYYY (or YY), HH, MM (minutes, after HH) and SS with - / . : or spaces, e.g. {DEFAULT_DATE_FORMAT}",
                            excerpt(spec)
                        ));
                    }
                }
            };
            chrono.push_str(token);
            i += len;
        }
        if !(day && month && year) {
            return Err(format!(
                "{:?} is not a date format: it needs a day (DD), a month (MM) and a year (YYYY)",
                excerpt(spec)
            ));
        }
        Ok(DateFormat {
            display: spec.to_string(),
            chrono,
            has_time: hour,
        })
    }

    fn read(&self, raw: &str) -> Option<NaiveDateTime> {
        if self.has_time {
            NaiveDateTime::parse_from_str(raw, &self.chrono).ok()
        } else {
            NaiveDate::parse_from_str(raw, &self.chrono)
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        }
    }
}

/// A local time of `tz` as an instant. Deliberately lenient, as RFC 9557 /
/// Temporal's `compatible` disambiguation and java.time do: a time that
/// occurs twice (clocks turned back) is the earlier instant; a time that
/// does not exist (clocks turned forward) is moved forward by the length of
/// the gap (02:30 in a 02:00→03:00 gap is 03:30).
pub fn local_to_utc(local: NaiveDateTime, tz: chrono_tz::Tz) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(earlier, _) => Some(earlier.with_timezone(&Utc)),
        LocalResult::None => {
            // The offset in force before the gap, applied to the wall time.
            let before = local - chrono::Duration::hours(24);
            let offset = *tz.from_local_datetime(&before).earliest()?.offset();
            let fixed = chrono::Offset::fix(&offset);
            Some((local - fixed).and_utc())
        }
    }
}

impl DateRule {
    /// A date as this rule reads it, between the years 1 and 9999.
    pub fn parse(&self, raw: &str) -> Result<DateTime<Utc>, String> {
        within_years(self.read(raw)?, raw)
    }

    fn read(&self, raw: &str) -> Result<DateTime<Utc>, String> {
        if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
            return Ok(t.with_timezone(&Utc));
        }
        match self {
            DateRule::Rfc3339 => Err(format!(
                "{:?} is not a date; expected RFC 3339, e.g. 2026-11-20T14:05:00Z",
                excerpt(raw)
            )),
            DateRule::Local { format, tz } => format
                .read(raw)
                .and_then(|local| local_to_utc(local, *tz))
                .ok_or_else(|| {
                    let example = NaiveDate::from_ymd_opt(2026, 11, 20)
                        .and_then(|d| d.and_hms_opt(14, 5, 0))
                        .map(|t| t.format(&format.chrono).to_string())
                        .unwrap_or_default();
                    format!(
                        "{:?} is not a date; expected {} ({} time), e.g. {example}",
                        excerpt(raw),
                        format.display,
                        tz.name()
                    )
                }),
        }
    }
}

/// What validation needs besides the row.
pub struct CustomerRules<'a> {
    /// The campaign's region for numbers without a country code.
    pub region: phonenumber::country::Id,
    pub international_format: bool,
    pub dates: &'a DateRule,
}

/// A customer whose fields are valid (agent not yet resolved).
#[derive(Clone, Debug, PartialEq)]
pub struct ValidCustomer {
    pub name: String,
    /// E.164.
    pub phone: String,
    /// As sent (trimmed).
    pub phone_raw: String,
    /// The agent's name as sent (trimmed).
    pub agent: Option<String>,
    pub follow_up_at: Option<DateTime<Utc>>,
    pub source_created_at: Option<DateTime<Utc>>,
    /// `do_not_call` as sent.
    pub do_not_call: Option<bool>,
    /// The custom fields as a JSON object text.
    pub fields: String,
}

/// A phone number in E.164 (`+972502345678`), or why it is not one.
///
/// With `international` the number must carry its country code (`+…`, or
/// `00…` as dialled from most countries); otherwise it is read as dialled in
/// `region` (a `+…` number is still read as international).
pub fn normalize_phone(
    raw: &str,
    region: phonenumber::country::Id,
    international: bool,
) -> Result<String, String> {
    let trimmed = raw.trim();
    if trimmed.chars().count() > MAX_PHONE_CHARS {
        return Err(format!(
            "a phone number has at most {MAX_PHONE_CHARS} characters"
        ));
    }
    let candidate = if international {
        if let Some(rest) = trimmed.strip_prefix("00") {
            format!("+{rest}")
        } else if trimmed.starts_with('+') {
            trimmed.to_string()
        } else {
            return Err(format!(
                "{:?} has no country code (+… or 00…), which international_format requires",
                excerpt(trimmed)
            ));
        }
    } else {
        trimmed.to_string()
    };
    let region_hint = (!international).then_some(region);
    let invalid = || {
        if international {
            format!("{:?} is not a valid phone number", excerpt(trimmed))
        } else {
            format!(
                "{:?} is not a valid phone number (national numbers are read in region {})",
                excerpt(trimmed),
                region.as_ref()
            )
        }
    };
    let number = phonenumber::parse(region_hint, &candidate).map_err(|_| invalid())?;
    if !phonenumber::is_valid(&number) {
        return Err(invalid());
    }
    Ok(number.format().mode(phonenumber::Mode::E164).to_string())
}

fn date_field(
    field: &str,
    value: &Option<Scalar>,
    rule: &DateRule,
    errors: &mut Vec<FieldError>,
) -> Option<DateTime<Utc>> {
    let raw = text(field, value, false, errors)?;
    match rule.parse(&raw) {
        Ok(t) => Some(t),
        Err(message) => {
            errors.push(FieldError::field(field, ErrorCode::InvalidDate, message));
            None
        }
    }
}

/// Checks every field of one customer; answers every problem found.
pub fn validate_customer(
    input: &CustomerInput,
    rules: &CustomerRules,
) -> Result<ValidCustomer, Vec<FieldError>> {
    let mut errors = Vec::new();
    let name = text("name", &input.name, false, &mut errors);
    match &name {
        None if errors.is_empty() => errors.push(FieldError::field(
            "name",
            ErrorCode::Required,
            "name is required",
        )),
        Some(n) if n.chars().count() > MAX_NAME_CHARS => errors.push(FieldError::field(
            "name",
            ErrorCode::TooLong,
            format!("a name has at most {MAX_NAME_CHARS} characters"),
        )),
        _ => {}
    }
    let before = errors.len();
    let phone_raw = text("phone", &input.phone, true, &mut errors);
    let phone = match &phone_raw {
        None => {
            if errors.len() == before {
                errors.push(FieldError::field(
                    "phone",
                    ErrorCode::Required,
                    "phone is required",
                ));
            }
            None
        }
        Some(raw) => match normalize_phone(raw, rules.region, rules.international_format) {
            Ok(e164) => Some(e164),
            Err(message) => {
                errors.push(FieldError::field("phone", ErrorCode::InvalidPhone, message));
                None
            }
        },
    };
    let agent = text("agent", &input.agent, false, &mut errors);
    let follow_up_at = date_field(
        "follow_up_at",
        &input.follow_up_at,
        rules.dates,
        &mut errors,
    );
    let source_created_at = date_field(
        "source_created_at",
        &input.source_created_at,
        rules.dates,
        &mut errors,
    );
    let do_not_call = flag("do_not_call", &input.do_not_call, &mut errors);
    let fields = data_json("fields", &input.fields, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(ValidCustomer {
        name: name.unwrap_or_default(),
        phone: phone.unwrap_or_default(),
        phone_raw: phone_raw.unwrap_or_default(),
        agent,
        follow_up_at,
        source_created_at,
        do_not_call,
        fields,
    })
}

/// A yes/no field: a JSON boolean, or text `true`/`false`, `yes`/`no`,
/// `1`/`0` (any letter case, as spreadsheets write them).
fn flag(field: &str, value: &Option<Scalar>, errors: &mut Vec<FieldError>) -> Option<bool> {
    let parsed = match value.as_ref()? {
        Scalar::Bool(b) => Some(*b),
        Scalar::Number(n) => match n.as_u64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        Scalar::Text(t) => match t.trim().to_ascii_lowercase().as_str() {
            "" => return None,
            "true" | "yes" | "y" | "1" => Some(true),
            "false" | "no" | "n" | "0" => Some(false),
            _ => None,
        },
    };
    if parsed.is_none() {
        errors.push(FieldError::field(
            field,
            ErrorCode::InvalidType,
            format!("{field} is true or false (also yes/no, 1/0)"),
        ));
    }
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;
    use phonenumber::country::Id;

    fn e164(raw: &str, region: Id, international: bool) -> Result<String, String> {
        normalize_phone(raw, region, international)
    }

    #[test]
    fn national_numbers_are_read_in_the_campaign_region() {
        assert_eq!(
            e164("050-234-5678", Id::IL, false).expect("works"),
            "+972502345678"
        );
        assert_eq!(
            e164("07400 123456", Id::GB, false).expect("works"),
            "+447400123456"
        );
        assert_eq!(
            e164("(201) 555-0123", Id::US, false).expect("works"),
            "+12015550123"
        );
        assert_eq!(
            e164("601 123 456", Id::CZ, false).expect("works"),
            "+420601123456"
        );
        // A number with its country code is read as such in any region.
        assert_eq!(
            e164("+44 7400 123456", Id::IL, false).expect("works"),
            "+447400123456"
        );
    }

    #[test]
    fn international_format_requires_the_country_code() {
        assert_eq!(
            e164("+972 50 234 5678", Id::US, true).expect("works"),
            "+972502345678"
        );
        assert_eq!(
            e164("00420601123456", Id::US, true).expect("works"),
            "+420601123456"
        );
        let err = e164("050-234-5678", Id::IL, true).expect_err("fails");
        assert!(err.contains("no country code"), "{err}");
    }

    #[test]
    fn invalid_numbers_are_refused() {
        for raw in ["12", "not a phone", "+999 123", "050-123", &"5".repeat(80)] {
            assert!(e164(raw, Id::IL, false).is_err(), "{raw}");
        }
    }

    #[test]
    fn date_formats_compile_and_read() {
        let f = DateFormat::parse(DEFAULT_DATE_FORMAT).expect("works");
        let rule = DateRule::Local {
            format: f,
            tz: chrono_tz::Europe::Prague,
        };
        // Winter: UTC+1.
        assert_eq!(
            rule.parse("20-11-2026 14:05").expect("works").to_rfc3339(),
            "2026-11-20T13:05:00+00:00"
        );
        let us = DateRule::Local {
            format: DateFormat::parse("MM/DD/YYYY").expect("works"),
            tz: chrono_tz::UTC,
        };
        assert_eq!(
            us.parse("11/20/2026").expect("works").to_rfc3339(),
            "2026-11-20T00:00:00+00:00"
        );
        assert!(DateFormat::parse("DD-MM").is_err());
        assert!(DateFormat::parse("DD-MM-YYYY QQ").is_err());
        let err = rule.parse("2026-13-01").expect_err("fails");
        assert!(
            err.contains("DD-MM-YYYY HH:MM (Europe/Prague time), e.g. 20-11-2026 14:05"),
            "{err}"
        );
    }

    #[test]
    fn daylight_saving_gaps_move_forward_and_overlaps_take_the_earlier_time() {
        let rule = DateRule::Local {
            format: DateFormat::parse(DEFAULT_DATE_FORMAT).expect("works"),
            tz: chrono_tz::Europe::Prague,
        };
        // 29 March 2026 02:30 does not exist in Prague (02:00 → 03:00 CEST):
        // read as 03:30 CEST = 01:30 UTC.
        assert_eq!(
            rule.parse("29-03-2026 02:30").expect("works").to_rfc3339(),
            "2026-03-29T01:30:00+00:00"
        );
        // 25 October 2026 02:30 happens twice (CEST, then CET): the first.
        assert_eq!(
            rule.parse("25-10-2026 02:30").expect("works").to_rfc3339(),
            "2026-10-25T00:30:00+00:00"
        );
    }

    #[test]
    fn every_problem_of_a_customer_is_reported() {
        let rule = DateRule::Rfc3339;
        let rules = CustomerRules {
            region: Id::IL,
            international_format: false,
            dates: &rule,
        };
        let input: CustomerInput = serde_json::from_str(
            r#"{"phone": "123", "agent": true, "follow_up_at": "20-11-2026 14:05", "fields": {"": 1}}"#,
        )
        .expect("works");
        let codes: Vec<(String, ErrorCode)> = validate_customer(&input, &rules)
            .expect_err("fails")
            .into_iter()
            .map(|e| (e.field.unwrap_or_default(), e.code))
            .collect();
        assert_eq!(
            codes,
            vec![
                ("name".into(), ErrorCode::Required),
                ("phone".into(), ErrorCode::InvalidPhone),
                ("agent".into(), ErrorCode::InvalidType),
                ("follow_up_at".into(), ErrorCode::InvalidDate),
                ("fields[0]".into(), ErrorCode::EmptyDataKey),
            ]
        );
        let ok: CustomerInput = serde_json::from_str(
            r#"{"name": " Dana ", "phone": 972502345678, "fields": {"Plan": "Gold", "x": null}}"#,
        )
        .expect("works");
        let valid = validate_customer(&ok, &rules).expect("works");
        assert_eq!(valid.name, "Dana");
        assert_eq!(valid.phone, "+972502345678");
        assert_eq!(valid.fields, r#"{"Plan":"Gold"}"#);
    }
}
