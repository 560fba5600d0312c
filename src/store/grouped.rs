//! Group commit for small case requests.
//!
//! Client systems that push cases as they happen send many requests of one
//! case (or a few) at once. Written one transaction each, every request
//! pays a round trip, a statement, the reference trigger and a commit (a
//! WAL flush) of its own, and the database's CPU, not the server's, sets
//! the rate. Here the requests that arrive while earlier ones are being
//! written wait for the next free flusher, which writes all of them (up to
//! [`MOST_ROWS`] rows) in one multi-row `INSERT`, one transaction:
//! - under light load a request finds a flusher free and is written at once,
//!   alone (on PostgreSQL by the one-case statement that checks its own
//!   references), so grouping adds no wait;
//! - under load the groups grow with the load, the database does one
//!   commit per group, and each request's latency is at most about two
//!   group writes;
//! - a group is one statement, so all-or-nothing: if the database refuses
//!   it (a Case ID another request wrote meanwhile, a staff member deleted
//!   meanwhile, a deadlock), each request of the group is written again
//!   alone and gets its own answer, exactly as without grouping. A request
//!   is answered only once its rows are committed.
//!
//! At most [`GroupedInserts::flushers`] groups are written at once (half of
//! the writers' pool, at least one: the other half stays for bulk
//! writers); a flusher is a spawned task, so a client that goes away does
//! not stop the group its request is in.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::oneshot;

use super::cases::{CaseRow, bind_case_rows, insert_cases_sql};
use super::{Pool, Store, StoreError, now};
use crate::ids::{IntegrationId, ListId};

/// Most rows one group writes: 15 parameters a row stays well under
/// PostgreSQL's 65,535 and SQLite's 32,766 bound parameters.
pub(super) const MOST_ROWS: usize = 1_000;

/// A request waiting for its group.
struct Pending {
    integration_id: IntegrationId,
    rows: Vec<CaseRow>,
    answer: oneshot::Sender<Result<(), StoreError>>,
}

/// The queue of small case requests and its flushers (see the module).
pub struct GroupedInserts {
    state: Mutex<Queue>,
    flushers: usize,
    groups: AtomicU64,
    requests: AtomicU64,
    refused: AtomicU64,
}

/// What the grouped inserts have written since the server started (for
/// `/metrics`): `requests / groups` is the mean group size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupedWrites {
    /// Groups written (a request alone is a group of one).
    pub groups: u64,
    /// Requests in them.
    pub requests: u64,
    /// Groups of more than one request that the database refused, whose
    /// requests were then written one by one.
    pub refused: u64,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Pending>,
    /// Flushers running: each takes the whole queue (up to [`MOST_ROWS`])
    /// when it is free, and ends when it finds the queue empty.
    flushing: usize,
}

impl std::fmt::Debug for GroupedInserts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupedInserts")
            .field("flushers", &self.flushers)
            .finish_non_exhaustive()
    }
}

impl GroupedInserts {
    /// For a writers' pool of `writers` connections: half of them (at
    /// least one) write groups at once.
    pub fn for_writers(writers: u32) -> Self {
        GroupedInserts {
            state: Mutex::new(Queue::default()),
            flushers: (writers as usize).div_ceil(2).max(1),
            groups: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// At most this many groups are written at once.
    pub fn flushers(&self) -> usize {
        self.flushers
    }

    /// What was written so far.
    pub fn written(&self) -> GroupedWrites {
        GroupedWrites {
            groups: self.groups.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        // Only pushes and pops happen under the lock: a panic cannot leave
        // the queue half-changed.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Queue {
    /// The next group: the oldest requests, up to [`MOST_ROWS`] rows (at
    /// least one request).
    fn next_group(&mut self) -> Vec<Pending> {
        let mut group = Vec::new();
        let mut rows = 0;
        while let Some(next) = self.waiting.front() {
            if !group.is_empty() && rows + next.rows.len() > MOST_ROWS {
                break;
            }
            rows += next.rows.len();
            group.extend(self.waiting.pop_front());
        }
        group
    }
}

/// A flusher's place. A flusher gives it back itself, under the lock that
/// a request takes to queue itself, when it finds the queue empty (so no
/// request is left waiting with no flusher). If its task ends otherwise (a
/// panic), the place is given back here, and a new flusher takes over
/// what is waiting.
struct Flushing(Option<Store>);

impl Drop for Flushing {
    fn drop(&mut self) {
        let Some(store) = self.0.take() else { return };
        let group = {
            let mut queue = store.grouped.queue();
            if queue.waiting.is_empty() {
                queue.flushing -= 1;
                None
            } else {
                Some(queue.next_group())
            }
        };
        if let Some(group) = group {
            tokio::spawn(store.flush(group));
        }
    }
}

impl Store {
    /// The grouped inserts of small case requests.
    pub fn grouped_inserts(&self) -> &GroupedInserts {
        &self.grouped
    }

    /// Writes new cases of one request, with no list, grouped with the
    /// other small requests of the moment (see the module): returns once
    /// they are committed, or with the error that writing them alone gives.
    pub async fn insert_cases_grouped(
        &self,
        integration_id: IntegrationId,
        rows: Vec<CaseRow>,
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let (answer, answered) = oneshot::channel();
        let start = {
            let mut queue = self.grouped.queue();
            queue.waiting.push_back(Pending {
                integration_id,
                rows,
                answer,
            });
            (queue.flushing < self.grouped.flushers).then(|| {
                queue.flushing += 1;
                queue.next_group()
            })
        };
        if let Some(group) = start {
            tokio::spawn(self.clone().flush(group));
        }
        answered.await.unwrap_or_else(|_| {
            Err(StoreError::Other(anyhow::anyhow!(
                "the grouped case insert stopped before it answered"
            )))
        })
    }

    /// A flusher: writes `group`, then the groups that gathered meanwhile,
    /// until the queue is empty.
    async fn flush(self, mut group: Vec<Pending>) {
        let mut place = Flushing(Some(self.clone()));
        loop {
            self.write_group(group).await;
            let mut queue = self.grouped.queue();
            if queue.waiting.is_empty() {
                queue.flushing -= 1;
                place.0 = None;
                return;
            }
            group = queue.next_group();
        }
    }

    #[tracing::instrument(name = "insert_case_group", skip_all, fields(requests = group.len()))]
    async fn write_group(&self, mut group: Vec<Pending>) {
        let counts = &self.grouped;
        counts.groups.fetch_add(1, Ordering::Relaxed);
        counts
            .requests
            .fetch_add(group.len() as u64, Ordering::Relaxed);
        if group.len() == 1 {
            let Some(one) = group.pop() else { return };
            let result = self.insert_cases(one.integration_id, &one.rows).await;
            let _ = one.answer.send(result);
            return;
        }
        let rows: Vec<(&CaseRow, IntegrationId)> = group
            .iter()
            .flat_map(|p| p.rows.iter().map(|row| (row, p.integration_id)))
            .collect();
        match self.insert_case_group(&rows).await {
            Ok(()) => {
                for pending in group {
                    let _ = pending.answer.send(Ok(()));
                }
            }
            // The database is out of reach: every request of the group
            // would wait as long again to learn the same.
            Err(StoreError::Unavailable(e)) => {
                let timed_out = matches!(e, sqlx::Error::PoolTimedOut);
                for pending in group {
                    let again = if timed_out {
                        sqlx::Error::PoolTimedOut
                    } else {
                        sqlx::Error::Protocol(e.to_string())
                    };
                    let _ = pending.answer.send(Err(StoreError::Unavailable(again)));
                }
            }
            // One request's rows were refused: each alone, for its own
            // answer (the others are written).
            Err(e) => {
                counts.refused.fetch_add(1, Ordering::Relaxed);
                // The kind only: a database's message may quote a row.
                let kind = match e {
                    StoreError::Duplicate(_) => "duplicate",
                    StoreError::Reference(_) => "reference",
                    StoreError::Contended(_) => "contended",
                    _ => "other",
                };
                tracing::debug!(
                    refusal = kind,
                    "a group of case requests was refused; each is written alone"
                );
                for pending in group {
                    let result = self
                        .insert_cases(pending.integration_id, &pending.rows)
                        .await;
                    let _ = pending.answer.send(result);
                }
            }
        }
    }

    /// One multi-row `INSERT` of the rows of several requests, in its own
    /// transaction (the reference trigger checks them all at once).
    async fn insert_case_group(
        &self,
        rows: &[(&CaseRow, IntegrationId)],
    ) -> Result<(), StoreError> {
        let at = now();
        let sql = insert_cases_sql(matches!(self.writes, Pool::Postgres(_)), rows.len());
        let query = || sqlx::AssertSqlSafe(sql.as_str());
        let rows = rows.iter().copied();
        match &self.writes {
            Pool::Postgres(pool) => {
                bind_case_rows!(sqlx::query(query()), rows, None::<ListId>, at)
                    .execute(pool)
                    .await?;
            }
            Pool::Sqlite(pool) => {
                bind_case_rows!(sqlx::query(query()), rows, None::<ListId>, at)
                    .execute(pool)
                    .await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{CaseId, GroupId};

    fn request(rows: usize) -> Pending {
        let row = CaseRow {
            id: CaseId::new(),
            external_id: "C-1".into(),
            staff_id: "S-1".into(),
            external_staff_id: None,
            group_id: GroupId::new(),
            channel: None,
            status: "open",
            priority: None,
            category: None,
            occurred_at: None,
            data: "{}".into(),
        };
        Pending {
            integration_id: IntegrationId::new(),
            rows: vec![row; rows],
            answer: oneshot::channel().0,
        }
    }

    #[test]
    fn a_group_takes_the_oldest_requests_up_to_the_most_rows_and_at_least_one() {
        let mut queue = Queue::default();
        queue.waiting.extend((0..25).map(|_| request(100)));
        let sizes: Vec<usize> = std::iter::from_fn(|| {
            let group = queue.next_group();
            (!group.is_empty()).then(|| group.iter().map(|p| p.rows.len()).sum())
        })
        .collect();
        assert_eq!(sizes, vec![MOST_ROWS, MOST_ROWS, 500]);

        // A request over the limit on its own still goes (alone).
        queue
            .waiting
            .extend([request(3), request(MOST_ROWS + 1), request(1)]);
        let counts: Vec<usize> = std::iter::from_fn(|| {
            let group = queue.next_group();
            (!group.is_empty()).then_some(group.len())
        })
        .collect();
        assert_eq!(counts, vec![1, 1, 1]);
    }
}
