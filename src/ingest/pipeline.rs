//! The write side shared by every case format: a request's batches are
//! validated one after another while the store's writer writes the
//! previous ones (validation yields now and then, so the writer keeps the
//! database fed), in one transaction or one per batch.
//!
//! An atomic request that meets a problem stops writing (its transaction
//! rolls back) and goes on validating, to report every problem at once.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::future::{Either, select};
use uuid::Uuid;

use crate::error::{ApiError, Committed, ErrorCode, FieldError};
use crate::ingest::RowErrors;
use crate::ingest::cases::{Accepted, CaseIngest, Outcome};
use crate::store::cases::{CaseBatch, CaseSink, NewCaseList, OpenCases};
use crate::store::{Store, StoreError};

/// How a request's batches reach the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writes {
    /// All or nothing: one transaction, written only if no row has a problem.
    Atomic,
    /// The valid rows, in one transaction for the whole request.
    ValidRows,
    /// The valid rows, each batch committed on its own (long streams make
    /// progress and hold no lock for their whole length).
    ValidRowsEachBatch,
    /// Nothing (a dry run): only validation.
    None,
}

/// Cases per batch of a request of `total` cases. The first batch is
/// validated before anything is written and the last written after
/// everything is validated: cut into eight, a request overlaps the rest (a
/// batch costs two lookups; the COPY stays open across them).
pub fn batch_size(total: usize, min: usize, max: usize) -> usize {
    (total / 8).clamp(min, max)
}

/// The first batch of a request, stream or file: nothing is written while
/// it is validated, so it is small.
pub const FIRST_BATCH: usize = 100;

type WriterFuture = Pin<Box<dyn Future<Output = Result<OpenCases, StoreError>> + Send>>;

pub struct CasePipeline<'a> {
    store: &'a Store,
    integration_id: Uuid,
    list: Option<&'a NewCaseList>,
    writes: Writes,
    /// Keep every accepted row (answers that list each case), or only count.
    keep_accepted: bool,
    /// The store's writer and what feeds it; `None` until the first batch.
    writer: Option<(CaseSink, WriterFuture)>,
    /// An atomic request met a problem: nothing is written.
    stopped: bool,
    /// Batches the writer committed (a stream committing each batch).
    committed: Arc<AtomicU64>,
    /// What each batch handed to the writer brings: (created, updated,
    /// skipped, its last row).
    sent: Vec<(u64, u64, u64, u64)>,
    /// The request is one batch: if it brings only new cases and no list,
    /// they are written by one statement at the end, not by a writer.
    single: bool,
    /// That one batch's new cases, until `finish`.
    held: Option<Vec<crate::store::cases::CaseRow>>,
    pub errors: RowErrors,
    pub accepted: Vec<Accepted>,
    pub created: u64,
    pub updated: u64,
    pub skipped: u64,
}

impl<'a> CasePipeline<'a> {
    pub fn new(
        store: &'a Store,
        integration_id: Uuid,
        list: Option<&'a NewCaseList>,
        writes: Writes,
        keep_accepted: bool,
    ) -> Self {
        Self {
            store,
            integration_id,
            list,
            writes,
            keep_accepted,
            writer: None,
            stopped: writes == Writes::None,
            committed: Arc::new(AtomicU64::new(0)),
            sent: Vec::new(),
            single: false,
            held: None,
            errors: RowErrors::default(),
            accepted: Vec::new(),
            created: 0,
            updated: 0,
            skipped: 0,
        }
    }

    /// The request is one batch (a few cases): written, where it can be, by
    /// one statement on a writer's connection — one short transaction, one
    /// round trip.
    pub fn single_batch(mut self) -> Self {
        self.single = true;
        self
    }

    /// Lists every problem, not only the first [`crate::ingest::MAX_REPORTED_ERRORS`].
    pub fn listing_every_problem(mut self) -> Self {
        self.errors = RowErrors::every_one();
        self
    }

    /// Problems found outside the validators (a CSV rule broken), with the
    /// rows they make fail.
    pub fn reject(&mut self, errors: Vec<FieldError>, failed_rows: u64) {
        self.errors.add(errors, failed_rows);
        self.stop_if_atomic();
    }

    /// Validates `rows` while earlier batches are written, then hands the
    /// valid ones to the writer. `broken`: the problems of the batch's rows
    /// that could not even be read (one each).
    pub async fn feed(
        &mut self,
        ingest: &mut CaseIngest<'_>,
        rows: Vec<(u64, crate::domain::case::CaseInput)>,
        mut broken: Vec<FieldError>,
    ) -> Result<(), ApiError> {
        let last_row = rows.last().map_or(0, |(row, _)| *row);
        let mut batch = self.driving(ingest.prepare(rows)).await??;
        let failed = batch.failed_rows + broken.len() as u64;
        broken.append(&mut batch.errors);
        self.errors.add(broken, failed);
        self.stop_if_atomic();
        let direct = self.single
            && self.held.is_none()
            && self.list.is_none()
            && batch.updates.is_empty()
            && self.writes != Writes::ValidRowsEachBatch;
        if self.writer.is_none() && !self.stopped && direct {
            self.held = Some(std::mem::take(&mut batch.inserts));
            self.account(std::mem::take(&mut batch.accepted));
            return Ok(());
        }
        if self.writer.is_none() && !self.stopped {
            // Opened once the first batch is validated: a request holds no
            // writer's connection while it waits for its lookups (the
            // writer's pool is never waited on by a holder of its own).
            let (sink, writer) = self.store.case_writer(
                self.integration_id,
                self.list,
                self.writes == Writes::ValidRowsEachBatch,
                self.committed.clone(),
            );
            self.writer = Some((sink, Box::pin(writer)));
            if let Some(held) = self.held.take() {
                // More than one batch came after all: the first goes first.
                self.hand_over(CaseBatch {
                    inserts: held,
                    updates: Vec::new(),
                })
                .await?;
            }
        }
        let accepted = std::mem::take(&mut batch.accepted);
        if let Some((sink, _)) = self.writer.as_ref().filter(|_| !self.stopped) {
            let sink = sink.clone();
            let rows = CaseBatch {
                inserts: std::mem::take(&mut batch.inserts),
                updates: std::mem::take(&mut batch.updates),
            };
            if self.driving(sink.send(rows)).await?.is_err() {
                return Err(stopped_early());
            }
            let count = |outcome| accepted.iter().filter(|a| a.outcome == outcome).count() as u64;
            self.sent.push((
                count(Outcome::Created),
                count(Outcome::Updated),
                count(Outcome::Skipped),
                last_row,
            ));
        }
        if !self.stopped || self.writes == Writes::None {
            self.account(accepted);
        }
        Ok(())
    }

    /// Waits for the writer and commits, unless an atomic request met a
    /// problem (then nothing is written at all).
    pub async fn finish(&mut self) -> Result<(), ApiError> {
        if self.stopped {
            return Ok(());
        }
        if let Some(rows) = self.held.take() {
            return self
                .store
                .insert_cases(self.integration_id, &rows)
                .await
                .map_err(|e| self.write_error(e));
        }
        match self.writer.take() {
            Some((sink, writer)) => {
                // The writer ends once its sink is closed.
                drop(sink);
                let open = writer.await.map_err(|e| self.write_error(e))?;
                open.commit().await.map_err(|e| self.write_error(e))?;
            }
            // No batch came: the list still exists, empty.
            None if self.list.is_some() => {
                let (sink, writer) = self.store.case_writer(
                    self.integration_id,
                    self.list,
                    false,
                    self.committed.clone(),
                );
                drop(sink);
                writer.await?.commit().await?;
            }
            None => {}
        }
        Ok(())
    }

    /// Whether an atomic request was refused (nothing written).
    pub fn rejected(&self) -> bool {
        self.writes == Writes::Atomic && !self.errors.is_empty()
    }

    fn stop_if_atomic(&mut self) {
        if self.rejected() {
            // Dropping the writer rolls back what it wrote.
            self.writer = None;
            self.held = None;
            self.stopped = true;
        }
    }

    /// Hands a batch to the writer (sending waits while it writes the one
    /// before).
    async fn hand_over(&mut self, rows: CaseBatch) -> Result<(), ApiError> {
        let Some((sink, _)) = self.writer.as_ref() else {
            return Ok(());
        };
        let sink = sink.clone();
        if self.driving(sink.send(rows)).await?.is_err() {
            return Err(stopped_early());
        }
        Ok(())
    }

    /// Runs `work` while the writer goes on writing. A writer that ends
    /// before its sink is closed has failed: its error is the request's.
    async fn driving<T>(&mut self, work: impl Future<Output = T>) -> Result<T, ApiError> {
        let Some((_, writer)) = self.writer.as_mut() else {
            return Ok(work.await);
        };
        let work = std::pin::pin!(work);
        match select(writer.as_mut(), work).await {
            Either::Right((value, _)) => Ok(value),
            Either::Left((ended, _)) => {
                self.writer = None;
                Err(match ended {
                    Err(e) => self.write_error(e),
                    Ok(_) => stopped_early(),
                })
            }
        }
    }

    /// The answer to a failed write: what the error says, and for a
    /// stream committing batch by batch, what its earlier batches committed.
    fn write_error(&self, e: StoreError) -> ApiError {
        let mut error = write_error(e);
        if self.writes == Writes::ValidRowsEachBatch {
            let batches = self.committed.load(Ordering::Acquire) as usize;
            let mut committed = Committed::default();
            for (created, updated, skipped, last) in self.sent.iter().take(batches) {
                committed.created += created;
                committed.updated += updated;
                committed.skipped += skipped;
                committed.through_row = *last;
            }
            error.detail = format!(
                "{} Before it, {} cases were committed (created {}, updated {}, skipped {}) through row {}: they are stored; the rows after it were not written.",
                error.detail,
                committed.created + committed.updated + committed.skipped,
                committed.created,
                committed.updated,
                committed.skipped,
                committed.through_row
            );
            error.committed = Some(committed);
        }
        error
    }

    /// Counts the rows of a batch handed to the writer (or, in a dry run,
    /// validated).
    fn account(&mut self, accepted: Vec<Accepted>) {
        for row in &accepted {
            match row.outcome {
                Outcome::Created => self.created += 1,
                Outcome::Updated => self.updated += 1,
                Outcome::Skipped => self.skipped += 1,
            }
        }
        if self.keep_accepted {
            self.accepted.extend(accepted);
        }
    }
}

fn stopped_early() -> ApiError {
    ApiError::internal(anyhow::anyhow!("the case writer stopped early"))
}

/// A concurrent request wrote one of the Case IDs first, or changed what
/// the cases refer to.
pub(crate) fn write_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Duplicate(_) => ApiError::new(
            ErrorCode::DuplicateExternalId,
            "Another request wrote one of these Case IDs at the same time; nothing of this request (of a non-atomic stream: of this batch and after) was written. Retry.",
        ),
        // A staff member, group or list the rows refer to was deleted (or
        // moved) while they were written: not the caller's "resource in use".
        StoreError::Reference(_) | StoreError::Contended(_) => ApiError::new(
            ErrorCode::ConcurrentWrite,
            "A staff member, group or list these cases refer to changed while they were written; nothing of this request (of a non-atomic stream: of this batch and after) was written. Retry.",
        ),
        other => other.into(),
    }
}
