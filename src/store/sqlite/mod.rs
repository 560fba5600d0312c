//! The SQLite side of the store: the arms of the bulk writers (the façades
//! in `store::cases` and `store::customers` dispatch here), by prepared
//! multi-row statements.
//!
//! - `cases`: the case writer (multi-row `INSERT`s, one `UPDATE` a row);
//! - `customers`: the customers' upsert (multi-row `INSERT … ON CONFLICT`).

mod cases;
pub(super) mod customers;
