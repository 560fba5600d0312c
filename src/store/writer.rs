//! The writers' transaction, on either backend: shared by the case and the
//! customer writers, whose backend arms (`postgres`, `sqlite`) each take
//! their own variant.

use super::{Pool, Store, StoreError};

/// The open transaction of a bulk writer, on either backend.
pub(super) enum WriterTx {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

/// A transaction of the writers' pool, for a writer. On SQLite it takes
/// the database's write lock at once (`BEGIN IMMEDIATE`): a deferred
/// transaction that read first could not take it later without failing.
pub(super) async fn begin(store: &Store) -> Result<WriterTx, StoreError> {
    Ok(match &store.writes {
        Pool::Postgres(pool) => WriterTx::Postgres(pool.begin().await?),
        Pool::Sqlite(pool) => WriterTx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
    })
}

pub(super) async fn commit(tx: WriterTx) -> Result<(), StoreError> {
    match tx {
        WriterTx::Postgres(tx) => tx.commit().await?,
        WriterTx::Sqlite(tx) => tx.commit().await?,
    }
    Ok(())
}
