//! `/v1/imports`: a file checked, previewed and staged (nothing written),
//! confirmed and written batch by batch in the background, its failed rows
//! downloaded and uploaded again; cancelled; resumed by another replica
//! after the one running it was killed, with every row written once.

use std::time::Duration;

use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::helpers::{
    ReplicaProcess, TestApp, assert_problem, body, count_cases, eventually, form, spawn_app,
    spawn_app_with,
};

struct Importer {
    app: TestApp,
    group: String,
    token: String,
}

async fn importer_on(app: TestApp) -> Importer {
    importer_with(app, &["imports:write", "cases:read"]).await
}

/// A group with the agent A-1 (Ann, External Staff ID crm-1), and a token
/// with `scopes` of an integration of that group.
async fn importer_with(app: TestApp, scopes: &[&str]) -> Importer {
    let group = app.create_group("Group A").await;
    let response = app
        .admin(Method::PUT, "/v1/admin/staff")
        .json(&json!({"staff": [
            {"staff_id": "A-1", "external_id": "crm-1", "name": "Ann", "role": "agent", "group_id": group},
        ]}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let integration = app.create_integration("Importer", &[&group]).await;
    let (token, _) = app.mint(&integration, scopes).await;
    Importer { app, group, token }
}

impl Importer {
    async fn upload_to(&self, base: &str, fields: &[(&str, &[u8])]) -> Response {
        let (content_type, body) = form(fields);
        self.app
            .client
            .post(format!("{base}/v1/imports"))
            .bearer_auth(&self.token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request")
    }

    async fn upload(&self, csv: &[u8]) -> Response {
        self.upload_to(
            &self.app.address,
            &[
                ("kind", b"cases"),
                ("list_name", b"Imported"),
                ("assign_group", self.group.as_bytes()),
                ("file", csv),
            ],
        )
        .await
    }

    async fn call(&self, method: Method, path: &str) -> Response {
        self.app
            .client
            .request(method, self.app.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("request")
    }

    /// Waits until the job has finished; its last state.
    async fn finished(&self, id: &str) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        loop {
            let job = body(self.call(Method::GET, &format!("/v1/imports/{id}")).await).await;
            let state = job["state"].as_str().unwrap_or("").to_string();
            if ["completed", "failed", "cancelled"].contains(&state.as_str()) {
                return job;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the job did not finish: {job}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

const FILE: &[u8] = b"Staff ID,External Staff ID,Case ID,Reason\r\n\
A-1,crm-1,T-1,Billing\r\n\
A-1,crm-1,T-2,=SUM(A1)\r\n\
Z-9,,T-3,Refund\r\n\
A-1,crm-1\r\n\
A-1,crm-1,T-5,Late\r\n";

#[tokio::test]
async fn a_file_is_checked_confirmed_imported_and_its_failed_rows_come_back_as_csv() {
    let importer = importer_on(spawn_app().await).await;
    let app = &importer.app;

    let response = importer.upload(FILE).await;
    assert_eq!(response.status(), 201);
    let location = response
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .map(str::to_string);
    let job = body(response).await;
    let id = job["id"].as_str().expect("id").to_string();
    assert_eq!(
        location.as_deref(),
        Some(format!("/v1/imports/{id}").as_str())
    );
    assert_eq!(job["state"], "awaiting_confirmation");
    assert_eq!(job["kind"], "cases");
    assert_eq!(job["format"], "csv");
    assert_eq!(job["file_name"], "cases.csv");
    assert_eq!(job["total"], 5);
    assert_eq!(job["processed"], 0);
    assert_eq!(
        job["preview"][0],
        json!({"line": 2, "cells": {"Staff ID": "A-1", "External Staff ID": "crm-1", "Case ID": "T-1", "Reason": "Billing"}})
    );
    assert_eq!(job["preview"].as_array().map(Vec::len), Some(5));
    assert_eq!(job["problems"]["failed_rows"], 2);
    let problems: Vec<(Value, Value, Value)> = job["problems"]["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| (e["row"].clone(), e["column"].clone(), e["code"].clone()))
        .collect();
    assert_eq!(
        problems,
        vec![
            (json!(4), json!("Staff ID"), json!("unknown_staff_id")),
            (json!(5), json!("Case ID"), json!("short_row")),
        ]
    );
    assert_eq!(
        count_cases(app).await,
        0,
        "nothing is written before the confirmation"
    );

    let response = importer
        .call(Method::POST, &format!("/v1/imports/{id}/confirm"))
        .await;
    let status = response.status();
    let confirmed = body(response).await;
    assert_eq!(status, 202, "{confirmed}");
    assert_eq!(confirmed["state"], "running");
    let list = confirmed["list_id"].as_str().expect("a list").to_string();

    let done = importer.finished(&id).await;
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(
        (&done["processed"], &done["succeeded"], &done["failed"]),
        (&json!(5), &json!(3), &json!(2))
    );
    assert!(done["finished_at"].is_string());
    assert_eq!(count_cases(app).await, 3);
    let cases = body(
        app.get_as(&importer.token, &format!("/v1/cases?list_id={list}"))
            .await,
    )
    .await;
    let mut ids: Vec<&str> = cases["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|c| c["external_id"].as_str())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, vec!["T-1", "T-2", "T-5"]);

    // A second confirmation is refused.
    let again = importer
        .call(Method::POST, &format!("/v1/imports/{id}/confirm"))
        .await;
    assert_problem(again, 409, "import_state_conflict").await;

    // The failed rows, in the file's columns plus `error`.
    let response = importer
        .call(Method::GET, &format!("/v1/imports/{id}/errors.csv"))
        .await;
    assert_eq!(response.status(), 200);
    assert!(
        response
            .headers()
            .get("content-type")
            .and_then(|c| c.to_str().ok())
            .is_some_and(|c| c.starts_with("text/csv"))
    );
    let errors = response.text().await.expect("text");
    let lines: Vec<&str> = errors.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines[0], "Staff ID,External Staff ID,Case ID,Reason,error");
    assert_eq!(lines.len(), 3, "{errors}");
    assert!(lines[1].starts_with("Z-9,,T-3,Refund,"), "{}", lines[1]);
    assert!(lines[1].contains("line 4, Staff ID:"), "{}", lines[1]);
    assert!(lines[2].starts_with("A-1,crm-1,,,"), "{}", lines[2]);

    // Fixed and uploaded again as it is: the fixed rows pass the check, and
    // the `error` column is not imported (a warning says so).
    let fixed = errors.replacen("Z-9,,T-3", "A-1,crm-1,T-3", 1).replacen(
        "A-1,crm-1,,,",
        "A-1,crm-1,T-4,Fixed,",
        1,
    );
    let response = importer.upload(fixed.as_bytes()).await;
    assert_eq!(response.status(), 201);
    let second = body(response).await;
    assert_eq!(second["total"], 2);
    assert_eq!(second["problems"]["failed_rows"], 0, "{second}");
    assert_eq!(
        second["header"],
        json!(["Staff ID", "External Staff ID", "Case ID", "Reason"])
    );
    assert_eq!(second["problems"]["warnings"][0]["code"], "ignored_column");
    assert_eq!(second["problems"]["warnings"][0]["column"], "error");
    assert_eq!(second["problems"]["warning_count"], 1, "{second}");
    let second_id = second["id"].as_str().expect("id");
    let response = importer
        .call(Method::POST, &format!("/v1/imports/{second_id}/confirm"))
        .await;
    assert_eq!(response.status(), 202);
    let done = importer.finished(second_id).await;
    assert_eq!(done["succeeded"], 2, "{done}");
    assert_eq!(count_cases(app).await, 5);
    let fixed = body(
        app.get_as(&importer.token, "/v1/cases?external_id=T-3")
            .await,
    )
    .await;
    assert_eq!(
        fixed["items"][0]["data"],
        json!({"Reason": "Refund"}),
        "{fixed}"
    );
}

#[tokio::test]
async fn formulas_in_the_errors_file_are_neutralised() {
    let importer = importer_on(spawn_app().await).await;
    let csv = b"Staff ID,External Staff ID,Case ID,Reason\nZ-9,,=HYPERLINK(\"x\"),@cmd\n";
    let job = body(importer.upload(csv).await).await;
    let id = job["id"].as_str().expect("id");
    let errors = importer
        .call(Method::GET, &format!("/v1/imports/{id}/errors.csv"))
        .await
        .text()
        .await
        .expect("text");
    // Before the confirmation the file's broken rows only; none here.
    assert_eq!(
        errors.trim_end(),
        "Staff ID,External Staff ID,Case ID,Reason,error"
    );
    importer
        .call(Method::POST, &format!("/v1/imports/{id}/confirm"))
        .await;
    let done = importer.finished(id).await;
    assert_eq!(done["failed"], 1);
    let errors = importer
        .call(Method::GET, &format!("/v1/imports/{id}/errors.csv"))
        .await
        .text()
        .await
        .expect("text");
    let row = errors.split("\r\n").nth(1).expect("a failed row");
    assert!(
        row.starts_with("Z-9,,\"'=HYPERLINK(\"\"x\"\")\",'@cmd,"),
        "{row}"
    );

    // The workbook: text cells (never formulas), values as uploaded.
    let response = importer
        .call(Method::GET, &format!("/v1/imports/{id}/errors.xlsx"))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|c| c.to_str().ok()),
        Some("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    );
    let book = response.bytes().await.expect("bytes").to_vec();
    let rows = xlsx_rows(&book);
    assert_eq!(
        rows[0],
        vec![
            "Staff ID",
            "External Staff ID",
            "Case ID",
            "Reason",
            "error"
        ]
    );
    assert_eq!(rows.len(), 2);
    assert_eq!(&rows[1][..4], &["Z-9", "", "=HYPERLINK(\"x\")", "@cmd"]);
    assert!(rows[1][4].contains("line 2, Staff ID:"), "{:?}", rows[1]);
    let sheet = sheet_xml(&book);
    assert!(!sheet.contains("<f>"), "no formula: {sheet}");

    // Uploaded again as it is, it is read with the same rows.
    let response = importer.upload(&book).await;
    let status = response.status();
    let again = body(response).await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(again["format"], "xlsx");
    assert_eq!(again["total"], 1);
    assert_eq!(again["problems"]["errors"][0]["code"], "unknown_staff_id");
    assert_eq!(again["problems"]["warnings"][0]["column"], "error");
}

/// A workbook's first sheet, every cell as text.
fn xlsx_rows(book: &[u8]) -> Vec<Vec<String>> {
    use calamine::Reader;
    let mut workbook: calamine::Xlsx<_> =
        calamine::Xlsx::new(std::io::Cursor::new(book.to_vec())).expect("a workbook");
    let name = workbook.sheet_names()[0].clone();
    let range = workbook.worksheet_range(&name).expect("the sheet");
    range
        .rows()
        .map(|row| row.iter().map(|c| c.to_string()).collect())
        .collect()
}

/// The XML of a workbook's first sheet.
fn sheet_xml(book: &[u8]) -> String {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(book.to_vec())).expect("a zip");
    let mut xml = String::new();
    std::io::Read::read_to_string(
        &mut archive
            .by_name("xl/worksheets/sheet1.xml")
            .expect("the sheet's part"),
        &mut xml,
    )
    .expect("read");
    xml
}

#[tokio::test]
async fn a_job_is_cancelled_its_own_integration_only_sees_it_and_bad_files_keep_nothing() {
    let importer = importer_on(spawn_app().await).await;
    let app = &importer.app;
    let job = body(importer.upload(FILE).await).await;
    let id = job["id"].as_str().expect("id");

    // Another integration does not see it.
    let other_group = app.create_group("Group B").await;
    let other = app.create_integration("Other", &[&other_group]).await;
    let (other_token, _) = app.mint(&other, &["imports:write"]).await;
    let response = app
        .client
        .post(app.url(&format!("/v1/imports/{id}/confirm")))
        .bearer_auth(&other_token)
        .send()
        .await
        .expect("request");
    assert_problem(response, 404, "import_not_found").await;
    let listed = body(app.get_as(&other_token, "/v1/imports").await).await;
    assert_eq!(listed["items"], json!([]));
    // A token without an imports scope is refused.
    let (reader, _) = app
        .mint(
            &app.create_integration("Reader", &[&other_group]).await,
            &["cases:read"],
        )
        .await;
    assert_problem(
        app.get_as(&reader, "/v1/imports").await,
        403,
        "insufficient_scope",
    )
    .await;

    let response = importer
        .call(Method::DELETE, &format!("/v1/imports/{id}"))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(body(response).await["state"], "cancelled");
    let response = importer
        .call(Method::POST, &format!("/v1/imports/{id}/confirm"))
        .await;
    assert_problem(response, 409, "import_state_conflict").await;
    let response = importer
        .call(Method::DELETE, &format!("/v1/imports/{id}"))
        .await;
    assert_problem(response, 409, "import_state_conflict").await;
    assert_eq!(count_cases(app).await, 0);

    // A file whose header cannot be read: refused, no job kept.
    let response = importer.upload(b"Staff ID,Case ID\nA-1,T-1\n").await;
    let problem = assert_problem(response, 422, "invalid_csv").await;
    assert!(!problem["errors"].as_array().expect("errors").is_empty());
    // A zip that is no workbook.
    let response = importer.upload(b"PK\x03\x04\x14\x00\x06\x00rest").await;
    let problem = assert_problem(response, 422, "invalid_csv").await;
    assert_eq!(problem["errors"][0]["code"], "unsupported_file_type");
    // No kind.
    let response = importer.upload_to(&app.address, &[("file", FILE)]).await;
    assert_problem(response, 422, "validation_failed").await;
    let listed = body(importer.call(Method::GET, "/v1/imports").await).await;
    let states: Vec<&str> = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|j| j["state"].as_str())
        .collect();
    assert_eq!(states, vec!["cancelled"]);
}

#[tokio::test]
async fn a_job_whose_replica_is_killed_is_finished_by_another_and_every_row_is_written_once() {
    // The test's own server runs no jobs: two replica processes do.
    let importer = importer_on(
        spawn_app_with(|env| {
            env.insert("INTAKE_IMPORT_RUNNER".into(), "0".into());
            env.insert("INTAKE_IMPORT_LEASE_MS".into(), "1500".into());
        })
        .await,
    )
    .await;
    let app = &importer.app;
    const ROWS: usize = 40_000;
    let mut csv = String::from("Staff ID,External Staff ID,Case ID,Reason\n");
    for i in 0..ROWS {
        csv.push_str(&format!("A-1,crm-1,K-{i},Reason {i}\n"));
    }
    let first = ReplicaProcess::start(app, &[("INTAKE_IMPORT_RUNNER", "1")]).await;
    let base = format!("http://{}", first.address);
    let response = importer
        .upload_to(&base, &[("kind", b"cases"), ("file", csv.as_bytes())])
        .await;
    assert_eq!(response.status(), 201);
    let id = body(response).await["id"].as_str().expect("id").to_string();
    let response = app
        .client
        .post(format!("{base}/v1/imports/{id}/confirm"))
        .bearer_auth(&importer.token)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 202);
    // Killed once it has committed a batch, before it has finished.
    let mut first = first;
    let started = eventually(Duration::from_secs(60), || async {
        let job = body(
            importer
                .call(Method::GET, &format!("/v1/imports/{id}"))
                .await,
        )
        .await;
        job["processed"].as_u64().is_some_and(|n| n > 0)
    })
    .await;
    assert!(started, "the first replica did not start the job");
    first.process.kill().expect("kill -9");
    first.process.wait().expect("wait");
    let job = body(
        importer
            .call(Method::GET, &format!("/v1/imports/{id}"))
            .await,
    )
    .await;
    assert_eq!(job["state"], "running");
    let cut_at = job["processed"].as_u64().expect("processed");
    assert!(
        cut_at < ROWS as u64,
        "the job finished before the kill: {job}"
    );

    let _second = ReplicaProcess::start(app, &[("INTAKE_IMPORT_RUNNER", "1")]).await;
    let done = importer.finished(&id).await;
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(done["processed"], ROWS);
    assert_eq!(done["succeeded"], ROWS, "{done}");
    assert_eq!(done["failed"], 0);
    assert_eq!(count_cases(app).await, ROWS as i64);
}

#[tokio::test]
async fn events_follow_a_job_to_its_end() {
    let importer = importer_on(spawn_app().await).await;
    let mut csv = String::from("Staff ID,External Staff ID,Case ID,Reason\n");
    for i in 0..12_000 {
        csv.push_str(&format!("A-1,crm-1,E-{i},Reason\n"));
    }
    let job = body(importer.upload(csv.as_bytes()).await).await;
    let id = job["id"].as_str().expect("id").to_string();
    let response = importer
        .call(Method::GET, &format!("/v1/imports/{id}/events"))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|c| c.to_str().ok()),
        Some("text/event-stream")
    );
    let reading = tokio::spawn(async move { response.text().await.expect("the stream") });
    let confirmed = importer
        .call(Method::POST, &format!("/v1/imports/{id}/confirm"))
        .await;
    assert_eq!(confirmed.status(), 202);
    let text = tokio::time::timeout(Duration::from_secs(90), reading)
        .await
        .expect("the stream ends with the job")
        .expect("read");
    let events: Vec<(String, Value)> = text
        .split("\n\n")
        .filter(|e| e.starts_with("event: "))
        .map(|e| {
            let mut lines = e.lines();
            let name = lines.next().unwrap_or("").trim_start_matches("event: ");
            let data = lines.next().unwrap_or("").trim_start_matches("data: ");
            (name.to_string(), serde_json::from_str(data).expect("json"))
        })
        .collect();
    assert_eq!(events[0].0, "import");
    assert_eq!(events[0].1["state"], "awaiting_confirmation");
    let (last_name, last) = events.last().expect("events");
    assert_eq!(last_name, "end");
    assert_eq!(last["state"], "completed");
    assert_eq!(last["succeeded"], 12_000);
    let processed: Vec<u64> = events
        .iter()
        .filter_map(|(_, job)| job["processed"].as_u64())
        .collect();
    assert!(processed.windows(2).all(|w| w[0] <= w[1]), "{processed:?}");
    assert!(
        events.iter().filter(|(name, _)| name == "end").count() == 1,
        "one end event"
    );
}

/// A workbook with a sheet of notes first and the cases second.
fn workbook() -> Vec<u8> {
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let mut book = Workbook::new();
    let notes = book.add_worksheet();
    notes.set_name("Notes").expect("name");
    notes.write_string(0, 0, "Read me first").expect("cell");
    let cases = book.add_worksheet();
    cases.set_name("Cases").expect("name");
    for (c, header) in [
        "Staff ID",
        "External Staff ID",
        "Case ID",
        "Score",
        "Occurred At",
        "Flag",
    ]
    .iter()
    .enumerate()
    {
        cases.write_string(0, c as u16, *header).expect("cell");
    }
    let when = ExcelDateTime::from_ymd(2026, 11, 30)
        .and_then(|d| d.and_hms(14, 5, 0))
        .expect("date");
    let format = Format::new().set_num_format("dd/mm/yyyy hh:mm");
    cases.write_string(1, 0, "A-1").expect("cell");
    cases.write_string(1, 1, "crm-1").expect("cell");
    cases.write_string(1, 2, "W-1").expect("cell");
    cases.write_number(1, 3, 42.0).expect("cell");
    cases
        .write_datetime_with_format(1, 4, &when, &format)
        .expect("cell");
    cases.write_boolean(1, 5, true).expect("cell");
    // A row whose trailing cells are empty (left out of the file).
    cases.write_string(2, 0, "A-1").expect("cell");
    cases.write_string(2, 1, "crm-1").expect("cell");
    cases.write_string(2, 2, "W-2").expect("cell");
    cases.write_number(2, 3, 2.5).expect("cell");
    // A row with an unknown Staff ID.
    cases.write_string(3, 0, "Z-9").expect("cell");
    cases.write_string(3, 2, "W-3").expect("cell");
    cases.write_number(3, 3, 1.0).expect("cell");
    book.save_to_buffer().expect("xlsx")
}

#[tokio::test]
async fn an_xlsx_sheet_is_imported_with_its_cells_as_the_csv_path_reads_them() {
    let importer = importer_on(spawn_app().await).await;
    let app = &importer.app;
    let xlsx = workbook();
    let send = |sheet: Option<&'static str>| {
        let xlsx = xlsx.clone();
        let importer = &importer;
        async move {
            let mut fields: Vec<(&str, &[u8])> = vec![("kind", b"cases"), ("file", &xlsx)];
            if let Some(sheet) = sheet {
                fields.push(("sheet", sheet.as_bytes()));
            }
            importer.upload_to(&importer.app.address, &fields).await
        }
    };
    // The first sheet holds no cases.
    let problem = assert_problem(send(None).await, 422, "invalid_csv").await;
    assert_eq!(problem["errors"][0]["code"], "missing_header_row");
    let problem = assert_problem(send(Some("Nope")).await, 422, "invalid_csv").await;
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Notes, Cases")),
        "{problem}"
    );

    let response = send(Some("Cases")).await;
    assert_eq!(response.status(), 201);
    let job = body(response).await;
    assert_eq!(job["format"], "xlsx");
    assert_eq!(job["detected"], Value::Null);
    assert_eq!(job["total"], 3);
    assert_eq!(
        job["preview"][0]["cells"],
        json!({"Staff ID": "A-1", "External Staff ID": "crm-1", "Case ID": "W-1", "Score": "42",
               "Occurred At": "2026-11-30T14:05:00Z", "Flag": "true"})
    );
    assert_eq!(job["preview"][1]["cells"]["Score"], "2.5");
    assert_eq!(job["preview"][1]["cells"]["Flag"], "");
    assert_eq!(job["problems"]["errors"][0]["row"], 4);
    assert_eq!(job["problems"]["errors"][0]["code"], "unknown_staff_id");
    let id = job["id"].as_str().expect("id");
    let response = importer
        .call(Method::POST, &format!("/v1/imports/{id}/confirm"))
        .await;
    assert_eq!(response.status(), 202);
    let done = importer.finished(id).await;
    assert_eq!(
        (&done["succeeded"], &done["failed"]),
        (&json!(2), &json!(1))
    );
    let cases = body(
        app.get_as(&importer.token, "/v1/cases?external_id=W-1")
            .await,
    )
    .await;
    let case = &cases["items"][0];
    assert_eq!(case["data"]["Score"], "42", "{case}");
    assert_eq!(case["data"]["Flag"], "true");
    assert_eq!(case["occurred_at"], "2026-11-30T14:05:00Z");
}

/// Runs SQL on the app's own database.
async fn execute(app: &TestApp, sql: &str) {
    match &app.state.store.reads {
        intake::store::Pool::Sqlite(pool) => sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(pool)
            .await
            .map(|_| ()),
        intake::store::Pool::Postgres(pool) => sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(pool)
            .await
            .map(|_| ()),
    }
    .expect("sql");
}

#[tokio::test]
async fn a_job_not_confirmed_in_time_is_cancelled_and_finished_jobs_go_after_their_retention() {
    let importer = importer_on(spawn_app().await).await;
    let app = &importer.app;
    let late = body(importer.upload(FILE).await).await;
    let late = late["id"].as_str().expect("id").to_string();
    let kept = body(importer.upload(FILE).await).await;
    let kept = kept["id"].as_str().expect("id").to_string();

    // Its time to be confirmed ran out: refused at once, then swept.
    let past = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let id_literal = |id: &str| match &app.state.store.reads {
        intake::store::Pool::Sqlite(_) => {
            let hex: String = uuid::Uuid::parse_str(id)
                .expect("uuid")
                .as_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            format!("x'{hex}'")
        }
        intake::store::Pool::Postgres(_) => format!("'{id}'"),
    };
    // RFC 3339, as both backends store (SQLite: as text) and compare it.
    let stamp = |at: &str| format!("'{at}'");
    execute(
        app,
        &format!(
            "UPDATE import_jobs SET expires_at = {} WHERE id = {}",
            stamp(&past),
            id_literal(&late)
        ),
    )
    .await;
    let response = importer
        .call(Method::POST, &format!("/v1/imports/{late}/confirm"))
        .await;
    assert_problem(response, 409, "import_state_conflict").await;
    app.state
        .store
        .expire_imports(Duration::from_secs(86_400))
        .await
        .expect("sweep");
    let job = body(
        importer
            .call(Method::GET, &format!("/v1/imports/{late}"))
            .await,
    )
    .await;
    assert_eq!(job["state"], "cancelled");
    assert_eq!(job["error"], "not confirmed in time");

    // A job finished longer ago than the retention is deleted, rows and all.
    execute(
        app,
        &format!(
            "UPDATE import_jobs SET finished_at = {} WHERE id = {}",
            stamp(&(chrono::Utc::now() - chrono::Duration::days(2)).to_rfc3339()),
            id_literal(&late)
        ),
    )
    .await;
    app.state
        .store
        .expire_imports(Duration::from_secs(86_400))
        .await
        .expect("sweep");
    let response = importer
        .call(Method::GET, &format!("/v1/imports/{late}"))
        .await;
    assert_problem(response, 404, "import_not_found").await;
    let response = importer
        .call(Method::GET, &format!("/v1/imports/{kept}"))
        .await;
    assert_eq!(
        response.status(),
        200,
        "a job awaiting confirmation in time stays"
    );
}

#[tokio::test]
async fn enums_answer_the_live_values_of_the_callers_groups() {
    let importer = importer_on(spawn_app().await).await;
    let app = &importer.app;
    let response = app
        .post_admin("/v1/admin/categories", &json!({"name": "Billing"}))
        .await;
    assert_eq!(response.status(), 201);
    let campaign = app.create_campaign(&importer.group, "Winter leads").await;
    let elsewhere = app.create_group("Group B").await;
    app.create_campaign(&elsewhere, "Not ours").await;

    let enums = body(app.get_as(&importer.token, "/v1/enums").await).await;
    assert_eq!(
        enums["cases"]["channel"],
        json!(["form", "live_hotline", "survey"])
    );
    assert_eq!(
        enums["cases"]["status"],
        json!(["open", "in_progress", "closed"])
    );
    assert_eq!(
        enums["cases"]["priority"],
        json!(["low", "medium", "high", "critical"])
    );
    let categories = enums["cases"]["category"].as_array().expect("categories");
    assert!(categories.contains(&json!("Billing")), "{enums}");
    let campaigns = enums["campaigns"].as_array().expect("campaigns");
    assert_eq!(campaigns.len(), 1, "only the caller's groups: {enums}");
    assert_eq!(campaigns[0]["id"], json!(campaign));
    assert!(
        !campaigns[0]["status"]
            .as_array()
            .expect("statuses")
            .is_empty()
    );

    // A category added now is in the next answer.
    let response = app
        .post_admin("/v1/admin/categories", &json!({"name": "Refunds"}))
        .await;
    assert_eq!(response.status(), 201);
    let enums = body(app.get_as(&importer.token, "/v1/enums").await).await;
    assert!(
        enums["cases"]["category"]
            .as_array()
            .is_some_and(|c| c.contains(&json!("Refunds"))),
        "{enums}"
    );
    let response = app
        .client
        .get(app.url("/v1/enums"))
        .send()
        .await
        .expect("request");
    assert_problem(response, 401, "invalid_token").await;
}

#[tokio::test]
async fn a_customer_file_is_checked_by_the_campaigns_rules_imported_and_its_failed_rows_come_back()
{
    let importer = importer_with(
        spawn_app().await,
        &["imports:write", "customers:read", "customers:write"],
    )
    .await;
    let app = &importer.app;
    let campaign = app.create_campaign(&importer.group, "Leads").await;
    let other_group = app.create_group("Elsewhere").await;
    let foreign = app.create_campaign(&other_group, "Theirs").await;
    // One customer is there already, blocked from being called.
    let response = app
        .client
        .put(app.url(&format!("/v1/campaigns/{campaign}/customers")))
        .bearer_auth(&importer.token)
        .json(&json!({"customers": [{"name": "Old name", "phone": "+44 7911 123453"}]}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);

    let file: &[u8] = b"Full name,Phone number,Agent,Follow-up date,Plan\r\n\
Dana Levi,07911 123451,Ann,24-11-2026 09:30,Gold\r\n\
Tom Cohen,+44 7911 123452,,,Silver\r\n\
Bad Phone,12,,,Bronze\r\n\
Dana Again,+447911123451,,,Gold\r\n\
New Name,07911 123453,Nobody,,Gold\r\n\
Renamed,07911 123453,,,Platinum\r\n";
    let upload = |fields: Vec<(&'static str, Vec<u8>)>| {
        let importer = &importer;
        async move {
            let fields: Vec<(&str, &[u8])> =
                fields.iter().map(|(n, v)| (*n, v.as_slice())).collect();
            importer.upload_to(&importer.app.address, &fields).await
        }
    };
    let kind = ("kind", b"customers".to_vec());
    let file_part = ("file", file.to_vec());

    // The campaign is required, must be the integration's, and its status
    // and options are checked before the file is read.
    let response = upload(vec![kind.clone(), file_part.clone()]).await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "campaign_id");
    let response = upload(vec![
        kind.clone(),
        ("campaign_id", foreign.clone().into_bytes()),
        file_part.clone(),
    ])
    .await;
    assert_problem(response, 404, "campaign_not_found").await;
    let response = upload(vec![
        kind.clone(),
        ("campaign_id", campaign.clone().into_bytes()),
        ("status", b"gone".to_vec()),
        file_part.clone(),
    ])
    .await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["code"], "invalid_status");
    let response = upload(vec![
        kind.clone(),
        ("campaign_id", campaign.clone().into_bytes()),
        ("list_name", b"Cases only".to_vec()),
        file_part.clone(),
    ])
    .await;
    assert_problem(response, 400, "unknown_field").await;

    let response = upload(vec![
        kind.clone(),
        ("campaign_id", campaign.clone().into_bytes()),
        ("status", b"follow_up".to_vec()),
        ("override_existing", b"true".to_vec()),
        ("update_contact_allowed", b"true".to_vec()),
        file_part.clone(),
    ])
    .await;
    let status = response.status();
    let job = body(response).await;
    assert_eq!(status, 201, "{job}");
    assert_eq!(job["kind"], "customers");
    assert_eq!(job["total"], 6);
    assert_eq!(
        job["preview"][0]["cells"],
        json!({"Full name": "Dana Levi", "Phone number": "07911 123451", "Agent": "Ann", "Follow-up date": "24-11-2026 09:30", "Plan": "Gold"})
    );
    let problems: Vec<(Value, Value)> = job["problems"]["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| (e["row"].clone(), e["code"].clone()))
        .collect();
    assert_eq!(
        problems,
        vec![
            (json!(4), json!("invalid_phone")),
            (json!(5), json!("duplicate_in_file")),
            (json!(6), json!("unknown_agent")),
        ],
        "{job}"
    );
    assert_eq!(job["problems"]["failed_rows"], 3);
    let id = job["id"].as_str().expect("id").to_string();
    let path = format!("/v1/campaigns/{campaign}/customers?limit=100");
    let customers = || async {
        let page = body(importer.app.get_as(&importer.token, &path).await).await;
        let mut items: Vec<Value> = page["items"].as_array().cloned().unwrap_or_default();
        items.sort_by_key(|c| c["phone"].as_str().unwrap_or("").to_string());
        items
    };
    assert_eq!(customers().await.len(), 1, "nothing written yet");

    let response = importer
        .call(Method::POST, &format!("/v1/imports/{id}/confirm"))
        .await;
    let status = response.status();
    let confirmed = body(response).await;
    assert_eq!(status, 202, "{confirmed}");
    assert!(confirmed["list_id"].is_null());
    let done = importer.finished(&id).await;
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(
        (
            &done["processed"],
            &done["succeeded"],
            &done["skipped"],
            &done["failed"]
        ),
        (&json!(6), &json!(3), &json!(0), &json!(3)),
        "{done}"
    );
    let stored = customers().await;
    let summary: Vec<(&str, &str, &str, &Value)> = stored
        .iter()
        .map(|c| {
            (
                c["phone"].as_str().unwrap_or(""),
                c["name"].as_str().unwrap_or(""),
                c["status"].as_str().unwrap_or(""),
                &c["fields"]["Plan"],
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("+447911123451", "Dana Levi", "follow_up", &json!("Gold")),
            ("+447911123452", "Tom Cohen", "follow_up", &json!("Silver")),
            // Existing: updated (override_existing), its status kept
            // (no reset_status).
            ("+447911123453", "Renamed", "new", &json!("Platinum")),
        ]
    );
    assert_eq!(stored[0]["agent_staff_id"], "A-1");
    assert_eq!(stored[0]["follow_up_at"], "2026-11-24T09:30:00Z");

    // The failed rows, in the file's columns, fixed and uploaded again.
    let errors = importer
        .call(Method::GET, &format!("/v1/imports/{id}/errors.csv"))
        .await
        .text()
        .await
        .expect("text");
    let lines: Vec<&str> = errors.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines[0],
        "Full name,Phone number,Agent,Follow-up date,Plan,error"
    );
    assert_eq!(lines.len(), 4, "{errors}");
    assert!(
        lines[1].starts_with("Bad Phone,12,,,Bronze,"),
        "{}",
        lines[1]
    );
    assert!(lines[3].contains("Nobody"), "{}", lines[3]);
}

#[tokio::test]
async fn a_job_takes_one_file_a_charset_and_warns_of_drifted_external_staff_ids() {
    let importer = importer_on(spawn_app().await).await;
    let response = importer
        .upload_to(
            &importer.app.address,
            &[("kind", b"cases"), ("file", FILE), ("file", FILE)],
        )
        .await;
    assert_problem(response, 400, "multiple_files").await;

    let text =
        "Staff ID\tExternal Staff ID\tCase ID\tנושא\r\nA-1\tcrm-9\tT-1\tשלום עולם\r\n\t\t\t\r\n";
    let file = encoding_rs::WINDOWS_1255.encode(text).0.into_owned();
    let fields = |charset: &'static [u8]| {
        vec![
            ("kind", &b"cases"[..]),
            ("list_name", b"Hebrew"),
            ("assign_group", importer.group.as_bytes()),
            ("charset", charset),
            ("file", &file),
        ]
    };
    let response = importer
        .upload_to(&importer.app.address, &fields(b"cp1255x"))
        .await;
    assert_problem(response, 422, "unknown_charset").await;

    let response = importer
        .upload_to(&importer.app.address, &fields(b"windows-1255"))
        .await;
    assert_eq!(response.status(), 201);
    let job = body(response).await;
    assert_eq!(
        job["detected"],
        json!({"encoding": "windows-1255", "encoding_source": "named", "bom": false, "delimiter": "\t", "line_ending": "crlf"})
    );
    assert_eq!(job["total"], 1);
    assert_eq!(job["problems"]["failed_rows"], 0, "{job}");
    let codes: Vec<&str> = job["problems"]["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .filter_map(|w| w["code"].as_str())
        .collect();
    assert_eq!(codes, vec!["empty_rows_skipped", "staff_id_mismatch"]);
    let id = job["id"].as_str().expect("id").to_string();
    let response = importer
        .call(Method::POST, &format!("/v1/imports/{id}/confirm"))
        .await;
    assert_eq!(response.status(), 202);
    let done = importer.finished(&id).await;
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(done["succeeded"], 1);
    let cases = body(importer.app.get_as(&importer.token, "/v1/cases").await).await;
    let case = &cases["items"][0];
    assert_eq!(case["staff_id"], "A-1");
    assert_eq!(case["external_staff_id"], "crm-9");
    assert_eq!(case["data"]["נושא"], "שלום עולם");
}

#[tokio::test]
async fn a_quote_never_closed_fails_its_record_even_after_skipped_empty_rows() {
    let importer = importer_on(spawn_app().await).await;
    let app = &importer.app;
    let csv = b"Staff ID,External Staff ID,Case ID,Reason\n\
A-1,crm-1,Q-1,Fine\n\
,,,\n\
A-1,crm-1,Q-2,\"never closed\n\
A-1,crm-1,Q-3,swallowed\n";
    let response = importer.upload(csv).await;
    let status = response.status();
    let job = body(response).await;
    assert_eq!(status, 201, "{job}");
    let codes: Vec<(Value, Value)> = job["problems"]["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| (e["row"].clone(), e["code"].clone()))
        .collect();
    assert_eq!(
        codes,
        vec![(json!(4), json!("unterminated_quote"))],
        "{job}"
    );
    assert_eq!(job["problems"]["failed_rows"], 1);
    let warnings: Vec<&str> = job["problems"]["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .filter_map(|w| w["code"].as_str())
        .collect();
    assert!(warnings.contains(&"empty_rows_skipped"), "{job}");
    let id = job["id"].as_str().expect("id");
    let response = importer
        .call(Method::POST, &format!("/v1/imports/{id}/confirm"))
        .await;
    assert_eq!(response.status(), 202);
    let done = importer.finished(id).await;
    assert_eq!(
        (&done["succeeded"], &done["failed"]),
        (&json!(1), &json!(1)),
        "{done}"
    );
    assert_eq!(count_cases(app).await, 1);
}
