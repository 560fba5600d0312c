//! Customer upserts: `PUT /v1/campaigns/{id}/customers` (JSON and NDJSON),
//! the CSV uploader, adding one customer, reading them back, and every
//! option of the dialer alone and in the combinations that interact.

use intake::store::Pool;
use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, body, form, spawn_app};

struct Dialer {
    app: TestApp,
    group: String,
    /// Campaign "Leads" (IL, Asia/Jerusalem) in the integration's group.
    leads: String,
    /// Another campaign of the same group.
    sibling: String,
    /// A campaign of a group the integration cannot see.
    foreign: String,
    token: String,
    /// A token of an integration of the other group.
    foreign_token: String,
}

async fn campaign(app: &TestApp, group: &str, name: &str, region: &str, tz: &str) -> String {
    let response = app
        .post_admin(
            "/v1/admin/campaigns",
            &json!({"name": name, "group_id": group, "default_region": region, "timezone": tz}),
        )
        .await;
    assert_eq!(response.status(), 201, "creating campaign {name}");
    body(response).await["id"].as_str().expect("id").to_string()
}

async fn dialer() -> Dialer {
    let app = spawn_app().await;
    let group = app.create_group("Sales").await;
    let other = app.create_group("Other client").await;
    let response = app
        .admin(Method::PUT, "/v1/admin/staff")
        .json(&json!({"staff": [
            {"staff_id": "A-1", "name": "Jana Novak", "role": "agent", "group_id": group},
            {"staff_id": "A-2", "name": "Twin", "role": "agent", "group_id": group},
            {"staff_id": "A-3", "name": "Twin", "role": "agent", "group_id": group},
            {"staff_id": "A-4", "name": "Ivan Gone", "role": "agent", "group_id": group, "active": false},
            {"staff_id": "S-1", "name": "Sam Boss", "role": "supervisor", "group_id": group},
            {"staff_id": "B-1", "name": "Bob Other", "role": "agent", "group_id": other},
        ]}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200, "{}", body(response).await);
    let leads = campaign(&app, &group, "Leads", "IL", "Asia/Jerusalem").await;
    let sibling = campaign(&app, &group, "Renewals", "IL", "Asia/Jerusalem").await;
    let foreign = campaign(&app, &other, "Theirs", "IL", "Asia/Jerusalem").await;
    let integration = app.create_integration("Dialer sync", &[&group]).await;
    let (token, _) = app
        .mint(&integration, &["customers:write", "customers:read"])
        .await;
    let theirs = app.create_integration("Other sync", &[&other]).await;
    let (foreign_token, _) = app
        .mint(&theirs, &["customers:write", "customers:read"])
        .await;
    Dialer {
        app,
        group,
        leads,
        sibling,
        foreign,
        token,
        foreign_token,
    }
}

impl Dialer {
    async fn put_as(&self, token: &str, campaign: &str, request: &Value) -> Response {
        self.app
            .client
            .put(self.app.url(&format!("/v1/campaigns/{campaign}/customers")))
            .bearer_auth(token)
            .json(request)
            .send()
            .await
            .expect("request")
    }

    async fn put(&self, campaign: &str, request: &Value) -> Response {
        self.put_as(&self.token, campaign, request).await
    }

    /// A PUT that must answer 200; answers its body.
    async fn upsert(&self, campaign: &str, request: &Value) -> Value {
        let response = self.put(campaign, request).await;
        let status = response.status();
        let answer = body(response).await;
        assert_eq!(status, 200, "{answer}");
        let counts: u64 = ["created", "updated", "skipped", "failed"]
            .iter()
            .map(|k| answer[k].as_u64().expect("count"))
            .sum();
        let sent = request["customers"].as_array().map_or(0, Vec::len) as u64;
        assert_eq!(counts, sent, "counts add up to the rows sent: {answer}");
        answer
    }

    async fn customers_as(&self, token: &str, campaign: &str, query: &str) -> Vec<Value> {
        let response = self
            .app
            .get_as(
                token,
                &format!("/v1/campaigns/{campaign}/customers?{query}"),
            )
            .await;
        assert_eq!(response.status(), 200);
        body(response).await["items"]
            .as_array()
            .cloned()
            .expect("items")
    }

    async fn customers(&self, campaign: &str) -> Vec<Value> {
        self.customers_as(&self.token, campaign, "limit=1000").await
    }

    async fn csv(&self, campaign: &str, fields: &[(&str, &[u8])]) -> Response {
        let (content_type, payload) = form(fields);
        self.app
            .client
            .post(
                self.app
                    .url(&format!("/v1/campaigns/{campaign}/customers/csv")),
            )
            .bearer_auth(&self.token)
            .header("content-type", content_type)
            .body(payload)
            .send()
            .await
            .expect("request")
    }

    /// Runs SQL on the app's own database (to set what another part of the
    /// system would, such as a do-not-call block).
    async fn execute(&self, sql: &str) {
        match &self.app.state.store.reads {
            Pool::Sqlite(pool) => {
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(pool)
                    .await
                    .expect("sql");
            }
            Pool::Postgres(pool) => {
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(pool)
                    .await
                    .expect("sql");
            }
        }
    }
}

fn outcomes(answer: &Value) -> Vec<(u64, String, String)> {
    answer["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            let detail = r["reason"]
                .as_str()
                .map(str::to_string)
                .or_else(|| r["errors"][0]["code"].as_str().map(str::to_string))
                .unwrap_or_default();
            (
                r["row"].as_u64().expect("row"),
                r["outcome"].as_str().expect("outcome").to_string(),
                detail,
            )
        })
        .collect()
}

fn row(n: u64, outcome: &str, detail: &str) -> (u64, String, String) {
    (n, outcome.to_string(), detail.to_string())
}

#[tokio::test]
async fn a_json_upsert_normalizes_phones_and_answers_every_row() {
    let d = dialer().await;
    let answer = d
        .upsert(
            &d.leads,
            &json!({"customers": [
                {"name": "Dana Levi", "phone": "050-234-5678", "agent": "Jana Novak",
                 "follow_up_at": "2026-11-24T09:30:00+02:00", "fields": {"Plan": "Gold"}},
                {"name": "Tom Brown", "phone": "+44 7400 123456"},
                {"name": "No Phone", "phone": "12"},
                {"name": "Dana again", "phone": "+972 50 234 5678"},
                {"phone": "052-345-6789"},
            ]}),
        )
        .await;
    assert_eq!(
        (answer["created"].clone(), answer["failed"].clone()),
        (json!(2), json!(3))
    );
    assert_eq!(
        outcomes(&answer),
        vec![
            row(1, "created", ""),
            row(2, "created", ""),
            row(3, "failed", "invalid_phone"),
            row(4, "failed", "duplicate_in_file"),
            row(5, "failed", "required"),
        ]
    );
    assert_eq!(answer["results"][2]["errors"][0]["field"], "phone");
    assert_eq!(answer["results"][2]["errors"][0]["row"], 3);

    let stored = d.customers(&d.leads).await;
    assert_eq!(stored.len(), 2);
    let dana = &stored[0];
    assert_eq!(dana["id"], answer["results"][0]["customer_id"]);
    assert_eq!(dana["phone"], "+972502345678");
    assert_eq!(dana["phone_raw"], "050-234-5678");
    assert_eq!(dana["status"], "new", "the campaign's first status");
    assert_eq!(dana["agent_staff_id"], "A-1");
    assert_eq!(dana["follow_up_at"], "2026-11-24T07:30:00Z");
    assert_eq!(dana["fields"], json!({"Plan": "Gold"}));
    assert_eq!(dana["do_not_call"], false);
    assert_eq!(stored[1]["phone"], "+447400123456");
}

#[tokio::test]
async fn national_numbers_follow_the_campaign_region_and_international_format_needs_a_code() {
    let d = dialer().await;
    let gb = campaign(&d.app, &d.group, "UK", "GB", "Europe/London").await;
    let us = campaign(&d.app, &d.group, "US", "US", "America/New_York").await;
    let cz = campaign(&d.app, &d.group, "CZ", "CZ", "Europe/Prague").await;
    for (campaign, phone, e164) in [
        (&gb, "07400 123456", "+447400123456"),
        (&us, "(201) 555-0123", "+12015550123"),
        (&cz, "601 123 456", "+420601123456"),
        (&d.leads, "0523456789", "+972523456789"),
    ] {
        let answer = d
            .upsert(
                campaign,
                &json!({"customers": [{"name": "X", "phone": phone}]}),
            )
            .await;
        assert_eq!(answer["created"], 1, "{phone}: {answer}");
        assert_eq!(d.customers(campaign).await[0]["phone"], e164);
    }
    // The same national number is not valid in another region.
    let answer = d
        .upsert(
            &us,
            &json!({"customers": [{"name": "X", "phone": "050-234-5678"}]}),
        )
        .await;
    assert_eq!(outcomes(&answer), vec![row(1, "failed", "invalid_phone")]);

    let answer = d
        .upsert(
            &d.leads,
            &json!({"options": {"international_format": true}, "customers": [
                {"name": "National", "phone": "050-234-5678"},
                {"name": "Double zero", "phone": "00 420 601 123 457"},
                {"name": "Plus", "phone": "+1 201 555 0124"},
            ]}),
        )
        .await;
    assert_eq!(
        outcomes(&answer),
        vec![
            row(1, "failed", "invalid_phone"),
            row(2, "created", ""),
            row(3, "created", ""),
        ]
    );
    let phones: Vec<Value> = d
        .customers(&d.leads)
        .await
        .iter()
        .map(|c| c["phone"].clone())
        .collect();
    assert_eq!(
        phones,
        vec![
            json!("+972523456789"),
            json!("+420601123457"),
            json!("+12015550124")
        ]
    );
}

#[tokio::test]
async fn override_existing_updates_only_the_fields_sent_and_reset_status_sets_the_status() {
    let d = dialer().await;
    d.upsert(
        &d.leads,
        &json!({"customers": [{"name": "Dana", "phone": "050-234-5678", "agent": "Jana Novak",
            "follow_up_at": "2026-12-01T10:00:00Z", "fields": {"Plan": "Gold", "Score": 1}}]}),
    )
    .await;
    let before = d.customers(&d.leads).await[0].clone();

    // Without override_existing: skipped, nothing changes.
    let answer = d
        .upsert(
            &d.leads,
            &json!({"status": "follow_up", "customers": [{"name": "Dana L", "phone": "0502345678"}]}),
        )
        .await;
    assert_eq!(outcomes(&answer), vec![row(1, "skipped", "already_exists")]);
    assert_eq!(answer["results"][0]["customer_id"], before["id"]);
    assert_eq!(d.customers(&d.leads).await[0], before);

    // With it: the name and a custom field change; agent, date, other
    // fields and status stay.
    let answer = d
        .upsert(
            &d.leads,
            &json!({"status": "follow_up", "options": {"override_existing": true},
                    "customers": [{"name": "Dana L", "phone": "0502345678", "fields": {"Score": 2}}]}),
        )
        .await;
    assert_eq!(outcomes(&answer), vec![row(1, "updated", "")]);
    let after = d.customers(&d.leads).await[0].clone();
    assert_eq!(after["id"], before["id"]);
    assert_eq!(after["name"], "Dana L");
    assert_eq!(after["phone_raw"], "0502345678");
    assert_eq!(after["agent_staff_id"], "A-1");
    assert_eq!(after["follow_up_at"], "2026-12-01T10:00:00Z");
    assert_eq!(after["fields"], json!({"Plan": "Gold", "Score": 2}));
    assert_eq!(after["status"], "new", "no reset_status: the status stays");
    assert_eq!(after["created_at"], before["created_at"]);

    // With override_existing and reset_status: the fields and the status.
    d.upsert(
        &d.leads,
        &json!({"status": "Follow-up", "options": {"reset_status": true, "override_existing": true},
                "customers": [{"name": "Dana M", "phone": "0502345678"}]}),
    )
    .await;
    let stored = d.customers(&d.leads).await[0].clone();
    assert_eq!(stored["status"], "follow_up");
    assert_eq!(stored["name"], "Dana M");
}

/// The names of a JSON object's keys, in order.
fn keys(object: &Value) -> Vec<String> {
    object
        .as_object()
        .expect("object")
        .keys()
        .cloned()
        .collect()
}

/// One stored customer, and a do-not-call block on it, for the checkboxes.
async fn blocked_dana(d: &Dialer) -> Value {
    d.upsert(
        &d.leads,
        &json!({"customers": [{"name": "Dana", "phone": "050-234-5678", "agent": "Jana Novak",
            "fields": {"Plan": "Gold"}}]}),
    )
    .await;
    d.execute("UPDATE customers SET do_not_call = TRUE").await;
    d.customers(&d.leads).await[0].clone()
}

#[tokio::test]
async fn reset_status_alone_sets_only_the_status_of_an_existing_customer() {
    let d = dialer().await;
    let before = blocked_dana(&d).await;
    let answer = d
        .upsert(
            &d.leads,
            &json!({"status": "follow_up", "options": {"reset_status": true},
                    "customers": [{"name": "Dana L", "phone": "0502345678", "fields": {"Plan": "Silver"}}]}),
        )
        .await;
    assert_eq!(outcomes(&answer), vec![row(1, "updated", "")]);
    assert_eq!(answer["results"][0]["customer_id"], before["id"]);
    let after = d.customers(&d.leads).await[0].clone();
    assert_eq!(after["status"], "follow_up");
    for field in [
        "name",
        "phone_raw",
        "agent_staff_id",
        "fields",
        "do_not_call",
        "contact_allowed_at",
        "created_at",
    ] {
        assert_eq!(after[field], before[field], "{field} is not touched");
    }
}

#[tokio::test]
async fn update_contact_allowed_alone_lifts_only_the_block_of_an_existing_customer() {
    let d = dialer().await;
    let before = blocked_dana(&d).await;
    assert_eq!(before["do_not_call"], true);
    let answer = d
        .upsert(
            &d.leads,
            &json!({"status": "follow_up", "options": {"update_contact_allowed": true},
                    "customers": [{"name": "Dana L", "phone": "0502345678", "fields": {"Plan": "Silver"}}]}),
        )
        .await;
    assert_eq!(outcomes(&answer), vec![row(1, "updated", "")]);
    let after = d.customers(&d.leads).await[0].clone();
    assert_eq!(after["do_not_call"], false);
    assert!(after["contact_allowed_at"].is_string(), "{after}");
    for field in [
        "name",
        "phone_raw",
        "status",
        "agent_staff_id",
        "fields",
        "created_at",
    ] {
        assert_eq!(after[field], before[field], "{field} is not touched");
    }
}

#[tokio::test]
async fn both_checkboxes_without_override_set_the_status_and_lift_the_block_only() {
    let d = dialer().await;
    let before = blocked_dana(&d).await;
    let answer = d
        .upsert(
            &d.leads,
            &json!({"status": "waiting", "options": {"update_contact_allowed": true, "reset_status": true},
                    "customers": [{"name": "Dana L", "phone": "0502345678"}]}),
        )
        .await;
    assert_eq!(outcomes(&answer), vec![row(1, "updated", "")]);
    let after = d.customers(&d.leads).await[0].clone();
    assert_eq!(after["status"], "waiting");
    assert_eq!(after["do_not_call"], false);
    assert!(after["contact_allowed_at"].is_string());
    assert_eq!(after["name"], before["name"]);
    assert_eq!(after["fields"], before["fields"]);

    // With override_existing too: the fields as well.
    d.upsert(
        &d.leads,
        &json!({"status": "new", "options": {"update_contact_allowed": true, "reset_status": true, "override_existing": true},
                "customers": [{"name": "Dana L", "phone": "0502345678", "fields": {"Plan": "Silver"}}]}),
    )
    .await;
    let after = d.customers(&d.leads).await[0].clone();
    assert_eq!(after["status"], "new");
    assert_eq!(after["name"], "Dana L");
    assert_eq!(after["fields"], json!({"Plan": "Silver"}));
}

#[tokio::test]
async fn the_checkboxes_alone_act_on_existing_customers_in_a_csv_upload() {
    let d = dialer().await;
    let before = blocked_dana(&d).await;
    let csv = "Name,Phone,Plan\r\nDana L,0502345678,Silver\r\n";
    let upload = |option: &'static str| -> Vec<(&str, &[u8])> {
        vec![
            ("file", csv.as_bytes()),
            ("status", b"waiting"),
            (option, b"true"),
        ]
    };
    let response = d.csv(&d.leads, &upload("reset_status")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(outcomes(&body(response).await), vec![row(2, "updated", "")]);
    let after = d.customers(&d.leads).await[0].clone();
    assert_eq!(after["status"], "waiting");
    assert_eq!(after["do_not_call"], true, "reset_status leaves the block");
    assert_eq!(after["name"], before["name"]);
    assert_eq!(after["fields"], before["fields"]);

    let response = d.csv(&d.leads, &upload("update_contact_allowed")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(outcomes(&body(response).await), vec![row(2, "updated", "")]);
    let after = d.customers(&d.leads).await[0].clone();
    assert_eq!(after["do_not_call"], false);
    assert!(after["contact_allowed_at"].is_string());
    assert_eq!(after["name"], before["name"]);
    assert_eq!(after["fields"], before["fields"]);

    // Both checkboxes: the status and the block, nothing else.
    d.execute("UPDATE customers SET do_not_call = TRUE").await;
    let response = d
        .csv(
            &d.leads,
            &[
                ("file", csv.as_bytes()),
                ("status", b"follow_up"),
                ("reset_status", b"true"),
                ("update_contact_allowed", b"true"),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(outcomes(&body(response).await), vec![row(2, "updated", "")]);
    let after = d.customers(&d.leads).await[0].clone();
    assert_eq!(after["status"], "follow_up");
    assert_eq!(after["do_not_call"], false);
    assert_eq!(after["name"], before["name"]);
    assert_eq!(after["fields"], before["fields"]);

    // A "Do not call" column is read as the customer's flag.
    let csv = "Name,Phone,Do not call\r\nDana L,0502345678,yes\r\nTom,052-345-6789,no\r\n";
    let response = d
        .csv(
            &d.leads,
            &[("file", csv.as_bytes()), ("override_existing", b"true")],
        )
        .await;
    assert_eq!(response.status(), 200);
    let stored = d.customers(&d.leads).await;
    assert_eq!(stored[0]["do_not_call"], true);
    assert_eq!(stored[0]["name"], "Dana L");
    assert_eq!(stored[1]["do_not_call"], false);
    assert_eq!(
        stored[1]["fields"],
        json!({}),
        "the column is not a custom field"
    );
}

#[tokio::test]
async fn do_not_call_is_set_by_an_upsert_and_by_one_customer_and_wins_over_update_contact_allowed()
{
    let d = dialer().await;
    let answer = d
        .upsert(
            &d.leads,
            &json!({"customers": [{"name": "Dana", "phone": "050-234-5678", "do_not_call": true},
                                  {"name": "Tom", "phone": "052-345-6789"}]}),
        )
        .await;
    assert_eq!(answer["created"], 2);
    let stored = d.customers(&d.leads).await;
    assert_eq!(stored[0]["do_not_call"], true);
    assert_eq!(stored[1]["do_not_call"], false);

    // override_existing: a row's value is set; a row without it keeps the stored one.
    d.upsert(
        &d.leads,
        &json!({"options": {"override_existing": true},
                "customers": [{"name": "Dana", "phone": "050-234-5678"},
                              {"name": "Tom", "phone": "052-345-6789", "do_not_call": true}]}),
    )
    .await;
    let stored = d.customers(&d.leads).await;
    assert_eq!(stored[0]["do_not_call"], true);
    assert_eq!(stored[1]["do_not_call"], true);

    // update_contact_allowed with do_not_call: true in the row: the row wins.
    d.upsert(
        &d.leads,
        &json!({"options": {"update_contact_allowed": true},
                "customers": [{"name": "Dana", "phone": "050-234-5678", "do_not_call": true},
                              {"name": "Tom", "phone": "052-345-6789"},
                              {"name": "Eve", "phone": "053-456-7890", "do_not_call": true}]}),
    )
    .await;
    let stored = d.customers(&d.leads).await;
    assert_eq!(stored[0]["do_not_call"], true);
    assert_eq!(stored[0]["contact_allowed_at"], Value::Null);
    assert_eq!(stored[1]["do_not_call"], false);
    assert!(stored[1]["contact_allowed_at"].is_string());
    assert_eq!(stored[2]["do_not_call"], true);
    assert_eq!(stored[2]["contact_allowed_at"], Value::Null);

    // Not a boolean: the row fails.
    let answer = d
        .upsert(
            &d.leads,
            &json!({"atomic": false, "customers": [{"name": "Ann", "phone": "054-567-8901", "do_not_call": "maybe"}]}),
        )
        .await;
    assert_eq!(outcomes(&answer), vec![row(1, "failed", "invalid_type")]);

    // One customer.
    let response = d
        .app
        .client
        .post(d.app.url(&format!("/v1/campaigns/{}/customers", d.leads)))
        .bearer_auth(&d.token)
        .json(&json!({"name": "Ann", "phone": "054-567-8901", "do_not_call": true}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 201);
    let one = body(response).await;
    assert_eq!(one["do_not_call"], true);
    assert_eq!(one["contact_allowed_at"], Value::Null);
}

#[tokio::test]
async fn updated_fields_keep_the_order_sent_and_new_keys_come_after() {
    let d = dialer().await;
    d.upsert(
        &d.leads,
        &json!({"customers": [{"name": "Dana", "phone": "050-234-5678",
            "fields": {"Zeta": 1, "Alpha": 2, "Mid": 3}}]}),
    )
    .await;
    assert_eq!(
        keys(&d.customers(&d.leads).await[0]["fields"]),
        ["Zeta", "Alpha", "Mid"]
    );
    d.upsert(
        &d.leads,
        &json!({"options": {"override_existing": true},
                "customers": [{"name": "Dana", "phone": "050-234-5678",
                               "fields": {"Yak": "y", "Alpha": "two", "Beta": "b"}}]}),
    )
    .await;
    let fields = d.customers(&d.leads).await[0]["fields"].clone();
    assert_eq!(keys(&fields), ["Zeta", "Alpha", "Mid", "Yak", "Beta"]);
    assert_eq!(fields["Alpha"], "two");
    assert_eq!(fields["Zeta"], 1);
}

#[tokio::test]
async fn update_contact_allowed_lifts_a_do_not_call_block() {
    let d = dialer().await;
    d.upsert(
        &d.leads,
        &json!({"customers": [{"name": "Dana", "phone": "050-234-5678"}]}),
    )
    .await;
    d.execute("UPDATE customers SET do_not_call = TRUE").await;
    // Updating without the option keeps the block.
    d.upsert(
        &d.leads,
        &json!({"options": {"override_existing": true}, "customers": [{"name": "Dana", "phone": "050-234-5678"}]}),
    )
    .await;
    let blocked = d.customers(&d.leads).await[0].clone();
    assert_eq!(blocked["do_not_call"], true);
    assert_eq!(blocked["contact_allowed_at"], Value::Null);
    d.upsert(
        &d.leads,
        &json!({"options": {"override_existing": true, "update_contact_allowed": true},
                "customers": [{"name": "Dana", "phone": "050-234-5678"}, {"name": "New", "phone": "052-345-6789"}]}),
    )
    .await;
    let stored = d.customers(&d.leads).await;
    assert_eq!(stored[0]["do_not_call"], false);
    assert!(stored[0]["contact_allowed_at"].is_string());
    assert!(
        stored[1]["contact_allowed_at"].is_string(),
        "new customers too"
    );
}

#[tokio::test]
async fn unique_modes_look_at_the_other_campaigns_of_the_integrations_groups() {
    let d = dialer().await;
    // 050… is in a sibling campaign; 052… in another client's campaign.
    d.upsert(
        &d.sibling,
        &json!({"customers": [{"name": "Sib", "phone": "050-234-5678"}, {"name": "Both", "phone": "054-321-1234"}]}),
    )
    .await;
    let response = d
        .put_as(
            &d.foreign_token,
            &d.foreign,
            &json!({"customers": [{"name": "Theirs", "phone": "052-345-6789"}]}),
        )
        .await;
    assert_eq!(response.status(), 200);
    // 054… is also in this campaign already.
    d.upsert(
        &d.leads,
        &json!({"customers": [{"name": "Both here", "phone": "054-321-1234"}]}),
    )
    .await;

    let request = |mode: &str, override_existing: bool| {
        json!({"options": {"unique_mode": mode, "override_existing": override_existing}, "customers": [
            {"name": "A", "phone": "050-234-5678"},
            {"name": "B", "phone": "052-345-6789"},
            {"name": "C", "phone": "054-321-1234"},
        ]})
    };
    let answer = d
        .upsert(&d.leads, &request("skip_if_elsewhere", false))
        .await;
    assert_eq!(
        outcomes(&answer),
        vec![
            row(1, "skipped", "exists_in_other_campaign"),
            row(2, "created", ""),
            row(3, "skipped", "already_exists"),
        ],
        "another group's campaigns are not looked at; this campaign's copy comes first"
    );
    let answer = d
        .upsert(&d.leads, &request("skip_if_elsewhere", true))
        .await;
    assert_eq!(
        outcomes(&answer),
        vec![
            row(1, "skipped", "exists_in_other_campaign"),
            row(2, "updated", ""),
            row(3, "updated", ""),
        ]
    );
    // allow: added although the sibling holds it.
    let answer = d.upsert(&d.leads, &request("allow", false)).await;
    assert_eq!(answer["created"], 1);
    assert_eq!(d.customers(&d.sibling).await.len(), 2);

    // move + override: updated here, removed from the sibling; the other
    // client's campaign is untouched.
    let answer = d.upsert(&d.leads, &request("move", true)).await;
    assert_eq!(answer["updated"], 3);
    assert!(d.customers(&d.sibling).await.is_empty());
    assert_eq!(
        d.customers_as(&d.foreign_token, &d.foreign, "").await.len(),
        1
    );

    // move without override: a new phone is moved here.
    d.upsert(
        &d.sibling,
        &json!({"customers": [{"name": "Mover", "phone": "053-111-2222"}]}),
    )
    .await;
    let answer = d
        .upsert(
            &d.leads,
            &json!({"options": {"unique_mode": "move"}, "customers": [{"name": "Mover", "phone": "053-111-2222"}]}),
        )
        .await;
    assert_eq!(outcomes(&answer), vec![row(1, "created", "")]);
    assert!(d.customers(&d.sibling).await.is_empty());
}

#[tokio::test]
async fn agents_are_matched_by_their_exact_name_among_active_agents_of_the_group() {
    let d = dialer().await;
    let answer = d
        .upsert(
            &d.leads,
            &json!({"customers": [
                {"name": "1", "phone": "050-234-5671", "agent": "Jana Novak"},
                {"name": "2", "phone": "050-234-5672", "agent": "  Jana Novak "},
                {"name": "3", "phone": "050-234-5673", "agent": "jana novak"},
                {"name": "4", "phone": "050-234-5674", "agent": "Jana  Novak"},
                {"name": "5", "phone": "050-234-5675", "agent": "Ivan Gone"},
                {"name": "6", "phone": "050-234-5676", "agent": "Bob Other"},
                {"name": "7", "phone": "050-234-5677", "agent": "Sam Boss"},
                {"name": "8", "phone": "050-234-5678", "agent": "Twin"},
            ]}),
        )
        .await;
    assert_eq!(
        outcomes(&answer),
        vec![
            row(1, "created", ""),
            row(2, "created", ""),
            row(3, "failed", "unknown_agent"),
            row(4, "failed", "unknown_agent"),
            row(5, "failed", "unknown_agent"),
            row(6, "failed", "unknown_agent"),
            row(7, "failed", "unknown_agent"),
            row(8, "failed", "ambiguous_agent"),
        ]
    );
    let text = answer.to_string();
    assert!(!text.contains("B-1"), "no other group's data in the answer");
}

#[tokio::test]
async fn atomic_uploads_write_nothing_when_a_row_fails() {
    let d = dialer().await;
    let response = d
        .put(
            &d.leads,
            &json!({"atomic": true, "customers": [
                {"name": "Good", "phone": "050-234-5678"},
                {"name": "Bad", "phone": "not a phone"},
            ]}),
        )
        .await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["row"], 2);
    assert_eq!(problem["errors"][0]["code"], "invalid_phone");
    assert!(d.customers(&d.leads).await.is_empty());
}

#[tokio::test]
async fn the_status_and_options_are_checked_before_any_row() {
    let d = dialer().await;
    let response = d
        .put(
            &d.leads,
            &json!({"status": "vip", "customers": [{"name": "A", "phone": "050-234-5678"}]}),
        )
        .await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["code"], "invalid_status");
    let response = d
        .put(
            &d.leads,
            &json!({"options": {"date_format": "DD/MM/YYYY"}, "customers": [{"name": "A", "phone": "050-234-5678"}]}),
        )
        .await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "options.date_format");
    let response = d
        .put(
            &d.leads,
            &json!({"options": {"unique_mode": "sometimes"}, "customers": []}),
        )
        .await;
    assert_problem(response, 400, "invalid_body").await;
    assert!(d.customers(&d.leads).await.is_empty());
}

#[tokio::test]
async fn json_dates_are_rfc_3339() {
    let d = dialer().await;
    let answer = d
        .upsert(
            &d.leads,
            &json!({"customers": [
                {"name": "A", "phone": "050-234-5671", "source_created_at": "24-11-2026 09:30"},
                {"name": "B", "phone": "050-234-5672", "source_created_at": "2026-11-24T09:30:00+02:00"},
            ]}),
        )
        .await;
    assert_eq!(
        outcomes(&answer),
        vec![row(1, "failed", "invalid_date"), row(2, "created", "")]
    );
    assert!(
        answer["results"][0]["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("RFC 3339")
    );
    assert_eq!(
        d.customers(&d.leads).await[0]["source_created_at"],
        "2026-11-24T07:30:00Z"
    );
}

#[tokio::test]
async fn ndjson_streams_answer_counts_and_the_exceptions() {
    let d = dialer().await;
    let lines = "{\"name\": \"A\", \"phone\": \"050-234-5671\"}\n\n{\"name\": \"B\", \"phone\": \"050-234-5671\"}\n{broken\n{\"name\": \"C\", \"phone\": \"050-234-5673\"}";
    let response = d
        .app
        .client
        .put(d.app.url(&format!(
            "/v1/campaigns/{}/customers?status=waiting",
            d.leads
        )))
        .bearer_auth(&d.token)
        .header("content-type", "application/x-ndjson")
        .body(lines)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let answer = body(response).await;
    assert_eq!(
        (
            answer["created"].clone(),
            answer["failed"].clone(),
            answer["skipped"].clone()
        ),
        (json!(2), json!(2), json!(0))
    );
    assert_eq!(
        outcomes(&answer),
        vec![
            row(2, "failed", "duplicate_in_file"),
            row(3, "failed", "malformed_json")
        ]
    );
    let stored = d.customers(&d.leads).await;
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0]["status"], "waiting");

    // Atomic: one bad line, nothing written.
    let response = d
        .app
        .client
        .put(
            d.app
                .url(&format!("/v1/campaigns/{}/customers?atomic=true", d.leads)),
        )
        .bearer_auth(&d.token)
        .header("content-type", "application/x-ndjson")
        .body(
            "{\"name\": \"D\", \"phone\": \"050-234-5674\"}\n{\"name\": \"E\", \"phone\": \"1\"}\n",
        )
        .send()
        .await
        .expect("request");
    assert_problem(response, 422, "validation_failed").await;
    assert_eq!(d.customers(&d.leads).await.len(), 2);
}

#[tokio::test]
async fn one_customer_is_added_with_the_create_scope() {
    let d = dialer().await;
    let integration = d.app.create_integration("Agent app", &[&d.group]).await;
    let (create, _) = d.app.mint(&integration, &["customers:create"]).await;
    let (cases, _) = d.app.mint(&integration, &["cases:write"]).await;
    let url = d.app.url(&format!("/v1/campaigns/{}/customers", d.leads));
    let one = json!({"name": "Dana", "phone": "050-234-5678", "status": "waiting", "agent": "Jana Novak"});
    let response = d
        .app
        .client
        .post(&url)
        .bearer_auth(&create)
        .json(&one)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 201);
    let created = body(response).await;
    assert_eq!(created["phone"], "+972502345678");
    assert_eq!(created["status"], "waiting");
    assert_eq!(created["agent_staff_id"], "A-1");
    let again = d
        .app
        .client
        .post(&url)
        .bearer_auth(&create)
        .json(&one)
        .send()
        .await
        .expect("request");
    assert_problem(again, 409, "already_exists").await;
    let invalid = d
        .app
        .client
        .post(&url)
        .bearer_auth(&create)
        .json(&json!({"name": "X", "phone": "12", "status": "waiting"}))
        .send()
        .await
        .expect("request");
    let problem = assert_problem(invalid, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["code"], "invalid_phone");
    let wrong_scope = d
        .app
        .client
        .post(&url)
        .bearer_auth(&cases)
        .json(&one)
        .send()
        .await
        .expect("request");
    assert_problem(wrong_scope, 403, "insufficient_scope").await;
    // customers:create does not allow bulk upserts.
    let bulk = d
        .put_as(
            &create,
            &d.leads,
            &json!({"customers": [{"name": "Y", "phone": "052-345-6789"}]}),
        )
        .await;
    assert_problem(bulk, 403, "insufficient_scope").await;
}

#[tokio::test]
async fn another_groups_campaign_does_not_exist_for_the_integration() {
    let d = dialer().await;
    let r = d
        .put(
            &d.foreign,
            &json!({"customers": [{"name": "A", "phone": "050-234-5678"}]}),
        )
        .await;
    assert_problem(r, 404, "campaign_not_found").await;
    let r = d
        .app
        .get_as(&d.token, &format!("/v1/campaigns/{}/customers", d.foreign))
        .await;
    assert_problem(r, 404, "campaign_not_found").await;
    let r = d
        .csv(&d.foreign, &[("file", b"Name,Phone\nA,050-234-5678\n")])
        .await;
    assert_problem(r, 404, "campaign_not_found").await;
    let r = d.app.get_as(&d.token, "/v1/campaigns").await;
    let listed = body(r).await;
    let names: Vec<&str> = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, vec!["Leads", "Renewals"]);
}

#[tokio::test]
async fn customers_are_found_by_phone_in_any_format_and_by_status() {
    let d = dialer().await;
    d.upsert(
        &d.leads,
        &json!({"customers": [{"name": "A", "phone": "050-234-5678"}, {"name": "B", "phone": "052-345-6789"}]}),
    )
    .await;
    d.upsert(
        &d.leads,
        &json!({"status": "closed", "customers": [{"name": "C", "phone": "054-321-1234"}]}),
    )
    .await;
    for query in [
        "phone=%2B972%2050-234-5678",
        "phone=050%20234%205678",
        "phone=00972502345678",
    ] {
        let found = d.customers_as(&d.token, &d.leads, query).await;
        assert_eq!(found.len(), 1, "{query}");
        assert_eq!(found[0]["name"], "A");
    }
    let closed = d.customers_as(&d.token, &d.leads, "status=Closed").await;
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0]["name"], "C");
    let page = d.customers_as(&d.token, &d.leads, "limit=2").await;
    assert_eq!(page.len(), 2);
    let r = d
        .app
        .get_as(
            &d.token,
            &format!("/v1/campaigns/{}/customers?phone=abc", d.leads),
        )
        .await;
    assert_problem(r, 400, "invalid_query").await;
}

#[tokio::test]
async fn a_csv_upload_maps_headers_reads_dates_in_the_campaign_zone_and_reports_lines() {
    let d = dialer().await;
    let csv = "Full name;Mobile;Agent;Follow-up date;Plan;Comments\r\n\
               Dana;050-234-5678;Jana Novak;24-11-2026 09:30;Gold;called twice\r\n\
               Tom;052-345-6789;;2026-11-24;Silver;\r\n\
               Eve;;;;;\r\n";
    let response = d
        .csv(
            &d.leads,
            &[("file", csv.as_bytes()), ("status", b"follow up")],
        )
        .await;
    assert_eq!(response.status(), 200);
    let answer = body(response).await;
    assert_eq!(answer["dry_run"], false);
    assert_eq!(answer["detected"]["delimiter"], ";");
    assert_eq!(
        answer["warnings"],
        json!([]),
        "a comments column is a field"
    );
    assert_eq!(
        outcomes(&answer),
        vec![
            row(2, "created", ""),
            row(3, "failed", "invalid_date"),
            row(4, "failed", "required"),
        ]
    );
    let date_error = &answer["results"][1]["errors"][0];
    assert_eq!(date_error["column"], "Follow-up date");
    assert_eq!(date_error["row"], 3);
    assert!(
        date_error["message"]
            .as_str()
            .expect("message")
            .contains("expected DD-MM-YYYY HH:MM (Asia/Jerusalem time)"),
        "{date_error}"
    );
    assert_eq!(answer["results"][2]["errors"][0]["column"], "Mobile");
    let stored = d.customers(&d.leads).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["status"], "follow_up");
    assert_eq!(stored[0]["agent_staff_id"], "A-1");
    // 09:30 in Jerusalem in November (UTC+2).
    assert_eq!(stored[0]["follow_up_at"], "2026-11-24T07:30:00Z");
    assert_eq!(
        stored[0]["fields"],
        json!({"Plan": "Gold", "Comments": "called twice"}),
        "every column is kept"
    );
}

#[tokio::test]
async fn csv_dates_follow_date_format_and_timezone_across_daylight_saving_changes() {
    let d = dialer().await;
    let csv = "Name,Phone,Follow up,Created\n\
               Gap,050-234-5671,03/29/2026 02:30,10/25/2026 02:30\n\
               Plain,050-234-5672,11/20/2026 14:05,\n";
    let answer = body(
        d.csv(
            &d.leads,
            &[
                ("file", csv.as_bytes()),
                ("date_format", b"MM/DD/YYYY HH:mm"),
                ("timezone", b"Europe/Prague"),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(answer["created"], 2, "{answer}");
    let stored = d.customers(&d.leads).await;
    // 02:30 does not exist on 29 March in Prague: moved forward by the gap
    // (03:30 CEST). 02:30 happens twice on 25 October: the first (CEST).
    assert_eq!(stored[0]["follow_up_at"], "2026-03-29T01:30:00Z");
    assert_eq!(stored[0]["source_created_at"], "2026-10-25T00:30:00Z");
    assert_eq!(stored[1]["follow_up_at"], "2026-11-20T13:05:00Z");

    for (fields, field, code) in [
        (
            vec![("date_format", &b"DD-QQ-YYYY"[..])],
            "date_format",
            "invalid_date_format",
        ),
        (
            vec![("timezone", &b"Mars/Olympus"[..])],
            "timezone",
            "invalid_timezone",
        ),
        (vec![("status", &b"vip"[..])], "status", "invalid_status"),
    ] {
        let mut all = vec![("file", csv.as_bytes())];
        all.extend(fields);
        let problem = assert_problem(d.csv(&d.leads, &all).await, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], field);
        assert_eq!(problem["errors"][0]["code"], code);
    }
}

#[tokio::test]
async fn csv_mapping_problems_answer_before_any_row_is_read() {
    let d = dialer().await;
    let csv = b"Client,Number,Note\nDana,050-234-5678,x\n";
    let problem = assert_problem(
        d.csv(
            &d.leads,
            &[
                ("file", csv),
                (
                    "mapping",
                    br#"{"Client": "name", "Telefon": "phone", "Note": "surname"}"#,
                ),
            ],
        )
        .await,
        422,
        "invalid_mapping",
    )
    .await;
    let mut fields: Vec<&str> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, vec!["mapping.Note", "mapping.Telefon"]);
    let problem = assert_problem(
        d.csv(&d.leads, &[("file", csv)]).await,
        422,
        "missing_column",
    )
    .await;
    assert_eq!(problem["errors"].as_array().map(Vec::len), Some(2));
    assert_problem(
        d.csv(&d.leads, &[("file", csv), ("mapping", b"[1, 2]")])
            .await,
        422,
        "invalid_mapping",
    )
    .await;
    assert!(d.customers(&d.leads).await.is_empty());

    // A fitting mapping imports; unmapped columns become custom fields.
    let answer = body(
        d.csv(
            &d.leads,
            &[
                ("file", csv),
                ("mapping", br#"{"client": "name", "NUMBER": "phone"}"#),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(answer["created"], 1, "{answer}");
    assert_eq!(
        d.customers(&d.leads).await[0]["fields"],
        json!({"Note": "x"})
    );
}

#[tokio::test]
async fn a_csv_dry_run_answers_every_outcome_and_writes_nothing() {
    let d = dialer().await;
    d.upsert(
        &d.leads,
        &json!({"customers": [{"name": "Old", "phone": "050-234-5678"}]}),
    )
    .await;
    let csv = b"Name,Phone\nOld,050-234-5678\nNew,052-345-6789\nNew twice,052 345 6789\n";
    let answer = body(
        d.csv(
            &d.leads,
            &[
                ("file", csv),
                ("dry_run", b"true"),
                ("override_existing", b"true"),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(answer["dry_run"], true);
    assert_eq!(
        outcomes(&answer),
        vec![
            row(2, "updated", ""),
            row(3, "created", ""),
            row(4, "failed", "duplicate_in_file"),
        ]
    );
    let stored = d.customers(&d.leads).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["name"], "Old");
    // The CSV rules of the uploader apply (here: a short row).
    let problem = assert_problem(
        d.csv(&d.leads, &[("file", b"Name,Phone,Plan\nA,050-234-5678\n")])
            .await,
        422,
        "invalid_csv",
    )
    .await;
    assert_eq!(problem["errors"][0]["code"], "short_row");
    assert_eq!(problem["errors"][0]["row"], 2);
}

#[tokio::test]
async fn the_customers_uploader_speaks_of_customers_and_takes_one_file() {
    let d = dialer().await;
    let me = body(d.app.get_as(&d.token, "/v1/me").await).await;
    let integration = me["integration"]["id"].as_str().expect("id").to_string();
    let response = d
        .app
        .admin(
            Method::PATCH,
            &format!("/v1/admin/integrations/{integration}"),
        )
        .json(&json!({"csv_limits": {"max_records": 1}}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let csv = "Name,Phone\nDana,050-234-5678\nTom,052-345-6789\n";
    let response = d.csv(&d.leads, &[("file", csv.as_bytes())]).await;
    let problem = assert_problem(response, 422, "invalid_csv").await;
    assert_eq!(problem["errors"][0]["code"], "too_many_records");
    let message = problem["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("customers") && !message.contains("cases"),
        "{message}"
    );

    let one = "Name,Phone\nDana,050-234-5678\n";
    let response = d
        .csv(
            &d.leads,
            &[("file", one.as_bytes()), ("file", one.as_bytes())],
        )
        .await;
    assert_problem(response, 400, "multiple_files").await;
    assert!(d.customers(&d.leads).await.is_empty());
}

#[tokio::test]
async fn a_customers_file_in_a_named_encoding_with_empty_rows() {
    let d = dialer().await;
    let text = "Name;Phone;Note\r\nדנה כהן;050-234-5678;לקוחה חדשה\r\n;;\r\n;;\r\n";
    let file = encoding_rs::WINDOWS_1255.encode(text).0.into_owned();
    let response = d
        .csv(&d.leads, &[("file", &file), ("charset", b"windows-1255")])
        .await;
    assert_eq!(response.status(), 200);
    let answer = body(response).await;
    assert_eq!(answer["detected"]["encoding"], "windows-1255");
    assert_eq!(answer["detected"]["encoding_source"], "named");
    assert_eq!(answer["warnings"][0]["code"], "empty_rows_skipped");
    let stored = d.customers(&d.leads).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["name"], "דנה כהן");
    assert_eq!(stored[0]["fields"], json!({"Note": "לקוחה חדשה"}));

    let response = d
        .csv(
            &d.leads,
            &[("file", &file), ("charset", b"no-such-encoding")],
        )
        .await;
    assert_problem(response, 422, "unknown_charset").await;
}
