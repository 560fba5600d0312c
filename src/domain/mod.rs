//! Validated values shared by every way data comes in (JSON, NDJSON, CSV,
//! spreadsheets): parse, don't validate. Each parser answers a
//! [`FieldError`] with a stable code, so that every path reports a bad value
//! the same way.

pub mod access;
pub mod case;
pub mod customer;
pub mod values;

use std::borrow::Cow;
use std::str::FromStr;

use validator::{ValidationError, ValidationErrors, ValidationErrorsKind};

use crate::error::{ErrorCode, FieldError, excerpt};

/// The canonical form of an enum value: trimmed, lower case, runs of
/// spaces and hyphens as one underscore ("Live hotline" → `live_hotline`).
pub fn canonical_enum(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    let mut pending_sep = false;
    for c in input.trim().chars() {
        if c == ' ' || c == '-' || c == '_' || c == '\t' {
            pending_sep = !out.is_empty();
        } else {
            if pending_sep {
                out.push('_');
                pending_sep = false;
            }
            out.extend(c.to_lowercase());
        }
    }
    out
}

pub use crate::store::models::StaffRole;

/// An ISO 3166-1 alpha-2 country code that has a telephone numbering plan,
/// upper case (`IL`, `GB`, `US`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region(String);

impl Region {
    pub fn parse(input: &str) -> Result<Self, String> {
        let upper = input.trim().to_ascii_uppercase();
        let is_alpha2 = upper.len() == 2 && upper.bytes().all(|b| b.is_ascii_uppercase());
        if is_alpha2 && phonenumber::country::Id::from_str(&upper).is_ok() {
            Ok(Region(upper))
        } else {
            Err(format!(
                "{:?} is not an ISO 3166-1 alpha-2 country code with a phone numbering plan",
                excerpt(input)
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An IANA time zone name (`Europe/Prague`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeZoneName(chrono_tz::Tz);

impl TimeZoneName {
    pub fn parse(input: &str) -> Result<Self, String> {
        chrono_tz::Tz::from_str(input.trim())
            .map(TimeZoneName)
            .map_err(|_| format!("{:?} is not an IANA time zone name", excerpt(input)))
    }

    pub fn as_str(&self) -> &str {
        self.0.name()
    }

    pub fn tz(&self) -> chrono_tz::Tz {
        self.0
    }
}

/// The customer statuses of a campaign when none are given.
pub const DEFAULT_CUSTOMER_STATUSES: [&str; 4] = ["new", "follow_up", "waiting", "closed"];

/// A campaign's customer statuses: canonical, non-empty, unique.
pub fn parse_statuses(field: &str, input: &[String]) -> Result<Vec<String>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut out: Vec<String> = Vec::with_capacity(input.len());
    if input.is_empty() {
        errors.push(FieldError::field(
            field,
            ErrorCode::Required,
            "at least one status is required",
        ));
    }
    for (i, raw) in input.iter().enumerate() {
        let status = canonical_enum(raw);
        let at = format!("{field}[{i}]");
        if let Some(c) = control_character(&status, false) {
            errors.push(FieldError::field(
                at.clone(),
                ErrorCode::ControlCharacter,
                control_message(&at, c),
            ));
        } else if status.is_empty() {
            errors.push(FieldError::field(
                at,
                ErrorCode::Required,
                "a status cannot be blank",
            ));
        } else if status.chars().count() > 100 {
            errors.push(FieldError::field(
                at,
                ErrorCode::TooLong,
                "a status has at most 100 characters",
            ));
        } else if out.contains(&status) {
            errors.push(FieldError::field(
                at,
                ErrorCode::DuplicateValue,
                format!("the status {status:?} is listed twice"),
            ));
        } else {
            out.push(status);
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// `validator` rule: a text that is not only white space.
pub fn not_blank(value: &str) -> Result<(), ValidationError> {
    if value.trim().is_empty() {
        Err(ValidationError::new("required").with_message(Cow::Borrowed("must not be blank")))
    } else {
        no_control(value)
    }
}

/// A whole number, also when written with a zero fraction (`313.0`): JSON
/// Schema counts it as an integer, so a schema-valid request sends it.
pub fn whole_number<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    use serde::Deserialize;
    use serde::de::Error;
    let number = serde_json::Number::deserialize(deserializer)?;
    let whole = match (number.as_u64(), number.as_f64()) {
        (Some(n), _) => Some(n),
        (None, Some(f)) if f >= 0.0 && f.fract() == 0.0 && f <= u64::MAX as f64 => Some(f as u64),
        _ => None,
    };
    whole
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| D::Error::custom(format!("expected a whole number in range, got {number}")))
}

/// [`whole_number`] for an optional field (`null` or absent: `None`).
pub fn optional_whole_number<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    use serde::Deserialize;
    #[derive(Deserialize)]
    struct Whole<T: TryFrom<u64>>(#[serde(deserialize_with = "whole_number")] T);
    Ok(Option::<Whole<T>>::deserialize(deserializer)?.map(|w| w.0))
}

/// The first control character of `text` (C0, DEL, C1): none belongs in an
/// identifier or a name, and PostgreSQL cannot even store a NUL. With
/// `multiline`, tab, line feed and carriage return are text.
///
/// It runs over every value of every row, so it scans bytes rather than
/// decoding characters: C0 and DEL are single bytes, and C1 (U+0080 to
/// U+009F) is `0xC2` followed by the code point's own byte (`0xC2` is only
/// ever a lead byte). Most text holds none of these bytes, which a first
/// pass without branches (vectorized) says at a few instructions per 16
/// bytes; only text with one is scanned byte by byte.
#[inline]
pub fn control_character(text: &str, multiline: bool) -> Option<char> {
    let bytes = text.as_bytes();
    let suspect = bytes.iter().fold(false, |seen, &b| {
        seen | (b < 0x20) | (b == 0x7F) | (b == 0xC2)
    });
    if !suspect {
        return None;
    }
    for (i, &byte) in bytes.iter().enumerate() {
        match byte {
            b'\t' | b'\n' | b'\r' if multiline => {}
            0x00..=0x1F | 0x7F => return Some(char::from(byte)),
            0xC2 => {
                if let Some(&next @ 0x80..=0x9F) = bytes.get(i + 1) {
                    return Some(char::from(next));
                }
            }
            _ => {}
        }
    }
    None
}

/// The message of a `control_character` problem.
pub fn control_message(field: &str, c: char) -> String {
    format!(
        "{field} holds the control character U+{:04X}; remove it",
        c as u32
    )
}

fn control_error(c: char) -> ValidationError {
    ValidationError::new("control_character").with_message(Cow::Owned(format!(
        "holds the control character U+{:04X}; remove it",
        c as u32
    )))
}

/// `validator` rule: single-line text (an identifier, a name).
pub fn no_control(value: &str) -> Result<(), ValidationError> {
    match control_character(value, false) {
        Some(c) => Err(control_error(c)),
        None => Ok(()),
    }
}

/// `validator` rule: free text (a description): line breaks and tabs are
/// text, other control characters are not.
pub fn free_text(value: &str) -> Result<(), ValidationError> {
    match control_character(value, true) {
        Some(c) => Err(control_error(c)),
        None => Ok(()),
    }
}

/// `validator` rule: a [`StaffRole`], matched leniently.
pub fn valid_role(value: &str) -> Result<(), ValidationError> {
    StaffRole::try_from(value.to_string())
        .map(|_| ())
        .map_err(|m| ValidationError::new("invalid_enum").with_message(Cow::Owned(m)))
}

/// `validator` rule: a [`Region`].
pub fn valid_region(value: &str) -> Result<(), ValidationError> {
    Region::parse(value)
        .map(|_| ())
        .map_err(|m| ValidationError::new("invalid_region").with_message(Cow::Owned(m)))
}

/// `validator` rule: a [`TimeZoneName`].
pub fn valid_timezone(value: &str) -> Result<(), ValidationError> {
    TimeZoneName::parse(value)
        .map(|_| ())
        .map_err(|m| ValidationError::new("invalid_timezone").with_message(Cow::Owned(m)))
}

/// Turns `validator`'s report into our field errors, with stable codes:
/// a `length` failure is `required` (too short) or `too_long`; a custom rule's
/// code is one of [`ErrorCode`]'s names.
pub fn field_errors(report: &ValidationErrors) -> Vec<FieldError> {
    let mut out = Vec::new();
    collect(report, "", &mut out);
    out.sort_by(|a, b| a.field.cmp(&b.field));
    out
}

fn collect(report: &ValidationErrors, prefix: &str, out: &mut Vec<FieldError>) {
    for (field, kind) in report.errors() {
        let path = if prefix.is_empty() {
            field.to_string()
        } else {
            format!("{prefix}.{field}")
        };
        match kind {
            ValidationErrorsKind::Field(errors) => {
                for e in errors {
                    out.push(convert(&path, e));
                }
            }
            ValidationErrorsKind::Struct(inner) => collect(inner, &path, out),
            ValidationErrorsKind::List(items) => {
                for (i, inner) in items {
                    collect(inner, &format!("{path}[{i}]"), out);
                }
            }
        }
    }
}

fn convert(field: &str, e: &ValidationError) -> FieldError {
    let (code, message) = match e.code.as_ref() {
        "length" => {
            let min = e.params.get("min").and_then(|v| v.as_u64());
            let max = e.params.get("max").and_then(|v| v.as_u64());
            let actual = e
                .params
                .get("value")
                .and_then(|v| v.as_str())
                .map(|s| s.chars().count() as u64);
            match (min, max, actual) {
                (Some(min), _, Some(n)) if n < min => {
                    (ErrorCode::Required, format!("{field} must not be empty"))
                }
                (_, Some(max), _) => (
                    ErrorCode::TooLong,
                    format!("{field} has at most {max} characters"),
                ),
                _ => (
                    ErrorCode::InvalidBody,
                    format!("{field} has the wrong length"),
                ),
            }
        }
        "control_character" => (
            ErrorCode::ControlCharacter,
            format!(
                "{field} {}",
                e.message.as_deref().unwrap_or("holds a control character")
            ),
        ),
        other => {
            let code = serde_json::from_value(serde_json::Value::String(other.to_string()))
                .unwrap_or(ErrorCode::ValidationFailed);
            let message = e
                .message
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_else(|| format!("{field} is invalid"));
            (code, message)
        }
    };
    FieldError::field(field, code, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_byte_scan_finds_the_first_control_character_as_the_char_scan_does() {
        let by_chars = |text: &str, multiline: bool| {
            text.chars()
                .find(|c| c.is_control() && !(multiline && matches!(c, '\t' | '\n' | '\r')))
        };
        // Every code point up to U+0800 (all one- and two-byte ones, C0,
        // DEL and C1 among them), alone and after multi-byte text.
        let mut texts: Vec<String> = (0..0x800u32)
            .filter_map(char::from_u32)
            .flat_map(|c| {
                [
                    c.to_string(),
                    format!("Žluťoučký kůň {c} ✓"),
                    format!("日本{c}"),
                ]
            })
            .collect();
        texts.extend(
            [
                "",
                "plain",
                "tab\there",
                "line\nfeed",
                "cr\r",
                "nul\0",
                "del\x7f",
                "c1\u{85}",
                "\u{9f}end",
                "\u{a0}nbsp",
                "\u{c2}\u{a2}",
                "a\u{2028}b",
                "🙂\u{1}",
            ]
            .map(String::from),
        );
        for text in &texts {
            for multiline in [false, true] {
                assert_eq!(
                    control_character(text, multiline),
                    by_chars(text, multiline),
                    "{text:?} multiline={multiline}"
                );
            }
        }
    }

    #[test]
    fn enum_values_match_leniently() {
        assert_eq!(canonical_enum("Live hotline"), "live_hotline");
        assert_eq!(canonical_enum("  LIVE-HOTLINE "), "live_hotline");
        assert_eq!(canonical_enum("in  progress"), "in_progress");
        assert_eq!(
            StaffRole::try_from("Evaluator".to_string()),
            Ok(StaffRole::Evaluator)
        );
        assert!(StaffRole::try_from("boss".to_string()).is_err());
    }

    #[test]
    fn regions_are_iso_codes_with_a_numbering_plan() {
        assert_eq!(
            Region::parse("il").map(|r| r.as_str().to_string()),
            Ok("IL".to_string())
        );
        assert!(Region::parse("GB").is_ok());
        assert!(Region::parse("XX").is_err());
        assert!(Region::parse("ISR").is_err());
        assert!(Region::parse("").is_err());
    }

    #[test]
    fn time_zones_are_iana_names() {
        assert_eq!(
            TimeZoneName::parse("Asia/Jerusalem").map(|t| t.as_str().to_string()),
            Ok("Asia/Jerusalem".into())
        );
        assert!(TimeZoneName::parse("Mars/Olympus").is_err());
    }

    #[test]
    fn statuses_are_canonical_and_unique() {
        let ok = parse_statuses("statuses", &["New".into(), "Follow up".into()]).expect("valid");
        assert_eq!(ok, vec!["new", "follow_up"]);
        let err = parse_statuses("statuses", &["new".into(), "NEW".into(), " ".into()])
            .expect_err("invalid");
        let codes: Vec<_> = err
            .iter()
            .map(|e| (e.field.clone().unwrap_or_default(), e.code))
            .collect();
        assert_eq!(
            codes,
            vec![
                ("statuses[1]".to_string(), ErrorCode::DuplicateValue),
                ("statuses[2]".to_string(), ErrorCode::Required)
            ]
        );
    }
}
