//! Reading an uploaded CSV file: text encoding, delimiter and line ending
//! detection, records with their line numbers, and the rules every CSV
//! upload keeps (headers present and unique, record, column and cell limits,
//! no short rows). What the columns mean is the caller's business.

use serde::Serialize;
use utoipa::ToSchema;

use encoding_rs::Encoding;

use crate::error::{ApiError, Column, ErrorCode, FieldError, excerpt};
use crate::store::models::CsvLimits;

/// What the upload turned out to be.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[schema(example = json!({"encoding": "utf-8", "encoding_source": "sniffed", "bom": false, "delimiter": ",", "line_ending": "crlf"}))]
pub struct Detected {
    /// The text encoding the file was read in (converted to UTF-8), by its
    /// WHATWG name in lower case: `utf-8`, `utf-16le`, `utf-16be`,
    /// `windows-1252`, `windows-1255`, `iso-8859-2`, `shift_jis`, …
    pub encoding: String,
    /// How the encoding was decided: `named` (the `charset` form field),
    /// `sniffed` (a byte-order mark, UTF-16's zeros, or valid UTF-8) or
    /// `detected` (a legacy encoding recognised from the text itself).
    pub encoding_source: EncodingSource,
    /// Whether the file started with a byte-order mark (stripped).
    pub bom: bool,
    /// `,`, `;` or a tab (`\t`, as Excel's "Unicode Text" writes).
    pub delimiter: String,
    /// `crlf`, `lf` or `cr`.
    pub line_ending: String,
}

impl Default for Detected {
    /// What a file is taken to be when nothing could be detected.
    fn default() -> Self {
        Detected {
            encoding: "utf-8".into(),
            encoding_source: EncodingSource::Sniffed,
            bom: false,
            delimiter: ",".into(),
            line_ending: "lf".into(),
        }
    }
}

/// How a file's text encoding was decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EncodingSource {
    /// Named by the uploader (`charset`).
    Named,
    /// A byte-order mark, UTF-16's zeros, or text that is valid UTF-8.
    Sniffed,
    /// Recognised by the encoding detector (a legacy single- or multi-byte
    /// encoding such as Windows-1252 or Windows-1255).
    Detected,
}

/// How a file's bytes become text.
#[derive(Clone, Copy, Debug)]
pub struct TextEncoding {
    pub encoding: &'static Encoding,
    pub source: EncodingSource,
    /// Bytes of byte-order mark to skip.
    pub bom: usize,
}

impl TextEncoding {
    /// The encoding's name as answered in [`Detected::encoding`].
    pub fn name(&self) -> String {
        self.encoding.name().to_ascii_lowercase()
    }
}

/// The hint of every encoding refusal.
pub const ENCODING_HINT: &str =
    "save it as CSV UTF-8, or name the encoding with charset=… (e.g. charset=windows-1255)";

/// The encoding a `charset` form field names (any WHATWG label:
/// `windows-1255`, `latin1`, `utf-16le`, `shift_jis`, …); 422
/// `unknown_charset` for a label no encoding has.
pub fn charset(label: &str) -> Result<&'static Encoding, ApiError> {
    match Encoding::for_label(label.trim().as_bytes()) {
        // `replacement` is what the WHATWG maps dangerous labels to: it
        // decodes nothing.
        Some(encoding) if encoding != encoding_rs::REPLACEMENT => Ok(encoding),
        _ => Err(ApiError::new(
            ErrorCode::UnknownCharset,
            format!(
                "charset {:?} names no text encoding; use a label such as utf-8, windows-1252, windows-1255, iso-8859-2 or utf-16le",
                excerpt(label)
            ),
        )
        .with_errors(vec![FieldError::field(
            "charset",
            ErrorCode::UnknownCharset,
            "not a known encoding label",
        )])),
    }
}

/// Magic numbers of workbooks: a zip (`.xlsx`, `.ods`) and an OLE compound
/// file (`.xls`).
const SPREADSHEET_MAGIC: [&[u8]; 2] = [b"PK\x03\x04", b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1"];

/// The `not_csv` of a workbook sent to a CSV uploader, or `None`.
pub fn spreadsheet(head: &[u8]) -> Option<(ErrorCode, String)> {
    SPREADSHEET_MAGIC.iter().any(|m| head.starts_with(m)).then(|| {
        (
            ErrorCode::NotCsv,
            "the file is a spreadsheet workbook (.xlsx or .xls), not CSV: upload it as an import job (POST /v1/imports reads workbooks), or save it as CSV UTF-8".to_string(),
        )
    })
}

/// Decides the text encoding of a file from its first bytes (`head`, at
/// least 4 KiB where the file has them) and, for files that are neither
/// UTF-16 nor valid UTF-8, from `legacy`: the bytes fed to the detector.
/// `valid_utf8`: the whole file is valid UTF-8. `named`: the uploader's
/// `charset`, which wins over everything but a byte-order mark of the same
/// encoding (skipped).
pub fn choose_encoding(
    head: &[u8],
    valid_utf8: bool,
    named: Option<&'static Encoding>,
    legacy: impl FnOnce() -> (&'static Encoding, bool),
) -> Result<TextEncoding, (ErrorCode, String)> {
    let sniffed = |encoding, bom| TextEncoding {
        encoding,
        source: EncodingSource::Sniffed,
        bom,
    };
    if let Some(found) = spreadsheet(head) {
        return Err(found);
    }
    let by_bom = Encoding::for_bom(head);
    if let Some(encoding) = named {
        let bom = match by_bom {
            Some((e, length)) if e == encoding => length,
            _ => 0,
        };
        return Ok(TextEncoding {
            encoding,
            source: EncodingSource::Named,
            bom,
        });
    }
    if let Some((encoding, length)) = by_bom {
        return Ok(sniffed(encoding, length));
    }
    if head[..head.len().min(4096)].contains(&0) {
        return match utf16_by_zeros(head) {
            Some((encoding, _)) => Ok(sniffed(encoding, 0)),
            None => Err((
                ErrorCode::NotCsv,
                "the file is not text (it holds binary data)".to_string(),
            )),
        };
    }
    if valid_utf8 {
        return Ok(sniffed(encoding_rs::UTF_8, 0));
    }
    let (encoding, confident) = legacy();
    if !confident {
        return Err((
            ErrorCode::UnsupportedEncoding,
            format!(
                "the file is not UTF-8 and its encoding cannot be told for sure (it might be {}): {ENCODING_HINT}",
                encoding.name()
            ),
        ));
    }
    Ok(TextEncoding {
        encoding,
        source: EncodingSource::Detected,
        bom: 0,
    })
}

/// A fresh detector, fed by the caller; [`guess`] answers it.
pub fn detector() -> chardetng::EncodingDetector {
    chardetng::EncodingDetector::new()
}

/// Top-level domains whose expected encodings differ, to put the
/// detector's guess to the test (see [`guess`]).
const REGIONS: [&[u8]; 13] = [
    b"cz", b"ru", b"gr", b"il", b"jp", b"cn", b"tw", b"tr", b"lt", b"vn", b"th", b"kr", b"ee",
];

/// The detector's guess for a file known not to be UTF-8, and whether it
/// can be trusted. chardetng's own assessment (`guess_assess`) holds for
/// almost any input, so the guess is also asked under the expectation of
/// each of [`REGIONS`]: where more than two thirds of them overturn it, the
/// text holds too few telling bytes (a lone `¤`, two letters) and the guess
/// is not trusted. (A short text in one alphabet keeps at least a third:
/// the East Asian expectations turn most short texts to their own
/// encodings.) ISO-8859-8 (visual Hebrew, as the detector names Hebrew
/// text) is read as Windows-1255, what spreadsheet programs write: the two
/// agree on every letter.
pub fn guess(detector: &chardetng::EncodingDetector) -> (&'static Encoding, bool) {
    let hebrew = |encoding| {
        if encoding == encoding_rs::ISO_8859_8 {
            encoding_rs::WINDOWS_1255
        } else {
            encoding
        }
    };
    let (encoding, assessed) = detector.guess_assess(None, false);
    let encoding = hebrew(encoding);
    let agreeing = REGIONS
        .iter()
        .filter(|tld| hebrew(detector.guess(Some(tld), false)) == encoding)
        .count();
    (encoding, assessed && agreeing * 3 >= REGIONS.len())
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
fn decode(
    bytes: &[u8],
    named: Option<&'static Encoding>,
) -> Result<(String, TextEncoding), (ErrorCode, String)> {
    let valid_utf8 = std::str::from_utf8(bytes).is_ok();
    let chosen = choose_encoding(bytes, valid_utf8, named, || {
        let mut detector = detector();
        detector.feed(bytes, true);
        guess(&detector)
    })?;
    let body = &bytes[chosen.bom..];
    match chosen
        .encoding
        .decode_without_bom_handling_and_without_replacement(body)
    {
        Some(text) => Ok((text.into_owned(), chosen)),
        None => Err((
            ErrorCode::UnsupportedEncoding,
            format!(
                "the file is not valid {}: {ENCODING_HINT}",
                chosen.encoding.name()
            ),
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

/// `,`, `;` or a tab: whichever the header line (outside quotes) has
/// most of (a comma on a tie).
pub(crate) fn detect_delimiter(text: &str) -> u8 {
    let (mut commas, mut semicolons, mut tabs, mut quoted) = (0usize, 0usize, 0usize, false);
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            '\n' | '\r' if !quoted => break,
            ',' if !quoted => commas += 1,
            ';' if !quoted => semicolons += 1,
            '\t' if !quoted => tabs += 1,
            _ => {}
        }
    }
    if tabs > commas && tabs > semicolons {
        b'\t'
    } else if semicolons > commas {
        b';'
    } else {
        b','
    }
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

/// Rows of delimiters only (`,,,`), skipped: counted, and their lines.
#[derive(Debug, Default)]
pub(crate) struct EmptyRows {
    count: u64,
    lines: Vec<u64>,
}

/// How many skipped lines a warning lists.
const LISTED_EMPTY_LINES: usize = 20;

impl EmptyRows {
    pub(crate) fn add(&mut self, line: u64) {
        self.count += 1;
        if self.lines.len() < LISTED_EMPTY_LINES {
            self.lines.push(line);
        }
    }

    /// One `empty_rows_skipped` warning for them all, if any.
    pub(crate) fn warning(&self) -> Option<FieldError> {
        let first = *self.lines.first()?;
        let mut lines: Vec<String> = self.lines.iter().map(u64::to_string).collect();
        if self.count > self.lines.len() as u64 {
            lines.push("…".into());
        }
        Some(at(
            first,
            None,
            ErrorCode::EmptyRowsSkipped,
            format!(
                "{} row{} with no value at all (only delimiters) {} skipped: line{} {}",
                self.count,
                if self.count == 1 { "" } else { "s" },
                if self.count == 1 { "was" } else { "were" },
                if self.count == 1 { "" } else { "s" },
                lines.join(", ")
            ),
        ))
    }
}

/// The longest header always allowed, whatever the cell limit.
const MIN_HEADER_CHARS: usize = 255;

/// Reads the file under the integration's limits, collecting every problem.
/// `named`: the encoding the uploader named (`charset`); `rows`: what the
/// records are (`cases`, `customers`), as the answers say it.
pub fn read_table(
    bytes: &[u8],
    limits: &CsvLimits,
    named: Option<&'static Encoding>,
    rows: &str,
) -> CsvTable {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return CsvTable::fatal(ErrorCode::EmptyFile, "the file is empty");
    }
    let (text, encoding) = match decode(bytes, named) {
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
            encoding: encoding.name(),
            encoding_source: encoding.source,
            bom: encoding.bom > 0,
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
    let mut empty = EmptyRows::default();
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
        if record.iter().all(|cell| cell.trim().is_empty()) {
            // A blank line, or a row of delimiters only (a spreadsheet's
            // formatted but empty rows): nothing to import.
            if record.len() > 1 {
                empty.add(line);
            }
            continue;
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
    table.warnings.extend(empty.warning());
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
                 Split it, send the {rows} as JSON, or import the file as a job (POST /v1/imports)"
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
        let t = read_table(
            b"\xEF\xBB\xBFa;b\r\n1;\"x\r\ny\"\r\n",
            &limits,
            None,
            "rows",
        );
        assert_eq!(
            t.detected,
            Some(Detected {
                encoding: "utf-8".into(),
                encoding_source: EncodingSource::Sniffed,
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
        let t = read_table(&utf16, &limits, None, "rows");
        assert_eq!(
            t.detected.as_ref().map(|d| d.encoding.as_str()),
            Some("utf-16le")
        );
        assert_eq!(t.records[0].cells, vec!["1", "é"]);

        let t = read_table(b"a,b\n1,caf\xE9\n", &limits, None, "rows");
        assert_eq!(
            t.detected.as_ref().map(|d| d.encoding.as_str()),
            Some("windows-1252")
        );
        assert_eq!(t.records[0].cells, vec!["1", "café"]);
    }

    fn detected(t: &CsvTable) -> Option<(&str, EncodingSource, &str)> {
        t.detected
            .as_ref()
            .map(|d| (d.encoding.as_str(), d.encoding_source, d.delimiter.as_str()))
    }

    #[test]
    fn legacy_encodings_are_detected_or_named() {
        let limits = CsvLimits::default();
        let hebrew = encoding_rs::WINDOWS_1255
            .encode("Staff ID,External Staff ID,Case ID,נושא\nA-1,,T-1,שלום עולם, תודה\n")
            .0
            .into_owned();
        let t = read_table(&hebrew, &limits, None, "rows");
        assert_eq!(
            detected(&t),
            Some(("windows-1255", EncodingSource::Detected, ","))
        );
        assert_eq!(t.header[3], "נושא");
        let named = read_table(&hebrew, &limits, Some(encoding_rs::WINDOWS_1255), "rows");
        assert_eq!(
            detected(&named),
            Some(("windows-1255", EncodingSource::Named, ","))
        );
        assert_eq!(named.records[0].cells[3], "שלום עולם");

        // One lone `¤` (0xA4): a dozen encodings read it, each as
        // something else; the detector's guess is not to be trusted.
        let mut d = detector();
        d.feed(b"a,b\n1,x\xA4y\n", true);
        assert!(!guess(&d).1, "{:?}", guess(&d));
        let t = read_table(b"Staff ID,Note\nA-1,x\xA4y\n", &limits, None, "rows");
        assert_eq!(codes(&t), vec![(None, ErrorCode::UnsupportedEncoding)]);
        assert!(
            t.errors[0].message.contains("charset="),
            "{:?}",
            t.errors[0]
        );
        // Named, it is read as named.
        let t = read_table(
            b"Staff ID,Note\nA-1,x\xA4y\n",
            &limits,
            Some(encoding_rs::WINDOWS_1252),
            "rows",
        );
        assert_eq!(t.records[0].cells[1], "x¤y");
    }

    #[test]
    fn excel_unicode_text_is_utf16_with_tabs() {
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(
                "Staff ID\tExternal Staff ID\tCase ID\tNote\r\nA-1\t\tT-1\tא, b\r\n"
                    .encode_utf16()
                    .flat_map(|u| u.to_le_bytes()),
            )
            .collect();
        let t = read_table(&utf16, &CsvLimits::default(), None, "rows");
        assert_eq!(
            detected(&t),
            Some(("utf-16le", EncodingSource::Sniffed, "\t"))
        );
        assert_eq!(t.records[0].cells, vec!["A-1", "", "T-1", "א, b"]);
    }

    #[test]
    fn workbooks_and_empty_rows() {
        let limits = CsvLimits::default();
        for workbook in [
            &b"PK\x03\x04\x14\0\x06\0"[..],
            b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1\0\0",
        ] {
            let t = read_table(workbook, &limits, None, "rows");
            assert_eq!(codes(&t), vec![(None, ErrorCode::NotCsv)]);
            assert!(t.errors[0].message.contains("POST /v1/imports"));
        }
        let t = read_table(b"a,b,c\n1,2,3\n,,\n\n,,\n", &limits, None, "rows");
        assert!(t.errors.is_empty(), "{:?}", t.errors);
        assert_eq!(t.records.len(), 1);
        assert_eq!(
            t.warnings
                .iter()
                .map(|w| (w.row, w.code))
                .collect::<Vec<_>>(),
            vec![(Some(3), ErrorCode::EmptyRowsSkipped)]
        );
        assert!(
            t.warnings[0].message.contains("lines 3, 5"),
            "{}",
            t.warnings[0].message
        );
    }

    #[test]
    fn refuses_what_is_not_a_csv() {
        let limits = CsvLimits::default();
        assert_eq!(
            codes(&read_table(b"", &limits, None, "rows")),
            vec![(None, ErrorCode::EmptyFile)]
        );
        assert_eq!(
            codes(&read_table(
                b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR",
                &limits,
                None,
                "rows"
            )),
            vec![(None, ErrorCode::NotCsv)]
        );
        assert_eq!(
            codes(&read_table(b"a,b\n", &limits, None, "rows")),
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
        let wide = read_table(b"a,,a,d\n1,2\n", &limits, None, "rows");
        assert_eq!(codes(&wide), vec![(Some(1), ErrorCode::TooManyColumns)]);
        assert!(wide.records.is_empty());
        let limits = CsvLimits {
            max_columns: 4,
            ..limits
        };
        let t = read_table(b"a,,a,d\n1,2\n1,2,3,4,5\n1,2,3,4\n", &limits, None, "rows");
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
            None,
            "rows",
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
            let t = read_table(csv, &CsvLimits::default(), None, "rows");
            assert_eq!(
                t.records.iter().map(|r| r.line).collect::<Vec<_>>(),
                expected,
                "{:?}",
                String::from_utf8_lossy(csv)
            );
        }
    }
}
