//! Reading a CSV file from disk, record by record, under the same rules as
//! [`crate::ingest::csv::read_table`] but never whole in memory: an import
//! job's file may be hundreds of megabytes.
//!
//! The file is read twice at once. The `csv` reader parses records; a
//! [`Scanner`] over a second handle follows it byte by byte to give each
//! record its physical line (whatever the line ending) and to find a quote
//! that opens a cell and is never closed. The text encoding is decided
//! first: the uploader's `charset`, a byte-order mark or UTF-16's zeros,
//! else one pass over the file (UTF-8 if it is valid UTF-8 throughout, else
//! what the encoding detector recognises), and both readers decode the
//! same way.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read, Seek, SeekFrom};
use std::path::Path;

use encoding_rs::{Encoding, UTF_8};

use crate::error::{ErrorCode, FieldError};
use crate::ingest::csv::{
    CsvRecord, CsvTable, Detected, ENCODING_HINT, EmptyRows, TextEncoding, at, check_header,
    check_record, choose_encoding, detect_delimiter, detect_line_ending, detector, guess,
    looks_like_text,
};

/// How much decoded text is looked at to detect the delimiter, the line
/// ending and whether the file is text at all.
const PREFIX: usize = 64 * 1024;

/// A CSV file being read (see [`CsvFile::open`]).
pub struct CsvFile {
    records: csv::StringRecordsIntoIter<Box<dyn Read + Send>>,
    scanner: Scanner,
    /// The header, what was detected, and the header's problems.
    pub table: CsvTable,
    max_cell: usize,
    /// Records read (blank lines aside).
    count: u64,
    /// The line of the last record read.
    last_line: u64,
    ended: bool,
    /// Rows of delimiters only, skipped.
    empty: EmptyRows,
}

/// How the file's bytes become text.
#[derive(Clone, Copy)]
struct Decoding {
    /// `None`: UTF-8 as it is (checked by the `csv` reader).
    encoding: Option<&'static Encoding>,
    /// Bytes of byte-order mark to skip.
    skip: u64,
}

impl Decoding {
    fn reader(self, path: &Path) -> io::Result<Box<dyn Read + Send>> {
        let mut file = File::open(path)?;
        file.seek(SeekFrom::Start(self.skip))?;
        let file = BufReader::with_capacity(64 * 1024, file);
        Ok(match self.encoding {
            None => Box::new(file),
            Some(encoding) => Box::new(Decoder::new(file, encoding)),
        })
    }
}

impl CsvFile {
    /// Opens the file and reads its header. `Err`: a table whose problems
    /// stop the file (not text, empty, a header that cannot be read or
    /// breaks a limit).
    /// `named`: the encoding the uploader named (`charset`).
    pub fn open(
        path: &Path,
        max_cell: usize,
        max_columns: usize,
        named: Option<&'static Encoding>,
    ) -> Result<CsvFile, Box<CsvTable>> {
        let fatal = |code, message: String| Err(Box::new(CsvTable::fatal(code, message)));
        let io_error = |e: io::Error| {
            Box::new(CsvTable::fatal(
                ErrorCode::NotCsv,
                format!("the file cannot be read: {e}"),
            ))
        };
        let (decoding, chosen) = match sniff(path, named).map_err(io_error)? {
            Ok(found) => found,
            Err((code, message)) => return fatal(code, message),
        };
        let encoding = chosen.name();
        let mut text = decoding.reader(path).map_err(io_error)?;
        let mut prefix = Vec::with_capacity(PREFIX);
        (&mut text)
            .take(PREFIX as u64)
            .read_to_end(&mut prefix)
            .map_err(|e| decode_error(e, &encoding))?;
        // A cut multi-byte character at the prefix's end is not a problem.
        let shown = match std::str::from_utf8(&prefix) {
            Ok(s) => s,
            Err(e) => std::str::from_utf8(&prefix[..e.valid_up_to()]).unwrap_or_default(),
        };
        if shown.trim().is_empty() && prefix.len() < PREFIX {
            return fatal(ErrorCode::EmptyFile, "the file is empty".into());
        }
        if !looks_like_text(shown) {
            return fatal(
                ErrorCode::NotCsv,
                "the file is not text (it holds control characters)".into(),
            );
        }
        let delimiter = detect_delimiter(shown);
        let mut table = CsvTable {
            detected: Some(Detected {
                encoding: encoding.clone(),
                encoding_source: chosen.source,
                bom: chosen.bom > 0,
                delimiter: (delimiter as char).to_string(),
                line_ending: detect_line_ending(shown).to_string(),
            }),
            ..Default::default()
        };
        let text: Box<dyn Read + Send> = Box::new(Cursor::new(prefix).chain(text));
        let mut records = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(text)
            .into_records();
        let header = match records.next() {
            Some(Ok(record)) => record,
            Some(Err(e)) => {
                return fatal(
                    ErrorCode::NotCsv,
                    format!("the header row cannot be read: {e}"),
                );
            }
            None => return fatal(ErrorCode::EmptyFile, "the file is empty".into()),
        };
        table.header = header
            .iter()
            .map(|h| h.trim().trim_start_matches('\u{feff}').trim().to_string())
            .collect();
        if !check_header(&mut table, max_cell, max_columns) {
            return Err(Box::new(table));
        }
        let scanner = Scanner::new(decoding.reader(path).map_err(io_error)?, delimiter);
        Ok(CsvFile {
            records,
            scanner,
            table,
            max_cell,
            count: 0,
            last_line: 1,
            ended: false,
            empty: EmptyRows::default(),
        })
    }

    /// The next `n` records (fewer at the end; none once ended), each
    /// checked: its problems into `errors` (the record is then `broken`),
    /// extra cells into `warnings`. A record that cannot be read ends the
    /// file (`not_csv` at its line).
    pub fn next_records(
        &mut self,
        n: usize,
        errors: &mut Vec<FieldError>,
        warnings: &mut Vec<FieldError>,
    ) -> Vec<CsvRecord> {
        let mut out = Vec::new();
        while out.len() < n && !self.ended {
            let record = match self.records.next() {
                None => {
                    self.ended = true;
                    break;
                }
                Some(Ok(record)) => record,
                Some(Err(e)) => {
                    self.ended = true;
                    let line = self.last_line + 1;
                    let encoding = self.table.detected.as_ref().map(|d| d.encoding.clone());
                    errors.push(match e.kind() {
                        csv::ErrorKind::Io(e) if e.kind() == io::ErrorKind::InvalidData => at(
                            line,
                            None,
                            ErrorCode::UnsupportedEncoding,
                            format!(
                                "the file is not valid {} after line {}: {ENCODING_HINT}",
                                encoding.unwrap_or_default(),
                                self.last_line
                            ),
                        ),
                        _ => at(
                            line,
                            None,
                            ErrorCode::NotCsv,
                            format!("line {line} cannot be read: {e}"),
                        ),
                    });
                    break;
                }
            };
            let position = record.position().map(|p| p.byte()).unwrap_or_default();
            let line = match self.scanner.line_at(position) {
                Ok(line) => line,
                Err(e) => {
                    self.ended = true;
                    errors.push(at(
                        self.last_line + 1,
                        None,
                        ErrorCode::NotCsv,
                        format!("the file cannot be read: {e}"),
                    ));
                    break;
                }
            };
            if record.iter().all(|cell| cell.trim().is_empty()) {
                // A blank line, or a row of delimiters only: nothing to import.
                if record.len() > 1 {
                    self.empty.add(line);
                }
                continue;
            }
            self.count += 1;
            self.last_line = line;
            let before = errors.len();
            let mut record = check_record(
                &self.table.header,
                &record,
                line,
                self.max_cell,
                errors,
                warnings,
            );
            record.broken = errors.len() > before;
            out.push(record);
        }
        out
    }

    /// After the last record: the file's own problems (no records; a quote
    /// never closed, at the line of the record that swallowed the rest of
    /// the file, which is then not to be imported: its line is answered).
    pub fn finish(&mut self, errors: &mut Vec<FieldError>) -> Option<u64> {
        if self.count == 0 {
            errors.push(at(
                1,
                None,
                ErrorCode::NoRecords,
                "the file has a header row and no records",
            ));
        }
        let opened = match self.scanner.scan_to_end() {
            Ok(opened) => opened?,
            Err(_) => return None,
        };
        let line = self.last_line.max(1);
        errors.push(at(
            line,
            None,
            ErrorCode::UnterminatedQuote,
            format!(
                "a quoted cell opens on line {opened} and is never closed: every line after it was read into that one cell. Close the quote (a quote inside a quoted cell is written twice: \"\")"
            ),
        ));
        Some(line)
    }

    /// The warning of the rows of delimiters only skipped so far, if any.
    pub fn empty_rows_warning(&self) -> Option<FieldError> {
        self.empty.warning()
    }

    /// Records read so far (blank lines aside).
    pub fn records_read(&self) -> u64 {
        self.count
    }
}

fn decode_error(e: io::Error, encoding: &str) -> Box<CsvTable> {
    Box::new(CsvTable::fatal(
        ErrorCode::UnsupportedEncoding,
        format!("the file is not valid {encoding} ({e}): {ENCODING_HINT}"),
    ))
}

/// The file's encoding (see [`choose_encoding`]): the uploader's
/// `charset`, a byte-order mark, UTF-16's zeros, valid UTF-8 throughout,
/// or else what the detector recognises in the file's first megabytes.
#[allow(clippy::type_complexity)]
fn sniff(
    path: &Path,
    named: Option<&'static Encoding>,
) -> io::Result<Result<(Decoding, TextEncoding), (ErrorCode, String)>> {
    let mut file = BufReader::with_capacity(64 * 1024, File::open(path)?);
    let head = file.fill_buf()?.to_vec();
    let plain_text = named.is_none()
        && Encoding::for_bom(&head).is_none()
        && !head[..head.len().min(4096)].contains(&0);
    // Only a file that may be UTF-8 is read through to be sure.
    let valid_utf8 = plain_text && first_invalid_utf8(&mut file)?.is_none();
    let mut detector_error = None;
    let chosen = choose_encoding(&head, valid_utf8, named, || {
        let mut detector = detector();
        if let Err(e) = feed_file(path, &mut detector) {
            detector_error = Some(e);
        }
        guess(&detector)
    });
    if let Some(e) = detector_error {
        return Err(e);
    }
    Ok(chosen.map(|chosen| {
        let decoding = Decoding {
            // UTF-8 not checked throughout (a BOM, a charset) is decoded
            // too: a malformed byte is then `unsupported_encoding`.
            encoding: (chosen.encoding != UTF_8 || !valid_utf8).then_some(chosen.encoding),
            skip: chosen.bom as u64,
        };
        (decoding, chosen)
    }))
}

/// How much of a file the detector reads: plenty of text to tell an
/// encoding by, without a pass over a file of hundreds of megabytes. (A
/// byte further on that the encoding cannot read still stops the file, as
/// `unsupported_encoding` at its line.)
const DETECTOR_SAMPLE: u64 = 4 * 1024 * 1024;

/// Feeds the file's first [`DETECTOR_SAMPLE`] bytes to the detector.
fn feed_file(path: &Path, detector: &mut chardetng::EncodingDetector) -> io::Result<()> {
    let file = File::open(path)?.take(DETECTOR_SAMPLE);
    let mut file = BufReader::with_capacity(64 * 1024, file);
    loop {
        let chunk = file.fill_buf()?;
        if chunk.is_empty() {
            detector.feed(&[], true);
            return Ok(());
        }
        let read = chunk.len();
        detector.feed(chunk, false);
        file.consume(read);
    }
}

/// The offset of the first byte that is not UTF-8, reading to the end.
fn first_invalid_utf8(file: &mut impl BufRead) -> io::Result<Option<u64>> {
    let mut offset = 0u64;
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let chunk = file.fill_buf()?;
        if chunk.is_empty() {
            return Ok((!carry.is_empty()).then_some(offset));
        }
        let mut bytes = std::mem::take(&mut carry);
        bytes.extend_from_slice(chunk);
        let read = chunk.len();
        file.consume(read);
        match std::str::from_utf8(&bytes) {
            Ok(_) => offset += bytes.len() as u64,
            // A character cut by the chunk's end: kept for the next one.
            Err(e) if e.error_len().is_none() => {
                offset += e.valid_up_to() as u64;
                carry = bytes[e.valid_up_to()..].to_vec();
            }
            Err(e) => return Ok(Some(offset + e.valid_up_to() as u64)),
        }
    }
}

/// Text in another encoding, read as UTF-8. Malformed input is an
/// `InvalidData` error (never replacement characters stored as data).
struct Decoder<R> {
    inner: R,
    decoder: encoding_rs::Decoder,
    input: Vec<u8>,
    start: usize,
    end: usize,
    output: Vec<u8>,
    shown: usize,
    eof: bool,
    done: bool,
}

impl<R: Read> Decoder<R> {
    fn new(inner: R, encoding: &'static Encoding) -> Self {
        Decoder {
            inner,
            decoder: encoding.new_decoder_without_bom_handling(),
            input: vec![0; 32 * 1024],
            start: 0,
            end: 0,
            output: Vec::new(),
            shown: 0,
            eof: false,
            done: false,
        }
    }
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.shown < self.output.len() {
                let n = buf.len().min(self.output.len() - self.shown);
                buf[..n].copy_from_slice(&self.output[self.shown..self.shown + n]);
                self.shown += n;
                return Ok(n);
            }
            if self.done {
                return Ok(0);
            }
            if self.start == self.end && !self.eof {
                self.start = 0;
                self.end = self.inner.read(&mut self.input)?;
                self.eof = self.end == 0;
            }
            let pending = &self.input[self.start..self.end];
            let room = self
                .decoder
                .max_utf8_buffer_length(pending.len())
                .unwrap_or(pending.len() * 3 + 16);
            self.output.clear();
            self.output.resize(room.max(16), 0);
            let (result, read, written) = self.decoder.decode_to_utf8_without_replacement(
                pending,
                &mut self.output,
                self.eof,
            );
            self.start += read;
            self.output.truncate(written);
            self.shown = 0;
            match result {
                encoding_rs::DecoderResult::Malformed(_, _) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "a byte sequence is not valid in the file's encoding",
                    ));
                }
                encoding_rs::DecoderResult::InputEmpty if self.eof => self.done = true,
                _ => {}
            }
        }
    }
}

/// Follows the text the `csv` reader parses, byte by byte: physical lines
/// (`\r\n`, `\n` or `\r` each end one) and the quotes that open cells.
struct Scanner {
    reader: BufReader<Box<dyn Read + Send>>,
    offset: u64,
    /// Line breaks passed.
    lines: u64,
    /// The previous byte was a `\r` (a `\n` after it ends no new line).
    after_cr: bool,
    delimiter: u8,
    at_cell_start: bool,
    /// The line a quoted cell opened on, while it is open.
    opened: Option<u64>,
    /// Inside a quoted cell, a quote was just passed: it closes the cell
    /// unless another quote follows (`""`).
    quote_pending: bool,
}

impl Scanner {
    fn new(reader: Box<dyn Read + Send>, delimiter: u8) -> Self {
        Scanner {
            reader: BufReader::with_capacity(64 * 1024, reader),
            offset: 0,
            lines: 0,
            after_cr: false,
            delimiter,
            at_cell_start: true,
            opened: None,
            quote_pending: false,
        }
    }

    fn step(&mut self, b: u8) {
        match b {
            b'\r' => self.lines += 1,
            b'\n' if !self.after_cr => self.lines += 1,
            _ => {}
        }
        self.after_cr = b == b'\r';
        if self.opened.is_some() {
            if self.quote_pending {
                self.quote_pending = false;
                if b == b'"' {
                    return; // `""`: a quote inside the cell
                }
                self.opened = None;
                self.at_cell_start = b == self.delimiter || b == b'\n' || b == b'\r';
            } else if b == b'"' {
                self.quote_pending = true;
            }
            return;
        }
        if b == b'"' && self.at_cell_start {
            self.opened = Some(self.lines + 1);
            self.at_cell_start = false;
        } else {
            self.at_cell_start = b == self.delimiter || b == b'\n' || b == b'\r';
        }
    }

    /// Passes bytes up to `position` (and the line breaks there, which the
    /// `csv` reader leaves before a record); the line a record starting
    /// there is on.
    fn line_at(&mut self, position: u64) -> io::Result<u64> {
        while self.offset < position {
            let chunk = self.reader.fill_buf()?;
            if chunk.is_empty() {
                break;
            }
            let n = chunk.len().min((position - self.offset) as usize);
            let bytes = chunk[..n].to_vec();
            self.reader.consume(n);
            self.offset += n as u64;
            for b in bytes {
                self.step(b);
            }
        }
        loop {
            let chunk = self.reader.fill_buf()?;
            match chunk.first() {
                Some(&b @ (b'\r' | b'\n')) => {
                    self.reader.consume(1);
                    self.offset += 1;
                    self.step(b);
                }
                _ => break,
            }
        }
        Ok(self.lines + 1)
    }

    /// Passes the rest of the file: the line of a quote still open.
    fn scan_to_end(&mut self) -> io::Result<Option<u64>> {
        loop {
            let chunk = self.reader.fill_buf()?;
            if chunk.is_empty() {
                break;
            }
            let bytes = chunk.to_vec();
            self.reader.consume(bytes.len());
            self.offset += bytes.len() as u64;
            for b in bytes {
                self.step(b);
            }
        }
        // A quote passed last closes the cell.
        if self.quote_pending {
            self.opened = None;
        }
        Ok(self.opened)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::csv::read_table;
    use crate::store::models::CsvLimits;

    /// Reads a file both ways: the records, errors and warnings must agree
    /// with the in-memory reader's.
    /// Records, errors and warnings; or the table that stopped the file.
    type Streamed = Result<(Vec<CsvRecord>, Vec<FieldError>, Vec<FieldError>), Box<CsvTable>>;

    fn both(bytes: &[u8]) -> (CsvTable, Streamed) {
        let limits = CsvLimits {
            max_records: u32::MAX,
            ..CsvLimits::default()
        };
        let memory = read_table(bytes, &limits, None, "rows");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("f.csv");
        std::fs::write(&path, bytes).expect("the file written");
        let streamed = CsvFile::open(&path, 1_000, 103, None).map(|mut file| {
            let mut errors = file.table.errors.clone();
            let mut warnings = file.table.warnings.clone();
            let mut records = Vec::new();
            loop {
                let batch = file.next_records(2, &mut errors, &mut warnings);
                if batch.is_empty() {
                    break;
                }
                records.extend(batch);
            }
            file.finish(&mut errors);
            (records, errors, warnings)
        });
        (memory, streamed)
    }

    fn codes(errors: &[FieldError]) -> Vec<(Option<u64>, ErrorCode)> {
        errors.iter().map(|e| (e.row, e.code)).collect()
    }

    #[test]
    fn reads_records_as_the_uploader_does() {
        for bytes in [
            &b"a,b\r\n1,x\r\n2,\"y\r\nz\"\r\n3,w\r\n"[..],
            &b"a;b\n1;x\n\n2;\"y\nz\"\n3;w\n"[..],
            &b"a,b\r1,x\r2,y\r"[..],
            &b"\xEF\xBB\xBFa,b\n1,caf\xC3\xA9\n"[..],
            &b"a,b\n1,caf\xE9\n"[..],
            &b"a,b\n1\n1,2,3\n"[..],
            &b"a,,a\n1,2,3\n"[..],
        ] {
            let (memory, streamed) = both(bytes);
            let (records, errors, warnings) = streamed.unwrap_or_else(|t| panic!("{:?}", t.errors));
            let clean = |r: &[CsvRecord]| r.to_vec();
            assert_eq!(
                clean(&records),
                clean(&memory.records),
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
            assert_eq!(
                codes(&errors),
                codes(&memory.errors),
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
            assert_eq!(codes(&warnings), codes(&memory.warnings));
        }
    }

    #[test]
    fn decodes_utf16_and_windows_1252() {
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(
                "a\tb\n1\té\n"
                    .replace('\t', ",")
                    .encode_utf16()
                    .flat_map(|u| u.to_le_bytes()),
            )
            .collect();
        let (_, streamed) = both(&utf16);
        let (records, errors, _) = streamed.unwrap_or_else(|t| panic!("{:?}", t.errors));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(records[0].cells, vec!["1", "é"]);
        let (_, streamed) = both(b"a,b\n1,caf\xE9\n");
        assert_eq!(streamed.expect("read").0[0].cells, vec!["1", "café"]);
    }

    #[test]
    fn refuses_what_is_not_a_csv() {
        for (bytes, code) in [
            (&b""[..], ErrorCode::EmptyFile),
            (&b"  \n "[..], ErrorCode::EmptyFile),
            (&b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"[..], ErrorCode::NotCsv),
        ] {
            let (_, streamed) = both(bytes);
            let table = streamed.expect_err("refused");
            assert_eq!(codes(&table.errors), vec![(None, code)]);
        }
        let (_, streamed) = both(b"a,b\n");
        assert_eq!(
            codes(&streamed.expect("read").1),
            vec![(Some(1), ErrorCode::NoRecords)]
        );
    }

    #[test]
    fn a_quote_never_closed_fails_the_record_that_swallowed_the_rest() {
        let (_, streamed) = both(b"a,b\n1,x\n2,\"y\n3,z\n4,w\n");
        let (records, errors, _) = streamed.expect("read");
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].line, 3);
        assert_eq!(
            codes(&errors),
            vec![(Some(3), ErrorCode::UnterminatedQuote)]
        );
        assert!(
            errors[0].message.contains("opens on line 3"),
            "{}",
            errors[0].message
        );
        let (_, streamed) = both(b"a,b\n1,\"x\"\"y\"\n2,\"multi\nline\"\n");
        assert!(streamed.expect("read").1.is_empty());
    }
}
