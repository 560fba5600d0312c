//! Reading a workbook (.xlsx, .xls) from disk as rows of text cells, with
//! calamine: the first sheet unless one is named. An .xlsx sheet is read
//! cell by cell as it is unzipped (never whole in memory); an .xls sheet
//! (at most 65,536 rows) is read whole.
//!
//! Each cell becomes exactly the text the CSV path reads:
//! - text as it is; an empty cell as an empty string;
//! - a whole number (integer, or a float with no fraction below 10^15)
//!   without a decimal point (`42`, not `42.0`); other numbers in their
//!   shortest exact form (`0.1`, `1e20`);
//! - `true` / `false`;
//! - a date or date-time cell as RFC 3339 in UTC (`2026-11-30T14:05:00Z`;
//!   a workbook has no time zone, so its times are taken as UTC); a
//!   duration as its number of days;
//! - an error cell as its text (`#N/A`, `#DIV/0!`), which the validators
//!   then refuse where the column needs a value of a kind.
//!
//! Line numbers are the sheet's row numbers (the header is usually 1).

use std::path::Path;

use calamine::{Data, DataRef, ExcelDateTime, Reader, Xls, Xlsx, open_workbook};

use crate::store::imports::FileFormat;

/// Why a workbook cannot be read.
#[derive(Debug)]
pub enum WorkbookError {
    /// The named sheet is not in the workbook (the sheets it has).
    NoSuchSheet(String, Vec<String>),
    /// The workbook has no sheet.
    Empty,
    /// The file is not a workbook calamine can read.
    Unreadable(String),
}

/// Reads the rows of the sheet, calling `row` with each one's line and
/// cells (rows with no cell at all are skipped) until it answers `false`.
pub fn for_each_row(
    path: &Path,
    format: FileFormat,
    sheet: Option<&str>,
    mut row: impl FnMut(u64, Vec<String>) -> bool,
) -> Result<(), WorkbookError> {
    let unreadable = |e: &dyn std::fmt::Display| WorkbookError::Unreadable(e.to_string());
    let pick = |names: Vec<String>| -> Result<String, WorkbookError> {
        match sheet {
            Some(wanted) => names
                .iter()
                .find(|n| n.as_str() == wanted)
                .cloned()
                .ok_or_else(|| WorkbookError::NoSuchSheet(wanted.to_string(), names.clone())),
            None => names.first().cloned().ok_or(WorkbookError::Empty),
        }
    };
    match format {
        FileFormat::Xlsx => {
            let mut book: Xlsx<_> = open_workbook(path).map_err(|e| unreadable(&e))?;
            let name = pick(book.sheet_names())?;
            let mut cells = book
                .worksheet_cells_reader(&name)
                .map_err(|e| unreadable(&e))?;
            let mut current: Option<(u32, Vec<String>)> = None;
            while let Some(cell) = cells.next_cell().map_err(|e| unreadable(&e))? {
                let (r, c) = cell.get_position();
                let text = data_ref_text(cell.get_value());
                if current.as_ref().is_some_and(|(at, _)| *at != r)
                    && let Some((at, cells)) = current.take()
                    && !row(u64::from(at) + 1, cells)
                {
                    return Ok(());
                }
                let (_, cells) = current.get_or_insert_with(|| (r, Vec::new()));
                let c = c as usize;
                if cells.len() <= c {
                    cells.resize(c + 1, String::new());
                }
                cells[c] = text;
            }
            if let Some((at, cells)) = current {
                row(u64::from(at) + 1, cells);
            }
        }
        FileFormat::Xls => {
            let mut book: Xls<_> = open_workbook(path).map_err(|e| unreadable(&e))?;
            let name = pick(book.sheet_names())?;
            let range = book.worksheet_range(&name).map_err(|e| unreadable(&e))?;
            let (first_row, first_column) = range.start().unwrap_or((0, 0));
            for (i, cells) in range.rows().enumerate() {
                if cells.iter().all(|c| matches!(c, Data::Empty)) {
                    continue;
                }
                let mut texts = vec![String::new(); first_column as usize];
                texts.extend(cells.iter().map(data_text));
                if !row(u64::from(first_row) + i as u64 + 1, texts) {
                    return Ok(());
                }
            }
        }
        FileFormat::Csv => {
            return Err(WorkbookError::Unreadable(
                "a CSV file is not a workbook".into(),
            ));
        }
    }
    Ok(())
}

fn number_text(value: f64) -> String {
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

fn datetime_text(value: &ExcelDateTime) -> String {
    if value.is_duration() {
        return number_text(value.as_f64());
    }
    match value.as_datetime() {
        Some(at) => at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => number_text(value.as_f64()),
    }
}

fn data_ref_text(cell: &DataRef<'_>) -> String {
    match cell {
        DataRef::Int(n) => n.to_string(),
        DataRef::Float(f) => number_text(*f),
        DataRef::String(s) => s.clone(),
        DataRef::SharedString(s) => (*s).to_string(),
        DataRef::Bool(b) => b.to_string(),
        DataRef::DateTime(d) => datetime_text(d),
        DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
        DataRef::Error(e) => e.to_string(),
        DataRef::Empty => String::new(),
    }
}

fn data_text(cell: &Data) -> String {
    match cell {
        Data::Int(n) => n.to_string(),
        Data::Float(f) => number_text(*f),
        Data::String(s) => s.clone(),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(d) => datetime_text(d),
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Error(e) => e.to_string(),
        Data::Empty => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_as_the_csv_path_reads_them() {
        assert_eq!(number_text(42.0), "42");
        assert_eq!(number_text(-7.0), "-7");
        assert_eq!(number_text(0.1), "0.1");
        assert_eq!(number_text(1e20), "100000000000000000000");
        assert_eq!(number_text(2.5), "2.5");
    }
}
