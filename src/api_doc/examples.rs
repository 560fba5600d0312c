//! The examples the handlers cannot state one by one: every error answer's
//! problem for each code it names, a value for every parameter, and the
//! pages' items as references to their schemas.
//!
//! Worked on the document as JSON (the typed model hides some fields), then
//! read back.

use serde_json::{Map, Value, json};

use crate::error::ErrorCode;

/// The request id every example shows.
const REQUEST_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
/// An id in the examples (the shape every id has: a UUIDv7).
const EXAMPLE_ID: &str = "019a8c0e-7d1b-7c3a-9a51-0c4f7de3b2aa";
/// A cursor from before every id: as an example it pages from the start.
const FIRST_CURSOR: &str = "AAAAAAAAcACAAAAAAAAAAA";

pub fn complete(doc: &mut utoipa::openapi::OpenApi) {
    let Ok(mut value) = serde_json::to_value(&*doc) else {
        return;
    };
    if let Some(paths) = value.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for operation in item.values_mut() {
                if let Some(operation) = operation.as_object_mut() {
                    error_examples(operation);
                    parameter_examples(operation);
                }
            }
        }
    }
    if let Some(schemas) = value
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        page_items_by_reference(schemas);
    }
    collapse_single_one_of(&mut value);
    strict_forms(&mut value);
    if let Ok(completed) = serde_json::from_value(value) {
        *doc = completed;
    }
}

/// The codes a response's description names, in order, each with the item
/// codes named inside the parentheses that follow it when it is a code that
/// lists items (`validation_failed (…)`, `invalid_csv (…)`). Only codes
/// answered with `status` count.
fn codes_named(description: &str, status: u16) -> Vec<(ErrorCode, Vec<ErrorCode>)> {
    let mut named: Vec<(ErrorCode, Vec<ErrorCode>)> = Vec::new();
    let mut depth = 0usize;
    let mut in_code = false;
    let mut token = String::new();
    for c in description.chars() {
        match c {
            '`' if in_code => {
                in_code = false;
                let Ok(code) = serde_json::from_value::<ErrorCode>(Value::from(token.as_str()))
                else {
                    continue;
                };
                let lists_items =
                    |c: ErrorCode| matches!(c, ErrorCode::ValidationFailed | ErrorCode::InvalidCsv);
                let container = named.last().map(|(c, _)| *c);
                if depth > 0 && container.is_some_and(lists_items) {
                    if let Some((_, items)) = named.last_mut()
                        && !items.contains(&code)
                    {
                        items.push(code);
                    }
                } else if code.status().as_u16() == status && !named.iter().any(|(c, _)| *c == code)
                {
                    named.push((code, Vec::new()));
                }
            }
            '`' => {
                in_code = true;
                token.clear();
            }
            _ if in_code => token.push(c),
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    named
}

/// The first sentence of a code's description.
fn first_sentence(code: ErrorCode) -> String {
    let text = code
        .description()
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    match text.find(". ") {
        Some(end) => text[..=end].trim().to_string(),
        None => text.trim().to_string(),
    }
}

fn problem_example(code: ErrorCode, items: &[ErrorCode]) -> Value {
    let mut problem = json!({
        "type": code.doc_url(),
        "title": code.title(),
        "status": code.status().as_u16(),
        "detail": first_sentence(code),
        "code": code,
        "request_id": REQUEST_ID,
    });
    if matches!(code, ErrorCode::ValidationFailed | ErrorCode::InvalidCsv) {
        let items: Vec<ErrorCode> = if items.is_empty() {
            vec![ErrorCode::Required]
        } else {
            items.to_vec()
        };
        let errors: Vec<Value> = items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let mut error =
                    json!({"row": i + 2, "code": item, "message": first_sentence(*item)});
                if code == ErrorCode::InvalidCsv {
                    error["column"] = json!("Staff ID");
                }
                error
            })
            .collect();
        problem["detail"] = match errors.len() {
            1 => errors[0]["message"].clone(),
            n => json!(format!("{n} problems were found; see `errors`")),
        };
        problem["errors"] = Value::Array(errors);
    }
    problem
}

/// Each error answer shows one example per code it names.
fn error_examples(operation: &mut Map<String, Value>) {
    let Some(responses) = operation
        .get_mut("responses")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for (status, response) in responses.iter_mut() {
        let Ok(status) = status.parse::<u16>() else {
            continue;
        };
        if status < 400 {
            continue;
        }
        let description = response["description"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let Some(content) = response
            .pointer_mut("/content/application~1problem+json")
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        let mut examples = Map::new();
        for (code, items) in codes_named(&description, status) {
            examples.insert(
                code.to_string(),
                json!({"summary": code.title(), "value": problem_example(code, &items)}),
            );
        }
        if !examples.is_empty() {
            content.insert("examples".into(), Value::Object(examples));
        }
    }
}

/// An example value for a parameter, by its name and place; `None` for the
/// options of a stream (see below).
fn parameter_example(name: &str, place: &str) -> Option<Value> {
    Some(match (name, place) {
        ("id" | "jti" | "group_id" | "team_id" | "list_id", _) => json!(EXAMPLE_ID),
        ("staff_id", _) => json!("DEMO-A1"),
        ("cursor", _) => json!(FIRST_CURSOR),
        ("limit", _) => json!(100),
        ("external_id", _) => json!("T-1001"),
        ("phone", _) => json!("+447700900123"),
        ("status", _) => json!("new"),
        ("role", _) => json!("agent"),
        ("q", _) => json!("Dana"),
        ("kind", _) => json!("cases"),
        ("format", _) => json!("zip"),
        _ => return None,
    })
}

/// Every parameter gets an example, except the query options of a route
/// that takes JSON or NDJSON: they apply to the stream only (a JSON body
/// with them is refused), and Swagger UI would send an example with the
/// JSON body; their descriptions give one instead.
fn parameter_examples(operation: &mut Map<String, Value>) {
    let streams = operation
        .get("requestBody")
        .and_then(|body| body.get("content"))
        .and_then(Value::as_object)
        .is_some_and(|content| content.keys().any(|k| k.contains("ndjson")));
    let Some(parameters) = operation
        .get_mut("parameters")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for parameter in parameters {
        let Some(parameter) = parameter.as_object_mut() else {
            continue;
        };
        if parameter.contains_key("example") || parameter.contains_key("examples") {
            continue;
        }
        let name = parameter["name"].as_str().unwrap_or_default().to_string();
        let place = parameter["in"].as_str().unwrap_or_default().to_string();
        if streams && place == "query" {
            let description = parameter
                .entry("description")
                .or_insert_with(|| Value::from(""));
            if let Some(text) = description.as_str() {
                *description = Value::from(format!(
                    "{text} NDJSON only: a JSON body carries its options itself, and a query option \
                     beside it answers 400 `invalid_query`."
                ).trim_start().to_string());
            }
            continue;
        }
        if let Some(example) = parameter_example(&name, &place) {
            parameter.insert("example".into(), example);
        }
    }
}

/// `{"oneOf": [S], …}` (utoipa's way of giving a reference a description
/// or a default) is `S` with those keywords beside it, as OpenAPI 3.1
/// allows: a one-way choice confuses generators.
fn collapse_single_one_of(value: &mut Value) {
    match value {
        Value::Object(object) => {
            let single = object
                .get("oneOf")
                .and_then(Value::as_array)
                .filter(|choices| choices.len() == 1)
                .and_then(|choices| choices[0].as_object())
                .filter(|only| only.keys().all(|k| !object.contains_key(k)))
                .cloned();
            if let Some(only) = single {
                object.remove("oneOf");
                object.extend(only);
            }
            object.values_mut().for_each(collapse_single_one_of);
        }
        Value::Array(items) => items.iter_mut().for_each(collapse_single_one_of),
        _ => {}
    }
}

/// A multipart form's fields are text parts, sent or not: never `null`
/// (a generated client would send "None"); and a field the form does not
/// list is refused (400 `unknown_field`).
fn strict_forms(doc: &mut Value) {
    let mut forms = Vec::new();
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        for operation in paths
            .values()
            .filter_map(Value::as_object)
            .flat_map(|item| item.values())
        {
            if let Some(name) = operation
                .pointer("/requestBody/content/multipart~1form-data/schema/$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
            {
                forms.push(name.to_string());
            }
        }
    }
    for form in forms {
        let Some(schema) = doc
            .pointer_mut(&format!("/components/schemas/{form}"))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        schema.insert("additionalProperties".into(), Value::Bool(false));
        let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
            continue;
        };
        for property in properties.values_mut() {
            if let Some(choices) = property.get_mut("oneOf").and_then(Value::as_array_mut) {
                choices.retain(|choice| choice != &json!({"type": "null"}));
                collapse_single_one_of(property);
            }
            let Some(types) = property.get_mut("type").filter(|t| t.is_array()) else {
                continue;
            };
            let kept: Vec<Value> = types
                .as_array()
                .into_iter()
                .flatten()
                .filter(|t| t.as_str() != Some("null"))
                .cloned()
                .collect();
            *types = match kept.as_slice() {
                [one] => one.clone(),
                _ => Value::Array(kept),
            };
        }
    }
}

/// `Page_X` lists `X` by reference (utoipa copies a generic's type in).
fn page_items_by_reference(schemas: &mut Map<String, Value>) {
    let pages: Vec<(String, String)> = schemas
        .keys()
        .filter_map(|name| {
            let item = name.strip_prefix("Page_")?;
            schemas
                .contains_key(item)
                .then(|| (name.clone(), item.to_string()))
        })
        .collect();
    for (page, item) in pages {
        if let Some(items) = schemas
            .get_mut(&page)
            .and_then(|schema| schema.pointer_mut("/properties/items"))
        {
            items["items"] = json!({"$ref": format!("#/components/schemas/{item}")});
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_read_with_the_items_they_list() {
        let named = codes_named(
            "`unknown_charset`: no such encoding. `invalid_csv` with every problem in `errors` \
             (`missing_header_row`, `short_row`); `unknown_assignment`; or `idempotency_key_reused`",
            422,
        );
        assert_eq!(
            named,
            vec![
                (ErrorCode::UnknownCharset, vec![]),
                (
                    ErrorCode::InvalidCsv,
                    vec![ErrorCode::MissingHeaderRow, ErrorCode::ShortRow]
                ),
                (ErrorCode::UnknownAssignment, vec![]),
                (ErrorCode::IdempotencyKeyReused, vec![]),
            ]
        );
        // A code of another status is not this answer's example.
        let named = codes_named(
            "Another request wrote one of these first (`duplicate_external_id`) or (`concurrent_write`); or `invalid_query`",
            409,
        );
        assert_eq!(
            named,
            vec![
                (ErrorCode::DuplicateExternalId, vec![]),
                (ErrorCode::ConcurrentWrite, vec![])
            ]
        );
    }

    #[test]
    fn every_error_answer_has_an_example_of_each_code_with_its_status() {
        let doc = serde_json::to_value(crate::api_doc::openapi()).expect("json");
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("item") {
                for (status, response) in operation["responses"].as_object().expect("responses") {
                    let status: u16 = status.parse().expect("status");
                    // (`/readyz` answers its own body with its 503.)
                    let Some(problem) = response.pointer("/content/application~1problem+json")
                    else {
                        assert!(
                            status < 400 || path == "/readyz",
                            "{method} {path} {status}"
                        );
                        continue;
                    };
                    let examples = problem["examples"]
                        .as_object()
                        .unwrap_or_else(|| panic!("{method} {path} {status}: no examples"));
                    assert!(!examples.is_empty(), "{method} {path} {status}");
                    for (code, example) in examples {
                        assert_eq!(example["value"]["code"], json!(code));
                        assert_eq!(example["value"]["status"], json!(status), "{method} {path}");
                        assert_eq!(
                            example["value"]["type"],
                            json!(format!("/docs/errors#{code}"))
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn pages_refer_to_their_items() {
        let doc = serde_json::to_value(crate::api_doc::openapi()).expect("json");
        assert_eq!(
            doc["components"]["schemas"]["Page_Case"]["properties"]["items"]["items"],
            json!({"$ref": "#/components/schemas/Case"})
        );
    }
}
