//! The executor's channel to the scheduler, counting its `PollWork` calls.
//!
//! Under pull scheduling an executor reports finished tasks only inside its next
//! `PollWork` call. To leave the cluster without losing a report, a draining executor waits
//! until a poll that *started* after its last task ended has been answered; [`PollCounter`]
//! tells it when.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::Notify;
use tonic::body::Body;
use tonic::codegen::Service;
use tonic::codegen::http::{Request, Response};
use tonic::transport::Channel;

/// Longest pause before a `PollWork` call after failed ones (the scheduler is down).
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Sequence numbers of the `PollWork` calls made and answered.
#[derive(Debug, Default)]
pub struct PollCounter {
    started: AtomicU64,
    answered: AtomicU64,
    /// `PollWork` calls failed in a row.
    failures: AtomicU64,
    changed: Notify,
}

impl PollCounter {
    /// The sequence number of the last poll started.
    pub fn started(&self) -> u64 {
        self.started.load(Ordering::Acquire)
    }

    /// Waits until a poll numbered above `seq` (one started after `seq` was read) has been
    /// answered by the scheduler.
    pub async fn answered_after(&self, seq: u64) {
        loop {
            let changed = self.changed.notified();
            if self.answered.load(Ordering::Acquire) > seq {
                return;
            }
            changed.await;
        }
    }

    fn answer(&self, seq: u64) {
        self.failures.store(0, Ordering::Release);
        self.answered.fetch_max(seq, Ordering::AcqRel);
        self.changed.notify_waiters();
    }

    /// The pause before the next poll: none while polls succeed, then doubling from 50 ms
    /// up to [`MAX_BACKOFF`]. (Ballista's poll loop retries every 50 ms, and logs each
    /// failure, while the scheduler is unreachable.)
    fn backoff(&self) -> Duration {
        match self.failures.load(Ordering::Acquire) {
            0 => Duration::ZERO,
            n => Duration::from_millis(50 << n.min(6)).min(MAX_BACKOFF),
        }
    }
}

/// A gRPC channel that counts the `PollWork` calls going through it.
#[derive(Debug, Clone)]
pub struct CountingChannel {
    inner: Channel,
    polls: Arc<PollCounter>,
}

impl CountingChannel {
    /// Wraps `inner`, counting into `polls`.
    pub fn new(inner: Channel, polls: Arc<PollCounter>) -> Self {
        Self { inner, polls }
    }
}

/// A `PollWork` answer counts when the scheduler ran the call: an OK HTTP answer whose gRPC
/// status (in the headers, for an answer without a body) is absent or 0.
fn poll_succeeded(response: &Response<Body>) -> bool {
    response.status().is_success()
        && response
            .headers()
            .get("grpc-status")
            .is_none_or(|s| s.as_bytes() == b"0")
}

impl Service<Request<Body>> for CountingChannel {
    type Response = Response<Body>;
    type Error = tonic::transport::Error;
    type Future =
        Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Service::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let is_poll = request.uri().path().ends_with("/PollWork");
        let pause = if is_poll {
            self.polls.backoff()
        } else {
            Duration::ZERO
        };
        if pause.is_zero() {
            let seq = is_poll.then(|| self.polls.started.fetch_add(1, Ordering::AcqRel) + 1);
            let call = Service::call(&mut self.inner, request);
            return Box::pin(finish(call, seq, self.polls.clone()));
        }
        // After failed polls: wait, then call on a fresh handle of the channel (the one
        // made ready by `poll_ready` must not hold a request back).
        let polls = self.polls.clone();
        let mut inner = self.inner.clone();
        Box::pin(async move {
            tokio::time::sleep(pause).await;
            std::future::poll_fn(|cx| Service::poll_ready(&mut inner, cx)).await?;
            let seq = Some(polls.started.fetch_add(1, Ordering::AcqRel) + 1);
            let call = Service::call(&mut inner, request);
            finish(call, seq, polls).await
        })
    }
}

/// Awaits a call and records the poll `seq` as answered or failed.
async fn finish<F>(
    call: F,
    seq: Option<u64>,
    polls: Arc<PollCounter>,
) -> Result<Response<Body>, tonic::transport::Error>
where
    F: Future<Output = Result<Response<Body>, tonic::transport::Error>>,
{
    let response = call.await;
    if let Some(seq) = seq {
        match &response {
            Ok(answer) if poll_succeeded(answer) => polls.answer(seq),
            _ => {
                polls.failures.fetch_add(1, Ordering::AcqRel);
            }
        }
    }
    response
}
