//! The row sources of every format: a JSON body's array, values already
//! parsed, an NDJSON byte stream, a CSV file's records. None knows of HTTP:
//! each takes bytes (or a stream of them) and yields numbered rows.

use std::ops::Range;

use actix_web::web::Bytes;
use serde::de::DeserializeOwned;

use crate::domain::case::CaseInput;
use crate::domain::customer::CustomerInput;
use crate::error::{ApiError, ErrorCode, FieldError, json_part_error};
use crate::ingest::case_csv::CaseColumns;
use crate::ingest::csv::CsvRecord;
use crate::ingest::customer_csv::CustomerColumns;
use crate::ingest::engine::{RowSource, SourceBatch};
use crate::ingest::ndjson::{ByteStream, NdjsonLines};

/// The elements of a JSON array in a body, each parsed when its batch
/// comes (parsing overlaps the writing of earlier batches). An element that
/// does not parse fails the run, as a malformed body does.
#[derive(Clone)]
pub struct JsonArray<T> {
    body: Bytes,
    /// Where each element's JSON text lies in `body`.
    elements: Vec<Range<usize>>,
    /// The array's field, naming an element in errors (`cases[3]`).
    field: &'static str,
    next: usize,
    _input: std::marker::PhantomData<fn() -> T>,
}

impl<T> JsonArray<T> {
    pub fn new(body: Bytes, elements: Vec<Range<usize>>, field: &'static str) -> Self {
        Self {
            body,
            elements,
            field,
            next: 0,
            _input: std::marker::PhantomData,
        }
    }
}

impl<T: DeserializeOwned> RowSource for JsonArray<T> {
    type Input = T;

    async fn next_batch(&mut self, size: usize) -> Result<SourceBatch<T>, ApiError> {
        let end = (self.next + size).min(self.elements.len());
        let rows = (self.next..end)
            .map(|i| {
                serde_json::from_slice(&self.body[self.elements[i].clone()])
                    .map(|value| (i as u64 + 1, value))
                    .map_err(|e| json_part_error(&e, Some(&format!("{}[{i}]", self.field))))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.next = end;
        Ok(SourceBatch {
            rows,
            problems: Vec::new(),
            failed_rows: 0,
        })
    }

    fn rows_read(&self) -> u64 {
        self.next as u64
    }

    fn total(&self) -> Option<usize> {
        Some(self.elements.len())
    }
}

/// Values already parsed (a JSON body read whole, one customer, a test).
pub struct Listed<T> {
    rows: std::vec::IntoIter<T>,
    total: usize,
    read: u64,
}

impl<T> Listed<T> {
    pub fn new(rows: Vec<T>) -> Self {
        Self {
            total: rows.len(),
            rows: rows.into_iter(),
            read: 0,
        }
    }
}

impl<T> RowSource for Listed<T> {
    type Input = T;

    async fn next_batch(&mut self, size: usize) -> Result<SourceBatch<T>, ApiError> {
        let first = self.read;
        let rows: Vec<(u64, T)> = self
            .rows
            .by_ref()
            .take(size)
            .enumerate()
            .map(|(i, value)| (first + i as u64 + 1, value))
            .collect();
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

    fn total(&self) -> Option<usize> {
        Some(self.total)
    }
}

/// One value per line of a byte stream; a line that is not the JSON of a
/// `T` is a failed row (its problem is the parser's).
pub struct Ndjson<S, T> {
    lines: NdjsonLines<S>,
    /// What a row is, in the answer to an empty stream: (`cases`, `case`).
    noun: (&'static str, &'static str),
    _input: std::marker::PhantomData<fn() -> T>,
}

impl<S, T> Ndjson<S, T> {
    pub fn new(lines: NdjsonLines<S>, plural: &'static str, singular: &'static str) -> Self {
        Self {
            lines,
            noun: (plural, singular),
            _input: std::marker::PhantomData,
        }
    }
}

impl<S: ByteStream, T: DeserializeOwned> RowSource for Ndjson<S, T> {
    type Input = T;

    async fn next_batch(&mut self, size: usize) -> Result<SourceBatch<T>, ApiError> {
        let (rows, problems) = self.lines.next_batch::<T>(size).await?;
        Ok(SourceBatch {
            failed_rows: problems.len() as u64,
            rows,
            problems,
        })
    }

    fn rows_read(&self) -> u64 {
        self.lines.rows
    }

    fn when_empty(&self) -> Option<ApiError> {
        let (plural, singular) = self.noun;
        Some(ApiError::validation(
            ErrorCode::ValidationFailed,
            vec![FieldError::field(
                plural,
                ErrorCode::Required,
                format!("the stream holds no {singular}"),
            )],
        ))
    }
}

/// How a CSV file's columns become a resource's input.
pub trait Columns {
    type Input;
    fn input(&self, cells: Vec<String>) -> Self::Input;
    fn locate(&self, error: FieldError) -> FieldError;
}

impl Columns for CaseColumns {
    type Input = CaseInput;
    fn input(&self, cells: Vec<String>) -> CaseInput {
        self.case(cells)
    }
    fn locate(&self, error: FieldError) -> FieldError {
        CaseColumns::locate(self, error)
    }
}

impl Columns for CustomerColumns {
    type Input = CustomerInput;
    fn input(&self, cells: Vec<String>) -> CustomerInput {
        self.customer(cells)
    }
    fn locate(&self, error: FieldError) -> FieldError {
        CustomerColumns::locate(self, error)
    }
}

/// The records of a CSV file read by its columns. Records breaking a CSV
/// rule are not read (the file's problems already name them); the file's
/// problems come with the first batch. Without columns (a header that
/// cannot be read) there are no rows, only the problems.
pub struct CsvRows<C> {
    records: std::vec::IntoIter<CsvRecord>,
    columns: Option<C>,
    problems: Vec<FieldError>,
    total: usize,
    read: u64,
}

impl<C: Columns> CsvRows<C> {
    pub fn new(records: Vec<CsvRecord>, columns: Option<C>, problems: Vec<FieldError>) -> Self {
        let records = if columns.is_some() {
            records.into_iter().filter(|r| !r.broken).collect()
        } else {
            Vec::new()
        };
        Self {
            total: records.len(),
            records: records.into_iter(),
            columns,
            problems,
            read: 0,
        }
    }
}

impl<C: Columns> RowSource for CsvRows<C> {
    type Input = C::Input;

    async fn next_batch(&mut self, size: usize) -> Result<SourceBatch<C::Input>, ApiError> {
        let problems = std::mem::take(&mut self.problems);
        let rows: Vec<(u64, C::Input)> = match &self.columns {
            Some(columns) => self
                .records
                .by_ref()
                .take(size)
                .map(|r| (r.line, columns.input(r.cells)))
                .collect(),
            None => Vec::new(),
        };
        self.read += rows.len() as u64;
        Ok(SourceBatch {
            rows,
            problems,
            failed_rows: 0,
        })
    }

    fn rows_read(&self) -> u64 {
        self.read
    }

    fn total(&self) -> Option<usize> {
        Some(self.total)
    }

    fn locate(&self, error: FieldError) -> FieldError {
        match &self.columns {
            Some(columns) => columns.locate(error),
            None => error,
        }
    }
}
