//! The committed `openapi/openapi.json` is what the code generates, and
//! every operation is documented.

use serde_json::Value;

#[test]
fn the_committed_openapi_document_matches_the_code() {
    let generated = intake::api_doc::openapi().to_pretty_json().expect("render");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed.trim_end() == generated.trim_end(),
        "openapi/openapi.json is stale: regenerate it with `cargo run -- openapi > openapi/openapi.json`"
    );
}

#[test]
fn every_operation_is_documented_with_its_scopes_and_errors() {
    let doc: Value =
        serde_json::from_str(&intake::api_doc::openapi().to_json().expect("render")).expect("json");
    let mut operations = 0;
    let mut ids = std::collections::HashSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            operations += 1;
            let name = format!("{method} {path}");
            assert!(
                op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{name}: summary"
            );
            assert!(
                op["description"].as_str().is_some_and(|s| !s.is_empty()),
                "{name}: description"
            );
            assert!(op["operationId"].is_string(), "{name}: operationId");
            assert!(
                ids.insert(op["operationId"].as_str().expect("id").to_string()),
                "{name}: operationId {} is used twice",
                op["operationId"]
            );
            let responses = op["responses"].as_object().expect("responses");
            // A file answer is bytes (a generated client must not decode it
            // as text).
            for answer in responses.values() {
                for (media, content) in answer["content"].as_object().into_iter().flatten() {
                    if media.starts_with("application/vnd.") || media == "application/zip" {
                        assert_eq!(
                            content["schema"]["$ref"], "#/components/schemas/FileBytes",
                            "{name}: {media}"
                        );
                    }
                }
            }
            assert!(
                responses.keys().any(|k| k.starts_with('2')),
                "{name}: a success response"
            );
            if path.starts_with("/v1") {
                // One alternative per scope that lets a token call it: a
                // bearer token, carrying that scope.
                let requirements = op["security"].as_array().expect("security");
                assert!(!requirements.is_empty(), "{name}: scopes");
                for requirement in requirements {
                    assert_eq!(requirement["bearer"], serde_json::json!([]), "{name}");
                    let scopes = requirement["scopes"].as_array().expect("scopes");
                    assert_eq!(scopes.len(), 1, "{name}");
                    let scope = scopes[0].as_str().expect("scope");
                    assert!(
                        doc["components"]["securitySchemes"]["scopes"]["flows"]["clientCredentials"]
                            ["scopes"][scope]
                            .is_string(),
                        "{name}: {scope} is a listed scope"
                    );
                }
                for status in ["401", "403", "500", "503"] {
                    let content =
                        &responses[status]["content"]["application/problem+json"]["schema"]["$ref"];
                    assert_eq!(content, "#/components/schemas/Problem", "{name}: {status}");
                }
                // The headers a client acts on: the challenge, when to retry.
                for (status, header) in [
                    ("401", "WWW-Authenticate"),
                    ("403", "WWW-Authenticate"),
                    ("503", "Retry-After"),
                ] {
                    assert!(
                        responses[status]["headers"][header]["schema"].is_object(),
                        "{name}: {status} declares {header}"
                    );
                }
            } else {
                assert_eq!(op["security"], serde_json::json!([]), "{name}: no token");
            }
        }
    }
    assert!(operations >= 28, "{operations} operations");
    let codes = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .expect("ErrorCode enum");
    assert_eq!(codes.len(), intake::error::ErrorCode::ALL.len());
    assert!(codes.contains(&Value::from("duplicate_staff_id")));
    assert_eq!(
        doc["components"]["schemas"]["FileBytes"]["format"],
        "binary"
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}
