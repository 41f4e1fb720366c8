//! Statements planned by `GetFlightInfo`, kept for the `DoGet` that follows.
//!
//! A Flight SQL client runs a statement in two calls: `GetFlightInfo` (the service plans it
//! to answer with its schema and a ticket) and `DoGet` with that ticket. Planning once
//! instead of twice halves what a small query costs the scheduler: the plan made for
//! `GetFlightInfo` is kept here under a random handle the ticket carries, and the `DoGet`
//! takes it. The ticket also carries the SQL, so a ticket whose plan is gone (taken already,
//! expired, evicted, or from before a restart) is planned again from its text.
//!
//! A kept plan reads the table versions current when it was planned: the query answers
//! from one committed version either way, just the one of a few milliseconds earlier.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use datafusion::prelude::DataFrame;

/// First byte of a ticket that carries a plan handle (SQL text never starts with it).
const MARKER: u8 = 0x01;
/// Length of a handle: a UUID's bytes.
const HANDLE_LEN: usize = 16;

/// A statement planned for `GetFlightInfo`: its plan, the query id its session was made
/// for, who asked, and when.
struct Planned {
    df: DataFrame,
    query_id: String,
    user: String,
    at: Instant,
}

/// What a `DoGet` ticket says.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Ticket<'a> {
    /// The plan kept for it, if the ticket names one.
    pub handle: Option<[u8; HANDLE_LEN]>,
    /// The statement's SQL.
    pub sql: &'a [u8],
}

/// Encodes a ticket for `sql` whose plan is kept under `handle`.
pub(crate) fn encode_ticket(handle: [u8; HANDLE_LEN], sql: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + HANDLE_LEN + sql.len());
    out.push(MARKER);
    out.extend_from_slice(&handle);
    out.extend_from_slice(sql.as_bytes());
    out
}

/// Reads a ticket: a plan handle and the SQL, or (any other bytes) the SQL alone.
pub(crate) fn decode_ticket(bytes: &[u8]) -> Ticket<'_> {
    if bytes.len() > HANDLE_LEN && bytes[0] == MARKER {
        let mut handle = [0u8; HANDLE_LEN];
        handle.copy_from_slice(&bytes[1..=HANDLE_LEN]);
        return Ticket {
            handle: Some(handle),
            sql: &bytes[1 + HANDLE_LEN..],
        };
    }
    Ticket {
        handle: None,
        sql: bytes,
    }
}

/// Plans waiting for their `DoGet`: at most `max`, each at most `ttl` old.
pub(crate) struct PlannedStatements {
    max: usize,
    ttl: Duration,
    plans: Mutex<HashMap<[u8; HANDLE_LEN], Planned>>,
}

impl PlannedStatements {
    /// An empty store keeping at most `max` plans, each for at most `ttl`.
    pub(crate) fn new(max: usize, ttl: Duration) -> Self {
        Self {
            max,
            ttl,
            plans: Mutex::new(HashMap::new()),
        }
    }

    /// Keeps `df` (planned in a session for `query_id`) for `user`'s `DoGet`; returns its
    /// random handle. Expired plans go first, then the oldest if `max` are kept.
    pub(crate) fn keep(&self, df: DataFrame, query_id: String, user: String) -> [u8; 16] {
        // Random bytes (a UUID v7, itself partly random, should the OS refuse them).
        let mut handle = *uuid::Uuid::now_v7().as_bytes();
        let _ = getrandom::fill(&mut handle);
        if self.max == 0 {
            return handle;
        }
        let now = Instant::now();
        let mut plans = crate::lock(&self.plans);
        plans.retain(|_, p| now.duration_since(p.at) < self.ttl);
        if plans.len() >= self.max
            && let Some(oldest) = plans.iter().min_by_key(|(_, p)| p.at).map(|(k, _)| *k)
        {
            plans.remove(&oldest);
        }
        plans.insert(
            handle,
            Planned {
                df,
                query_id,
                user,
                at: now,
            },
        );
        handle
    }

    /// Takes the plan kept under `handle` for `user`: `(plan, query id)`, or `None` when
    /// there is none, it expired, or another user planned it (who then plans afresh).
    pub(crate) fn take(
        &self,
        handle: &[u8; HANDLE_LEN],
        user: &str,
    ) -> Option<(DataFrame, String)> {
        let mut plans = crate::lock(&self.plans);
        let planned = plans.get(handle)?;
        if planned.user != user {
            return None;
        }
        let planned = plans.remove(handle)?;
        (planned.at.elapsed() < self.ttl).then_some((planned.df, planned.query_id))
    }

    /// How many plans are kept now.
    #[cfg(test)]
    fn len(&self) -> usize {
        crate::lock(&self.plans).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    async fn df(sql: &str) -> DataFrame {
        SessionContext::new().sql(sql).await.expect("plans")
    }

    #[test]
    fn tickets_carry_a_handle_and_the_sql_or_the_sql_alone() {
        let handle = [7u8; HANDLE_LEN];
        let bytes = encode_ticket(handle, "SELECT 1");
        assert_eq!(
            decode_ticket(&bytes),
            Ticket {
                handle: Some(handle),
                sql: b"SELECT 1"
            }
        );
        // A plain SQL ticket (as older servers and other clients send) is SQL.
        assert_eq!(
            decode_ticket(b"SELECT 2"),
            Ticket {
                handle: None,
                sql: b"SELECT 2"
            }
        );
        // Too short to hold a handle: the bytes are the SQL (and fail to plan as such).
        assert_eq!(decode_ticket(&[MARKER, 1, 2]).handle, None);
    }

    #[tokio::test]
    async fn a_plan_is_taken_once_by_its_user_within_its_time() {
        let store = PlannedStatements::new(8, Duration::from_secs(60));
        let handle = store.keep(df("SELECT 1").await, "q1".into(), "ann".into());
        // Another user gets nothing (and the plan stays for its owner).
        assert!(store.take(&handle, "bob").is_none());
        let (_, query_id) = store.take(&handle, "ann").expect("kept for ann");
        assert_eq!(query_id, "q1");
        assert!(store.take(&handle, "ann").is_none(), "taken once");

        let expired = PlannedStatements::new(8, Duration::ZERO);
        let handle = expired.keep(df("SELECT 1").await, "q2".into(), "ann".into());
        assert!(expired.take(&handle, "ann").is_none());
    }

    #[tokio::test]
    async fn at_most_max_plans_are_kept_oldest_evicted_first() {
        let store = PlannedStatements::new(2, Duration::from_secs(60));
        let first = store.keep(df("SELECT 1").await, "q1".into(), "u".into());
        let second = store.keep(df("SELECT 2").await, "q2".into(), "u".into());
        let third = store.keep(df("SELECT 3").await, "q3".into(), "u".into());
        assert_eq!(store.len(), 2);
        assert!(store.take(&first, "u").is_none());
        assert_eq!(
            store.take(&second, "u").map(|(_, q)| q).as_deref(),
            Some("q2")
        );
        assert_eq!(
            store.take(&third, "u").map(|(_, q)| q).as_deref(),
            Some("q3")
        );
        let none = PlannedStatements::new(0, Duration::from_secs(60));
        let handle = none.keep(df("SELECT 1").await, "q".into(), "u".into());
        assert!(none.take(&handle, "u").is_none());
    }
}
