//! The JSON and NDJSON case parser and the case validators on any bytes.
#![no_main]

use intake::domain::case::{CaseInput, CaseRules, DateInput, validate_case};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let categories = vec!["Billing".to_string(), "Sales".to_string()];
    let check = |case: &CaseInput| {
        for dates in [DateInput::Rfc3339, DateInput::Spreadsheet] {
            let rules = CaseRules {
                categories: &categories,
                dates,
            };
            let _ = validate_case(case, &rules);
        }
    };
    // A whole body ({"cases": [...]}, or one case) …
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let cases = value.get("cases").cloned().unwrap_or(value);
        let items = match cases {
            serde_json::Value::Array(items) => items,
            one => vec![one],
        };
        for item in items {
            if let Ok(case) = serde_json::from_value::<CaseInput>(item) {
                check(&case);
            }
        }
    }
    // … and NDJSON lines.
    for line in data.split(|b| *b == b'\n') {
        if let Ok(case) = serde_json::from_slice::<CaseInput>(line) {
            check(&case);
        }
    }
});
