//! PostgreSQL `COPY … FROM STDIN` encoders: binary tuples of case rows
//! ([`CopyRows`]), and text rows (`copy_row`, `copy_time`) for the
//! customers' staging table.

use chrono::{DateTime, Utc};

use crate::ids::{IntegrationId, ListId};
use crate::store::StoreError;
use crate::store::cases::{COPY_COLUMNS, CaseRow};

/// Bytes buffered before a COPY chunk is sent.
pub(super) const COPY_CHUNK_BYTES: usize = 1 << 20;

/// An open `COPY … FROM STDIN (FORMAT binary)` of case rows: values go as
/// PostgreSQL's binary forms (16-byte uuids, microsecond timestamps, text
/// unescaped), so neither side formats or parses them as text.
pub(super) struct CopyRows<'c> {
    copy: sqlx::postgres::PgCopyIn<&'c mut sqlx::PgConnection>,
    integration: IntegrationId,
    list: Option<ListId>,
    at: i64,
    buffer: Vec<u8>,
}

impl<'c> CopyRows<'c> {
    pub(super) async fn open(
        tx: &'c mut sqlx::Transaction<'static, sqlx::Postgres>,
        table: &str,
        integration_id: IntegrationId,
        list_id: Option<ListId>,
        at: DateTime<Utc>,
    ) -> Result<Self, StoreError> {
        let statement = format!(
            "COPY {table} (id, external_id, staff_id, external_staff_id, list_id, integration_id, group_id, channel, \
             status, priority, category, occurred_at, data, created_at, updated_at) FROM STDIN (FORMAT binary)"
        );
        let mut buffer = Vec::with_capacity(COPY_CHUNK_BYTES + 64 * 1024);
        // Signature, flags, no header extension.
        buffer.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        buffer.extend_from_slice(&0i32.to_be_bytes());
        buffer.extend_from_slice(&0i32.to_be_bytes());
        Ok(Self {
            copy: tx.copy_in_raw(&statement).await?,
            integration: integration_id,
            list: list_id,
            at: pg_micros(at),
            buffer,
        })
    }

    /// Sends `rows` (in chunks of about [`COPY_CHUNK_BYTES`]).
    pub(super) async fn send(&mut self, rows: &[CaseRow]) -> Result<(), StoreError> {
        for row in rows {
            let out = &mut self.buffer;
            out.extend_from_slice(&COPY_COLUMNS.to_be_bytes());
            binary_field(out, Some(row.id.as_uuid().as_bytes()));
            binary_field(out, Some(row.external_id.as_bytes()));
            binary_field(out, Some(row.staff_id.as_bytes()));
            binary_field(out, row.external_staff_id.as_deref().map(str::as_bytes));
            binary_field(
                out,
                self.list
                    .as_ref()
                    .map(|l| l.as_uuid().as_bytes().as_slice()),
            );
            binary_field(out, Some(self.integration.as_uuid().as_bytes()));
            binary_field(out, Some(row.group_id.as_uuid().as_bytes()));
            binary_field(out, row.channel.map(str::as_bytes));
            binary_field(out, Some(row.status.as_bytes()));
            binary_field(out, row.priority.map(str::as_bytes));
            binary_field(out, row.category.as_deref().map(str::as_bytes));
            let occurred = row.occurred_at.map(|t| pg_micros(t).to_be_bytes());
            binary_field(out, occurred.as_ref().map(|t| t.as_slice()));
            // `json`'s binary form is its text.
            binary_field(out, Some(row.data.as_bytes()));
            binary_field(out, Some(&self.at.to_be_bytes()));
            binary_field(out, Some(&self.at.to_be_bytes()));
            if self.buffer.len() >= COPY_CHUNK_BYTES {
                self.flush().await?;
            }
        }
        // The batch goes out now, not with the next one.
        self.flush().await
    }

    async fn flush(&mut self) -> Result<(), StoreError> {
        if !self.buffer.is_empty() {
            // sqlx copies the bytes into its own buffer: ours is reused
            // (a fresh megabyte each time was paid for in page faults).
            self.copy.send(self.buffer.as_slice()).await?;
            self.buffer.clear();
        }
        Ok(())
    }

    pub(super) async fn finish(mut self) -> Result<(), StoreError> {
        // The trailer: a tuple of -1 fields.
        self.buffer.extend_from_slice(&(-1i16).to_be_bytes());
        self.flush().await?;
        self.copy.finish().await?;
        Ok(())
    }
}

/// One field of a binary COPY tuple: its length and bytes, or -1 for NULL.
fn binary_field(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        Some(bytes) => {
            // Every value is far under 2 GiB (the body limit caps a case).
            let len = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(bytes);
        }
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
    }
}

/// A timestamp as PostgreSQL's binary form: microseconds since 2000-01-01 UTC.
fn pg_micros(t: DateTime<Utc>) -> i64 {
    const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
    t.timestamp_micros() - PG_EPOCH_MICROS
}

/// A timestamp as COPY text (RFC 3339, UTC, microseconds) in `buffer`,
/// without chrono's strftime, which parses its format on every call.
pub(super) fn copy_time(t: DateTime<Utc>, buffer: &mut String) -> &str {
    use chrono::{Datelike, Timelike};
    use std::fmt::Write;
    buffer.clear();
    let _ = write!(
        buffer,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond() / 1_000
    );
    buffer
}

/// Appends one COPY text row (tab-separated, escaped, `\\N` for NULL).
pub(super) fn copy_row(buffer: &mut Vec<u8>, fields: &[Option<&str>]) {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            buffer.push(b'\t');
        }
        copy_field(buffer, *field);
    }
    buffer.push(b'\n');
}

/// Appends `value` to a COPY text row, escaped (`\N` for NULL).
fn copy_field(out: &mut Vec<u8>, value: Option<&str>) {
    let Some(text) = value else {
        out.extend_from_slice(b"\\N");
        return;
    };
    let bytes = text.as_bytes();
    // Most fields need no escape: one pass the compiler vectorizes decides.
    let special = |b: &u8| matches!(b, b'\\' | b'\t' | b'\n' | b'\r');
    if !bytes.iter().fold(false, |found, b| found | special(b)) {
        out.extend_from_slice(bytes);
        return;
    }
    let mut plain = 0;
    for (i, byte) in bytes.iter().enumerate() {
        let escaped: &[u8] = match byte {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            _ => continue,
        };
        out.extend_from_slice(&bytes[plain..i]);
        out.extend_from_slice(escaped);
        plain = i + 1;
    }
    out.extend_from_slice(&bytes[plain..]);
}

#[cfg(test)]
mod tests {
    use super::copy_field;

    #[test]
    fn copy_times_are_rfc_3339_with_microseconds() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-03-09T07:05:03.123456+02:00")
            .expect("time")
            .with_timezone(&chrono::Utc);
        let mut buffer = String::new();
        assert_eq!(
            super::copy_time(t, &mut buffer),
            "2026-03-09T05:05:03.123456Z"
        );
    }

    #[test]
    fn binary_copy_values_are_postgres_binary_forms() {
        let epoch = chrono::DateTime::parse_from_rfc3339("2000-01-01T00:00:00Z")
            .expect("time")
            .with_timezone(&chrono::Utc);
        assert_eq!(super::pg_micros(epoch), 0);
        let later = chrono::DateTime::parse_from_rfc3339("2000-01-01T00:00:01.000002Z")
            .expect("time")
            .with_timezone(&chrono::Utc);
        assert_eq!(super::pg_micros(later), 1_000_002);
        let mut out = Vec::new();
        super::binary_field(&mut out, Some(b"ab"));
        super::binary_field(&mut out, None);
        assert_eq!(out, [0, 0, 0, 2, b'a', b'b', 0xff, 0xff, 0xff, 0xff]);
    }

    #[test]
    fn copy_text_escapes_what_would_break_a_row() {
        let mut out = Vec::new();
        copy_field(&mut out, Some("a\tb\nc\\d\re"));
        assert_eq!(out, b"a\\tb\\nc\\\\d\\re");
        out.clear();
        copy_field(&mut out, None);
        assert_eq!(out, b"\\N");
    }
}
