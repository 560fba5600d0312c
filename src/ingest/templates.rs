//! Import templates: the files a partner fills in a spreadsheet program and
//! uploads to `POST /v1/imports`, made from what the calling integration
//! sees now (its groups' staff, the configured categories, its campaigns'
//! statuses).
//!
//! A [`Template`] is built from plain values ([`CaseSamples`],
//! [`CustomerSamples`]) and written either as a zip ([`Template::zip`]:
//! `template.csv`, `example.csv`, `instructions.txt`, `enums/<field>.csv`)
//! or as one workbook ([`Template::xlsx`]: the columns with the examples,
//! drop-down lists drawn from a `Lists` sheet, and the instructions). The
//! headers are the ones the CSV readers recognise
//! ([`case_csv::TEMPLATE_HEADER`], [`customer_csv::TEMPLATE_HEADER`]), and
//! the examples pass the validators as they are.

use std::io::Write;

use chrono::{DateTime, Duration, NaiveDateTime, Timelike, Utc};
use rust_xlsxwriter::{
    DataValidation, ExcelDateTime, Format, Formula, Workbook, Worksheet, XlsxError,
    worksheet_range_absolute,
};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::domain::canonical_enum;
use crate::domain::case::{CaseStatus, MAX_EXTERNAL_ID_CHARS};
use crate::domain::customer::{DEFAULT_DATE_FORMAT, MAX_NAME_CHARS};
use crate::ids::CampaignId;
use crate::ingest::imports::{MAX_IMPORT_CELL_CHARS, MAX_IMPORT_COLUMNS};
use crate::ingest::{case_csv, customer_csv};
use crate::store::cases::StaffMatch;

/// What a template is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TemplateKind {
    Cases,
    Customers,
}

impl TemplateKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TemplateKind::Cases => "cases",
            TemplateKind::Customers => "customers",
        }
    }
}

/// How a template is delivered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TemplateFormat {
    /// A zip of CSV files and instructions.
    #[default]
    Zip,
    /// One workbook with drop-down lists.
    Xlsx,
}

/// The rows of a workbook that get the drop-down lists (and the columns'
/// formats): the header's and 9,999 below it.
pub const WORKBOOK_ROWS: u32 = 10_000;

/// How many example rows a template has.
const EXAMPLE_ROWS: usize = 3;

/// The spreadsheet date format of both CSV readers (their default).
const DATE_FORMAT: &str = "%d-%m-%Y %H:%M";

/// How a column's cells are written in a workbook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnStyle {
    /// As the spreadsheet program likes.
    General,
    /// Text: IDs keep their leading zeros, phone numbers their `+`, dates
    /// the exact text typed.
    Text,
    /// Date and time cells (read back as UTC).
    DateTime,
}

/// One cell of an example row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cell {
    Text(String),
    /// A date and time, written `DD-MM-YYYY HH:MM` in a CSV.
    DateTime(NaiveDateTime),
}

impl Cell {
    /// The cell as a CSV holds it.
    pub fn text(&self) -> String {
        match self {
            Cell::Text(text) => text.clone(),
            Cell::DateTime(t) => t.format(DATE_FORMAT).to_string(),
        }
    }
}

/// A column of the template.
#[derive(Clone, Debug)]
pub struct TemplateColumn {
    pub header: &'static str,
    pub style: ColumnStyle,
    /// The list (in [`Template::lists`]) its values come from.
    pub list: Option<usize>,
}

/// The values an enum field takes, as `enums/<name>.csv` holds them: a
/// header row, then one row per value, the value in the last column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValueList {
    /// The field (`channel`): the file's name and its value column's header.
    pub name: &'static str,
    /// The columns before the value (`campaign_id`, `campaign`).
    pub context: Vec<&'static str>,
    /// Each value with its context cells.
    pub rows: Vec<Vec<String>>,
}

impl ValueList {
    fn simple(name: &'static str, values: impl IntoIterator<Item = String>) -> Self {
        ValueList {
            name,
            context: Vec::new(),
            rows: values.into_iter().map(|v| vec![v]).collect(),
        }
    }

    fn header(&self) -> Vec<&'static str> {
        let mut header = self.context.clone();
        header.push(self.name);
        header
    }
}

/// A template, ready to be written as a zip or a workbook.
#[derive(Clone, Debug)]
pub struct Template {
    pub kind: TemplateKind,
    pub columns: Vec<TemplateColumn>,
    pub examples: Vec<Vec<Cell>>,
    pub lists: Vec<ValueList>,
    /// Plain text for a partner: `instructions.txt` of the zip.
    pub instructions: String,
    /// The same for the workbook (its sheet `Instructions`).
    pub workbook_instructions: String,
}

/// What a cases template is made of.
pub struct CaseSamples<'a> {
    /// Active staff of the integration's groups (the first few).
    pub staff: &'a [StaffMatch],
    /// The values of `Channel`, `Status`, `Priority` and `Category`, as
    /// `GET /v1/enums` answers them (the categories configured now).
    pub channel: &'a [&'static str],
    pub status: &'a [&'static str],
    pub priority: &'a [&'static str],
    pub categories: &'a [String],
    /// Makes the example Case IDs new on every download (a few letters).
    pub token: &'a str,
    pub now: DateTime<Utc>,
    pub limits: UploadLimits<'a>,
}

/// A campaign's customer statuses.
pub struct CampaignStatuses {
    pub id: CampaignId,
    pub name: String,
    pub statuses: Vec<String>,
}

/// An active agent the customers example names.
pub struct SampleAgent {
    pub name: String,
    /// The campaign (of the agent's group) the example fits.
    pub campaign: String,
}

/// What a customers template is made of.
pub struct CustomerSamples<'a> {
    pub campaigns: &'a [CampaignStatuses],
    pub agent: Option<SampleAgent>,
    pub now: DateTime<Utc>,
    pub limits: UploadLimits<'a>,
}

/// What the instructions say of the upload.
#[derive(Clone, Copy)]
pub struct UploadLimits<'a> {
    /// `INTAKE_IMPORT_MAX_BYTES`.
    pub max_bytes: u64,
    /// `INTAKE_IMPORT_CONFIRM_TTL_SECONDS`.
    pub confirm_within: std::time::Duration,
    /// The API's address as the caller reached it (`https://host`).
    pub base_url: &'a str,
}

/// Why a template could not be written (a bug, not the caller's doing).
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("writing the zip: {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error("writing the workbook: {0}")]
    Xlsx(#[from] XlsxError),
    #[error("writing a CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("writing: {0}")]
    Io(#[from] std::io::Error),
}

impl Template {
    /// The cases template: the uploader's columns plus one of the
    /// partner's own (`Reason`), examples naming the first staff members.
    pub fn cases(samples: &CaseSamples) -> Template {
        // The lists, by index: channel 0, status 1, priority 2, category 3.
        let lists = vec![
            ValueList::simple("channel", samples.channel.iter().map(|v| v.to_string())),
            ValueList::simple("status", samples.status.iter().map(|v| v.to_string())),
            ValueList::simple("priority", samples.priority.iter().map(|v| v.to_string())),
            ValueList::simple("category", samples.categories.iter().cloned()),
        ];
        let [
            staff_id,
            external_staff_id,
            case_id,
            channel,
            status,
            priority,
            category,
            occurred_at,
        ] = case_csv::TEMPLATE_HEADER;
        let column = |header, style, list| TemplateColumn {
            header,
            style,
            list,
        };
        // No category configured: no drop-down (it would refuse any value).
        let category_list = (!samples.categories.is_empty()).then_some(3);
        let columns = vec![
            column(staff_id, ColumnStyle::Text, None),
            column(external_staff_id, ColumnStyle::Text, None),
            column(case_id, ColumnStyle::Text, None),
            column(channel, ColumnStyle::General, Some(0)),
            column(status, ColumnStyle::General, Some(1)),
            column(priority, ColumnStyle::General, Some(2)),
            column(category, ColumnStyle::General, category_list),
            column(occurred_at, ColumnStyle::DateTime, None),
            column(CASE_DATA_COLUMN, ColumnStyle::General, None),
        ];
        let at = |n: usize| {
            let t = samples.now - Duration::hours(2 + 3 * n as i64);
            t.naive_utc()
                .with_second(0)
                .and_then(|t| t.with_nanosecond(0))
                .unwrap_or(t.naive_utc())
        };
        let pick = |values: &[&'static str], n: usize| values[n % values.len()].to_string();
        let reasons = ["Billing question", "Delivery delayed", "Password reset"];
        let examples = if samples.staff.is_empty() {
            Vec::new()
        } else {
            (0..EXAMPLE_ROWS)
                .map(|n| {
                    let staff = &samples.staff[n % samples.staff.len()];
                    let of = |list: &ValueList| {
                        list.rows
                            .get(n % list.rows.len().max(1))
                            .and_then(|row| row.last())
                            .cloned()
                            .unwrap_or_default()
                    };
                    vec![
                        Cell::Text(staff.staff_id.clone()),
                        Cell::Text(staff.external_id.clone().unwrap_or_default()),
                        Cell::Text(format!("EXAMPLE-{}-{}", samples.token, n + 1)),
                        Cell::Text(of(&lists[0])),
                        Cell::Text(of(&lists[1])),
                        Cell::Text(of(&lists[2])),
                        Cell::Text(of(&lists[3])),
                        Cell::DateTime(at(n)),
                        Cell::Text(pick(&reasons, n)),
                    ]
                })
                .collect()
        };
        Template {
            kind: TemplateKind::Cases,
            instructions: case_instructions(samples, &examples, TemplateFormat::Zip),
            workbook_instructions: case_instructions(samples, &examples, TemplateFormat::Xlsx),
            columns,
            examples,
            lists,
        }
    }

    /// The customers template: the headers the reader recognises without a
    /// mapping plus one custom column (`Plan`); the statuses of every
    /// campaign the integration sees.
    pub fn customers(samples: &CustomerSamples) -> Template {
        let [name, phone, agent, follow_up, created] = customer_csv::TEMPLATE_HEADER;
        let column = |header, style| TemplateColumn {
            header,
            style,
            list: None,
        };
        // Customer dates are read in the campaign's time zone: written as
        // text, not as date cells (which a workbook reads back as UTC).
        let columns = vec![
            column(name, ColumnStyle::General),
            column(phone, ColumnStyle::Text),
            column(agent, ColumnStyle::General),
            column(follow_up, ColumnStyle::Text),
            column(created, ColumnStyle::Text),
            column(CUSTOMER_DATA_COLUMN, ColumnStyle::General),
        ];
        let day = |days: i64, hour: u32| {
            let date = (samples.now + Duration::days(days)).date_naive();
            Cell::Text(
                date.and_hms_opt(hour, 0, 0)
                    .unwrap_or_default()
                    .format(DATE_FORMAT)
                    .to_string(),
            )
        };
        let agent_name = samples
            .agent
            .as_ref()
            .map(|a| a.name.clone())
            .unwrap_or_default();
        let examples = EXAMPLE_CUSTOMERS
            .iter()
            .enumerate()
            .map(|(n, (name, phone, plan))| {
                let n = n as i64;
                vec![
                    Cell::Text((*name).into()),
                    Cell::Text((*phone).into()),
                    Cell::Text(agent_name.clone()),
                    day(1 + n, 10),
                    day(-7 - n, 9),
                    Cell::Text((*plan).into()),
                ]
            })
            .collect();
        let statuses = ValueList {
            name: "status",
            context: vec!["campaign_id", "campaign"],
            rows: samples
                .campaigns
                .iter()
                .flat_map(|c| {
                    c.statuses
                        .iter()
                        .map(|s| vec![c.id.to_string(), c.name.clone(), s.clone()])
                })
                .collect(),
        };
        Template {
            kind: TemplateKind::Customers,
            columns,
            examples,
            lists: vec![statuses],
            instructions: customer_instructions(samples, TemplateFormat::Zip),
            workbook_instructions: customer_instructions(samples, TemplateFormat::Xlsx),
        }
    }

    /// The file's name for `format` (`intake-cases-template.zip`).
    pub fn file_name(&self, format: TemplateFormat) -> String {
        let extension = match format {
            TemplateFormat::Zip => "zip",
            TemplateFormat::Xlsx => "xlsx",
        };
        format!("intake-{}-template.{extension}", self.kind.as_str())
    }

    /// The header and rows as a CSV (UTF-8, CRLF).
    fn csv(&self, rows: &[Vec<Cell>]) -> Result<Vec<u8>, TemplateError> {
        let mut out = csv_writer();
        out.write_record(self.columns.iter().map(|c| c.header))?;
        for row in rows {
            out.write_record(row.iter().map(Cell::text))?;
        }
        csv_bytes(out)
    }

    /// `template.csv`, `example.csv`, `instructions.txt` and
    /// `enums/<field>.csv` for every list.
    pub fn zip(&self) -> Result<Vec<u8>, TemplateError> {
        let mut files: Vec<(String, Vec<u8>)> = vec![
            ("template.csv".into(), self.csv(&[])?),
            ("example.csv".into(), self.csv(&self.examples)?),
            (
                "instructions.txt".into(),
                self.instructions.replace('\n', "\r\n").into_bytes(),
            ),
        ];
        for list in &self.lists {
            let mut out = csv_writer();
            out.write_record(list.header())?;
            for row in &list.rows {
                out.write_record(row)?;
            }
            files.push((format!("enums/{}.csv", list.name), csv_bytes(out)?));
        }
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, bytes) in files {
            zip.start_file(name, options)?;
            zip.write_all(&bytes)?;
        }
        Ok(zip.finish()?.into_inner())
    }

    /// One workbook: the template's sheet (header bold and frozen, the
    /// examples, drop-downs on the enum columns for rows 2 to 10,000), a
    /// `Lists` sheet holding every list's values, and the instructions.
    pub fn xlsx(&self) -> Result<Vec<u8>, TemplateError> {
        let mut book = Workbook::new();
        let bold = Format::new().set_bold();
        let text = Format::new().set_num_format("@");
        let date = Format::new().set_num_format("dd-mm-yyyy hh:mm");
        // Where each list's values are on the Lists sheet: (column, rows).
        let mut placed = Vec::with_capacity(self.lists.len());
        let mut lists = Worksheet::new();
        lists.set_name(LISTS_SHEET)?;
        let mut col: u16 = 0;
        for list in &self.lists {
            for (i, header) in list.header().into_iter().enumerate() {
                let c = col + i as u16;
                lists.write_string_with_format(0, c, header, &bold)?;
                // As wide as its longest value (a campaign id: 36).
                let widest = list
                    .rows
                    .iter()
                    .filter_map(|row| row.get(i))
                    .map(|v| v.chars().count())
                    .chain([header.len()])
                    .max()
                    .unwrap_or_default();
                lists.set_column_width(c, (widest + 2).clamp(12, 60) as f64)?;
            }
            for (r, row) in list.rows.iter().enumerate() {
                for (i, cell) in row.iter().enumerate() {
                    lists.write_string(r as u32 + 1, col + i as u16, cell)?;
                }
            }
            let width = list.context.len() as u16 + 1;
            placed.push((col + width - 1, list.rows.len() as u32));
            col += width + 1;
        }

        let mut sheet = Worksheet::new();
        sheet.set_name(match self.kind {
            TemplateKind::Cases => "Cases",
            TemplateKind::Customers => "Customers",
        })?;
        for (c, column) in self.columns.iter().enumerate() {
            let c = c as u16;
            sheet.write_string_with_format(0, c, column.header, &bold)?;
            sheet.set_column_width(c, (column.header.len() as f64 + 4.0).max(18.0))?;
            match column.style {
                ColumnStyle::General => {}
                ColumnStyle::Text => {
                    sheet.set_column_format(c, &text)?;
                }
                ColumnStyle::DateTime => {
                    sheet.set_column_format(c, &date)?;
                }
            }
            let Some((list_col, count)) = column.list.and_then(|l| placed.get(l)).copied() else {
                continue;
            };
            if count == 0 {
                continue;
            }
            let range = worksheet_range_absolute(LISTS_SHEET, 1, list_col, count, list_col);
            let validation = DataValidation::new()
                .allow_list_formula(Formula::new(format!("={range}")))
                .set_error_title("Not in the list")?
                .set_error_message(format!(
                    "Pick a value of the list (the sheet {LISTS_SHEET} has them all)."
                ))?;
            sheet.add_data_validation(1, c, WORKBOOK_ROWS - 1, c, &validation)?;
        }
        for (r, row) in self.examples.iter().enumerate() {
            let r = r as u32 + 1;
            for (c, cell) in row.iter().enumerate() {
                let c = c as u16;
                match cell {
                    Cell::Text(value) if value.is_empty() => {}
                    Cell::Text(value) => match self.columns[c as usize].style {
                        ColumnStyle::Text => {
                            sheet.write_string_with_format(r, c, value, &text)?;
                        }
                        _ => {
                            sheet.write_string(r, c, value)?;
                        }
                    },
                    Cell::DateTime(t) => {
                        sheet.write_datetime_with_format(r, c, excel_datetime(t)?, &date)?;
                    }
                }
            }
        }
        sheet.set_freeze_panes(1, 0)?;

        let mut notes = Worksheet::new();
        notes.set_name("Instructions")?;
        notes.set_column_width(0, 120)?;
        for (r, line) in self.workbook_instructions.lines().enumerate() {
            if !line.is_empty() {
                notes.write_string(r as u32, 0, line)?;
            }
        }

        // The template first: an upload reads the first sheet.
        book.push_worksheet(sheet);
        book.push_worksheet(lists);
        book.push_worksheet(notes);
        Ok(book.save_to_buffer()?)
    }
}

/// The sheet holding the drop-downs' values.
pub const LISTS_SHEET: &str = "Lists";

/// The example of a column of the partner's own, in a cases template.
pub const CASE_DATA_COLUMN: &str = "Reason";

/// The example of a custom field's column, in a customers template.
pub const CUSTOMER_DATA_COLUMN: &str = "Plan";

/// Example customers: numbers in E.164 (valid whatever the campaign's
/// region), from the numbering plans' own example numbers.
const EXAMPLE_CUSTOMERS: [(&str, &str, &str); EXAMPLE_ROWS] = [
    ("Dana Levi", "+972502345678", "Gold"),
    ("Tom Baker", "+447400123456", "Silver"),
    ("Maria Rossi", "+12015550123", "Basic"),
];

fn csv_writer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new())
}

fn csv_bytes(out: csv::Writer<Vec<u8>>) -> Result<Vec<u8>, TemplateError> {
    out.into_inner()
        .map_err(|e| TemplateError::Io(e.into_error()))
}

fn excel_datetime(t: &NaiveDateTime) -> Result<ExcelDateTime, XlsxError> {
    use chrono::Datelike;
    ExcelDateTime::from_ymd(t.year() as u16, t.month() as u8, t.day() as u8)?.and_hms(
        t.hour() as u16,
        t.minute() as u8,
        0,
    )
}

/// `536870912` → `512 MiB`.
fn size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    UNITS
        .iter()
        .find(|(unit, _)| bytes >= *unit && bytes.is_multiple_of(*unit))
        .map(|(unit, name)| format!("{} {name}", bytes / unit))
        .unwrap_or_else(|| format!("{bytes} bytes"))
}

/// `86400 s` → `24 hours`.
fn duration(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s >= 3_600 && s.is_multiple_of(3_600) {
        let h = s / 3_600;
        format!("{h} hour{}", if h == 1 { "" } else { "s" })
    } else if s >= 60 && s.is_multiple_of(60) {
        format!("{} minutes", s / 60)
    } else {
        format!("{s} seconds")
    }
}

/// `32000` → `32,000`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The width the instructions are wrapped at.
const TEXT_WIDTH: usize = 78;

/// `text` wrapped at [`TEXT_WIDTH`]: its first line after `first`, the
/// others after as many spaces. A word longer than a line stays whole, and
/// so do a form field (`-F name=value`) and a quoted span (`'a b'`): a
/// command is never cut.
fn wrap(first: &str, text: &str) -> String {
    let indent = " ".repeat(first.chars().count());
    let mut out = first.to_string();
    let mut width = first.chars().count();
    let mut empty = true;
    for word in unbreakable(text) {
        let len = word.chars().count();
        if !empty && width + 1 + len > TEXT_WIDTH {
            out.push('\n');
            out.push_str(&indent);
            width = indent.len();
            empty = true;
        }
        if !empty {
            out.push(' ');
            width += 1;
        }
        out.push_str(&word);
        width += len;
        empty = false;
    }
    out.push('\n');
    out
}

/// The words of `text`, with `-F` kept to the next word and a quoted span
/// (`'…'`) kept whole.
fn unbreakable(text: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let mut open = false;
    for word in text.split_whitespace() {
        match words.last_mut() {
            Some(last) if open || last == "-F" => {
                last.push(' ');
                last.push_str(word);
            }
            _ => words.push(word.to_string()),
        }
        // A quote opens a span at the start of a word (not in "group's")
        // and closes it anywhere.
        if open {
            open = !word.contains('\'');
        } else if let Some(rest) = word.strip_prefix('\'') {
            open = !rest.contains('\'');
        }
    }
    words
}

/// A column's entry: its header, then its description wrapped beside it.
fn column_entry(header: &str, description: &str) -> String {
    wrap(&format!("{header:<18} "), description)
}

/// A paragraph, wrapped.
fn paragraph(text: &str) -> String {
    wrap("", text)
}

/// What both kinds of instructions say of files, limits and spreadsheets
/// (`spreadsheets`: how the template keeps values from being changed).
fn files_and_limits(limits: &UploadLimits, spreadsheets: &str) -> String {
    [
        "FILES AND LIMITS\n\n".to_string(),
        wrap(
            "- ",
            "A CSV file: best saved as CSV UTF-8. UTF-16 and older encodings \
             (Windows-1252, Windows-1255, …) are recognised; where the file is \
             too short to tell, name its encoding with the form field charset \
             (charset=windows-1255). Cells separated by commas, semicolons or \
             tabs, the first line the header. Blank lines and rows of \
             separators only are skipped. One file per upload.",
        ),
        wrap(
            "- ",
            "Or a workbook (.xlsx or .xls): its first sheet (or the one you name \
             with the form field sheet), its first row the header.",
        ),
        wrap(
            "- ",
            &format!(
                "At most {} a file, {} columns, and {} characters in a cell. There \
                 is no limit on the number of rows.",
                size(limits.max_bytes),
                thousands(MAX_IMPORT_COLUMNS as u64),
                thousands(MAX_IMPORT_CELL_CHARS as u64),
            ),
        ),
        "\n".to_string(),
        paragraph(&format!(
            "Spreadsheet programs change some values when they open a CSV file: \
             they drop the leading zeros of IDs, show long numbers as 4.47E+11, \
             drop the + of phone numbers and rewrite dates in the computer's own \
             format. {spreadsheets}"
        )),
    ]
    .concat()
}

/// What a spreadsheet program is told of `columns` (`the Phone and
/// Created columns`): format them as text, or use the workbook where they
/// are; `workbook` says how the workbook keeps them.
fn spreadsheet_note(format: TemplateFormat, columns: &str, workbook: &str) -> String {
    match format {
        TemplateFormat::Zip => format!(
            "Before typing, format {columns} as Text, or download this template \
             as a workbook (add ?format=xlsx to its address), where they are set \
             up already."
        ),
        TemplateFormat::Xlsx => format!(
            "In this workbook, {workbook} To save the sheet as CSV, choose CSV \
             UTF-8."
        ),
    }
}

/// How to upload, check and confirm.
fn uploading(limits: &UploadLimits, form: &str, example: &str) -> String {
    let base = limits.base_url;
    [
        "UPLOADING\n\n".to_string(),
        paragraph(
            "Your system's token needs the scope imports:write (imports:read is \
             enough to follow a job).",
        ),
        "\n".to_string(),
        wrap(
            "1. ",
            "Upload the file. Nothing is written yet: every row is read and checked.",
        ),
        format!(
            "\n   curl -H \"Authorization: Bearer $TOKEN\" \\\n     {form} \\\n     \
             -F file=@{example} \\\n     {base}/v1/imports\n\n"
        ),
        wrap(
            "   ",
            "The answer is the import job: its id, a preview of the first 20 rows \
             as read, the number of rows, and every problem found, each with its \
             line, its column and what is wrong.",
        ),
        "\n".to_string(),
        wrap(
            "2. ",
            "Look at the preview and the problems. A row with a problem is not \
             written; the others are. Fix the file and upload it again, or go on.",
        ),
        "\n".to_string(),
        wrap(
            "3. ",
            &format!("Confirm within {}:", duration(limits.confirm_within)),
        ),
        format!(
            "\n   curl -X POST -H \"Authorization: Bearer $TOKEN\" \\\n     \
             {base}/v1/imports/<id>/confirm\n\n"
        ),
        wrap(
            "4. ",
            "The rows are written in the background. Follow the job (its state, \
             and how many rows are processed, succeeded and failed) until it is \
             completed:",
        ),
        format!("\n   GET {base}/v1/imports/<id>\n\n"),
        wrap(
            "   ",
            "The rows that failed, with the reason, are in errors.csv: fix them \
             and upload that file again.",
        ),
        format!("\n   GET {base}/v1/imports/<id>/errors.csv\n"),
    ]
    .concat()
}

/// `zip` or `xlsx`, as the format says.
fn per<'a>(format: TemplateFormat, zip: &'a str, xlsx: &'a str) -> &'a str {
    match format {
        TemplateFormat::Zip => zip,
        TemplateFormat::Xlsx => xlsx,
    }
}

fn case_instructions(
    samples: &CaseSamples,
    examples: &[Vec<Cell>],
    format: TemplateFormat,
) -> String {
    let lists = |file: &str| match format {
        TemplateFormat::Zip => format!("enums/{file}.csv"),
        TemplateFormat::Xlsx => format!("the sheet {LISTS_SHEET}"),
    };
    let example_file = per(format, "example.csv", "The sheet Cases");
    let categories = if samples.categories.is_empty() {
        "Optional. No category is configured now: leave the column empty (or \
         leave it out)."
            .to_string()
    } else {
        format!(
            "Optional. One of the categories configured now, listed in {}.",
            lists("category")
        )
    };
    let example = if examples.is_empty() {
        paragraph(&format!(
            "Your groups have no active staff member yet, so {} holds the header \
             only: every case names a staff member, and an administrator must add \
             your staff first. Then download this template again.",
            per(format, "example.csv", "the sheet Cases")
        ))
    } else {
        let staff: Vec<&str> = samples
            .staff
            .iter()
            .take(EXAMPLE_ROWS)
            .map(|s| s.staff_id.as_str())
            .collect();
        paragraph(&format!(
            "{example_file} holds {rows} example cases of staff members of your \
             groups (Staff ID {staff}). Their Case IDs (EXAMPLE-{token}-1 and on) \
             were made up for this download, so the {file} can be uploaded as it \
             is, once, to see an import work: its cases are really written. Your \
             own files carry your own system's Case IDs.",
            rows = examples.len(),
            staff = staff.join(", "),
            token = samples.token,
            file = per(format, "file", "workbook"),
        ))
    };
    let [
        staff_id,
        external_staff_id,
        case_id,
        channel,
        status,
        priority,
        category,
        occurred_at,
    ] = case_csv::TEMPLATE_HEADER;
    let holds = match format {
        TemplateFormat::Zip => {
            "The zip holds:\n\
             \x20 template.csv       the columns, no rows\n\
             \x20 example.csv        the same columns with a few example rows\n\
             \x20 enums/*.csv        the values of the columns Channel, Status,\n\
             \x20                    Priority and Category, as configured when you\n\
             \x20                    downloaded this\n\
             \x20 instructions.txt   this text\n"
        }
        TemplateFormat::Xlsx => {
            "The workbook holds:\n\
             \x20 Cases              the columns with a few example rows; the cells\n\
             \x20                    of Channel, Status and Priority (and of\n\
             \x20                    Category, once categories are configured)\n\
             \x20                    offer their values in a list\n\
             \x20 Lists              those values, as configured when you\n\
             \x20                    downloaded this\n\
             \x20 Instructions       this text\n"
        }
    };
    [
        "CASES IMPORT TEMPLATE\n\n".to_string(),
        paragraph(per(
            format,
            "Fill template.csv (or a copy of it) with your cases, one per row, \
             and upload it as an import job (see UPLOADING below).",
            "Fill the sheet Cases with your cases, one per row, in place of the \
             examples, and upload the workbook (or the sheet saved as CSV) as an \
             import job (see UPLOADING below).",
        )),
        "\n".to_string(),
        holds.to_string(),
        "\nTHE COLUMNS\n\n".to_string(),
        paragraph(&format!(
            "The first three columns must be {staff_id}, {external_staff_id} and \
             {case_id}, in this order; the others come in any order. Headers are \
             matched whatever their letter case, and spaces, hyphens and \
             underscores are alike (occurred_at is {occurred_at}). An empty cell \
             is no value."
        )),
        "\n".to_string(),
        column_entry(
            staff_id,
            "The staff member the case is about, by their Staff ID.",
        ),
        column_entry(
            external_staff_id,
            "The same staff member, by the ID your own system gives them. Fill \
             at least one of the two; if you fill both, they must name the same \
             person. The staff member must be active and belong to one of your \
             groups.",
        ),
        column_entry(
            case_id,
            &format!(
                "Required. Your system's ID for the case, at most \
                 {MAX_EXTERNAL_ID_CHARS} characters. A Case ID already imported \
                 is refused."
            ),
        ),
        column_entry(
            channel,
            &format!(
                "Optional. How the case came in: {} ({}). Letter case, spaces and \
                 hyphens do not matter (Live hotline is live_hotline).",
                samples.channel.join(", "),
                lists("channel")
            ),
        ),
        column_entry(
            status,
            &format!(
                "Optional: {}. Empty: {}.",
                samples.status.join(", "),
                CaseStatus::Open.as_str()
            ),
        ),
        column_entry(
            priority,
            &format!("Optional: {}.", samples.priority.join(", ")),
        ),
        column_entry(category, &categories),
        column_entry(
            occurred_at,
            "Optional. When it happened: DD-MM-YYYY HH:MM in UTC (20-11-2026 \
             14:05), or RFC 3339 (2026-11-20T14:05:00Z, or with its offset: \
             2026-11-20T16:05:00+02:00). In a workbook, a date cell is read as \
             UTC.",
        ),
        column_entry(
            CASE_DATA_COLUMN,
            "An example of a column of your own: every other column is kept with \
             the case, under its header. Rename it, add as many as you need; at \
             least one is required. Comments, message counts or activity are \
             columns like any other: they are kept too.",
        ),
        "\nEXAMPLE\n\n".to_string(),
        example,
        "\n".to_string(),
        files_and_limits(
            &samples.limits,
            &spreadsheet_note(
                format,
                &format!(
                    "the {staff_id}, {external_staff_id}, {case_id} and {occurred_at} columns"
                ),
                &format!(
                    "the {staff_id}, {external_staff_id} and {case_id} columns are \
                     formatted as text, so that IDs keep their leading zeros, and \
                     {occurred_at} holds date cells."
                ),
            ),
        ),
        "\n".to_string(),
        uploading(
            &samples.limits,
            "-F kind=cases",
            per(format, "cases.csv", "cases.xlsx"),
        ),
        "\n".to_string(),
        paragraph(
            "To put the cases in a new list, add -F list_name=<name> and one of \
             -F assign_group=<group id>, -F assign_team=<team id> or \
             -F assign_evaluator=<Staff ID>.",
        ),
    ]
    .concat()
}

/// The campaigns the instructions name (the statuses' list has them all).
const LISTED_CAMPAIGNS: usize = 10;

fn customer_instructions(samples: &CustomerSamples, format: TemplateFormat) -> String {
    let [name, phone, agent, follow_up, created] = customer_csv::TEMPLATE_HEADER;
    let statuses = per(format, "enums/status.csv", "the sheet Lists");
    // The other headers a field is recognised by.
    let also = |field: &str, header: &str| {
        let header = canonical_enum(header);
        let aliases: Vec<&str> = customer_csv::field_aliases(field)
            .iter()
            .copied()
            .filter(|a| **a != header)
            .collect();
        format!("Also: {}.", aliases.join(", "))
    };
    let example_agent = match &samples.agent {
        Some(sample) => paragraph(&format!(
            "The example rows name {:?}, an agent of the campaign {:?}: in another \
             campaign, name one of its group's agents or leave the cell empty.",
            sample.name, sample.campaign
        )),
        None => paragraph(&format!(
            "No campaign of yours has an active agent now, so the Agent column of \
             {} is empty.",
            per(format, "example.csv", "the examples")
        )),
    };
    let campaigns = if samples.campaigns.is_empty() {
        paragraph(
            "You see no campaign yet: an administrator must create one in one of \
             your groups before customers can be imported.",
        )
    } else {
        let mut lines = vec!["Your campaigns (campaign_id, name):\n".to_string()];
        for c in samples.campaigns.iter().take(LISTED_CAMPAIGNS) {
            lines.push(format!("  {}  {}\n", c.id, c.name));
        }
        if samples.campaigns.len() > LISTED_CAMPAIGNS {
            lines.push(format!(
                "  and {} more ({statuses} lists them all)\n",
                samples.campaigns.len() - LISTED_CAMPAIGNS
            ));
        }
        lines.concat()
    };
    let holds = match format {
        TemplateFormat::Zip => {
            "The zip holds:\n\
             \x20 template.csv       the columns, no rows\n\
             \x20 example.csv        the same columns with a few example rows\n\
             \x20 enums/status.csv   the customer statuses of each of your campaigns\n\
             \x20                    (campaign_id, campaign, status)\n\
             \x20 instructions.txt   this text\n"
        }
        TemplateFormat::Xlsx => {
            "The workbook holds:\n\
             \x20 Customers          the columns with a few example rows\n\
             \x20 Lists              the customer statuses of each of your campaigns\n\
             \x20                    (campaign_id, campaign, status)\n\
             \x20 Instructions       this text\n"
        }
    };
    [
        "CUSTOMERS IMPORT TEMPLATE\n\n".to_string(),
        paragraph(per(
            format,
            "Fill template.csv (or a copy of it) with the customers of one \
             campaign, one per row, and upload it as an import job into that \
             campaign (see UPLOADING below).",
            "Fill the sheet Customers with the customers of one campaign, one per \
             row, in place of the examples, and upload the workbook (or the sheet \
             saved as CSV) as an import job into that campaign (see UPLOADING \
             below).",
        )),
        "\n".to_string(),
        holds.to_string(),
        "\nTHE COLUMNS\n\n".to_string(),
        paragraph(
            "Columns are found by their header, in any order, whatever its letter \
             case (spaces, hyphens and underscores are alike). Each field also \
             takes the other headers listed. A file with other headers can name \
             its columns with the form field mapping instead, e.g. \
             -F 'mapping={\"Mobile\": \"phone\"}'. An empty cell is no value.",
        ),
        "\n".to_string(),
        column_entry(
            name,
            &format!(
                "Required, at most {MAX_NAME_CHARS} characters. {}",
                also("name", name)
            ),
        ),
        column_entry(
            phone,
            &format!(
                "Required. Any usual format; kept in E.164 (+447400123456). A \
                 number with its country code (+44 or 0044) is read as it is; one \
                 without is read in the campaign's region, or refused with \
                 -F international_format=true. {}",
                also("phone", phone)
            ),
        ),
        column_entry(
            agent,
            &format!(
                "Optional. The exact name of an active agent of the campaign's \
                 group (letter case included). {}",
                also("agent", agent)
            ),
        ),
        column_entry(
            follow_up,
            &format!(
                "Optional. When to call back: {DEFAULT_DATE_FORMAT} in the \
                 campaign's time zone (21-11-2026 10:00), or RFC 3339. Another \
                 format: -F 'date_format=MM/DD/YYYY HH:mm'; another zone: \
                 -F timezone=Europe/Berlin. {}",
                also("follow_up_at", follow_up)
            ),
        ),
        column_entry(
            created,
            &format!(
                "Optional. When your system created the customer, written the same \
                 way. {}",
                also("source_created_at", created)
            ),
        ),
        column_entry(
            CUSTOMER_DATA_COLUMN,
            "An example of a field of your own: every other column is kept with \
             the customer, under its header, comments and activity included.",
        ),
        "\n".to_string(),
        paragraph(&format!(
            "There is no status column: the customers of one upload all get the \
             status the form field status names (-F status=...), one of the \
             campaign's statuses in {statuses}; without it, the campaign's first \
             status."
        )),
        "\n".to_string(),
        paragraph(
            "A customer whose phone number is already in the campaign is skipped, \
             or updated with -F override_existing=true. -F reset_status=true sets \
             its status to the upload's, and -F update_contact_allowed=true lifts \
             a do-not-call block, each also on its own. An optional column \
             Do not call (yes/no) marks customers not to be called.",
        ),
        "\nEXAMPLE\n\n".to_string(),
        example_agent,
        "\n".to_string(),
        campaigns,
        "\n".to_string(),
        files_and_limits(
            &samples.limits,
            &spreadsheet_note(
                format,
                &format!("the {phone}, {follow_up} and {created} columns"),
                &format!(
                    "the {phone}, {follow_up} and {created} columns are formatted \
                     as text, so that phone numbers keep their + and dates stay as \
                     typed (a date cell would be read as UTC, not in the campaign's \
                     time zone)."
                ),
            ),
        ),
        "\n".to_string(),
        uploading(
            &samples.limits,
            "-F kind=customers -F campaign_id=<campaign id> -F status=<status>",
            per(format, "customers.csv", "customers.xlsx"),
        ),
    ]
    .concat()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::case::{CaseInput, CaseRules, DateInput, validate_case};
    use crate::domain::customer::{CustomerRules, DateFormat, DateRule, validate_customer};
    use crate::ids::GroupId;
    use crate::ingest::case_csv::CaseColumns;
    use crate::ingest::csv::read_table;
    use crate::ingest::customer_csv::CustomerColumns;
    use crate::store::models::CsvLimits;

    fn limits() -> UploadLimits<'static> {
        UploadLimits {
            max_bytes: 512 << 20,
            confirm_within: std::time::Duration::from_secs(86_400),
            base_url: "https://intake.example",
        }
    }

    fn staff(id: &str, external: Option<&str>) -> StaffMatch {
        StaffMatch {
            staff_id: id.into(),
            external_id: external.map(String::from),
            group_id: GroupId::new(),
            active: true,
            role: "agent".into(),
        }
    }

    fn example_csv(template: &Template) -> String {
        String::from_utf8(template.csv(&template.examples).expect("csv")).expect("utf-8")
    }

    #[test]
    fn the_cases_example_passes_the_validators() {
        let staff = [staff("A-1", Some("crm-1")), staff("B-2", None)];
        let categories = vec!["Billing".to_string(), "Technical issue".to_string()];
        let template = Template::cases(&CaseSamples {
            staff: &staff,
            channel: &["form", "live_hotline", "survey"],
            status: &["open", "in_progress", "closed"],
            priority: &["low", "medium", "high", "critical"],
            categories: &categories,
            token: "abc123",
            now: Utc::now(),
            limits: limits(),
        });
        let text = example_csv(&template);
        assert!(text.starts_with(
            "Staff ID,External Staff ID,Case ID,Channel,Status,Priority,Category,Occurred At,Reason\r\n"
        ));
        let mut table = read_table(text.as_bytes(), &CsvLimits::default(), None, "cases");
        let columns = CaseColumns::read(&mut table).expect("readable");
        assert!(table.errors.is_empty() && table.warnings.is_empty());
        assert_eq!(table.records.len(), EXAMPLE_ROWS);
        let rules = CaseRules {
            categories: &categories,
            dates: DateInput::Spreadsheet,
        };
        for record in std::mem::take(&mut table.records) {
            let case: CaseInput = columns.case(record.cells);
            let valid = validate_case(&case, &rules).expect("valid");
            assert!(valid.external_id.starts_with("EXAMPLE-abc123-"));
            assert!(valid.occurred_at.is_some() && valid.category.is_some());
        }
        assert_eq!(
            template.lists.iter().map(|l| l.name).collect::<Vec<_>>(),
            ["channel", "status", "priority", "category"]
        );
        assert!(template.instructions.contains("512 MiB"));
        assert!(template.instructions.contains("1,000 columns"));
        assert!(template.instructions.contains("32,000 characters"));
        assert!(template.instructions.contains("24 hours"));
        assert!(
            template
                .instructions
                .lines()
                .all(|l| l.chars().count() <= TEXT_WIDTH),
            "{}",
            template.instructions
        );
    }

    #[test]
    fn without_staff_the_cases_example_is_its_header() {
        let template = Template::cases(&CaseSamples {
            staff: &[],
            channel: &["form"],
            status: &["open"],
            priority: &["low"],
            categories: &[],
            token: "x",
            now: Utc::now(),
            limits: limits(),
        });
        assert!(template.examples.is_empty());
        assert_eq!(example_csv(&template).lines().count(), 1);
        assert!(template.instructions.contains("no active staff member"));
        assert_eq!(template.columns[6].list, None, "no category: no drop-down");
    }

    #[test]
    fn the_customers_example_passes_the_validators_in_any_region() {
        let template = Template::customers(&CustomerSamples {
            campaigns: &[],
            agent: None,
            now: Utc::now(),
            limits: limits(),
        });
        let text = example_csv(&template);
        let mut table = read_table(text.as_bytes(), &CsvLimits::default(), None, "cases");
        let columns = CustomerColumns::read(&mut table, None).expect("readable");
        assert!(table.errors.is_empty() && table.warnings.is_empty());
        let dates = DateRule::Local {
            format: DateFormat::parse(DEFAULT_DATE_FORMAT).expect("format"),
            tz: chrono_tz::Tz::Asia__Tokyo,
        };
        for region in ["GB", "IL", "US", "DE", "JP"] {
            for record in &table.records {
                let input = columns.customer(record.cells.clone());
                let rules = CustomerRules {
                    region: region.parse().expect("region"),
                    international_format: false,
                    dates: &dates,
                };
                let valid = validate_customer(&input, &rules).expect("valid");
                assert!(valid.follow_up_at.is_some() && valid.source_created_at.is_some());
                assert_eq!(valid.agent, None);
            }
        }
        assert!(
            template
                .instructions
                .lines()
                .all(|l| l.chars().count() <= TEXT_WIDTH),
            "{}",
            template.instructions
        );
    }

    #[test]
    fn text_is_wrapped_without_cutting_a_command() {
        let text = "the group's -F kind=cases -F 'mapping={\"A b\": \"phone\"}' it's end";
        assert_eq!(
            unbreakable(text),
            [
                "the",
                "group's",
                "-F kind=cases",
                "-F 'mapping={\"A b\": \"phone\"}'",
                "it's",
                "end"
            ]
        );
        let long = "word ".repeat(40);
        let wrapped = wrap("Name  ", &long);
        assert!(wrapped.lines().all(|l| l.chars().count() <= TEXT_WIDTH));
        assert!(wrapped.lines().skip(1).all(|l| l.starts_with("      word")));
    }

    #[test]
    fn sizes_and_numbers_read_well() {
        assert_eq!(size(512 << 20), "512 MiB");
        assert_eq!(size(1 << 30), "1 GiB");
        assert_eq!(size(1_000), "1000 bytes");
        assert_eq!(thousands(32_000), "32,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }
}
