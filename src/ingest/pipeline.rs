//! The write side shared by every case format: batch k is written while
//! batch k+1 is validated (validation yields now and then, so the writer
//! keeps the database fed), in one transaction or one per batch.
//!
//! An atomic request that meets a problem stops writing (its transaction
//! rolls back) and goes on validating, to report every problem at once.

use uuid::Uuid;

use crate::error::{ApiError, FieldError};
use crate::ingest::RowErrors;
use crate::ingest::cases::{Accepted, CaseIngest, Outcome, PreparedBatch};
use crate::store::cases::{CaseWriter, NewCaseList};
use crate::store::{Store, StoreError};

/// How a request's batches reach the database.
#[derive(Clone, Copy, Debug)]
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

/// Cases per batch of a request of `total` cases: a request of one batch
/// would have nothing to overlap, so it is cut into four.
pub fn batch_size(total: usize, min: usize, max: usize) -> usize {
    (total / 4).clamp(min, max)
}

pub struct CasePipeline<'a> {
    store: &'a Store,
    integration_id: Uuid,
    list: Option<&'a NewCaseList>,
    writes: Writes,
    /// Keep every accepted row (answers that list each case), or only count.
    keep_accepted: bool,
    writer: Option<CaseWriter>,
    list_created: bool,
    /// An atomic request met a problem: nothing more is written.
    stopped: bool,
    ready: Option<PreparedBatch>,
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
            list_created: false,
            stopped: false,
            ready: None,
            errors: RowErrors::default(),
            accepted: Vec::new(),
            created: 0,
            updated: 0,
            skipped: 0,
        }
    }

    /// Lists every problem, not only the first [`crate::ingest::MAX_REPORTED_ERRORS`].
    pub fn listing_every_problem(mut self) -> Self {
        self.errors = RowErrors::every_one();
        self
    }

    /// Problems found outside the validators (a broken line, a CSV rule),
    /// with the rows they make fail.
    pub fn reject(&mut self, errors: Vec<FieldError>, failed_rows: u64) {
        self.errors.add(errors, failed_rows);
        self.stop_if_atomic();
    }

    /// Validates `rows` while the previous batch is written. `broken`: the
    /// problems of the batch's rows that could not even be read (one each).
    pub async fn feed(
        &mut self,
        ingest: &mut CaseIngest<'_>,
        rows: Vec<(u64, crate::domain::case::CaseInput)>,
        mut broken: Vec<FieldError>,
    ) -> Result<(), ApiError> {
        let ready = self.ready.take();
        let (written, prepared) = tokio::join!(self.write(ready), ingest.prepare(rows));
        written?;
        let mut batch = prepared?;
        let failed = batch.failed_rows + broken.len() as u64;
        broken.append(&mut batch.errors);
        self.errors.add(broken, failed);
        self.stop_if_atomic();
        if matches!(self.writes, Writes::None) {
            self.account(std::mem::take(&mut batch.accepted));
        } else if !self.stopped {
            self.ready = Some(batch);
        }
        Ok(())
    }

    /// Writes what is left and commits, unless an atomic request met a
    /// problem (then nothing is written at all).
    pub async fn finish(&mut self) -> Result<(), ApiError> {
        let ready = self.ready.take();
        self.write(ready).await?;
        if self.stopped || matches!(self.writes, Writes::None) {
            return Ok(());
        }
        match self.writer.take() {
            Some(writer) => writer.commit().await.map_err(write_error)?,
            // Nothing was written (every case skipped or failed): the list
            // still exists, empty.
            None if !self.list_created && self.list.is_some() => {
                self.store
                    .case_writer(self.integration_id, self.list, true)
                    .await?
                    .commit()
                    .await?;
            }
            None => {}
        }
        Ok(())
    }

    /// Whether an atomic request was refused (nothing written).
    pub fn rejected(&self) -> bool {
        matches!(self.writes, Writes::Atomic) && !self.errors.is_empty()
    }

    fn stop_if_atomic(&mut self) {
        if self.rejected() {
            // Dropping the transaction rolls back what was written.
            self.writer = None;
            self.ready = None;
            self.stopped = true;
        }
    }

    async fn write(&mut self, batch: Option<PreparedBatch>) -> Result<(), ApiError> {
        let Some(batch) = batch else { return Ok(()) };
        if self.stopped {
            return Ok(());
        }
        let create_list = !self.list_created;
        if self.writer.is_none() {
            self.writer = Some(
                self.store
                    .case_writer(self.integration_id, self.list, create_list)
                    .await?,
            );
            self.list_created = true;
        }
        if let Some(writer) = self.writer.as_mut() {
            writer
                .write(&batch.inserts, &batch.updates)
                .await
                .map_err(write_error)?;
        }
        if matches!(self.writes, Writes::ValidRowsEachBatch)
            && let Some(writer) = self.writer.take()
        {
            writer.commit().await.map_err(write_error)?;
        }
        self.account(batch.accepted);
        Ok(())
    }

    /// Counts the rows of a batch written (or, in a dry run, validated).
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

/// A concurrent request wrote one of the Case IDs first.
pub(crate) fn write_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Duplicate(_) => ApiError::new(
            crate::error::ErrorCode::DuplicateExternalId,
            "Another request wrote one of these Case IDs at the same time; nothing of this batch was written. Retry.",
        ),
        other => other.into(),
    }
}
