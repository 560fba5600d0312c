//! The error reference: every code with its status, what it means and what
//! to do about it. The server serves it at `/docs/errors` (each problem's
//! `type` points at its anchor there) and `docs/errors.md` is the same text,
//! kept current by a test.

use crate::error::{ERRORS_PAGE, ErrorCode};

/// What a caller does about a code.
pub fn remedy(code: ErrorCode) -> &'static str {
    use ErrorCode::*;
    match code {
        MalformedJson => {
            "Send valid JSON: `detail` gives the line and column where parsing stopped (a truncated body ends there too)."
        }
        InvalidBody => {
            "Compare the body with the operation's schema in the OpenAPI document: `detail` names the value of the wrong shape and where it is."
        }
        UnknownField => {
            "Remove the field or fix its spelling: bodies are strict so that a typo is not silently dropped."
        }
        UnsupportedMediaType => {
            "Send the `Content-Type` the operation lists: `application/json` (or `application/x-ndjson` where a stream is accepted) for bodies, `multipart/form-data` for file uploads."
        }
        PayloadTooLarge => {
            "Split the request: `detail` states the limit and `GET /v1/limits` shows every limit in force. For very large loads use an NDJSON stream or an import job."
        }
        MalformedRequest => {
            "Send a well-formed HTTP/1.1 request: a request line `METHOD /path HTTP/1.1` and headers `Name: value`, each ending in CRLF; a header name may not contain spaces or control characters. An HTTP library does this for you."
        }
        HeadersTooLarge => {
            "Send fewer or shorter headers: at most 96 headers and 128 KiB for the request line and headers together. Data belongs in the body (or, for lists, in a paged query)."
        }
        HeaderTimeout => {
            "Send the request line and headers at once: the server waits 5 seconds for them after the connection opens, then answers 408 and closes the connection."
        }
        InvalidQuery => {
            "Fix the query parameter `detail` names; the operation's parameters list each one's type and range."
        }
        InvalidPathParameter => {
            "Use the id exactly as an answer gave it (a UUID for most resources)."
        }
        InvalidCursor => {
            "Pass back the `next_cursor` of the previous page unchanged, or leave `cursor` out to start from the first page."
        }
        RouteNotFound => {
            "Check the path against the OpenAPI document (`/openapi.json`); every route is under `/v1` except the operational ones."
        }
        MethodNotAllowed => "Use one of the methods the `Allow` header lists for this path.",
        InvalidToken => {
            "Send `Authorization: Bearer <token>` with a token minted by this deployment. `error_description` says what to fix: an expired or revoked token needs a new one (ask an operator, or `intake token`)."
        }
        InsufficientScope => {
            "Mint a token with the scope `detail` names (the `WWW-Authenticate` header lists it too); `GET /v1/me` shows the scopes of the token you hold."
        }
        IntegrationDisabled => {
            "Ask an operator to enable the integration (`PATCH /v1/admin/integrations/{id}`), then start the import again."
        }
        ValidationFailed => {
            "Fix every item of `errors` (each names its `field`, `row` or `column` and has its own code) and send the request again; nothing was written."
        }
        Required => "Give the field a value.",
        TooLong => "Shorten the value to the length the message states.",
        InvalidEnum => {
            "Use one of the values the message lists (`GET /v1/enums` lists every enum with its live values)."
        }
        DuplicateValue => "Send each value once.",
        InvalidRegion => {
            "Use an ISO 3166-1 alpha-2 country code with a phone numbering plan, such as `GB`, `US` or `IL`."
        }
        InvalidTimezone => {
            "Use an IANA time zone name, such as `Europe/London` or `America/New_York`."
        }
        UnknownGroup => "Use the id of an existing group (`GET /v1/admin/groups`).",
        UnknownTeam => {
            "Use the id of a team of the given group (`GET /v1/admin/teams?group_id=…`)."
        }
        TooManyItems => {
            "Send fewer items per request, as the message states, or split the work into several requests."
        }
        OutOfRange => "Use a number within the range the message states.",
        InvalidScope => {
            "Use the scopes an integration token can carry: `cases:write`, `cases:read`, `customers:write`, `customers:read`, `customers:create`, `imports:write`, `imports:read`."
        }
        InvalidType => {
            "Send the value as the JSON type the schema gives (text in quotes, numbers without)."
        }
        ControlCharacter => {
            "Remove control characters (NUL, escape, …) from the text; free text fields may keep line breaks and tabs."
        }
        InvalidDate => {
            "Write the date as the message shows: RFC 3339 (`2026-11-02T09:30:00Z`) in JSON; in spreadsheets also `DD/MM/YYYY HH:MM` or the import's `date_format`."
        }
        MissingExternalId => {
            "Give every case its `external_id` (the `Case ID` column of a file): your own id of the case."
        }
        MissingStaffId => {
            "Give every case a `staff_id` or an `external_staff_id` (`GET /v1/staff` lists both)."
        }
        UnknownStaffId => {
            "Use a Staff ID (or External Staff ID) of an active staff member of your integration's groups: `GET /v1/staff` lists them."
        }
        StaffIdMismatch => {
            "Make `staff_id` and `external_staff_id` name the same person, or send only one of them. In CSV uploads and import jobs this is a warning and the Staff ID wins."
        }
        AmbiguousExternalStaffId => {
            "Send `staff_id` instead: several staff members share this External Staff ID."
        }
        StaffInactive => {
            "Assign the case to an active staff member, or ask an operator to reactivate this one."
        }
        ChannelNotImportable => {
            "Leave these cases out: `automated_hotline` interactions are recorded by the platform itself."
        }
        UnknownCategory => {
            "Use a configured category (`GET /v1/categories`), or ask an operator to add it."
        }
        EmptyDataKey => "Give every custom data column (or `data` key) a name.",
        DuplicateDataKey => "Rename one of the two columns that share a name.",
        DuplicateExternalId => {
            "The case exists already. Send it with `on_conflict: skip` to keep the stored case, or `update` to change it; or use another Case ID."
        }
        DuplicateInRequest => "Send each Case ID once per request: merge the two rows.",
        UnknownAssignment => {
            "Assign the list to a group, team or evaluator your integration can see (`GET /v1/me` lists the groups, `GET /v1/teams` and `GET /v1/staff?role=evaluator` the rest)."
        }
        InvalidPhone => {
            "Send a phone number that is valid in the campaign's region, or in international form (`+44 20 7946 0958`)."
        }
        UnknownAgent => {
            "Use the exact name of an active agent of the campaign's group (`GET /v1/staff?role=agent`), or leave `agent` empty."
        }
        AmbiguousAgent => {
            "Several active agents have this name: ask an operator to tell them apart, or leave `agent` empty."
        }
        DuplicateInFile => "Remove the repeated phone number: the first row with it was taken.",
        AlreadyExists => {
            "The customer is in the campaign already. Send it again with `override_existing: true` to update it."
        }
        ExistsInOtherCampaign => {
            "Nothing to do unless you meant to move the customer: send `unique_mode: move` to move it into this campaign."
        }
        InvalidStatus => {
            "Use one of the campaign's statuses (`GET /v1/campaigns/{id}` lists them)."
        }
        InvalidMapping => {
            "Map only headers the file has to fields that exist (the message names the one at fault)."
        }
        MissingColumn => {
            "Add the column (name and phone) or map a header of the file to it with `mapping`."
        }
        InvalidDateFormat => {
            "Use a `date_format` built from `DD`, `MM`, `YYYY`, `HH`, `mm` and separators, such as `DD-MM-YYYY HH:mm`."
        }
        ConcurrentWrite => {
            "Send the same request again: another request wrote some of these rows at the same moment and nothing of this one was written."
        }
        InvalidCsv => {
            "Fix every item of `errors` (each has its line as `row` and its `column`) and upload the file again; nothing was written."
        }
        UnsupportedFileType => {
            "Upload a CSV (comma, semicolon or tab separated), an XLSX or an XLS file."
        }
        MissingHeaderRow => {
            "Put the header row (`Staff ID`, `External Staff ID`, `Case ID`, then your columns) on the first line; the template (`GET /v1/templates/cases`) has it."
        }
        FirstColumnNotStaffId => "Make `Staff ID` the first column.",
        SecondColumnNotExternalStaffId => {
            "Make `External Staff ID` the second column (its cells may be empty)."
        }
        ThirdColumnNotCaseId => "Make `Case ID` the third column.",
        NoDataColumns => "Add at least one column of your own data after the three mandatory ones.",
        NoRecords => "Add rows under the header row.",
        TooManyRecords => {
            "Split the file (the message states the limit, `GET /v1/limits` shows it), or send it as an import job (`POST /v1/imports`), which has no such limit."
        }
        TooManyColumns => {
            "Remove columns down to the limit the message states, or send the data as JSON, which has no column limit."
        }
        CellTooLong => {
            "Shorten the cell to the limit the message states, or send the data as JSON, which has no cell limit."
        }
        UnterminatedQuote => {
            "Close the quote opened on the line `row` names (a cell holding a `\"` must double it: `\"\"`)."
        }
        ShortRow => {
            "Give the row a cell for every header (empty cells are fine: keep the delimiters)."
        }
        DuplicateHeader => {
            "Rename one of the two columns that share a name (headers match case-insensitively)."
        }
        EmptyHeader => "Give every column a header, or delete the empty column.",
        FileTooLarge => {
            "Split the file below the limit the message states, or send it as an import job."
        }
        EmptyFile => "Upload a file with a header row and data.",
        NotCsv => {
            "Save the file as CSV (UTF-8). A workbook (XLSX, XLS) goes to `POST /v1/imports` instead."
        }
        UnsupportedEncoding => {
            "Save the file as CSV UTF-8, or name its encoding in the `charset` form field (`windows-1252`, `utf-16le`, …)."
        }
        ExtraCells => {
            "Nothing to do if the extra cells were empty; otherwise add headers for them."
        }
        IgnoredColumn => "Nothing to do: every column is kept now.",
        EmptyRowsSkipped => {
            "Nothing to do: rows with no value are skipped. Delete them from the spreadsheet to silence the warning."
        }
        UnknownCharset => {
            "Name the encoding by a WHATWG label (`utf-8`, `windows-1252`, `latin1`, `utf-16le`, `shift_jis`, …), or leave `charset` out."
        }
        MultipleFiles => "Send one `file` part per upload.",
        GroupNotFound => "Use the id of an existing group (`GET /v1/admin/groups`).",
        TeamNotFound => "Use the id of an existing team (`GET /v1/admin/teams`).",
        StaffNotFound => "Use the Staff ID of an existing staff member (`GET /v1/admin/staff`).",
        CategoryNotFound => "Use the id of an existing category (`GET /v1/admin/categories`).",
        CampaignNotFound => {
            "Use the id of a campaign of your integration's groups (`GET /v1/campaigns`)."
        }
        IntegrationNotFound => {
            "Use the id of an existing integration (`GET /v1/admin/integrations`)."
        }
        TokenNotFound => {
            "Use the `jti` of one of this integration's tokens (`GET /v1/admin/integrations/{id}/tokens`)."
        }
        CaseNotFound => "Use the id of a case your integration can see (`GET /v1/cases`).",
        ListNotFound => "Use the id of a list your integration can see (`GET /v1/lists`).",
        ImportNotFound => {
            "Use the id of one of your integration's import jobs (`GET /v1/imports`)."
        }
        ImportStateConflict => {
            "Read the job (`GET /v1/imports/{id}`): only a job awaiting confirmation, and not expired, can be confirmed; a finished job cannot be cancelled. Upload the file again for a new job."
        }
        DuplicateStaffId => {
            "Use another Staff ID, or update the existing staff member (`PATCH /v1/admin/staff/{staff_id}`)."
        }
        DuplicateName => "Use another name, or update the existing resource.",
        ResourceInUse => "Delete or move what still refers to it first (the message says what).",
        ServiceUnavailable => {
            "Retry after `Retry-After` seconds; nothing of the request was written."
        }
        ServerBusy => {
            "Retry the bulk request after `Retry-After` seconds; small requests are still served meanwhile."
        }
        BodyTimeout => {
            "Send the body without long pauses; retry the request (with the same `Idempotency-Key`)."
        }
        RateLimited => {
            "Wait `Retry-After` seconds. The `RateLimit` headers of every answer say how much is left; `GET /v1/limits` shows the rate in force."
        }
        InternalError => "Retry later; if it persists, report the `request_id` to the operators.",
        InvalidIdempotencyKey => "Use 1 to 255 visible ASCII characters (a UUID is a good key).",
        IdempotencyKeyReused => {
            "Use a new key for a new request; a key belongs to one request (method, path, query and body)."
        }
        IdempotencyKeyInUse => {
            "Wait `Retry-After` seconds and retry: the first request with this key is still running."
        }
    }
}

/// The HTTP status, as `200 OK` for a warning and `422 Unprocessable Entity`.
fn status_line(code: ErrorCode) -> String {
    let status = code.status();
    format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or_default()
    )
}

/// A code's description as one paragraph.
fn description(code: ErrorCode) -> String {
    code.description()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

const INTRO: &str = "Every error answers `application/problem+json` (RFC 9457) with a stable `code`, \
its `title`, a `detail` written for the case at hand, and the `request_id` that is also in the \
`X-Request-Id` header. Its `type` is the address of the code's entry below. A request with several \
problems (a body's fields, a file's rows) lists each in `errors`, with its own code and where it is \
(`field`, `row`, `column`). Codes never change meaning and are never reused; a status of 200 marks \
a warning or a skip reason, answered inside a successful request.";

/// The reference as Markdown (`docs/errors.md`).
pub fn markdown() -> String {
    let mut out = String::from("# Error codes\n\n");
    out.push_str(
        "<!-- Generated from src/error.rs and src/error_docs.rs: `INTAKE_BLESS=1 cargo test error_docs` rewrites it. -->\n\n",
    );
    out.push_str(INTRO);
    out.push_str(&format!(
        "\n\nThe server serves this page at `{ERRORS_PAGE}`.\n\n| code | status | title |\n|---|---|---|\n"
    ));
    for code in ErrorCode::ALL {
        out.push_str(&format!(
            "| [`{code}`](#{code}) | {} | {} |\n",
            code.status().as_u16(),
            code.title()
        ));
    }
    for code in ErrorCode::ALL {
        out.push_str(&format!(
            "\n## {code}\n\n**{}** — {}\n\n{}\n\n**What to do:** {}\n",
            status_line(*code),
            code.title(),
            description(*code),
            remedy(*code)
        ));
    }
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Inline Markdown of the texts above (only `` `code` ``) as HTML.
fn inline(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in escape(text).split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str("<code>");
            out.push_str(part);
            out.push_str("</code>");
        } else {
            out.push_str(part);
        }
    }
    out
}

/// `GET /docs/errors`: the reference, for people (each problem's `type`
/// links to its anchor).
pub async fn errors_page() -> actix_web::HttpResponse {
    static PAGE: std::sync::LazyLock<String> = std::sync::LazyLock::new(html);
    actix_web::HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("cache-control", "public, max-age=3600"))
        .body(PAGE.as_str())
}

/// The reference as a self-contained HTML page (`GET /docs/errors`).
pub fn html() -> String {
    let mut out = String::from(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>intake — error codes</title><style>\
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#222}\
code{background:#f3f3f3;padding:0 .2em;border-radius:3px}section{border-top:1px solid #ddd;padding:.5rem 0}\
section:target{background:#fffbe6}h2{font-family:monospace;font-size:1.1rem;margin:.5rem 0}\
table{border-collapse:collapse}td,th{padding:.1rem .6rem;text-align:left;border-bottom:1px solid #eee}\
</style></head><body>\n<h1>Error codes</h1>\n",
    );
    out.push_str(&format!(
        "<p>{}</p>\n<p>The API: <a href=\"/docs/\">Swagger UI</a>, <a href=\"/openapi.json\">OpenAPI document</a>.</p>\n<table><tr><th>code</th><th>status</th><th>title</th></tr>\n",
        inline(INTRO)
    ));
    for code in ErrorCode::ALL {
        out.push_str(&format!(
            "<tr><td><a href=\"#{code}\"><code>{code}</code></a></td><td>{}</td><td>{}</td></tr>\n",
            code.status().as_u16(),
            escape(code.title())
        ));
    }
    out.push_str("</table>\n");
    for code in ErrorCode::ALL {
        out.push_str(&format!(
            "<section id=\"{code}\"><h2>{code}</h2><p><strong>{}</strong> — {}</p><p>{}</p><p><strong>What to do:</strong> {}</p></section>\n",
            status_line(*code),
            escape(code.title()),
            inline(&description(*code)),
            inline(remedy(*code))
        ));
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `docs/errors.md` is what the code says; `INTAKE_BLESS=1` rewrites it.
    #[test]
    fn error_docs_markdown_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/errors.md");
        let generated = markdown();
        if std::env::var_os("INTAKE_BLESS").is_some() {
            std::fs::write(path, &generated).expect("write docs/errors.md");
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/errors.md is not what the code says; run: INTAKE_BLESS=1 cargo test error_docs"
        );
    }

    #[test]
    fn every_code_has_a_description_and_an_anchor() {
        let page = html();
        for code in ErrorCode::ALL {
            assert!(!description(*code).is_empty(), "{code} has no description");
            assert!(
                page.contains(&format!("<section id=\"{code}\">")),
                "{code} has no anchor"
            );
        }
    }
}
