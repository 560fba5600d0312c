//! Reading an uploaded CSV file: text encoding, delimiter and line ending
//! detection, records with their line numbers, and the rules every CSV
//! upload keeps (headers present and unique, record, column and cell limits,
//! no short rows). What the columns mean is the caller's business.

use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, Column, ErrorCode, FieldError, excerpt};
use crate::store::models::CsvLimits;

/// What the upload turned out to be.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[schema(example = json!({"encoding": "utf-8", "bom": false, "delimiter": ",", "line_ending": "crlf"}))]
pub struct Detected {
    /// `utf-8`, `utf-16le`, `utf-16be` or `windows-1252` (converted to UTF-8).
    pub encoding: String,
    /// Whether the file started with a byte-order mark (stripped).
    pub bom: bool,
    /// `,` or `;`.
    pub delimiter: String,
    /// `crlf`, `lf` or `cr`.
    pub line_ending: String,
}

impl Default for Detected {
    /// What a file is taken to be when nothing could be detected.
    fn default() -> Self {
        Detected {
            encoding: "utf-8".into(),
            bom: false,
            delimiter: ",".into(),
            line_ending: "lf".into(),
        }
    }
}

/// The 422 of a file that breaks the CSV rules: every problem, by line.
pub fn invalid_csv(mut errors: Vec<FieldError>) -> ApiError {
    errors.sort_by_key(|e| e.row);
    let count = errors.len();
    ApiError::new(
        ErrorCode::InvalidCsv,
        format!(
            "The file cannot be imported: {count} problem{} (see `errors`).",
            if count == 1 { "" } else { "s" }
        ),
    )
    .with_errors(errors)
}

/// One record and the line it starts on (the header is line 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvRecord {
    pub line: u64,
    /// Exactly as many cells as headers (extra cells dropped), each trimmed.
    pub cells: Vec<String>,
    /// The record breaks a CSV rule (a short row, a cell too long), already
    /// in the table's errors: not read as data.
    pub broken: bool,
}

/// A file read as far as the CSV rules allow.
#[derive(Debug, Default)]
pub struct CsvTable {
    pub detected: Option<Detected>,
    /// Header cells, trimmed.
    pub header: Vec<String>,
    pub records: Vec<CsvRecord>,
    pub errors: Vec<FieldError>,
    pub warnings: Vec<FieldError>,
    /// How many of `errors` are the header's (the columns cannot be read).
    pub header_problems: usize,
}

/// Header words that mark messages, comments and activity logs.
const NOT_INGESTED: [&str; 3] = ["message", "comment", "activity"];

/// Whether a column holds messages, comments or activity logs, which are
/// never ingested (a warning, and the column is ignored).
pub fn not_ingested(header: &str) -> bool {
    let lower = header.to_lowercase();
    NOT_INGESTED.iter().any(|word| lower.contains(word))
}

/// A problem at a line (and column).
pub fn at(
    line: u64,
    column: Option<Column>,
    code: ErrorCode,
    message: impl Into<String>,
) -> FieldError {
    FieldError {
        row: Some(line),
        column,
        field: None,
        code,
        message: message.into(),
    }
}

impl CsvTable {
    pub(crate) fn fatal(code: ErrorCode, message: impl Into<String>) -> Self {
        CsvTable {
            errors: vec![FieldError {
                row: None,
                column: None,
                field: None,
                code,
                message: message.into(),
            }],
            ..Default::default()
        }
    }

    /// The column as named in the errors: its header, or its 1-based index.
    pub fn column(&self, index: usize) -> Column {
        column_of(&self.header, index)
    }
}

/// Turns the file's bytes into text, or says why it cannot.
fn decode(bytes: &[u8]) -> Result<(String, &'static str, bool), (ErrorCode, String)> {
    use encoding_rs::{UTF_16BE, UTF_16LE, WINDOWS_1252};
    let utf16 =
        |encoding: &'static encoding_rs::Encoding, body: &[u8], name: &'static str, bom: bool| {
            let (text, malformed) = encoding.decode_without_bom_handling(body);
            if malformed {
                Err((
                    ErrorCode::UnsupportedEncoding,
                    format!(
                        "the file claims to be {name} but is not valid {name}; save it as CSV UTF-8"
                    ),
                ))
            } else {
                Ok((text.into_owned(), name, bom))
            }
        };
    if let Some(body) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return match std::str::from_utf8(body) {
            Ok(text) => Ok((text.to_string(), "utf-8", true)),
            Err(e) => Err((
                ErrorCode::UnsupportedEncoding,
                format!(
                    "the file starts as UTF-8 but byte {} is not UTF-8; save it as CSV UTF-8",
                    e.valid_up_to() + 3
                ),
            )),
        };
    }
    if let Some(body) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return utf16(UTF_16LE, body, "utf-16le", true);
    }
    if let Some(body) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return utf16(UTF_16BE, body, "utf-16be", true);
    }
    if bytes.contains(&0) {
        if let Some((encoding, name)) = utf16_by_zeros(bytes) {
            return utf16(encoding, bytes, name, false);
        }
        return Err((
            ErrorCode::NotCsv,
            "the file is not text (it holds binary data)".to_string(),
        ));
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok((text.to_string(), "utf-8", false)),
        // Spreadsheet programs on Windows save "CSV" in Windows-1252.
        Err(_) => Ok((
            WINDOWS_1252
                .decode_without_bom_handling(bytes)
                .0
                .into_owned(),
            "windows-1252",
            false,
        )),
    }
}

/// The UTF-16 of a file with zeros and no byte-order mark: UTF-16 puts a
/// zero in every other byte of ASCII text (`None`: anything else with
/// zeros, which is not text). Looks at the first 4 KiB.
pub(crate) fn utf16_by_zeros(
    bytes: &[u8],
) -> Option<(&'static encoding_rs::Encoding, &'static str)> {
    let sample = &bytes[..bytes.len().min(4096) & !1];
    let zeros_odd = sample
        .iter()
        .skip(1)
        .step_by(2)
        .filter(|b| **b == 0)
        .count();
    let zeros_even = sample.iter().step_by(2).filter(|b| **b == 0).count();
    let half = sample.len() / 2;
    if half > 0 && zeros_odd * 10 >= half * 9 && zeros_even == 0 {
        Some((encoding_rs::UTF_16LE, "utf-16le"))
    } else if half > 0 && zeros_even * 10 >= half * 9 && zeros_odd == 0 {
        Some((encoding_rs::UTF_16BE, "utf-16be"))
    } else {
        None
    }
}

/// Whether text is mostly printable (a renamed binary file is not).
pub(crate) fn looks_like_text(text: &str) -> bool {
    let sample: Vec<char> = text.chars().take(4096).collect();
    let control = sample
        .iter()
        .filter(|c| c.is_control() && !matches!(c, '\t' | '\r' | '\n'))
        .count();
    control * 100 <= sample.len()
}

/// `,` or `;`: whichever the header line (outside quotes) has more of.
pub(crate) fn detect_delimiter(text: &str) -> u8 {
    let (mut commas, mut semicolons, mut quoted) = (0usize, 0usize, false);
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            '\n' | '\r' if !quoted => break,
            ',' if !quoted => commas += 1,
            ';' if !quoted => semicolons += 1,
            _ => {}
        }
    }
    if semicolons > commas { b';' } else { b',' }
}

pub(crate) fn detect_line_ending(text: &str) -> &'static str {
    match text.find(['\r', '\n']) {
        Some(i) if text[i..].starts_with("\r\n") => "crlf",
        Some(i) if text[i..].starts_with('\r') => "cr",
        _ => "lf",
    }
}

/// The physical line a record starts on. (The `csv` crate counts only `\n`
/// and places a record after `\r\n` on its `\n` and after a blank line on
/// that line, so its own line numbers are off in CRLF files.)
#[derive(Default)]
struct LineCounter {
    offset: usize,
    line: u64,
}

impl LineCounter {
    fn line_at(&mut self, text: &[u8], position: usize) -> u64 {
        // A record never starts with a line break: skip those csv left
        // before it (the `\n` of a CRLF, blank lines).
        let mut start = position;
        while matches!(text.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        let mut i = self.offset;
        while i < start.min(text.len()) {
            match text[i] {
                b'\r' => {
                    self.line += 1;
                    if text.get(i + 1) == Some(&b'\n') {
                        i += 1;
                    }
                }
                b'\n' => self.line += 1,
                _ => {}
            }
            i += 1;
        }
        self.offset = i.max(self.offset);
        self.line + 1
    }
}

/// The longest header always allowed, whatever the cell limit.
const MIN_HEADER_CHARS: usize = 255;

/// Reads the file under the integration's limits, collecting every problem.
pub fn read_table(bytes: &[u8], limits: &CsvLimits) -> CsvTable {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return CsvTable::fatal(ErrorCode::EmptyFile, "the file is empty");
    }
    let (text, encoding, bom) = match decode(bytes) {
        Ok(decoded) => decoded,
        Err((code, message)) => return CsvTable::fatal(code, message),
    };
    if !looks_like_text(&text) {
        return CsvTable::fatal(
            ErrorCode::NotCsv,
            "the file is not text (it holds control characters)",
        );
    }
    if text.trim().is_empty() {
        return CsvTable::fatal(ErrorCode::EmptyFile, "the file is empty");
    }
    let delimiter = detect_delimiter(&text);
    let mut table = CsvTable {
        detected: Some(Detected {
            encoding: encoding.to_string(),
            bom,
            delimiter: (delimiter as char).to_string(),
            line_ending: detect_line_ending(&text).to_string(),
        }),
        ..Default::default()
    };

    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let bytes_of_text = text.as_bytes();
    let mut lines = LineCounter::default();
    let mut records = reader.records();
    let header = match records.next() {
        Some(Ok(record)) => record,
        Some(Err(e)) => {
            return CsvTable::fatal(
                ErrorCode::NotCsv,
                format!("the header row cannot be read: {e}"),
            );
        }
        None => return CsvTable::fatal(ErrorCode::EmptyFile, "the file is empty"),
    };
    table.header = header
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').trim().to_string())
        .collect();

    let max_cell = limits.max_cell_chars as usize;
    if !check_header(&mut table, max_cell, limits.max_columns as usize) {
        return table;
    }
    let max_records = limits.max_records as usize;
    let mut count = 0usize;
    for record in records {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or_default();
                table.errors.push(at(
                    line,
                    None,
                    ErrorCode::NotCsv,
                    format!("line {line} cannot be read: {e}"),
                ));
                break;
            }
        };
        let line = lines.line_at(
            bytes_of_text,
            record.position().map(|p| p.byte()).unwrap_or_default() as usize,
        );
        if record.iter().all(|cell| cell.trim().is_empty()) && record.len() <= 1 {
            continue; // a blank line
        }
        count += 1;
        if count > max_records {
            continue; // counted, reported once below
        }
        let problems_before = table.errors.len();
        let record = check_record(
            &table.header,
            &record,
            line,
            max_cell,
            &mut table.errors,
            &mut table.warnings,
        );
        table.records.push(CsvRecord {
            broken: table.errors.len() > problems_before,
            ..record
        });
    }
    if count == 0 {
        table.errors.push(at(
            1,
            None,
            ErrorCode::NoRecords,
            "the file has a header row and no records",
        ));
    } else if count > max_records {
        table.errors.push(at(
            1,
            None,
            ErrorCode::TooManyRecords,
            format!(
                "the file has {count} records; at most {max_records} are allowed (a header and {max_records} lines). \
                 Split it, or send the cases as JSON"
            ),
        ));
    }
    if let Some(opened) = unclosed_quote(bytes_of_text, delimiter) {
        // The reader took every line after it into one cell: the records
        // it swallowed are not in the table, so the file is refused, and
        // what was found from that line on (a short row, …) is an effect
        // of the quote, not a problem of its own.
        let line = bytes_of_text[..opened]
            .iter()
            .filter(|b| **b == b'\n')
            .count() as u64
            + 1;
        table.errors.retain(|e| e.row.is_none_or(|row| row < line));
        table.errors.push(at(
            line,
            None,
            ErrorCode::UnterminatedQuote,
            format!(
                "a quoted cell opens on line {line} and is never closed: every line after it would be read into that one cell. Close the quote (a quote inside a quoted cell is written twice: \"\")"
            ),
        ));
    }
    table
}

/// The header's checks (cells too long, too many columns, blank and
/// duplicate headers), into `table.errors`; `false` when its rows are not
/// to be read at all (the first limit hit stops the file).
pub(crate) fn check_header(table: &mut CsvTable, max_cell: usize, max_columns: usize) -> bool {
    // A header is a cell too, but an integration whose cells are kept very
    // short still names its columns.
    let max_header = max_cell.max(MIN_HEADER_CHARS);
    let mut long_headers = false;
    for (i, name) in table.header.iter().enumerate() {
        let length = name.chars().count();
        if length > max_header {
            long_headers = true;
            table.errors.push(at(
                1,
                Some(Column::Index(i + 1)),
                ErrorCode::CellTooLong,
                format!(
                    "the header of column {} has {length} characters; at most {max_header} are allowed",
                    i + 1
                ),
            ));
        }
    }
    if long_headers {
        // A header is copied into every row's data and every error naming
        // its column: the rows are not read.
        table.header_problems = table.errors.len();
        return false;
    }

    if table.header.len() > max_columns {
        // The first limit hit stops the file: nothing of a header this wide
        // (its blanks and duplicates, its rows) is worth reading.
        table.errors.push(at(
            1,
            None,
            ErrorCode::TooManyColumns,
            format!(
                "the file has {} columns; at most {max_columns} are allowed",
                table.header.len()
            ),
        ));
        table.header_problems = table.errors.len();
        return false;
    }
    // One pass with a set: linear in the header's width.
    let mut seen: std::collections::HashSet<String> =
        std::collections::HashSet::with_capacity(table.header.len());
    for (i, name) in table.header.iter().enumerate() {
        let key = name.to_lowercase();
        if name.is_empty() {
            table.errors.push(at(
                1,
                Some(Column::Index(i + 1)),
                ErrorCode::EmptyHeader,
                format!("the header of column {} is blank", i + 1),
            ));
        } else if !seen.insert(key) {
            table.errors.push(at(
                1,
                Some(Column::Name(name.clone())),
                ErrorCode::DuplicateHeader,
                format!(
                    "the header {:?} appears more than once (column {})",
                    excerpt(name),
                    i + 1
                ),
            ));
        }
    }

    table.header_problems = table.errors.len();
    true
}

/// One record's checks (short rows, extra cells, cells too long), into
/// `errors` and `warnings`; the record as read: as many cells as headers,
/// each trimmed (`broken` is the caller's to set).
pub(crate) fn check_record(
    header: &[String],
    record: &csv::StringRecord,
    line: u64,
    max_cell: usize,
    errors: &mut Vec<FieldError>,
    warnings: &mut Vec<FieldError>,
) -> CsvRecord {
    let width = header.len();
    if record.len() < width {
        errors.push(at(
            line,
            Some(column_of(header, record.len())),
            ErrorCode::ShortRow,
            format!(
                "line {line} has {} cells but there are {width} headers; write an empty last cell as a trailing delimiter",
                record.len()
            ),
        ));
    } else if record.len() > width {
        warnings.push(at(
            line,
            Some(Column::Index(width + 1)),
            ErrorCode::ExtraCells,
            format!(
                "line {line} has {} cells for {width} headers; the extra cells are ignored",
                record.len()
            ),
        ));
    }
    for (i, cell) in record.iter().take(width).enumerate() {
        let length = cell.chars().count();
        if length > max_cell {
            errors.push(at(
                line,
                Some(column_of(header, i)),
                ErrorCode::CellTooLong,
                format!("the cell has {length} characters; at most {max_cell} are allowed"),
            ));
        }
    }
    CsvRecord {
        line,
        broken: false,
        cells: record
            .iter()
            .take(width)
            .map(|c| c.trim().to_string())
            .collect(),
    }
}

/// The column as named in the errors: its header, or its 1-based index.
pub(crate) fn column_of(header: &[String], index: usize) -> Column {
    match header.get(index) {
        Some(name) if !name.is_empty() => Column::Name(name.clone()),
        _ => Column::Index(index + 1),
    }
}

/// The byte offset of a quote that opens a cell and is never closed. A
/// quote opens a cell only as its first character; inside, `""` is a quote.
fn unclosed_quote(text: &[u8], delimiter: u8) -> Option<usize> {
    let mut at_cell_start = true;
    let mut opened: Option<usize> = None;
    let mut i = 0;
    while i < text.len() {
        let b = text[i];
        if opened.is_some() {
            if b == b'"' {
                if text.get(i + 1) == Some(&b'"') {
                    i += 2;
                    continue;
                }
                opened = None;
            }
        } else if b == b'"' && at_cell_start {
            opened = Some(i);
            at_cell_start = false;
        } else {
            at_cell_start = b == delimiter || b == b'\n' || b == b'\r';
        }
        i += 1;
    }
    opened
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quote_never_closed_is_found_where_it_opens() {
        assert_eq!(unclosed_quote(b"a,b\n1,\"x\n2,y\n", b','), Some(6));
        assert_eq!(unclosed_quote(b"a,b\n1,\"x\"\"y\"\n", b','), None);
        assert_eq!(
            unclosed_quote(b"a,b\n1,x\"y\n", b','),
            None,
            "not at a cell's start"
        );
        assert_eq!(unclosed_quote(b"a;b\n1;\"multi\nline\"\n", b';'), None);
        assert_eq!(unclosed_quote(b"\"a,b\n", b','), Some(0));
    }

    fn codes(table: &CsvTable) -> Vec<(Option<u64>, ErrorCode)> {
        table.errors.iter().map(|e| (e.row, e.code)).collect()
    }

    #[test]
    fn detects_what_spreadsheets_export() {
        let limits = CsvLimits::default();
        let t = read_table(b"\xEF\xBB\xBFa;b\r\n1;\"x\r\ny\"\r\n", &limits);
        assert_eq!(
            t.detected,
            Some(Detected {
                encoding: "utf-8".into(),
                bom: true,
                delimiter: ";".into(),
                line_ending: "crlf".into()
            })
        );
        assert_eq!(t.header, vec!["a", "b"]);
        assert_eq!(
            t.records,
            vec![CsvRecord {
                line: 2,
                cells: vec!["1".into(), "x\r\ny".into()],
                broken: false,
            }]
        );

        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("a,b\n1,é\n".encode_utf16().flat_map(|u| u.to_le_bytes()))
            .collect();
        let t = read_table(&utf16, &limits);
        assert_eq!(
            t.detected.as_ref().map(|d| d.encoding.as_str()),
            Some("utf-16le")
        );
        assert_eq!(t.records[0].cells, vec!["1", "é"]);

        let t = read_table(b"a,b\n1,caf\xE9\n", &limits);
        assert_eq!(
            t.detected.as_ref().map(|d| d.encoding.as_str()),
            Some("windows-1252")
        );
        assert_eq!(t.records[0].cells, vec!["1", "café"]);
    }

    #[test]
    fn refuses_what_is_not_a_csv() {
        let limits = CsvLimits::default();
        assert_eq!(
            codes(&read_table(b"", &limits)),
            vec![(None, ErrorCode::EmptyFile)]
        );
        assert_eq!(
            codes(&read_table(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", &limits)),
            vec![(None, ErrorCode::NotCsv)]
        );
        assert_eq!(
            codes(&read_table(b"a,b\n", &limits)),
            vec![(Some(1), ErrorCode::NoRecords)]
        );
    }

    #[test]
    fn keeps_the_limits_and_shapes() {
        let limits = CsvLimits {
            max_records: 2,
            max_columns: 3,
            max_cell_chars: 5,
        };
        // Too many columns stops the file: the first limit hit.
        let wide = read_table(b"a,,a,d\n1,2\n", &limits);
        assert_eq!(codes(&wide), vec![(Some(1), ErrorCode::TooManyColumns)]);
        assert!(wide.records.is_empty());
        let limits = CsvLimits {
            max_columns: 4,
            ..limits
        };
        let t = read_table(b"a,,a,d\n1,2\n1,2,3,4,5\n1,2,3,4\n", &limits);
        assert_eq!(
            codes(&t),
            vec![
                (Some(1), ErrorCode::EmptyHeader),
                (Some(1), ErrorCode::DuplicateHeader),
                (Some(2), ErrorCode::ShortRow),
                (Some(1), ErrorCode::TooManyRecords),
            ]
        );
        assert_eq!(
            t.warnings
                .iter()
                .map(|w| (w.row, w.code))
                .collect::<Vec<_>>(),
            vec![(Some(3), ErrorCode::ExtraCells)]
        );
        let t = read_table(
            b"a,b\n123456,x\n",
            &CsvLimits {
                max_records: 2,
                max_columns: 3,
                max_cell_chars: 5,
            },
        );
        assert_eq!(codes(&t), vec![(Some(2), ErrorCode::CellTooLong)]);
        assert_eq!(t.errors[0].column, Some(Column::Name("a".into())));
    }
}

#[cfg(test)]
mod line_tests {
    use super::*;

    #[test]
    fn line_numbers_are_physical_lines_whatever_the_line_ending() {
        for (csv, expected) in [
            (&b"a,b\r\n1,x\r\n2,\"y\r\nz\"\r\n3,w\r\n"[..], vec![2, 3, 5]),
            (&b"a,b\n1,x\n2,\"y\nz\"\n3,w\n"[..], vec![2, 3, 5]),
            (&b"a,b\r1,x\r2,y\r"[..], vec![2, 3]),
            (&b"a,b\n\n1,x\n"[..], vec![3]),
        ] {
            let t = read_table(csv, &CsvLimits::default());
            assert_eq!(
                t.records.iter().map(|r| r.line).collect::<Vec<_>>(),
                expected,
                "{:?}",
                String::from_utf8_lossy(csv)
            );
        }
    }
}
