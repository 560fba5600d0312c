//! Import jobs' ingestion, outside any request once confirmed.
//!
//! **The check** (the upload): the file, already on disk, is read record
//! by record on a blocking thread ([`CsvFile`]); each chunk of records is
//! staged (`import_rows`, its cells as read) and its rows go through the
//! engine as a dry run (the same validators as every other path, nothing
//! written), so the job answers its preview, totals and problems before
//! anything is written. Records breaking a CSV rule are staged as broken,
//! with their failures.
//!
//! **The run** (once confirmed): the staged rows after the job's last
//! committed line are read back a batch at a time ([`StagedRows`]) and
//! written through the engine, each batch committed with the job's
//! checkpoint ([`engine::run_job`]) under the lease of the replica running
//! it: a crash loses at most the batch in flight, which the next holder of
//! the lease writes again (nothing of it was committed).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::access::GroupAccess;
use crate::domain::case::DateInput;
use crate::domain::customer::CustomerOptions;
use crate::error::{ApiError, ErrorCode, FieldError};
use crate::ids::CampaignId;
use crate::ingest::MAX_REPORTED_ERRORS;
use crate::ingest::Services;
use crate::ingest::case_csv::CaseColumns;
use crate::ingest::cases::{CaseIngest, OnConflict};
use crate::ingest::csv::{CsvRecord, CsvTable, check_header, check_record, invalid_csv};
use crate::ingest::csv_file::CsvFile;
use crate::ingest::customer_csv::CustomerColumns;
use crate::ingest::customers::{CustomerIngest, UploadSpec};
use crate::ingest::engine::{
    self, JobLease, Keep, Problems, Resource, RowSource, RunOptions, SourceBatch, Writes,
    failures_by_row,
};
use crate::ingest::sources::Columns;
use crate::ingest::staff::ExternalIdDrift;
use crate::ingest::workbook::{WorkbookError, for_each_row};
use crate::store::Store;
use crate::store::imports::{
    Checked, FileFormat, ImportJob, ImportKind, ImportState, NewImport, StagedRow,
};
use crate::store::models::Campaign;

/// Rows a job's answer shows as parsed.
pub const PREVIEW_ROWS: usize = 20;

/// Columns a job's file may have (the uploader's 103 do not apply).
pub const MAX_IMPORT_COLUMNS: usize = 1_000;

/// Characters a cell of a job's file may have.
pub const MAX_IMPORT_CELL_CHARS: usize = 32_000;

/// Records read, staged and checked at a time.
const READ_CHUNK: usize = 5_000;

/// Warnings a job lists (the count says how many there were).
const MAX_WARNINGS: usize = 1_000;

/// A case job's options, kept with the job (the uploader's form fields).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CaseJobOptions {
    pub list_name: Option<String>,
    pub assign_group: Option<String>,
    pub assign_team: Option<String>,
    pub assign_evaluator: Option<String>,
    /// A workbook's sheet (the first by default).
    pub sheet: Option<String>,
    /// A CSV's text encoding, as the uploader named it (`charset`).
    #[serde(default)]
    pub charset: Option<String>,
}

/// What the check of a job's file found, as the job shows it.
#[derive(Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CheckProblems {
    /// The first 1,000 problems, by line.
    pub errors: Vec<FieldError>,
    /// Every problem counted.
    pub error_count: u64,
    /// Rows with a problem (never written).
    pub failed_rows: u64,
    /// The first 1,000 warnings: the file's (extra cells, rows of
    /// delimiters only skipped), then its rows' (`staff_id_mismatch`: the
    /// row is imported with the External Staff ID as sent).
    pub warnings: Vec<FieldError>,
    /// Every warning counted.
    pub warning_count: u64,
}

/// A file on disk, deleted when dropped.
pub struct UploadedFile {
    pub path: PathBuf,
}

impl Drop for UploadedFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What the reading thread sends.
enum Chunk {
    Records {
        records: Vec<CsvRecord>,
        errors: Vec<FieldError>,
        warnings: Vec<FieldError>,
    },
    /// The file's last problems and warnings (rows of delimiters only
    /// skipped), and the line of a record that swallowed the rest of the
    /// file (a quote never closed). Sent with the end, not as records: the
    /// last record is held until the end says whether it swallowed the rest.
    End {
        errors: Vec<FieldError>,
        warnings: Vec<FieldError>,
        swallowed: Option<u64>,
    },
}

/// Reads `file` on a blocking thread: its table (header, detected, the
/// header's problems) and columns (`open_columns` matches the header to
/// the kind's fields), then its records chunk by chunk.
async fn open_file<C, F>(
    file: &UploadedFile,
    format: FileFormat,
    sheet: Option<String>,
    charset: Option<&'static encoding_rs::Encoding>,
    open_columns: F,
) -> Result<(CsvTable, C, tokio::sync::mpsc::Receiver<Chunk>), ApiError>
where
    C: Send + 'static,
    F: FnOnce(&mut CsvTable) -> Result<C, ApiError> + Send + 'static,
{
    let path = file.path.clone();
    let (opened, opened_rx) = tokio::sync::oneshot::channel();
    let (chunks, chunks_rx) = tokio::sync::mpsc::channel(2);
    std::thread::Builder::new()
        .name("import-reader".into())
        .spawn(move || {
            if format != FileFormat::Csv {
                read_workbook(
                    &path,
                    format,
                    sheet.as_deref(),
                    open_columns,
                    opened,
                    chunks,
                );
                return;
            }
            let mut csv =
                match CsvFile::open(&path, MAX_IMPORT_CELL_CHARS, MAX_IMPORT_COLUMNS, charset) {
                    Ok(csv) => csv,
                    Err(mut table) => {
                        let _ = opened.send(Err(invalid_csv(std::mem::take(&mut table.errors))));
                        return;
                    }
                };
            let mut table = std::mem::take(&mut csv.table);
            // The reader checks each record against the header.
            csv.table.header = table.header.clone();
            let columns = match columns_of(&mut table, open_columns) {
                Ok(columns) => columns,
                Err(e) => {
                    let _ = opened.send(Err(e));
                    return;
                }
            };
            if opened.send(Ok((table, columns))).is_err() {
                return;
            }
            loop {
                let (mut errors, mut warnings) = (Vec::new(), Vec::new());
                let records = csv.next_records(READ_CHUNK, &mut errors, &mut warnings);
                if records.is_empty() && errors.is_empty() {
                    break;
                }
                let chunk = Chunk::Records {
                    records,
                    errors,
                    warnings,
                };
                if chunks.blocking_send(chunk).is_err() {
                    return; // the upload was abandoned
                }
            }
            let warnings = csv.empty_rows_warning().into_iter().collect();
            let mut errors = Vec::new();
            let swallowed = csv.finish(&mut errors);
            let _ = chunks.blocking_send(Chunk::End {
                errors,
                warnings,
                swallowed,
            });
        })
        .map_err(|e| ApiError::internal(anyhow::anyhow!("starting the file's reader: {e}")))?;
    match opened_rx.await {
        Ok(Ok((table, columns))) => Ok((table, columns, chunks_rx)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(ApiError::internal(anyhow::anyhow!(
            "the file's reader stopped"
        ))),
    }
}

/// The columns of a table whose header was read: every problem of the
/// header (the table's, then the columns') answers `invalid_csv`.
fn columns_of<C>(
    table: &mut CsvTable,
    open_columns: impl FnOnce(&mut CsvTable) -> Result<C, ApiError>,
) -> Result<C, ApiError> {
    if !table.errors.is_empty() {
        return Err(invalid_csv(std::mem::take(&mut table.errors)));
    }
    drop_error_column(table);
    let columns = open_columns(table)?;
    if !table.errors.is_empty() {
        return Err(invalid_csv(std::mem::take(&mut table.errors)));
    }
    Ok(columns)
}

/// The column an errors file adds (`errors.csv`, `errors.xlsx`).
pub const ERROR_COLUMN: &str = "error";

/// A file whose last column is an errors file's `error` column (the file
/// came back fixed, as it was downloaded): that column is not imported
/// (its cells are the old problems, not the partner's data), and a warning
/// says so. The job's columns end before it; its records' cells are cut to
/// them ([`row_cells`]).
fn drop_error_column(table: &mut CsvTable) {
    if table.header.len() > 1 && table.header.last().is_some_and(|h| h == ERROR_COLUMN) {
        let index = table.header.len() - 1;
        table.warnings.push(crate::ingest::csv::at(
            1,
            Some(table.column(index)),
            ErrorCode::IgnoredColumn,
            "the last column, \"error\", is an errors file's list of problems: it is not imported",
        ));
        table.header.pop();
    }
}

/// A record's cells for the job's columns: an errors file's `error` cell
/// (past the last column) is left out.
fn row_cells(mut cells: Vec<String>, width: usize) -> Vec<String> {
    cells.truncate(width);
    cells
}

type Opened<C> = tokio::sync::oneshot::Sender<Result<(CsvTable, C), ApiError>>;

/// Reads a workbook's sheet as `open_file` reads a CSV: its first row is
/// the header; each row is checked as a CSV record is (a row shorter than
/// the header is padded: a workbook leaves its trailing empty cells out).
fn read_workbook<C, F>(
    path: &std::path::Path,
    format: FileFormat,
    sheet: Option<&str>,
    open_columns: F,
    opened: Opened<C>,
    chunks: tokio::sync::mpsc::Sender<Chunk>,
) where
    F: FnOnce(&mut CsvTable) -> Result<C, ApiError>,
{
    let mut opened = Some(opened);
    let mut open_columns = Some(open_columns);
    let mut header: Option<Vec<String>> = None;
    let (mut records, mut errors, mut warnings) = (Vec::new(), Vec::new(), Vec::new());
    let mut count = 0u64;
    let mut stopped = false;
    let read = for_each_row(path, format, sheet, |line, mut cells| {
        let Some(header) = &header else {
            let mut table = CsvTable {
                header: cells.iter().map(|c| c.trim().to_string()).collect(),
                ..Default::default()
            };
            check_header(&mut table, MAX_IMPORT_CELL_CHARS, MAX_IMPORT_COLUMNS);
            // Rows are checked against the whole header (an errors file's
            // `error` column too).
            let whole = table.header.clone();
            let columns = match open_columns.take() {
                Some(open) => columns_of(&mut table, open),
                None => Err(ApiError::internal(anyhow::anyhow!("a header read twice"))),
            };
            let sent = match columns {
                Ok(columns) => {
                    header = Some(whole);
                    opened.take().map(|o| o.send(Ok((table, columns))).is_ok())
                }
                Err(e) => opened.take().map(|o| {
                    let _ = o.send(Err(e));
                    false
                }),
            };
            stopped = sent != Some(true);
            return !stopped;
        };
        if cells.iter().all(|c| c.trim().is_empty()) {
            return true;
        }
        if cells.len() < header.len() {
            cells.resize(header.len(), String::new());
        }
        count += 1;
        let before = errors.len();
        let mut record = check_record(
            header,
            &csv::StringRecord::from(cells),
            line,
            MAX_IMPORT_CELL_CHARS,
            &mut errors,
            &mut warnings,
        );
        record.broken = errors.len() > before;
        records.push(record);
        if records.len() >= READ_CHUNK {
            let chunk = Chunk::Records {
                records: std::mem::take(&mut records),
                errors: std::mem::take(&mut errors),
                warnings: std::mem::take(&mut warnings),
            };
            stopped = chunks.blocking_send(chunk).is_err();
        }
        !stopped
    });
    let fatal = |code, message: String| Err(invalid_csv(CsvTable::fatal(code, message).errors));
    if let Some(opened) = opened.take() {
        // The header was never read: say why.
        let _ = opened.send(match read {
            Err(WorkbookError::NoSuchSheet(name, names)) => fatal(
                ErrorCode::InvalidEnum,
                format!(
                    "the workbook has no sheet {:?}; its sheets: {}",
                    crate::error::excerpt(&name),
                    names.join(", ")
                ),
            ),
            Err(WorkbookError::Unreadable(e)) => fatal(
                ErrorCode::UnsupportedFileType,
                format!("the workbook cannot be read ({e}); save it again, or as CSV UTF-8"),
            ),
            Err(WorkbookError::Empty) | Ok(()) => {
                fatal(ErrorCode::EmptyFile, "the sheet is empty".into())
            }
        });
        return;
    }
    if stopped {
        return;
    }
    if let Err(e) = read {
        let message = match e {
            WorkbookError::Unreadable(e) => e,
            WorkbookError::NoSuchSheet(..) | WorkbookError::Empty => "the sheet ended".into(),
        };
        errors.push(crate::ingest::csv::at(
            records.last().map_or(1, |r| r.line + 1),
            None,
            ErrorCode::UnsupportedFileType,
            format!("the workbook cannot be read further: {message}"),
        ));
    }
    if !records.is_empty() || !errors.is_empty() {
        let chunk = Chunk::Records {
            records,
            errors,
            warnings,
        };
        if chunks.blocking_send(chunk).is_err() {
            return;
        }
    }
    let mut errors = Vec::new();
    if count == 0 {
        errors.push(crate::ingest::csv::at(
            1,
            None,
            ErrorCode::NoRecords,
            "the sheet has a header row and no records",
        ));
    }
    let _ = chunks.blocking_send(Chunk::End {
        errors,
        warnings: Vec::new(),
        swallowed: None,
    });
}

/// The records of an upload as they are read: staged, previewed, and
/// yielded (the valid ones) for the check.
struct UploadRows<'a, C> {
    store: &'a Store,
    job: crate::ids::ImportId,
    chunks: tokio::sync::mpsc::Receiver<Chunk>,
    columns: C,
    header: Vec<String>,
    /// The last record read, held until the next chunk says it did not
    /// swallow the rest of the file.
    held: Option<CsvRecord>,
    held_errors: Vec<FieldError>,
    preview: Vec<serde_json::Value>,
    warnings: Vec<FieldError>,
    warning_count: u64,
    records: u64,
    read: u64,
    ended: bool,
}

impl<C: Columns> UploadRows<'_, C> {
    fn preview(&mut self, record: &CsvRecord) {
        if self.preview.len() < PREVIEW_ROWS {
            let cells: serde_json::Map<String, serde_json::Value> = self
                .header
                .iter()
                .zip(&record.cells)
                .map(|(h, c)| (h.clone(), serde_json::Value::String(c.clone())))
                .collect();
            self.preview
                .push(serde_json::json!({"line": record.line, "cells": cells}));
        }
    }

    fn warn(&mut self, warnings: Vec<FieldError>) {
        for warning in warnings {
            self.warning_count += 1;
            if self.warnings.len() < MAX_WARNINGS {
                self.warnings.push(warning);
            }
        }
    }

    /// Stages records and answers the valid ones' rows.
    async fn take(
        &mut self,
        records: Vec<CsvRecord>,
        errors: &[FieldError],
    ) -> Result<(Vec<(u64, C::Input)>, u64), ApiError> {
        let mut staged = Vec::with_capacity(records.len());
        let mut rows = Vec::with_capacity(records.len());
        let mut broken_lines = std::collections::HashSet::new();
        for record in records {
            self.records += 1;
            self.preview(&record);
            staged.push(StagedRow {
                line: record.line,
                cells: serde_json::to_string(&record.cells).unwrap_or_else(|_| "[]".into()),
                broken: record.broken,
            });
            if record.broken {
                broken_lines.insert(record.line);
            } else {
                let cells = row_cells(record.cells, self.header.len());
                rows.push((record.line, self.columns.input(cells)));
            }
        }
        self.store.stage_import_rows(self.job, &staged).await?;
        // The broken records' problems (a file-wide one names no record).
        let failures: Vec<(u64, String)> = failures_by_row(errors)
            .into_iter()
            .filter(|(line, _)| broken_lines.contains(line))
            .collect();
        self.store
            .record_import_failures(self.job, &failures)
            .await?;
        Ok((rows, broken_lines.len() as u64))
    }
}

impl<C: Columns> RowSource for UploadRows<'_, C> {
    type Input = C::Input;

    async fn next_batch(&mut self, _size: usize) -> Result<SourceBatch<C::Input>, ApiError> {
        loop {
            let batch = self.next_chunk().await?;
            // A chunk whose one record is held back brings nothing yet.
            if !batch.is_empty() || self.ended {
                return Ok(batch);
            }
        }
    }

    fn rows_read(&self) -> u64 {
        self.read
    }

    fn locate(&self, error: FieldError) -> FieldError {
        self.columns.locate(error)
    }
}

impl<C: Columns> UploadRows<'_, C> {
    async fn next_chunk(&mut self) -> Result<SourceBatch<C::Input>, ApiError> {
        if self.ended {
            return Ok(SourceBatch {
                rows: Vec::new(),
                problems: Vec::new(),
                failed_rows: 0,
            });
        }
        let Some(chunk) = self.chunks.recv().await else {
            return Err(ApiError::internal(anyhow::anyhow!(
                "the file's reader stopped"
            )));
        };
        let (mut records, mut problems, swallowed) = match chunk {
            Chunk::Records {
                mut records,
                errors,
                warnings,
            } => {
                self.warn(warnings);
                // The last record waits for the next chunk.
                let last = records.pop();
                let mut problems = std::mem::take(&mut self.held_errors);
                let (last_errors, errors): (Vec<_>, Vec<_>) = errors
                    .into_iter()
                    .partition(|e| last.as_ref().is_some_and(|l| e.row == Some(l.line)));
                problems.extend(errors);
                self.held_errors = last_errors;
                let mut taken: Vec<CsvRecord> = self.held.take().into_iter().collect();
                taken.append(&mut records);
                self.held = last;
                (taken, problems, None)
            }
            Chunk::End {
                errors,
                warnings,
                swallowed,
            } => {
                self.ended = true;
                self.warn(warnings);
                let mut problems = std::mem::take(&mut self.held_errors);
                problems.extend(errors);
                (self.held.take().into_iter().collect(), problems, swallowed)
            }
        };
        if let Some(line) = swallowed {
            for record in records.iter_mut().filter(|r| r.line == line) {
                record.broken = true;
            }
        }
        problems.sort_by_key(|e| e.row);
        let (rows, failed_rows) = self.take(std::mem::take(&mut records), &problems).await?;
        self.read += rows.len() as u64;
        Ok(SourceBatch {
            rows,
            problems,
            failed_rows,
        })
    }
}

/// A customer job's options, kept with the job (the uploader's form
/// fields, but `atomic` and `dry_run`: a job is checked before anything is
/// written, and writes its valid rows once confirmed).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CustomerJobOptions {
    pub campaign_id: Option<CampaignId>,
    pub status: Option<String>,
    /// File header → field, as the uploader's `mapping`.
    pub mapping: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    pub options: CustomerOptions,
    /// A workbook's sheet (the first by default).
    pub sheet: Option<String>,
    /// A CSV's text encoding, as the uploader named it (`charset`).
    #[serde(default)]
    pub charset: Option<String>,
}

impl CustomerJobOptions {
    /// What the customers' pipeline is asked for: the uploader's rules
    /// (dates as spreadsheets write them).
    pub fn spec(&self) -> UploadSpec {
        UploadSpec {
            status: self.status.clone(),
            options: self.options.clone(),
            atomic: false,
            spreadsheet_dates: true,
            option_prefix: "",
        }
    }

    /// The job's campaign, if the integration's groups hold it.
    pub async fn campaign(
        &self,
        store: &Store,
        access: &GroupAccess,
    ) -> Result<Campaign, ApiError> {
        let not_found = || ApiError::new(ErrorCode::CampaignNotFound, "No campaign has this id.");
        let id = self.campaign_id.ok_or_else(not_found)?;
        access
            .visible(store.get_campaign(id).await?)
            .ok_or_else(not_found)
    }
}

/// The encoding a job's `charset` names, if it names one.
fn named_charset(label: Option<&str>) -> Result<Option<&'static encoding_rs::Encoding>, ApiError> {
    label.map(crate::ingest::csv::charset).transpose()
}

/// A job's options as stored, for its kind.
fn job_options<T: serde::de::DeserializeOwned>(job: &serde_json::Value) -> Result<T, ApiError> {
    serde_json::from_value(job.clone())
        .map_err(|e| ApiError::internal(anyhow::anyhow!("an import job's options: {e}")))
}

/// Reads, stages and checks a job's file: the job, awaiting confirmation.
/// On any failure the job is deleted (with what was staged).
pub async fn check_import(
    services: Services<'_>,
    access: &GroupAccess,
    job: NewImport,
    file: UploadedFile,
    confirm_within: Duration,
) -> Result<ImportJob, ApiError> {
    let store = services.store;
    let id = job.id;
    let format = job.format;
    store.create_import(&job).await?;
    let checked = async {
        let checked = match job.kind {
            ImportKind::Cases => {
                let options: CaseJobOptions = job_options(&job.options)?;
                let mut ingest = CaseIngest::new(
                    store,
                    access,
                    services.control,
                    OnConflict::Error,
                    DateInput::Spreadsheet,
                )
                .await?
                .with_external_id_drift(ExternalIdDrift::Warned);
                let open = |table: &mut CsvTable| {
                    CaseColumns::read(table)
                        .ok_or_else(|| invalid_csv(std::mem::take(&mut table.errors)))
                };
                let named = named_charset(options.charset.as_deref())?;
                let upload = open_file(&file, format, options.sheet, named, open).await?;
                check(store, id, upload, &mut ingest).await?
            }
            ImportKind::Customers => {
                let options: CustomerJobOptions = job_options(&job.options)?;
                let campaign = options.campaign(store, access).await?;
                let mut ingest =
                    CustomerIngest::new(store, access, &campaign, &options.spec()).await?;
                let mapping = options.mapping;
                let open =
                    move |table: &mut CsvTable| CustomerColumns::read(table, mapping.as_ref());
                let named = named_charset(options.charset.as_deref())?;
                let upload = open_file(&file, format, options.sheet, named, open).await?;
                check(store, id, upload, &mut ingest).await?
            }
        };
        let checked = Checked {
            expires_at: crate::store::now()
                + chrono::Duration::from_std(confirm_within).unwrap_or(chrono::Duration::days(1)),
            ..checked
        };
        store.finish_import_check(id, &checked).await?;
        Ok::<_, ApiError>(())
    }
    .await;
    drop(file);
    if let Err(e) = checked {
        if let Err(deleted) = store.delete_import(id).await {
            tracing::warn!(error = %deleted, "a failed import's staged rows not deleted");
        }
        return Err(e);
    }
    store
        .get_import(id)
        .await?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("the checked import disappeared")))
}

/// Stages an opened file's records and checks its rows through the
/// engine as a dry run: what the job shows before its confirmation.
async fn check<R, C>(
    store: &Store,
    id: crate::ids::ImportId,
    (table, columns, chunks): (CsvTable, C, tokio::sync::mpsc::Receiver<Chunk>),
    ingest: &mut R,
) -> Result<Checked, ApiError>
where
    C: Columns<Input = R::Input>,
    R: Resource,
{
    let mut source = UploadRows {
        store,
        job: id,
        chunks,
        columns,
        header: table.header.clone(),
        held: None,
        held_errors: Vec::new(),
        preview: Vec::new(),
        warnings: table.warnings.clone(),
        warning_count: table.warnings.len() as u64,
        records: 0,
        read: 0,
        ended: false,
    };
    let options = RunOptions {
        writes: Writes::Nothing,
        keep: Keep::Counts,
        problems: Problems::FirstThousand,
    };
    let mut summary = engine::run(ingest, &mut source, options, None).await?;
    source.warn(std::mem::take(&mut summary.warnings));
    // Those not listed by the run are counted still.
    source.warning_count += summary
        .warning_count
        .saturating_sub(MAX_REPORTED_ERRORS as u64);
    let problems = CheckProblems {
        errors: summary.errors.listed.clone(),
        error_count: summary.errors.problems,
        failed_rows: summary.errors.failed_rows,
        warnings: std::mem::take(&mut source.warnings),
        warning_count: source.warning_count,
    };
    Ok(Checked {
        header: table.header,
        detected: table.detected.and_then(|d| serde_json::to_value(d).ok()),
        preview: serde_json::Value::Array(std::mem::take(&mut source.preview)),
        problems: serde_json::to_value(&problems).unwrap_or_default(),
        total: source.records,
        expires_at: crate::store::now(),
    })
}

/// A running job's staged rows, after its last committed line.
struct StagedRows<'a, C> {
    store: &'a Store,
    job: crate::ids::ImportId,
    after: u64,
    columns: C,
    /// The job's columns (a staged record may have one more: [`row_cells`]).
    width: usize,
    read: u64,
}

impl<C: Columns> RowSource for StagedRows<'_, C> {
    type Input = C::Input;

    async fn next_batch(&mut self, size: usize) -> Result<SourceBatch<C::Input>, ApiError> {
        let staged = self
            .store
            .staged_import_rows(self.job, self.after, size)
            .await?;
        let mut rows = Vec::with_capacity(staged.len());
        for (line, cells) in staged {
            self.after = line;
            let cells: Vec<String> = serde_json::from_str(&cells).unwrap_or_default();
            rows.push((line, self.columns.input(row_cells(cells, self.width))));
        }
        self.read += rows.len() as u64;
        Ok(SourceBatch {
            rows,
            problems: Vec::new(),
            failed_rows: 0,
        })
    }

    fn rows_read(&self) -> u64 {
        self.read
    }

    fn locate(&self, error: FieldError) -> FieldError {
        self.columns.locate(error)
    }
}

/// Runs a job this replica holds the lease of, from its last committed
/// line to the end; the job ends `completed`, or `failed` with the error
/// (unless it was cancelled or taken over meanwhile: then it is left as
/// it is).
#[tracing::instrument(name = "import_job", skip_all, fields(job = %job.id, integration = %job.integration_id))]
pub async fn run_import(services: Services<'_>, job: ImportJob, owner: uuid::Uuid) {
    let store = services.store;
    let outcome = run_claimed(services, &job, owner).await;
    let (state, error) = match &outcome {
        Ok(()) => (ImportState::Completed, None),
        Err(e) => {
            let current = store.get_import(job.id).await.ok().flatten();
            if current.is_none_or(|c| c.state != ImportState::Running) {
                tracing::info!("import job stopped: no longer running");
                return;
            }
            (
                ImportState::Failed,
                Some(format!("{}: {}", e.code, e.detail)),
            )
        }
    };
    match store
        .finish_import(job.id, owner, state, error.as_deref())
        .await
    {
        Ok(true) => tracing::info!(state = state.as_str(), "import job finished"),
        Ok(false) => tracing::info!("import job no longer this replica's"),
        Err(e) => tracing::warn!(error = %e, "import job's end not recorded; it will be resumed"),
    }
}

async fn run_claimed(
    services: Services<'_>,
    job: &ImportJob,
    owner: uuid::Uuid,
) -> Result<(), ApiError> {
    let integration = services
        .control
        .integration(job.integration_id)
        .await?
        .filter(|i| i.enabled)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::IntegrationDisabled,
                "The integration that uploaded the file was deleted or disabled.",
            )
        })?;
    let access = GroupAccess::new(job.integration_id, integration.groups);
    let lease = JobLease { job: job.id, owner };
    let options_run = RunOptions {
        writes: Writes::ValidRows(crate::store::Commits::EachBatch),
        keep: Keep::Counts,
        problems: Problems::FirstThousand,
    };
    match job.kind {
        ImportKind::Cases => {
            let mut table = CsvTable {
                header: job.header.clone(),
                ..Default::default()
            };
            let columns = CaseColumns::read(&mut table).ok_or_else(|| {
                ApiError::new(ErrorCode::InvalidCsv, "The job's columns cannot be read.")
            })?;
            let mut ingest = CaseIngest::new(
                services.store,
                &access,
                services.control,
                OnConflict::Error,
                DateInput::Spreadsheet,
            )
            .await?
            .with_external_id_drift(ExternalIdDrift::Warned)
            .into_existing_list(job.list_id);
            let mut source = StagedRows {
                store: services.store,
                job: job.id,
                after: job.next_line,
                columns,
                width: job.header.len(),
                read: 0,
            };
            run_resource(&mut ingest, &mut source, options_run, lease).await
        }
        ImportKind::Customers => {
            let options: CustomerJobOptions = job_options(&job.options)?;
            let campaign = options.campaign(services.store, &access).await?;
            let mut ingest =
                CustomerIngest::new(services.store, &access, &campaign, &options.spec()).await?;
            let mut table = CsvTable {
                header: job.header.clone(),
                ..Default::default()
            };
            let columns = CustomerColumns::read(&mut table, options.mapping.as_ref())?;
            let mut source = StagedRows {
                store: services.store,
                job: job.id,
                after: job.next_line,
                columns,
                width: job.header.len(),
                read: 0,
            };
            run_resource(&mut ingest, &mut source, options_run, lease).await
        }
    }
}

async fn run_resource<R, S>(
    resource: &mut R,
    source: &mut S,
    options: RunOptions,
    lease: JobLease,
) -> Result<(), ApiError>
where
    R: Resource,
    S: RowSource<Input = R::Input>,
{
    engine::run_job(resource, source, options, lease)
        .await
        .map(|_| ())
}
