//! `GET /v1/templates/{kind}`: the zip (template, example, instructions,
//! live enum values) and the workbook (drop-down lists), made of what the
//! calling integration sees only; the cases example uploaded as it is runs
//! as an import job, and the customers example passes the customers CSV.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::time::Duration;

use calamine::{Data, Reader, Xlsx};
use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, body, form, spawn_app};

/// Group A (the integration's) with two active staff members and an
/// inactive one; group B (another integration's) with its own.
struct Partner {
    app: TestApp,
    group: String,
    other: String,
    token: String,
}

async fn partner() -> Partner {
    let app = spawn_app().await;
    let group = app.create_group("Group A").await;
    let other = app.create_group("Group B").await;
    let response = app
        .admin(Method::PUT, "/v1/admin/staff")
        .json(&json!({"staff": [
            {"staff_id": "A-1", "external_id": "crm-1", "name": "Ann", "role": "agent", "group_id": group},
            {"staff_id": "A-2", "name": "Ben", "role": "supervisor", "group_id": group},
            {"staff_id": "A-9", "name": "Gone", "role": "agent", "group_id": group, "active": false},
            {"staff_id": "B-1", "external_id": "crm-b", "name": "Bob", "role": "agent", "group_id": other},
        ]}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200, "{}", body(response).await);
    let integration = app.create_integration("Partner", &[&group]).await;
    let (token, _) = app
        .mint(
            &integration,
            &["imports:write", "cases:read", "customers:write"],
        )
        .await;
    Partner {
        app,
        group,
        other,
        token,
    }
}

impl Partner {
    async fn get(&self, path: &str) -> Response {
        self.app.get_as(&self.token, path).await
    }

    /// A download that must succeed: its bytes, after checking its type
    /// and file name.
    async fn download(&self, path: &str, content_type: &str, file_name: &str) -> Vec<u8> {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(header("content-type"), content_type);
        assert_eq!(
            header("content-disposition"),
            format!("attachment; filename=\"{file_name}\"")
        );
        response.bytes().await.expect("bytes").to_vec()
    }

    /// The zip of `kind`, by entry name.
    async fn zip(&self, kind: &str) -> BTreeMap<String, String> {
        let bytes = self
            .download(
                &format!("/v1/templates/{kind}"),
                "application/zip",
                &format!("intake-{kind}-template.zip"),
            )
            .await;
        unzip(&bytes)
    }

    async fn upload(&self, fields: &[(&str, &[u8])]) -> Response {
        let (content_type, payload) = form(fields);
        self.app
            .client
            .post(self.app.url("/v1/imports"))
            .bearer_auth(&self.token)
            .header("content-type", content_type)
            .body(payload)
            .send()
            .await
            .expect("request")
    }

    /// Waits until the job has finished; its last state.
    async fn finished(&self, id: &str) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        loop {
            let job = body(self.get(&format!("/v1/imports/{id}")).await).await;
            if ["completed", "failed", "cancelled"].contains(&job["state"].as_str().unwrap_or("")) {
                return job;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the job did not finish: {job}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn add_category(&self, name: &str) {
        let response = self
            .app
            .post_admin("/v1/admin/categories", &json!({"name": name}))
            .await;
        assert_eq!(response.status(), 201);
    }
}

/// Every entry of a zip, as text.
fn unzip(bytes: &[u8]) -> BTreeMap<String, String> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).expect("a zip");
    let mut entries = BTreeMap::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).expect("entry");
        let mut text = String::new();
        entry.read_to_string(&mut text).expect("UTF-8 text");
        entries.insert(entry.name().expect("a name").to_string(), text);
    }
    entries
}

/// The records of a CSV, header first.
fn records(csv: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(csv.as_bytes())
        .records()
        .map(|r| r.expect("record").iter().map(String::from).collect())
        .collect()
}

const CASES_HEADER: &str =
    "Staff ID,External Staff ID,Case ID,Channel,Status,Priority,Category,Occurred At,Reason";

#[tokio::test]
async fn the_cases_zip_holds_the_template_an_example_of_the_callers_staff_and_the_live_values() {
    let p = partner().await;
    p.add_category("Billing").await;

    let zip = p.zip("cases").await;
    assert_eq!(
        zip.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "enums/category.csv",
            "enums/channel.csv",
            "enums/priority.csv",
            "enums/status.csv",
            "example.csv",
            "instructions.txt",
            "template.csv",
        ]
    );
    assert_eq!(zip["template.csv"], format!("{CASES_HEADER}\r\n"));
    assert_eq!(
        zip["enums/channel.csv"],
        "channel\r\nform\r\nlive_hotline\r\nsurvey\r\n"
    );
    assert_eq!(
        zip["enums/status.csv"],
        "status\r\nopen\r\nin_progress\r\nclosed\r\n"
    );
    assert_eq!(
        zip["enums/priority.csv"],
        "priority\r\nlow\r\nmedium\r\nhigh\r\ncritical\r\n"
    );
    assert_eq!(zip["enums/category.csv"], "category\r\nBilling\r\n");

    let example = records(&zip["example.csv"]);
    assert_eq!(example[0].join(","), CASES_HEADER);
    assert_eq!(example.len(), 4, "three example rows: {example:?}");
    for row in &example[1..] {
        // Active staff of the caller's groups only (agents first), each
        // with their own External Staff ID.
        match row[0].as_str() {
            "A-1" => assert_eq!(row[1], "crm-1"),
            "A-2" => assert_eq!(row[1], ""),
            other => panic!("{other} is not an active staff member of group A"),
        }
        assert!(row[2].starts_with("EXAMPLE-"), "{row:?}");
        assert_eq!(row[6], "Billing");
        assert_eq!(row[7].len(), "20-11-2026 14:05".len(), "{row:?}");
    }
    assert_eq!(example[1][0], "A-1", "agents first");
    for (name, text) in &zip {
        for foreign in ["B-1", "crm-b", "A-9"] {
            assert!(!text.contains(foreign), "{foreign} in {name}");
        }
    }
    let instructions = &zip["instructions.txt"];
    for said in [
        "Staff ID",
        "Occurred At",
        "DD-MM-YYYY HH:MM",
        "form, live_hotline, survey",
        "-F kind=cases",
        "/v1/imports/<id>/confirm",
        "512 MiB",
        "1,000 columns",
        "32,000 characters",
    ] {
        assert!(instructions.contains(said), "{said:?} in:\n{instructions}");
    }

    // A category configured now is in the next download; every download
    // makes up new Case IDs.
    p.add_category("Refunds").await;
    let again = p.zip("cases").await;
    assert_eq!(
        again["enums/category.csv"],
        "category\r\nBilling\r\nRefunds\r\n"
    );
    assert_ne!(records(&again["example.csv"])[1][2], example[1][2]);
}

#[tokio::test]
async fn the_cases_example_uploaded_as_it_is_is_imported_without_a_problem() {
    let p = partner().await;
    p.add_category("Billing").await;
    let zip = p.zip("cases").await;
    let example = records(&zip["example.csv"]);

    let response = p
        .upload(&[("kind", b"cases"), ("file", zip["example.csv"].as_bytes())])
        .await;
    let status = response.status();
    let job = body(response).await;
    assert_eq!(status, 201, "{job}");
    assert_eq!(job["total"], 3);
    assert_eq!(job["problems"]["error_count"], 0, "{job}");
    assert_eq!(job["problems"]["warning_count"], 0, "{job}");
    let id = job["id"].as_str().expect("id").to_string();

    let response = p
        .app
        .client
        .post(p.app.url(&format!("/v1/imports/{id}/confirm")))
        .bearer_auth(&p.token)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 202);
    let done = p.finished(&id).await;
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(
        (&done["succeeded"], &done["failed"]),
        (&json!(3), &json!(0))
    );

    for row in &example[1..] {
        let cases = body(p.get(&format!("/v1/cases?external_id={}", row[2])).await).await;
        let case = &cases["items"][0];
        assert_eq!(case["staff_id"], row[0].as_str(), "{cases}");
        assert_eq!(case["channel"], row[3].as_str());
        assert_eq!(case["status"], row[4].as_str());
        assert_eq!(case["priority"], row[5].as_str());
        assert_eq!(case["category"], "Billing");
        assert_eq!(case["group_id"], p.group.as_str());
        assert_eq!(case["data"], json!({"Reason": row[8]}));
        assert!(case["occurred_at"].is_string());
    }
}

#[tokio::test]
async fn without_staff_the_cases_example_is_its_header_and_the_instructions_say_why() {
    let app = spawn_app().await;
    let group = app.create_group("Empty").await;
    let integration = app.create_integration("New partner", &[&group]).await;
    let (token, _) = app.mint(&integration, &["cases:read"]).await;
    let response = app.get_as(&token, "/v1/templates/cases").await;
    assert_eq!(response.status(), 200);
    let zip = unzip(&response.bytes().await.expect("bytes"));
    assert_eq!(zip["example.csv"], format!("{CASES_HEADER}\r\n"));
    assert!(zip["instructions.txt"].contains("no active staff member"));
}

#[tokio::test]
async fn the_cases_workbook_has_the_header_the_examples_and_drop_down_lists() {
    let p = partner().await;
    p.add_category("Billing").await;
    let bytes = p
        .download(
            "/v1/templates/cases?format=xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "intake-cases-template.xlsx",
        )
        .await;

    let mut book = Xlsx::new(Cursor::new(bytes.clone())).expect("a workbook");
    assert_eq!(book.sheet_names(), ["Cases", "Lists", "Instructions"]);
    let sheet = book.worksheet_range("Cases").expect("the template sheet");
    let rows: Vec<&[Data]> = sheet.rows().collect();
    let text = |cell: &Data| match cell {
        Data::String(s) => s.clone(),
        Data::Empty => String::new(),
        other => panic!("not text: {other:?}"),
    };
    assert_eq!(
        rows[0].iter().map(text).collect::<Vec<_>>().join(","),
        CASES_HEADER
    );
    assert_eq!(rows.len(), 4, "the header and three examples");
    for row in &rows[1..] {
        assert!(["A-1", "A-2"].contains(&text(&row[0]).as_str()));
        assert!(text(&row[2]).starts_with("EXAMPLE-"));
        assert_eq!(text(&row[6]), "Billing");
        assert!(
            matches!(row[7], Data::DateTime(_)),
            "Occurred At is a date cell: {:?}",
            row[7]
        );
    }
    let lists = book.worksheet_range("Lists").expect("the lists");
    let column: Vec<String> = lists
        .rows()
        .filter_map(|r| r.first().map(text))
        .filter(|v| !v.is_empty())
        .collect();
    assert_eq!(column, ["channel", "form", "live_hotline", "survey"]);

    // The drop-downs: lists drawn from the Lists sheet, one per enum column.
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes.clone())).expect("a zip");
    let mut xml = String::new();
    archive
        .by_name("xl/worksheets/sheet1.xml")
        .expect("the first sheet")
        .read_to_string(&mut xml)
        .expect("xml");
    let validations: Vec<&str> = xml
        .split("<dataValidation ")
        .skip(1)
        .filter(|v| v.contains("type=\"list\""))
        .collect();
    assert_eq!(validations.len(), 4, "{xml}");
    for (column, list) in [("D", "A"), ("E", "C"), ("F", "E"), ("G", "G")] {
        assert!(
            validations.iter().any(
                |v| v.contains(&format!("sqref=\"{column}2:{column}10000\""))
                    && v.contains(&format!("Lists!${list}$2"))
            ),
            "column {column} lists Lists!{list}: {validations:?}"
        );
    }
    assert!(xml.contains("ySplit=\"1\""), "the header row is frozen");

    // The workbook itself uploads as it is (its first sheet).
    let response = p.upload(&[("kind", b"cases"), ("file", &bytes)]).await;
    let status = response.status();
    let job = body(response).await;
    assert_eq!(status, 201, "{job}");
    assert_eq!(job["format"], "xlsx");
    assert_eq!(job["total"], 3);
    assert_eq!(job["problems"]["error_count"], 0, "{job}");
}

#[tokio::test]
async fn the_customers_zip_lists_the_statuses_of_the_callers_campaigns_only() {
    let p = partner().await;
    let ours = p
        .app
        .post_admin(
            "/v1/admin/campaigns",
            &json!({"name": "Winter leads", "group_id": p.group, "default_region": "IL",
                    "timezone": "Asia/Jerusalem", "statuses": ["new", "call_back", "done"]}),
        )
        .await;
    assert_eq!(ours.status(), 201);
    let ours = body(ours).await["id"].as_str().expect("id").to_string();
    let theirs = p.app.create_campaign(&p.other, "Not ours").await;

    let zip = p.zip("customers").await;
    assert_eq!(
        zip.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "enums/status.csv",
            "example.csv",
            "instructions.txt",
            "template.csv"
        ]
    );
    assert_eq!(
        zip["template.csv"],
        "Name,Phone,Agent,Follow-up Date,Created,Plan\r\n"
    );
    assert_eq!(
        zip["enums/status.csv"],
        format!(
            "campaign_id,campaign,status\r\n\
             {ours},Winter leads,new\r\n{ours},Winter leads,call_back\r\n{ours},Winter leads,done\r\n"
        )
    );
    for (name, text) in &zip {
        for foreign in [theirs.as_str(), "Not ours", "Bob"] {
            assert!(!text.contains(foreign), "{foreign} in {name}");
        }
    }
    let example = records(&zip["example.csv"]);
    assert_eq!(example.len(), 4);
    for row in &example[1..] {
        assert!(row[1].starts_with('+'), "E.164: {row:?}");
        assert_eq!(row[2], "Ann", "the active agent of the campaign's group");
    }
    let instructions = &zip["instructions.txt"];
    assert!(instructions.contains("-F kind=customers"), "{instructions}");
    assert!(instructions.contains(&ours));
    assert!(instructions.contains("mobile_number"), "the aliases");

    // The example passes the customers' CSV reader and validators as it is.
    let (content_type, payload) = form(&[("file", zip["example.csv"].as_bytes())]);
    let response = p
        .app
        .client
        .post(p.app.url(&format!("/v1/campaigns/{ours}/customers/csv")))
        .bearer_auth(&p.token)
        .header("content-type", content_type)
        .body(payload)
        .send()
        .await
        .expect("request");
    let status = response.status();
    let answer = body(response).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (&answer["created"], &answer["failed"]),
        (&json!(3), &json!(0)),
        "{answer}"
    );

    // And as an import job of customers: checked without a problem.
    let (content_type, payload) = form(&[
        ("kind", b"customers"),
        ("campaign_id", ours.as_bytes()),
        ("override_existing", b"true"),
        ("file", zip["example.csv"].as_bytes()),
    ]);
    let response = p
        .app
        .client
        .post(p.app.url("/v1/imports"))
        .bearer_auth(&p.token)
        .header("content-type", content_type)
        .body(payload)
        .send()
        .await
        .expect("request");
    let status = response.status();
    let job = body(response).await;
    assert_eq!(status, 201, "{job}");
    assert_eq!(job["total"], 3);
    assert_eq!(job["problems"]["error_count"], 0, "{job}");
    assert_eq!(job["problems"]["warning_count"], 0, "{job}");
}

#[tokio::test]
async fn a_wrong_kind_or_format_and_a_missing_token_are_refused() {
    let p = partner().await;
    let problem = assert_problem(
        p.get("/v1/templates/orders").await,
        400,
        "invalid_path_parameter",
    )
    .await;
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("cases") && d.contains("customers")),
        "{problem}"
    );
    assert_problem(
        p.get("/v1/templates/cases?format=pdf").await,
        400,
        "invalid_query",
    )
    .await;
    let response = p
        .app
        .client
        .get(p.app.url("/v1/templates/cases"))
        .send()
        .await
        .expect("request");
    assert_problem(response, 401, "invalid_token").await;
}
