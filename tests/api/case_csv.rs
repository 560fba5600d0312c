//! `POST /v1/cases/csv`: the uploader's rules, each code with its line and
//! column, encodings and delimiters, and the shared case validators.

use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, body, form, spawn_app, spawn_app_with};

struct Uploader {
    app: TestApp,
    group: String,
    team: String,
    token: String,
}

async fn uploader_on(app: TestApp) -> Uploader {
    let group = app.create_group("Group A").await;
    let other = app.create_group("Group B").await;
    let team = app.create_team(&group, "Tier 1").await;
    let response = app
        .admin(Method::PUT, "/v1/admin/staff")
        .json(&json!({"staff": [
            {"staff_id": "A-1", "external_id": "crm-1", "name": "Ann", "role": "agent", "group_id": group},
            {"staff_id": "E-1", "name": "Eva", "role": "evaluator", "group_id": group},
            {"staff_id": "B-1", "name": "Bob", "role": "agent", "group_id": other},
        ]}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let integration = app.create_integration("Uploader", &[&group]).await;
    let (token, _) = app.mint(&integration, &["cases:write", "cases:read"]).await;
    Uploader {
        app,
        group,
        team,
        token,
    }
}

async fn uploader() -> Uploader {
    uploader_on(spawn_app().await).await
}

impl Uploader {
    async fn send(&self, fields: &[(&str, &[u8])]) -> Response {
        let (content_type, body) = form(fields);
        self.app
            .client
            .post(self.app.url("/v1/cases/csv"))
            .bearer_auth(&self.token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request")
    }

    /// Uploads `csv` into a list assigned to the group.
    async fn upload(&self, csv: &[u8]) -> Response {
        self.send(&[
            ("file", csv),
            ("list_name", b"Uploaded"),
            ("assign_group", self.group.as_bytes()),
        ])
        .await
    }

    async fn stored(&self) -> Vec<Value> {
        let response = self.app.get_as(&self.token, "/v1/cases?limit=1000").await;
        body(response).await["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Uploads and expects `invalid_csv`; answers (row, column, code) of every problem.
    async fn problems(&self, csv: &[u8]) -> Vec<(Value, Value, String)> {
        let problem = assert_problem(self.upload(csv).await, 422, "invalid_csv").await;
        assert!(self.stored().await.is_empty(), "nothing written");
        problem["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .map(|e| {
                (
                    e["row"].clone(),
                    e["column"].clone(),
                    e["code"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }
}

const HEADER: &str = "Staff ID,External Staff ID,Case ID,Film,Rating";

#[tokio::test]
async fn a_valid_file_becomes_a_list_of_cases() {
    let u = uploader().await;
    let csv = format!(
        "\u{feff}{HEADER},Channel,Occurred At\r\nA-1,,T-1,Jaws,5,Live hotline,20-11-2026 14:05\r\n,crm-1,T-2,Alien,4,,\r\n"
    );
    let response = u.upload(csv.as_bytes()).await;
    assert_eq!(response.status(), 201);
    let imported = body(response).await;
    assert_eq!(imported["created"], 2);
    assert_eq!(imported["list"]["name"], "Uploaded");
    assert_eq!(imported["list"]["case_count"], 2);
    assert_eq!(
        imported["list"]["assignment"],
        json!({"kind": "group", "id": u.group})
    );
    assert_eq!(
        imported["detected"],
        json!({"encoding": "utf-8", "encoding_source": "sniffed", "bom": true, "delimiter": ",", "line_ending": "crlf"})
    );
    assert_eq!(imported["cases"][1]["line"], 3);

    let list_id = imported["list"]["id"].as_str().expect("id");
    let list = body(
        u.app
            .get_as(&u.token, &format!("/v1/lists/{list_id}"))
            .await,
    )
    .await;
    assert_eq!(list["source"], "csv");
    let stored = u.stored().await;
    assert_eq!(stored[0]["channel"], "live_hotline");
    assert_eq!(stored[0]["occurred_at"], "2026-11-20T14:05:00Z");
    assert_eq!(
        serde_json::to_string(&stored[0]["data"]).expect("json"),
        r#"{"Film":"Jaws","Rating":"5"}"#
    );
    assert_eq!(
        stored[1]["staff_id"], "A-1",
        "resolved from the External Staff ID"
    );
}

#[tokio::test]
async fn a_missing_header_row_is_reported() {
    let u = uploader().await;
    let found = u
        .problems(b"A-1,crm-1,T-1,Jaws\nA-1,crm-1,T-2,Alien\n")
        .await;
    assert_eq!(
        found,
        vec![(json!(1), Value::Null, "missing_header_row".into())]
    );
}

#[tokio::test]
async fn the_first_three_columns_are_checked_in_order() {
    let u = uploader().await;
    let found = u
        .problems(b"External Staff ID,Staff ID,Ticket,Film\nA-1,crm-1,T-1,Jaws\n")
        .await;
    assert_eq!(
        found,
        vec![
            (json!(1), json!(1), "first_column_not_staff_id".into()),
            (
                json!(1),
                json!(2),
                "second_column_not_external_staff_id".into()
            ),
            (json!(1), json!(3), "third_column_not_case_id".into()),
        ]
    );
}

#[tokio::test]
async fn only_the_mandatory_columns_is_no_data() {
    let u = uploader().await;
    let found = u
        .problems(b"Staff ID,External Staff ID,Case ID,Channel\nA-1,,T-1,form\n")
        .await;
    assert_eq!(
        found,
        vec![(json!(1), Value::Null, "no_data_columns".into())]
    );
    let found = u.problems(format!("{HEADER}\n").as_bytes()).await;
    assert_eq!(found, vec![(json!(1), Value::Null, "no_records".into())]);
}

#[tokio::test]
async fn a_thousand_records_pass_and_a_thousand_and_one_do_not() {
    let u = uploader().await;
    let rows = |n: usize| -> String {
        let mut csv = format!("{HEADER}\n");
        for i in 0..n {
            csv.push_str(&format!("A-1,,T-{i},Film {i},3\n"));
        }
        csv
    };
    let found = u.problems(rows(1001).as_bytes()).await;
    assert_eq!(
        found,
        vec![(json!(1), Value::Null, "too_many_records".into())]
    );
    let response = u.upload(rows(1000).as_bytes()).await;
    assert_eq!(response.status(), 201);
    assert_eq!(body(response).await["created"], 1000);
}

#[tokio::test]
async fn more_than_103_columns_are_too_many() {
    let u = uploader().await;
    let header: Vec<String> = ["Staff ID", "External Staff ID", "Case ID"]
        .into_iter()
        .map(String::from)
        .chain((1..=101).map(|i| format!("Col {i}")))
        .collect();
    let row: Vec<String> = ["A-1", "", "T-1"]
        .into_iter()
        .map(String::from)
        .chain((1..=101).map(|i| i.to_string()))
        .collect();
    let csv = format!("{}\n{}\n", header.join(","), row.join(","));
    let found = u.problems(csv.as_bytes()).await;
    assert_eq!(
        found,
        vec![(json!(1), Value::Null, "too_many_columns".into())]
    );
}

#[tokio::test]
async fn a_cell_over_1000_characters_is_reported_with_its_line_and_column() {
    let u = uploader().await;
    let long = "x".repeat(1001);
    let csv = format!("{HEADER}\nA-1,,T-1,Jaws,5\nA-1,,T-2,{long},4\n");
    let found = u.problems(csv.as_bytes()).await;
    assert_eq!(
        found,
        vec![(json!(3), json!("Film"), "cell_too_long".into())]
    );
    let ok = "x".repeat(1000);
    let response = u
        .upload(format!("{HEADER}\nA-1,,T-2,{ok},4\n").as_bytes())
        .await;
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn a_header_over_1000_characters_is_too_long_and_its_rows_are_not_read() {
    // A header is copied into every row's data and every error naming its
    // column: a long one stops the file before its rows are read.
    let u = uploader().await;
    let long = "h".repeat(1001);
    let mut csv = format!("Staff ID,External Staff ID,Case ID,{long}\n");
    for i in 0..1_000 {
        csv.push_str(&format!("A-1,,T-{i}\n")); // short rows: not reported
    }
    let found = u.problems(csv.as_bytes()).await;
    assert_eq!(found, vec![(json!(1), json!(4), "cell_too_long".into())]);
    let response = u.upload(format!("{long}\nA-1\n").as_bytes()).await;
    let problem = assert_problem(response, 422, "invalid_csv").await;
    assert!(
        problem.to_string().len() < 2_000,
        "the header is not echoed: {problem}"
    );
}

#[tokio::test]
async fn rows_breaking_csv_rules_do_not_hide_the_other_rows_problems() {
    // Every problem at once: the rows that keep the CSV rules still go
    // through the validators; the ones that break them are not read twice.
    let u = uploader().await;
    let long = "x".repeat(1001);
    let csv = format!(
        "{HEADER}\nA-1,,T-1\nNOPE,,T-2,Jaws,5\nA-1,,T-3,{long},4\nA-1,,T-4,Up,3\n,,T-5,Big,2\n"
    );
    let found = u.problems(csv.as_bytes()).await;
    assert_eq!(
        found,
        vec![
            (json!(2), json!("Film"), "short_row".into()),
            (json!(3), json!("Staff ID"), "unknown_staff_id".into()),
            (json!(4), json!("Film"), "cell_too_long".into()),
            (json!(6), json!("Staff ID"), "missing_staff_id".into()),
        ]
    );
}

#[tokio::test]
async fn a_quote_never_closed_is_refused_at_the_line_where_it_opens() {
    // Three records; the quote opened on line 3 would swallow lines 4 and
    // 5 into one cell (one case created, two lost, and a 201).
    let u = uploader().await;
    let csv =
        format!("{HEADER}\nA-1,,T-1,Jaws,5\nA-1,,T-2,\"Alien,4\nA-1,,T-3,Up,3\nA-1,,T-4,Big,2\n");
    let found = u.problems(csv.as_bytes()).await;
    assert_eq!(
        found,
        vec![(json!(3), Value::Null, "unterminated_quote".into())]
    );
    // Closed quotes, doubled quotes and cells on several lines are fine.
    let csv = format!(
        "{HEADER}\nA-1,,T-1,\"Jaws, \"\"the\"\" shark\",5\nA-1,,T-2,\"Alien\nDirector's cut\",4\n"
    );
    let response = u.upload(csv.as_bytes()).await;
    assert_eq!(response.status(), 201);
    assert_eq!(body(response).await["created"], 2);
}

#[tokio::test]
async fn two_headers_naming_one_known_field_are_duplicates() {
    let u = uploader().await;
    let found = u
        .problems(
            format!("{HEADER},Occurred At,Occurred_At\nA-1,,T-1,Jaws,5,2026-01-01T00:00:00Z,\n")
                .as_bytes(),
        )
        .await;
    assert_eq!(
        found,
        vec![(json!(1), json!("Occurred_At"), "duplicate_header".into())]
    );
}

#[tokio::test]
async fn a_form_of_too_many_parts_is_refused() {
    let u = uploader().await;
    let filler = vec![("list_name", b"x".as_slice()); 33];
    let response = u.send(&filler).await;
    assert_problem(response, 400, "invalid_body").await;
    assert!(u.stored().await.is_empty());
}

#[tokio::test]
async fn a_short_row_is_an_error_and_a_long_one_a_warning() {
    let u = uploader().await;
    let found = u
        .problems(format!("{HEADER}\nA-1,,T-1,Jaws\nA-1,,T-2,Alien,4\n").as_bytes())
        .await;
    assert_eq!(found, vec![(json!(2), json!("Rating"), "short_row".into())]);

    // A trailing delimiter is an empty last cell; extra cells are ignored.
    let response = u
        .upload(format!("{HEADER}\nA-1,,T-1,Jaws,\nA-1,,T-2,Alien,4,extra,more\n").as_bytes())
        .await;
    assert_eq!(response.status(), 201);
    let imported = body(response).await;
    assert_eq!(imported["warnings"][0]["code"], "extra_cells");
    assert_eq!(imported["warnings"][0]["row"], 3);
    let stored = u.stored().await;
    assert_eq!(
        stored[0]["data"],
        json!({"Film": "Jaws"}),
        "an empty cell is absent"
    );
}

#[tokio::test]
async fn headers_must_be_unique_and_named() {
    let u = uploader().await;
    let found = u
        .problems(b"Staff ID,External Staff ID,Case ID,Film,,film\nA-1,,T-1,Jaws,1,2\n")
        .await;
    assert_eq!(
        found,
        vec![
            (json!(1), json!(5), "empty_header".into()),
            (json!(1), json!("film"), "duplicate_header".into())
        ]
    );
}

#[tokio::test]
async fn files_that_are_empty_binary_or_too_large_are_refused() {
    let u = uploader().await;
    assert_eq!(
        u.problems(b"").await,
        vec![(Value::Null, Value::Null, "empty_file".into())]
    );
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x06\0\0\0";
    assert_eq!(
        u.problems(png).await,
        vec![(Value::Null, Value::Null, "not_csv".into())]
    );

    let small = uploader_on(
        spawn_app_with(|env| {
            env.insert("INTAKE_MAX_BODY_BYTES".into(), "4KiB".into());
        })
        .await,
    )
    .await;
    let big = format!("{HEADER}\n{}", "A-1,,T-1,Jaws,5\n".repeat(400));
    let problem = assert_problem(small.upload(big.as_bytes()).await, 413, "file_too_large").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("4096")
    );
}

#[tokio::test]
async fn rows_go_through_the_same_validators_as_json() {
    let u = uploader().await;
    let csv = format!(
        "{HEADER},Channel,Priority,Occurred At\nB-1,,T-1,Jaws,5,,,\nA-1,,,Alien,4,,,\nA-1,,T-3,Up,3,automated hotline,soon,2026-13-01\n"
    );
    let found = u.problems(csv.as_bytes()).await;
    assert_eq!(
        found,
        vec![
            (json!(2), json!("Staff ID"), "unknown_staff_id".into()),
            (json!(3), json!("Case ID"), "missing_external_id".into()),
            (json!(4), json!("Channel"), "channel_not_importable".into()),
            (json!(4), json!("Priority"), "invalid_enum".into()),
            (json!(4), json!("Occurred At"), "invalid_date".into()),
        ]
    );
}

#[tokio::test]
async fn spreadsheet_exports_are_read_whatever_their_encoding_and_delimiter() {
    let u = uploader().await;
    // Semicolons, LF, a quoted newline.
    let response = u
        .upload(b"Staff ID;External Staff ID;Case ID;Note\nA-1;;T-1;\"two\nlines\"\n")
        .await;
    assert_eq!(response.status(), 201);
    assert_eq!(body(response).await["detected"]["delimiter"], ";");

    // Windows-1252 (é is 0xE9).
    let response = u
        .upload(b"Staff ID,External Staff ID,Case ID,Note\r\nA-1,,T-2,caf\xe9\r\n")
        .await;
    assert_eq!(response.status(), 201);
    assert_eq!(body(response).await["detected"]["encoding"], "windows-1252");

    // UTF-16 LE with BOM, as Excel's "Unicode text" saves it.
    let text = "Staff ID,External Staff ID,Case ID,Note\r\nA-1,,T-3,Žluťoučký\r\n";
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(text.encode_utf16().flat_map(|u| u.to_le_bytes()))
        .collect();
    let response = u.upload(&utf16).await;
    assert_eq!(response.status(), 201);
    assert_eq!(body(response).await["detected"]["encoding"], "utf-16le");

    let notes: Vec<Value> = u
        .stored()
        .await
        .iter()
        .map(|c| c["data"]["Note"].clone())
        .collect();
    assert_eq!(
        notes,
        vec![json!("two\nlines"), json!("café"), json!("Žluťoučký")]
    );
}

#[tokio::test]
async fn the_left_most_assignment_is_used() {
    let u = uploader().await;
    let csv = format!("{HEADER}\nA-1,,T-1,Jaws,5\n");
    let response = u
        .send(&[
            ("file", csv.as_bytes()),
            ("list_name", b"Mine"),
            ("assign_evaluator", b"E-1"),
            ("assign_team", u.team.as_bytes()),
        ])
        .await;
    assert_eq!(response.status(), 201);
    assert_eq!(
        body(response).await["list"]["assignment"],
        json!({"kind": "team", "id": u.team})
    );

    let response = u
        .send(&[
            ("file", csv.replace("T-1", "T-2").as_bytes()),
            ("list_name", b"Mine"),
            ("assign_evaluator", b"B-1"),
        ])
        .await;
    let problem = assert_problem(response, 422, "unknown_assignment").await;
    assert_eq!(problem["errors"][0]["field"], "assign_evaluator");
    let response = u
        .send(&[("file", csv.replace("T-1", "T-3").as_bytes())])
        .await;
    assert_problem(response, 422, "validation_failed").await;
}

#[tokio::test]
async fn a_dry_run_checks_and_writes_nothing() {
    let u = uploader().await;
    let csv = format!("{HEADER},Comments\nA-1,,T-1,Jaws,5,great call\n");
    let response = u
        .send(&[("file", csv.as_bytes()), ("dry_run", b"true")])
        .await;
    assert_eq!(response.status(), 200);
    let checked = body(response).await;
    assert_eq!(checked["valid"], true);
    assert_eq!(checked["would_create"], 1);
    assert_eq!(checked["warnings"], json!([]), "a comments column is data");
    assert!(u.stored().await.is_empty());
}

#[tokio::test]
async fn the_integrations_own_limits_apply() {
    let u = uploader().await;
    let me = body(u.app.get_as(&u.token, "/v1/me").await).await;
    let integration = me["integration"]["id"].as_str().expect("id").to_string();
    let response = u
        .app
        .admin(
            Method::PATCH,
            &format!("/v1/admin/integrations/{integration}"),
        )
        .json(&json!({"csv_limits": {"max_records": 2, "max_cell_chars": 3}}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let found = u
        .problems(format!("{HEADER}\nA-1,,T-1,Jaws,5\nA-1,,T-2,Up,4\nA-1,,T-3,Big,3\n").as_bytes())
        .await;
    assert_eq!(
        found,
        vec![
            (json!(1), Value::Null, "too_many_records".into()),
            (json!(2), json!("Film"), "cell_too_long".into())
        ]
    );
}

#[tokio::test]
async fn a_corrected_file_is_sent_again_with_on_conflict_update() {
    let u = uploader().await;
    let csv = format!(
        "{HEADER},Channel,Occurred At\r\nA-1,,T-1,Jaws,5,Live hotline,20-11-2026 14:05\r\nA-1,,T-2,Alien,4,form,\r\n"
    );
    assert_eq!(u.upload(csv.as_bytes()).await.status(), 201);

    // Sent again as it was: refused by default, the Case IDs already sent.
    let problem = assert_problem(u.upload(csv.as_bytes()).await, 422, "invalid_csv").await;
    assert_eq!(problem["errors"][0]["code"], "duplicate_external_id");

    // A corrected row, and its channel and date cells left empty.
    let corrected = format!("{HEADER},Channel,Occurred At\r\nA-1,,T-1,Jaws,3,,\r\n");
    let response = u
        .send(&[
            ("file", corrected.as_bytes()),
            ("list_name", b"Corrected"),
            ("assign_group", u.group.as_bytes()),
            ("on_conflict", b"update"),
        ])
        .await;
    assert_eq!(response.status(), 201);
    let imported = body(response).await;
    assert_eq!(imported["created"], 0);
    assert_eq!(imported["updated"], 1);
    assert_eq!(imported["cases"][0]["outcome"], "updated");
    assert_eq!(imported["list"]["case_count"], 1);
    let stored = u.stored().await;
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0]["external_id"], "T-1");
    assert_eq!(stored[0]["channel"], "live_hotline");
    assert_eq!(stored[0]["occurred_at"], "2026-11-20T14:05:00Z");
    assert_eq!(stored[0]["list_id"], imported["list"]["id"]);
    assert_eq!(
        serde_json::to_string(&stored[0]["data"]).expect("json"),
        r#"{"Film":"Jaws","Rating":"3"}"#
    );

    // skip leaves the stored case; an unknown value is refused.
    let response = u
        .send(&[
            ("file", csv.as_bytes()),
            ("on_conflict", b"Skip"),
            ("dry_run", b"true"),
        ])
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(body(response).await["would_skip"], 2);
    let response = u
        .send(&[
            ("file", csv.as_bytes()),
            ("on_conflict", b"merge"),
            ("dry_run", b"true"),
        ])
        .await;
    assert_problem(response, 422, "validation_failed").await;
}

#[tokio::test]
async fn every_column_a_client_sends_is_kept_in_data() {
    let u = uploader().await;
    let csv = "Staff ID,External Staff ID,Case ID,Customer comment,Message count,Comment score,Activity,Last activity date,Commentary,Reviewer comment\r\n\
               A-1,crm-1,T-1,\"Slow, but polite\",3,4.5,called back,20-11-2026,fine,ok\r\n";
    let response = u.upload(csv.as_bytes()).await;
    assert_eq!(response.status(), 201);
    let imported = body(response).await;
    assert_eq!(imported["warnings"], json!([]));
    let stored = u.stored().await;
    assert_eq!(
        serde_json::to_string(&stored[0]["data"]).expect("json"),
        r#"{"Customer comment":"Slow, but polite","Message count":"3","Comment score":"4.5","Activity":"called back","Last activity date":"20-11-2026","Commentary":"fine","Reviewer comment":"ok"}"#
    );
}

#[tokio::test]
async fn a_drifted_external_staff_id_is_a_warning_and_stored_as_sent() {
    let u = uploader().await;
    // crm-9 is not A-1's External ID; E-1 has none stored.
    let csv =
        format!("{HEADER}\nA-1,crm-9,T-1,Jaws,5\nE-1,crm-2,T-2,Alien,4\nA-1,crm-1,T-3,Heat,3\n");
    let response = u.upload(csv.as_bytes()).await;
    assert_eq!(response.status(), 201);
    let imported = body(response).await;
    assert_eq!(imported["created"], 3);
    let warnings: Vec<(Value, Value, Value)> = imported["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .map(|w| (w["row"].clone(), w["column"].clone(), w["code"].clone()))
        .collect();
    assert_eq!(
        warnings,
        vec![
            (
                json!(2),
                json!("External Staff ID"),
                json!("staff_id_mismatch")
            ),
            (
                json!(3),
                json!("External Staff ID"),
                json!("staff_id_mismatch")
            ),
        ]
    );
    let mut stored: Vec<(Value, Value, Value)> = u
        .stored()
        .await
        .iter()
        .map(|c| {
            (
                c["external_id"].clone(),
                c["staff_id"].clone(),
                c["external_staff_id"].clone(),
            )
        })
        .collect();
    stored.sort_by_key(|c| c.0.to_string());
    assert_eq!(
        stored,
        vec![
            (json!("T-1"), json!("A-1"), json!("crm-9")),
            (json!("T-2"), json!("E-1"), json!("crm-2")),
            (json!("T-3"), json!("A-1"), json!("crm-1")),
        ]
    );
}

/// Hebrew in Windows-1255, as a spreadsheet program saves "CSV" in Israel.
fn hebrew_1255(case_id: &str) -> Vec<u8> {
    let text = format!("{HEADER}\r\nA-1,,{case_id},שלום עולם,טוב מאוד\r\n");
    encoding_rs::WINDOWS_1255.encode(&text).0.into_owned()
}

#[tokio::test]
async fn a_legacy_encoding_is_detected_or_named() {
    let u = uploader().await;
    let response = u.upload(&hebrew_1255("T-1")).await;
    assert_eq!(response.status(), 201);
    let imported = body(response).await;
    assert_eq!(imported["detected"]["encoding"], "windows-1255");
    assert_eq!(imported["detected"]["encoding_source"], "detected");
    let stored = u.stored().await;
    assert_eq!(stored[0]["data"]["Film"], "שלום עולם");
    assert_eq!(stored[0]["data"]["Rating"], "טוב מאוד");

    let named = hebrew_1255("T-2");
    let response = u
        .send(&[
            ("file", &named),
            ("dry_run", b"true"),
            ("charset", b"windows-1255"),
        ])
        .await;
    assert_eq!(response.status(), 200);
    let checked = body(response).await;
    assert_eq!(checked["detected"]["encoding"], "windows-1255");
    assert_eq!(checked["detected"]["encoding_source"], "named");

    let response = u
        .send(&[
            ("file", &named),
            ("dry_run", b"true"),
            ("charset", b"klingon"),
        ])
        .await;
    let problem = assert_problem(response, 422, "unknown_charset").await;
    assert_eq!(problem["errors"][0]["field"], "charset");
}

#[tokio::test]
async fn an_encoding_that_cannot_be_told_is_refused_not_guessed() {
    let u = uploader().await;
    // One lone 0xA4: `¤` in Windows-1252, `€` in ISO-8859-15, `Є` in
    // Windows-1251, … too little text to tell.
    let csv = format!("{HEADER}\nA-1,,T-1,x").into_bytes();
    let csv = [csv, b"\xA4y,5\n".to_vec()].concat();
    let problem = assert_problem(u.upload(&csv).await, 422, "invalid_csv").await;
    assert_eq!(problem["errors"][0]["code"], "unsupported_encoding");
    let message = problem["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("charset="), "{message}");
    assert!(u.stored().await.is_empty());
    // Named, it is read as named.
    let response = u
        .send(&[
            ("file", &csv),
            ("list_name", b"Named"),
            ("assign_group", u.group.as_bytes()),
            ("charset", b"iso-8859-15"),
        ])
        .await;
    assert_eq!(response.status(), 201);
    assert_eq!(u.stored().await[0]["data"]["Film"], "x€y");
}

#[tokio::test]
async fn excel_unicode_text_is_read_utf16_with_tabs() {
    let u = uploader().await;
    let text = "Staff ID\tExternal Staff ID\tCase ID\tFilm\r\nA-1\t\tT-1\tJaws, the film\r\n";
    let file: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(text.encode_utf16().flat_map(|u| u.to_le_bytes()))
        .collect();
    let response = u.upload(&file).await;
    assert_eq!(response.status(), 201);
    let imported = body(response).await;
    assert_eq!(
        imported["detected"],
        json!({"encoding": "utf-16le", "encoding_source": "sniffed", "bom": true, "delimiter": "\t", "line_ending": "crlf"})
    );
    assert_eq!(u.stored().await[0]["data"]["Film"], "Jaws, the film");
}

#[tokio::test]
async fn a_workbook_is_told_to_go_to_the_import_jobs() {
    let u = uploader().await;
    for workbook in [
        &b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00"[..],
        b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1\x00\x00\x00\x00",
    ] {
        let problem = assert_problem(u.upload(workbook).await, 422, "invalid_csv").await;
        assert_eq!(problem["errors"][0]["code"], "not_csv");
        let message = problem["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("spreadsheet") && message.contains("POST /v1/imports"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn two_files_in_one_form_are_refused() {
    let u = uploader().await;
    let csv = format!("{HEADER}\nA-1,,T-1,Jaws,5\n");
    let response = u
        .send(&[
            ("file", csv.as_bytes()),
            ("file", csv.as_bytes()),
            ("list_name", b"Two"),
            ("assign_group", u.group.as_bytes()),
        ])
        .await;
    assert_problem(response, 400, "multiple_files").await;
    assert!(u.stored().await.is_empty());
}

#[tokio::test]
async fn rows_of_delimiters_only_are_skipped_with_one_warning() {
    let u = uploader().await;
    let csv = format!("{HEADER}\r\nA-1,,T-1,Jaws,5\r\n,,,,\r\n,,,,\r\n,,,,\r\n");
    let response = u.upload(csv.as_bytes()).await;
    assert_eq!(response.status(), 201);
    let imported = body(response).await;
    assert_eq!(imported["created"], 1);
    assert_eq!(imported["warnings"].as_array().map(Vec::len), Some(1));
    assert_eq!(imported["warnings"][0]["code"], "empty_rows_skipped");
    let message = imported["warnings"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("3 rows") && message.contains("lines 3, 4, 5"),
        "{message}"
    );
}

#[tokio::test]
async fn row_errors_speak_of_the_uploaders_columns() {
    let u = uploader().await;
    let csv = format!("{HEADER}\nA-1,,,Jaws,5\n,,T-2,Alien,4\n");
    let problem = assert_problem(u.upload(csv.as_bytes()).await, 422, "invalid_csv").await;
    let errors: Vec<(Value, Value, Value)> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| (e["row"].clone(), e["column"].clone(), e["message"].clone()))
        .collect();
    assert_eq!(
        errors,
        vec![
            (json!(2), json!("Case ID"), json!("the Case ID is required")),
            (
                json!(3),
                json!("Staff ID"),
                json!("the Staff ID (or the External Staff ID) is required")
            ),
        ]
    );
}
