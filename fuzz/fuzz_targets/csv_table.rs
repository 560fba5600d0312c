//! The CSV reader (encodings, delimiters, quotes, limits) on any bytes:
//! it must answer a table or its problems, never panic, hang or blow up.
#![no_main]

use intake::ingest::csv::{charset, read_table};
use intake::store::models::CsvLimits;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Sniffed or detected, then as an uploader's `charset` names it.
    let _ = read_table(data, &CsvLimits::default(), None, "cases");
    let _ = read_table(
        data,
        &CsvLimits::default(),
        charset("shift_jis").ok(),
        "cases",
    );
    let wide = CsvLimits {
        max_records: 1_000_000,
        max_columns: 10_000,
        max_cell_chars: 1_000_000,
    };
    let _ = read_table(data, &wide, None, "customers");
});
