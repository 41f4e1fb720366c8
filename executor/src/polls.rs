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

use tokio::sync::Notify;
use tonic::body::Body;
use tonic::codegen::Service;
use tonic::codegen::http::{Request, Response};
use tonic::transport::Channel;

/// Sequence numbers of the `PollWork` calls made and answered.
#[derive(Debug, Default)]
pub struct PollCounter {
    started: AtomicU64,
    answered: AtomicU64,
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
        self.answered.fetch_max(seq, Ordering::AcqRel);
        self.changed.notify_waiters();
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
        let seq = request
            .uri()
            .path()
            .ends_with("/PollWork")
            .then(|| self.polls.started.fetch_add(1, Ordering::AcqRel) + 1);
        let polls = self.polls.clone();
        let call = Service::call(&mut self.inner, request);
        Box::pin(async move {
            let response = call.await;
            if let (Some(seq), Ok(answer)) = (seq, &response)
                && poll_succeeded(answer)
            {
                polls.answer(seq);
            }
            response
        })
    }
}
