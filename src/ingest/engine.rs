//! The ingestion engine: one loop for every resource and every format.
//!
//! A [`RowSource`] yields batches of `(row, input)` (and the problems of
//! rows it could not read); a [`Resource`] validates and resolves a batch
//! ([`Resource::prepare`]) and hands it to its [`BatchWriter`]. While batch
//! k is written, batch k+1 is read and validated. An atomic run that meets
//! a problem stops writing (its transaction rolls back) and goes on
//! validating, to report every problem at once.
//!
//! Nothing here knows of HTTP: a request handler and an import job drive
//! the same [`run`].

use futures_util::future::join;

use crate::error::{ApiError, Committed, ErrorCode, FieldError};
use crate::ids::ImportId;
use crate::ingest::{MAX_REPORTED_ERRORS, RowErrors};
use crate::metrics::Metrics;
use crate::store::StoreError;
use crate::store::imports::Checkpoint;
pub use crate::store::{Commits, Shape};

/// One batch read from a source.
#[derive(Debug)]
pub struct SourceBatch<T> {
    /// The rows read, each with its row number (1-based index, NDJSON line
    /// count or file line).
    pub rows: Vec<(u64, T)>,
    /// Problems found while reading, each with its row where it has one.
    pub problems: Vec<FieldError>,
    /// Rows the problems make fail (a file-wide problem fails none).
    pub failed_rows: u64,
}

impl<T> SourceBatch<T> {
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.problems.is_empty()
    }
}

/// Rows of one format, read a batch at a time.
#[allow(async_fn_in_trait)] // driven on one thread (actix workers, local tasks)
pub trait RowSource {
    type Input;

    /// Up to `size` rows; a batch with no row and no problem at the end.
    async fn next_batch(&mut self, size: usize) -> Result<SourceBatch<Self::Input>, ApiError>;

    /// Rows read so far.
    fn rows_read(&self) -> u64;

    /// How many rows there are, when known before reading (a body, a file).
    fn total(&self) -> Option<usize> {
        None
    }

    /// A validator's problem restated in the source's terms (a CSV names
    /// the column).
    fn locate(&self, error: FieldError) -> FieldError {
        error
    }

    /// The answer to a source that held no row at all (`None`: an empty
    /// source is not a problem, or was refused before).
    fn when_empty(&self) -> Option<ApiError> {
        None
    }
}

/// What happened to one row, for counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowOutcome {
    Created,
    Updated,
    Skipped,
    Failed,
}

/// One row's result, as a resource answers it.
pub trait RowResult {
    fn row(&self) -> u64;
    fn outcome(&self) -> RowOutcome;
}

/// A batch validated and resolved: what its writer takes, every accepted
/// row's result, and the problems of the others.
#[derive(Debug)]
pub struct Prepared<B, R> {
    pub batch: B,
    pub results: Vec<R>,
    /// Problems, each with its row.
    pub errors: Vec<FieldError>,
    /// Warnings of rows that pass, each with its row.
    pub warnings: Vec<FieldError>,
    pub failed_rows: u64,
}

/// The kind of rows a resource writes, for the answers to failed writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Cases,
    Customers,
}

impl Kind {
    fn plural(self) -> &'static str {
        match self {
            Kind::Cases => "cases",
            Kind::Customers => "customers",
        }
    }
}

/// A resource's write side for one run. It opens its transaction at its
/// first write; dropped without [`BatchWriter::commit`], it rolls back.
#[allow(async_fn_in_trait)]
pub trait BatchWriter {
    type Batch;
    type Row;

    /// Writes one batch and answers its rows' results. A writer whose
    /// results do not depend on the write may hand the batch over and
    /// return at once, answering a failure at a later write or at the
    /// commit; with [`Commits::EachBatch`] it returns once the batch is
    /// committed (the run counts it as stored).
    async fn write(
        &mut self,
        batch: Self::Batch,
        results: Vec<Self::Row>,
    ) -> Result<Vec<Self::Row>, StoreError>;

    /// Commits what was written (and whatever a run with no batch still
    /// creates: an empty list).
    async fn commit(self) -> Result<(), StoreError>;

    /// Makes `batch` carry an import job's checkpoint, committed with it
    /// (a writer that cannot refuses: its resource has no import jobs).
    fn carry(_batch: &mut Self::Batch, _checkpoint: Checkpoint) -> Result<(), StoreError> {
        Err(StoreError::Other(anyhow::anyhow!(
            "this resource's writer cannot carry an import job's checkpoint"
        )))
    }
}

/// The import job a run writes for, and the lease it runs under: each
/// batch commits the job's progress with it ([`Commits::EachBatch`]).
#[derive(Clone, Copy, Debug)]
pub struct JobLease {
    pub job: ImportId,
    pub owner: uuid::Uuid,
}

/// What the engine needs of a resource (cases, customers).
#[allow(async_fn_in_trait)]
pub trait Resource {
    type Input;
    type Batch;
    type Row: RowResult;
    type Writer: BatchWriter<Batch = Self::Batch, Row = Self::Row>;

    const KIND: Kind;

    /// Validates and resolves one batch.
    async fn prepare(
        &mut self,
        rows: Vec<(u64, Self::Input)>,
    ) -> Result<Prepared<Self::Batch, Self::Row>, ApiError>;

    /// The result of a row that failed (`None`: failed rows are answered
    /// by their problems only).
    fn failed(&self, row: u64, errors: Vec<FieldError>) -> Option<Self::Row>;

    /// Batch sizes for a run of `total` rows (`None`: a stream).
    fn batching(&self, total: Option<usize>) -> Batching;

    /// A writer for one run (it connects at its first write).
    fn writer(&self, commits: Commits, shape: Shape) -> Self::Writer;
}

/// Batch sizes: the first (nothing is written while it is validated, so a
/// small one sets the writer going sooner), then the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Batching {
    pub first: usize,
    pub then: usize,
}

impl Batching {
    /// Every batch the same size.
    pub fn fixed(size: usize) -> Self {
        Self {
            first: size,
            then: size,
        }
    }

    /// A run of `total` rows cut into about eight batches of `min` to `max`
    /// rows (a batch costs its lookups; eight overlap validation and
    /// writing well), the first at most `first`.
    pub fn eighths(total: usize, first: usize, min: usize, max: usize) -> Self {
        let then = (total / 8).clamp(min, max);
        Self {
            first: first.min(then),
            then,
        }
    }
}

/// What a run writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writes {
    /// All or nothing: written only if no row has a problem.
    Atomic,
    /// The valid rows.
    ValidRows(Commits),
    /// Nothing (a dry run): only validation.
    Nothing,
}

/// Which results a run keeps for its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// Every row's result.
    All,
    /// Skipped and failed rows' results, the first
    /// [`MAX_REPORTED_ERRORS`] (streams).
    Exceptions,
    /// None: only counts.
    Counts,
}

/// Which problems a run lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problems {
    /// The first [`MAX_REPORTED_ERRORS`] (every one is counted).
    FirstThousand,
    /// Every one (inputs bounded by other limits).
    Every,
}

/// How a run goes.
#[derive(Clone, Copy, Debug)]
pub struct RunOptions {
    pub writes: Writes,
    pub keep: Keep,
    pub problems: Problems,
}

/// Where a run counts its rows (`/metrics`).
#[derive(Clone, Copy)]
pub struct Counted<'a> {
    pub metrics: &'a Metrics,
    pub integration: &'a str,
    /// The input's name in the metric (`json`, `csv`, `customers_ndjson`, …).
    pub path: &'a str,
}

/// The end of a run.
#[derive(Debug)]
pub struct Summary<R> {
    pub created: u64,
    pub updated: u64,
    pub skipped: u64,
    /// The results kept ([`Keep`]), in row order within each batch.
    pub results: Vec<R>,
    /// Results not kept for want of room ([`Keep::Exceptions`]).
    pub results_not_listed: u64,
    /// Every problem counted; the first listed ([`Problems`]).
    pub errors: RowErrors,
    /// The resource's warnings of rows that pass, the first
    /// [`MAX_REPORTED_ERRORS`] (each restated by the source).
    pub warnings: Vec<FieldError>,
    /// Warnings counted.
    pub warning_count: u64,
    /// Rows the source yielded.
    pub rows: u64,
    /// An atomic run met a problem: nothing was written.
    pub rejected: bool,
}

impl<R> Summary<R> {
    fn new(problems: Problems) -> Self {
        Self {
            created: 0,
            updated: 0,
            skipped: 0,
            results: Vec::new(),
            results_not_listed: 0,
            errors: match problems {
                Problems::FirstThousand => RowErrors::default(),
                Problems::Every => RowErrors::every_one(),
            },
            warnings: Vec::new(),
            warning_count: 0,
            rows: 0,
            rejected: false,
        }
    }

    /// Rows created, updated or skipped.
    pub fn accepted(&self) -> u64 {
        self.created + self.updated + self.skipped
    }

    /// Rows with a problem.
    pub fn failed(&self) -> u64 {
        self.errors.failed_rows
    }
}

/// A batch on its way to the writer, with what its rows bring.
struct Ready<B, R> {
    batch: B,
    results: Vec<R>,
    last_row: u64,
    /// Rows of the batch that failed.
    failed: u64,
    /// Their problems, by row (JSON arrays), for an import job.
    failures: Vec<(u64, String)>,
}

/// One run: reads `source` to its end through `resource`, writing as
/// `options` say, and answers its summary. A failed write answers its
/// error (for a run committing batch by batch, saying what was
/// committed before it).
#[tracing::instrument(name = "ingest", skip_all, fields(kind = ?R::KIND, writes = ?options.writes, rows))]
pub async fn run<R, S>(
    resource: &mut R,
    source: &mut S,
    options: RunOptions,
    counted: Option<Counted<'_>>,
) -> Result<Summary<R::Row>, ApiError>
where
    R: Resource,
    S: RowSource<Input = R::Input>,
{
    run_for(resource, source, options, counted, None).await
}

/// A run for an import job: as [`run`], each batch committed with the
/// job's checkpoint (`options.writes` is taken to be
/// [`Writes::ValidRows`]`(`[`Commits::EachBatch`]`)`).
#[tracing::instrument(name = "import_run", skip_all, fields(job = %lease.job))]
pub async fn run_job<R, S>(
    resource: &mut R,
    source: &mut S,
    options: RunOptions,
    lease: JobLease,
) -> Result<Summary<R::Row>, ApiError>
where
    R: Resource,
    S: RowSource<Input = R::Input>,
{
    let options = RunOptions {
        writes: Writes::ValidRows(Commits::EachBatch),
        ..options
    };
    run_for(resource, source, options, None, Some(lease)).await
}

async fn run_for<R, S>(
    resource: &mut R,
    source: &mut S,
    options: RunOptions,
    counted: Option<Counted<'_>>,
    job: Option<JobLease>,
) -> Result<Summary<R::Row>, ApiError>
where
    R: Resource,
    S: RowSource<Input = R::Input>,
{
    let total = source.total();
    let shape = match total {
        Some(n) if n <= resource.batching(total).first => Shape::OneBatch,
        _ => Shape::Batches,
    };
    let run = Run {
        writer: None,
        job,
        options,
        stopped: options.writes == Writes::Nothing,
        committed: Committed::default(),
        summary: Summary::new(options.problems),
    };
    // Boxed: the run's future is deep (source, resource and writer futures
    // side by side), and a caller's future stays small and shallow.
    let answer = Box::pin(run.drive(resource, source, shape, total)).await;
    let rows = source.rows_read();
    tracing::Span::current().record("rows", rows);
    // A failed write is not counted: the rows are neither accepted nor
    // refused, and the retry counts them.
    if let (Some(counted), Ok(summary)) = (counted, &answer) {
        let (accepted, failed) = if summary.rejected {
            (0, rows)
        } else {
            (summary.accepted(), summary.failed())
        };
        counted
            .metrics
            .count_rows(counted.integration, counted.path, accepted, failed);
    }
    answer
}

struct Run<R: Resource> {
    writer: Option<R::Writer>,
    job: Option<JobLease>,
    options: RunOptions,
    /// Nothing more is written (a dry run, or an atomic run with a problem).
    stopped: bool,
    /// What the batches committed so far brought (batch-by-batch commits).
    committed: Committed,
    summary: Summary<R::Row>,
}

impl<R: Resource> Run<R> {
    async fn drive<S>(
        mut self,
        resource: &mut R,
        source: &mut S,
        shape: Shape,
        total: Option<usize>,
    ) -> Result<Summary<R::Row>, ApiError>
    where
        S: RowSource<Input = R::Input>,
    {
        let batching = resource.batching(total);
        let mut size = batching.first;
        let mut ready: Option<Ready<R::Batch, R::Row>> = None;
        if !self.stopped {
            self.writer = Some(resource.writer(self.commits(), shape));
        }
        loop {
            let batch_size = std::mem::replace(&mut size, batching.then);
            // Batch k is written while batch k+1 is read and validated (a
            // writer that hands batches over lets the run read further).
            let read = read_and_prepare(resource, source, batch_size);
            let (written, next) = join(self.write(ready.take()), read).await;
            written?;
            let Some((read, prepared)) = next? else {
                break;
            };
            ready = self.accept(resource, source, read, prepared);
        }
        // The last batch was written beside the read that found the end.
        self.summary.rows = source.rows_read();
        if self.summary.rows == 0
            && let Some(error) = source.when_empty()
        {
            // Dropping the writer rolls back (a list is not created).
            return Err(error);
        }
        self.summary.rejected =
            self.options.writes == Writes::Atomic && !self.summary.errors.is_empty();
        if !self.stopped
            && let Some(writer) = self.writer.take()
        {
            writer.commit().await.map_err(|e| self.write_error(e))?;
        }
        Ok(self.summary)
    }

    fn commits(&self) -> Commits {
        match self.options.writes {
            Writes::ValidRows(commits) => commits,
            _ => Commits::Once,
        }
    }

    /// Takes a read and prepared batch: its problems counted (an atomic run
    /// stops writing at the first), its rows' results ready for the writer.
    fn accept<S: RowSource>(
        &mut self,
        resource: &R,
        source: &S,
        read: Read,
        prepared: Prepared<R::Batch, R::Row>,
    ) -> Option<Ready<R::Batch, R::Row>> {
        let Prepared {
            batch,
            mut results,
            errors,
            warnings,
            failed_rows,
        } = prepared;
        for warning in warnings {
            self.summary.warning_count += 1;
            if self.summary.warnings.len() < MAX_REPORTED_ERRORS {
                self.summary.warnings.push(source.locate(warning));
            }
        }
        let mut errors: Vec<FieldError> = errors.into_iter().map(|e| source.locate(e)).collect();
        errors.sort_by_key(|e| e.row);
        let mut problems = read.problems;
        // The failed rows' results, where the resource answers them.
        let mut by_row = problems.iter().chain(errors.iter()).peekable();
        while let Some(first) = by_row.next() {
            let Some(row) = first.row else { continue };
            let mut same = vec![first.clone()];
            while let Some(next) = by_row.next_if(|e| e.row == Some(row)) {
                same.push(next.clone());
            }
            results.extend(resource.failed(row, same));
        }
        results.sort_by_key(RowResult::row);
        problems.append(&mut errors);
        let failures = match self.job {
            Some(_) => failures_by_row(&problems),
            None => Vec::new(),
        };
        let failed = read.failed_rows + failed_rows;
        self.summary.errors.add(problems, failed);
        if self.options.writes == Writes::Atomic && !self.summary.errors.is_empty() {
            // Dropping the writer rolls back what it wrote.
            self.writer = None;
            self.stopped = true;
        }
        if self.stopped {
            self.tally(results);
            return None;
        }
        Some(Ready {
            batch,
            results,
            last_row: read.last_row,
            failed,
            failures,
        })
    }

    /// Writes a ready batch (unless the run has stopped) and counts its
    /// rows as written.
    async fn write(&mut self, ready: Option<Ready<R::Batch, R::Row>>) -> Result<(), ApiError> {
        let Some(mut ready) = ready else {
            return Ok(());
        };
        let Some(writer) = self.writer.as_mut().filter(|_| !self.stopped) else {
            return Ok(());
        };
        if let Some(lease) = self.job {
            let count = |outcome| {
                ready
                    .results
                    .iter()
                    .filter(|r| r.outcome() == outcome)
                    .count() as u64
            };
            let checkpoint = Checkpoint {
                job: lease.job,
                owner: lease.owner,
                through_line: ready.last_row,
                succeeded: count(RowOutcome::Created) + count(RowOutcome::Updated),
                skipped: count(RowOutcome::Skipped),
                failed: ready.failed,
                failures: std::mem::take(&mut ready.failures),
            };
            if let Err(e) = R::Writer::carry(&mut ready.batch, checkpoint) {
                self.writer = None;
                return Err(self.write_error(e));
            }
        }
        let results = match writer.write(ready.batch, ready.results).await {
            Ok(results) => results,
            Err(e) => {
                self.writer = None;
                return Err(self.write_error(e));
            }
        };
        if self.commits() == Commits::EachBatch {
            for result in &results {
                match result.outcome() {
                    RowOutcome::Created => self.committed.created += 1,
                    RowOutcome::Updated => self.committed.updated += 1,
                    RowOutcome::Skipped => self.committed.skipped += 1,
                    RowOutcome::Failed => {}
                }
            }
            self.committed.through_row = ready.last_row;
        }
        self.tally(results);
        Ok(())
    }

    /// Counts results and keeps those the answer lists.
    fn tally(&mut self, results: Vec<R::Row>) {
        let summary = &mut self.summary;
        for result in results {
            let outcome = result.outcome();
            match outcome {
                RowOutcome::Created => summary.created += 1,
                RowOutcome::Updated => summary.updated += 1,
                RowOutcome::Skipped => summary.skipped += 1,
                // Counted with the run's problems.
                RowOutcome::Failed => {}
            }
            match self.options.keep {
                Keep::All => summary.results.push(result),
                Keep::Exceptions if matches!(outcome, RowOutcome::Skipped | RowOutcome::Failed) => {
                    if summary.results.len() < MAX_REPORTED_ERRORS {
                        summary.results.push(result);
                    } else {
                        summary.results_not_listed += 1;
                    }
                }
                Keep::Exceptions | Keep::Counts => {}
            }
        }
    }

    /// The answer to a failed write; for a run committing batch by batch,
    /// with what its earlier batches committed.
    fn write_error(&self, e: StoreError) -> ApiError {
        let mut error = write_error(e, R::KIND);
        if self.commits() == Commits::EachBatch {
            let c = &self.committed;
            error.detail = format!(
                "{} Before it, {} {} were committed (created {}, updated {}, skipped {}) through row {}: they are stored; the rows after it were not written.",
                error.detail,
                c.created + c.updated + c.skipped,
                R::KIND.plural(),
                c.created,
                c.updated,
                c.skipped,
                c.through_row
            );
            error.committed = Some(*c);
        }
        error
    }
}

/// A batch's problems grouped by row, each row's as a JSON array (an
/// import job's failed rows).
pub(crate) fn failures_by_row(problems: &[FieldError]) -> Vec<(u64, String)> {
    let mut by_row: std::collections::BTreeMap<u64, Vec<&FieldError>> = Default::default();
    for problem in problems {
        if let Some(row) = problem.row {
            by_row.entry(row).or_default().push(problem);
        }
    }
    by_row
        .into_iter()
        .map(|(row, errors)| {
            let errors = serde_json::to_string(&errors).unwrap_or_else(|_| "[]".into());
            (row, errors)
        })
        .collect()
}

/// What a batch read brought besides its rows.
struct Read {
    problems: Vec<FieldError>,
    failed_rows: u64,
    /// Its last row (read or broken).
    last_row: u64,
}

/// Reads the next batch and prepares it; `None` at the end.
async fn read_and_prepare<R, S>(
    resource: &mut R,
    source: &mut S,
    size: usize,
) -> Result<Option<(Read, Prepared<R::Batch, R::Row>)>, ApiError>
where
    R: Resource,
    S: RowSource<Input = R::Input>,
{
    let batch = source.next_batch(size).await?;
    if batch.is_empty() {
        return Ok(None);
    }
    let SourceBatch {
        rows,
        problems,
        failed_rows,
    } = batch;
    let last_row = rows
        .last()
        .map(|(row, _)| *row)
        .into_iter()
        .chain(problems.iter().filter_map(|p| p.row))
        .max()
        .unwrap_or(0);
    let prepared = resource.prepare(rows).await?;
    let read = Read {
        problems,
        failed_rows,
        last_row,
    };
    Ok(Some((read, prepared)))
}

/// The one mapping of a failed write to its answer: a concurrent request
/// wrote the same keys first, or changed what the rows refer to.
pub fn write_error(e: StoreError, kind: Kind) -> ApiError {
    match (e, kind) {
        (StoreError::Duplicate(_), Kind::Cases) => ApiError::new(
            ErrorCode::DuplicateExternalId,
            "Another request wrote one of these Case IDs at the same time; nothing of this request (of a non-atomic stream: of this batch and after) was written. Retry.",
        ),
        // A staff member, group or list the rows refer to was deleted (or
        // moved) while they were written: not the caller's "resource in use".
        (StoreError::Reference(_) | StoreError::Contended(_), Kind::Cases) => ApiError::new(
            ErrorCode::ConcurrentWrite,
            "A staff member, group or list these cases refer to changed while they were written; nothing of this request (of a non-atomic stream: of this batch and after) was written. Retry.",
        ),
        (
            StoreError::Duplicate(_) | StoreError::Reference(_) | StoreError::Contended(_),
            Kind::Customers,
        ) => ApiError::new(
            ErrorCode::ConcurrentWrite,
            "Another request changed some of these customers (or their agents) at the same time; nothing of this request was written. Retry.",
        ),
        (other, _) => other.into(),
    }
}
