//! Values every resource reads the same way: a JSON scalar as sent, custom
//! columns, text fields, dates within the storable years, and custom
//! columns written as JSON text.

use std::collections::HashSet;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::error::{ErrorCode, FieldError, excerpt};

/// A JSON scalar as sent: text, number or boolean (`null` is absent).
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar {
    Text(String),
    Number(serde_json::Number),
    Bool(bool),
}

impl Scalar {
    pub(crate) fn json_type(&self) -> &'static str {
        match self {
            Scalar::Text(_) => "text",
            Scalar::Number(_) => "a number",
            Scalar::Bool(_) => "a boolean",
        }
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Option<Scalar>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("text, a number, a boolean or null")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(Scalar::Text(v.to_string())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(Scalar::Text(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(Scalar::Number(v.into())))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(Scalar::Number(v.into())))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        serde_json::Number::from_f64(v)
            .map(|n| Some(Scalar::Number(n)))
            .ok_or_else(|| E::custom("not a finite number"))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(Scalar::Bool(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

pub(crate) fn scalar<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Scalar>, D::Error> {
    d.deserialize_option(ScalarVisitor)
}

/// Custom columns in the order sent, repeats kept (so that they can be
/// reported rather than silently merged).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DataColumns(pub Vec<(String, Option<Scalar>)>);

impl<'de> Deserialize<'de> for DataColumns {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ColumnsVisitor;
        impl<'de> Visitor<'de> for ColumnsVisitor {
            type Value = DataColumns;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of custom columns (text, number or boolean values)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<DataColumns, A::Error> {
                let mut columns = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(key) = map.next_key::<String>()? {
                    let value = map.next_value_seed(ScalarSeed)?;
                    columns.push((key, value));
                }
                Ok(DataColumns(columns))
            }
        }
        d.deserialize_map(ColumnsVisitor)
    }
}

struct ScalarSeed;
impl<'de> de::DeserializeSeed<'de> for ScalarSeed {
    type Value = Option<Scalar>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        scalar(d)
    }
}

/// Text of a field that must be text (IDs also take integers).
pub(crate) fn text(
    field: &str,
    value: &Option<Scalar>,
    integers: bool,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    match value {
        None => None,
        Some(Scalar::Text(s)) => {
            let trimmed = s.trim();
            if let Some(c) = super::control_character(trimmed, false) {
                errors.push(FieldError::field(
                    field,
                    ErrorCode::ControlCharacter,
                    super::control_message(field, c),
                ));
                return None;
            }
            (!trimmed.is_empty()).then(|| trimmed.to_string())
        }
        Some(Scalar::Number(n)) if integers && (n.is_i64() || n.is_u64()) => Some(n.to_string()),
        Some(other) => {
            errors.push(FieldError::field(
                field,
                ErrorCode::InvalidType,
                format!("{field} must be text, not {}", other.json_type()),
            ));
            None
        }
    }
}

/// A date both databases store and COPY reads: the years 1 to 9999.
pub(crate) fn within_years(t: DateTime<Utc>, raw: &str) -> Result<DateTime<Utc>, String> {
    use chrono::Datelike;
    if (1..=9999).contains(&t.year()) {
        Ok(t)
    } else {
        Err(format!("{:?} is outside the years 1 to 9999", excerpt(raw)))
    }
}

/// Parses a date as `dates` allows.
/// Custom columns as JSON object text, in order (nulls dropped); empty and
/// repeated names are problems of the field `field`. Written straight to
/// text: no intermediate map, no copy of the values.
pub(crate) fn data_json(
    field: &str,
    columns: &DataColumns,
    errors: &mut Vec<FieldError>,
) -> String {
    let mut out = String::with_capacity(2 + columns.0.len() * 24);
    out.push('{');
    let mut seen: HashSet<&str> = HashSet::with_capacity(columns.0.len());
    for (i, (key, value)) in columns.0.iter().enumerate() {
        let key = key.trim();
        if key.is_empty() {
            errors.push(FieldError::field(
                format!("{field}[{i}]"),
                ErrorCode::EmptyDataKey,
                format!("custom column {} has no name", i + 1),
            ));
        } else if let Some(c) = super::control_character(key, false) {
            errors.push(FieldError::field(
                format!("{field}[{i}]"),
                ErrorCode::ControlCharacter,
                format!(
                    "the name of custom column {} holds the control character U+{:04X}; remove it",
                    i + 1,
                    c as u32
                ),
            ));
        } else if !seen.insert(key) {
            errors.push(FieldError::field(
                format!("{field}.{key}"),
                ErrorCode::DuplicateDataKey,
                format!("the custom column {:?} appears twice", excerpt(key)),
            ));
        } else if let Some(Scalar::Text(text)) = value
            && let Some(c) = super::control_character(text, true)
        {
            errors.push(FieldError::field(
                format!("{field}.{key}"),
                ErrorCode::ControlCharacter,
                format!(
                    "the custom column {:?} holds the control character U+{:04X}; remove it (line breaks and tabs are fine)",
                    excerpt(key),
                    c as u32
                ),
            ));
        } else if let Some(value) = value {
            if out.len() > 1 {
                out.push(',');
            }
            push_json_string(&mut out, key);
            out.push(':');
            match value {
                Scalar::Text(text) => push_json_string(&mut out, text),
                Scalar::Number(n) => out.push_str(&n.to_string()),
                Scalar::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            }
        }
    }
    out.push('}');
    out
}

/// Appends `text` as a JSON string literal.
fn push_json_string(out: &mut String, text: &str) {
    out.push('"');
    // Most texts need no escape: one pass the compiler vectorizes decides.
    let special = |b: u8| b == b'"' || b == b'\\' || b < 0x20;
    if !text.bytes().fold(false, |found, b| found | special(b)) {
        out.push_str(text);
        out.push('"');
        return;
    }
    let mut plain = 0;
    // Every byte to escape is ASCII, so a byte scan keeps UTF-8 intact.
    for (i, byte) in text.bytes().enumerate() {
        let escaped = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            b if b < 0x20 => {
                out.push_str(&text[plain..i]);
                out.push_str(&format!("\\u{b:04x}"));
                plain = i + 1;
                continue;
            }
            _ => continue,
        };
        out.push_str(&text[plain..i]);
        out.push_str(escaped);
        plain = i + 1;
    }
    out.push_str(&text[plain..]);
    out.push('"');
}
