//! The ingestion engine driven without HTTP, as an import job drives it: a
//! source (a CSV file read from disk, values in memory), the cases or
//! customers resource, the store's writers, and what is stored afterwards.

use reqwest::Method;
use serde_json::{Value, json};

use intake::domain::access::GroupAccess;
use intake::domain::case::{CaseInput, DateInput};
use intake::domain::customer::CustomerInput;
use intake::ids::{GroupId, ListId};
use intake::ingest::case_csv::CaseColumns;
use intake::ingest::cases::{
    AssignmentKind, AssignmentSpec, CaseRun, ListFields, ListSpec, OnConflict, ingest_cases,
};
use intake::ingest::csv::read_table;
use intake::ingest::customers::{CustomerIngest, CustomerOutcome, UploadSpec, ingest_customers};
use intake::ingest::engine::{Commits, Keep, Problems, RunOptions, Writes};
use intake::ingest::sources::{CsvRows, Listed};
use intake::ingest::staff::ExternalIdDrift;
use intake::store::cases::CaseFilter;

use crate::helpers::{TestApp, spawn_app};

/// A group with agents, and an integration of that group.
struct World {
    app: TestApp,
    group: GroupId,
    access: GroupAccess,
}

async fn world() -> World {
    let app = spawn_app().await;
    let group = app.create_group("Engine").await;
    let response = app
        .admin(Method::PUT, "/v1/admin/staff")
        .json(&json!({"staff": [
            {"staff_id": "A-1", "external_id": "crm-1", "name": "Ann", "role": "agent", "group_id": group},
            {"staff_id": "A-2", "name": "Al", "role": "agent", "group_id": group},
        ]}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let integration = app.create_integration("Jobs", &[&group]).await;
    let group: GroupId = group.parse().expect("group id");
    let access = GroupAccess::new(integration.parse().expect("integration id"), vec![group]);
    World { app, group, access }
}

impl World {
    /// A new list assigned to the world's group.
    fn group_list(&self, name: &str) -> ListSpec {
        ListSpec {
            name: name.into(),
            assignment: AssignmentSpec {
                kind: AssignmentKind::Group,
                id: self.group.to_string(),
            },
        }
    }

    async fn stored_cases(&self, list_id: Option<ListId>) -> Vec<intake::store::cases::Case> {
        let filter = CaseFilter {
            list_id,
            staff_id: None,
            external_id: None,
        };
        self.app
            .state
            .store
            .list_cases(&[self.group], &filter, None, 100_000)
            .await
            .expect("cases")
    }

    fn run<'a>(&'a self, list: Option<&'a ListSpec>, writes: Writes) -> CaseRun<'a> {
        CaseRun {
            access: &self.access,
            list,
            list_fields: ListFields::Parameters,
            list_source: "csv",
            on_conflict: OnConflict::Error,
            dates: DateInput::Spreadsheet,
            drift: ExternalIdDrift::Warned,
            options: RunOptions {
                writes,
                keep: Keep::All,
                problems: Problems::Every,
            },
            path: "job",
        }
    }
}

fn case(value: Value) -> CaseInput {
    serde_json::from_value(value).expect("a case")
}

#[actix_web::test]
async fn a_csv_file_on_disk_becomes_a_list_of_cases_with_no_request() {
    let world = world().await;
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("cases.csv");
    let mut file = String::from("Staff ID,External Staff ID,Case ID,Topic\n");
    for i in 1..=1_200 {
        file.push_str(&format!("A-{},,T-{i},Topic {i}\n", 1 + i % 2));
    }
    std::fs::write(&path, &file).expect("write");

    let bytes = std::fs::read(&path).expect("read");
    let mut table = read_table(&bytes, &Default::default(), None, "cases");
    // The default uploader limits stop at 1,000 records: a job has none of its own.
    assert!(
        !table.errors.is_empty(),
        "the uploader's limit applies here"
    );
    let limits = intake::store::models::CsvLimits {
        max_records: 10_000,
        ..Default::default()
    };
    table = read_table(&bytes, &limits, None, "cases");
    assert!(table.errors.is_empty(), "{:?}", table.errors);
    let columns = CaseColumns::read(&mut table);
    assert!(columns.is_some());
    let mut source = CsvRows::new(std::mem::take(&mut table.records), columns, Vec::new());
    let list = world.group_list("From a job");
    let run = world.run(Some(&list), Writes::Atomic);
    let ingested = ingest_cases(world.app.state.services(), &run, &mut source)
        .await
        .expect("ingested");

    let summary = &ingested.summary;
    assert!(!summary.rejected);
    assert_eq!(
        (summary.created, summary.failed(), summary.rows),
        (1_200, 0, 1_200)
    );
    // Every result names its line in the file (the header is line 1).
    assert_eq!(summary.results.first().map(|r| r.row), Some(2));
    assert_eq!(summary.results.last().map(|r| r.row), Some(1_201));
    let list = ingested.list.expect("the list");
    let stored = world.stored_cases(Some(list.id)).await;
    assert_eq!(stored.len(), 1_200);
    let first = stored.iter().find(|c| c.external_id == "T-1").expect("T-1");
    assert_eq!(first.staff_id, "A-2");
    assert_eq!(first.data.0["Topic"], "Topic 1");
}

#[actix_web::test]
async fn an_atomic_run_with_one_bad_row_writes_nothing_and_names_the_column() {
    let world = world().await;
    let file = "Staff ID,External Staff ID,Case ID,Topic\nA-1,,T-1,a\nZ-9,,T-2,b\nA-2,,T-3,c\n";
    let mut table = read_table(file.as_bytes(), &Default::default(), None, "cases");
    let columns = CaseColumns::read(&mut table);
    let mut source = CsvRows::new(std::mem::take(&mut table.records), columns, Vec::new());
    let list = world.group_list("Refused");
    let run = world.run(Some(&list), Writes::Atomic);
    let ingested = ingest_cases(world.app.state.services(), &run, &mut source)
        .await
        .expect("a summary");

    let summary = &ingested.summary;
    assert!(summary.rejected);
    assert_eq!(summary.failed(), 1);
    let error = &summary.errors.listed[0];
    assert_eq!(error.row, Some(3));
    assert_eq!(error.code.to_string(), "unknown_staff_id");
    // Located by the source: the file's column, not the field.
    assert_eq!(
        error.column,
        Some(intake::error::Column::Name("Staff ID".into()))
    );
    assert!(world.stored_cases(None).await.is_empty(), "nothing written");
    let lists = world
        .app
        .state
        .store
        .list_case_lists(&[world.group], None, 10)
        .await
        .expect("lists");
    assert!(lists.is_empty(), "the list rolled back with the cases");
}

#[actix_web::test]
async fn a_run_committing_each_batch_stores_the_valid_rows_of_every_batch() {
    let world = world().await;
    // 12,000 rows of a source of unknown length: a first batch of 100, then
    // batches of 5,000, each committed on its own; every 1,000th row fails.
    let rows: Vec<CaseInput> = (1..=12_000)
        .map(|i| {
            let staff = if i % 1_000 == 0 { "nobody" } else { "A-1" };
            case(json!({"external_id": format!("S-{i}"), "staff_id": staff}))
        })
        .collect();
    let mut source = Streamed(Listed::new(rows));
    let mut run = world.run(None, Writes::ValidRows(Commits::EachBatch));
    run.dates = DateInput::Rfc3339;
    run.options.keep = Keep::Counts;
    run.options.problems = Problems::FirstThousand;
    let ingested = ingest_cases(world.app.state.services(), &run, &mut source)
        .await
        .expect("ingested");

    let summary = &ingested.summary;
    assert_eq!((summary.created, summary.failed()), (11_988, 12));
    assert!(summary.results.is_empty(), "counts only");
    assert_eq!(summary.errors.listed.len(), 12);
    assert_eq!(summary.errors.listed[0].row, Some(1_000));
    assert_eq!(world.stored_cases(None).await.len(), 11_988);
}

#[actix_web::test]
async fn customers_run_through_the_same_engine() {
    let world = world().await;
    let campaign = world
        .app
        .create_campaign(&world.group.to_string(), "Leads")
        .await;
    let campaign = world
        .app
        .state
        .store
        .get_campaign(campaign.parse().expect("campaign id"))
        .await
        .expect("lookup")
        .expect("the campaign");
    let spec = UploadSpec::default();
    let rows: Vec<CustomerInput> = [
        json!({"name": "Dana", "phone": "+972502345678", "agent": "Ann"}),
        json!({"name": "Tom", "phone": "not a phone"}),
        json!({"name": "Dana again", "phone": "+972 50-234-5678"}),
    ]
    .into_iter()
    .map(|v| serde_json::from_value(v).expect("a customer"))
    .collect();
    let ingest = CustomerIngest::new(&world.app.state.store, &world.access, &campaign, &spec)
        .await
        .expect("rules");
    let options = RunOptions {
        writes: Writes::ValidRows(Commits::Once),
        keep: Keep::All,
        problems: Problems::FirstThousand,
    };
    let summary = ingest_customers(
        world.app.state.services(),
        ingest,
        &mut Listed::new(rows),
        options,
        "job",
    )
    .await
    .expect("ingested");

    assert_eq!((summary.created, summary.failed()), (1, 2));
    let outcomes: Vec<_> = summary.results.iter().map(|r| (r.row, r.outcome)).collect();
    assert_eq!(
        outcomes,
        [
            (1, CustomerOutcome::Created),
            (2, CustomerOutcome::Failed),
            (3, CustomerOutcome::Failed)
        ]
    );
    assert_eq!(
        summary.results[1].errors[0].code.to_string(),
        "invalid_phone"
    );
    assert_eq!(
        summary.results[2].errors[0].code.to_string(),
        "duplicate_in_file"
    );
    let stored = world
        .app
        .state
        .store
        .list_customers(campaign.id, &Default::default(), None, 10)
        .await
        .expect("customers");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].agent_staff_id.as_deref(), Some("A-1"));
}

/// A source whose length is not known before it is read (as a stream's).
struct Streamed<S>(S);

impl<S: intake::ingest::engine::RowSource> intake::ingest::engine::RowSource for Streamed<S> {
    type Input = S::Input;

    async fn next_batch(
        &mut self,
        size: usize,
    ) -> Result<intake::ingest::engine::SourceBatch<S::Input>, intake::error::ApiError> {
        self.0.next_batch(size).await
    }

    fn rows_read(&self) -> u64 {
        self.0.rows_read()
    }
}
