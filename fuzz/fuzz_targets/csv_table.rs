//! The CSV reader (encodings, delimiters, quotes, limits) on any bytes:
//! it must answer a table or its problems, never panic, hang or blow up.
#![no_main]

use intake::ingest::csv::read_table;
use intake::store::models::CsvLimits;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = read_table(data, &CsvLimits::default());
    let wide = CsvLimits {
        max_records: 1_000_000,
        max_columns: 10_000,
        max_cell_chars: 1_000_000,
    };
    let _ = read_table(data, &wide);
});
