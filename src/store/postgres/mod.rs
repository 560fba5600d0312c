//! The PostgreSQL side of the store: the arms of the bulk writers (the
//! façades in `store::cases` and `store::customers` dispatch here) and the
//! connections' socket option.
//!
//! - `copy`: the `COPY … FROM STDIN` encoders (binary case rows, text rows);
//! - `cases`: the case writer (a COPY kept open across batches, updates
//!   through a staging table);
//! - `customers`: the customers' upsert (COPY into a staging table, one
//!   `INSERT … SELECT … ON CONFLICT`);
//! - `nodelay`: `TCP_NODELAY` on the pools' sockets.

mod cases;
mod copy;
pub(super) mod customers;
pub(super) mod nodelay;
