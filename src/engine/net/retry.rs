//! The one retry schedule: exponential backoff with jitter, capped, a bounded number of attempts
//! ([`RetryConfig`]), counted by an [`Attempts`] value inside each caller's loop, plus a
//! cancellable sleep. Which failures are retried (idempotent requests, resumable-upload data
//! whose progress is re-queried, ISO ranges) is the caller's decision.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::engine::publish::PublishError;

/// Backoff settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryConfig {
    /// attempts per request, including the first (at least 1)
    pub max_attempts: u32,
    /// the first backoff
    pub initial_backoff: Duration,
    /// the longest backoff
    pub max_backoff: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }
}

impl RetryConfig {
    /// The backoff before attempt `attempt + 1` (attempt counts from 1), with up to 25% jitter.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(16);
        let base = self
            .initial_backoff
            .saturating_mul(1u32 << exp)
            .min(self.max_backoff);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let jitter = base.mul_f64(f64::from(nanos % 250) / 1000.0);
        base + jitter
    }
}

/// Failed attempts of one operation against a [`RetryConfig`].
#[derive(Debug, Clone)]
pub struct Attempts {
    config: RetryConfig,
    failed: u32,
}

impl Attempts {
    /// No failure yet.
    pub fn new(config: RetryConfig) -> Self {
        Attempts { config, failed: 0 }
    }

    /// Records a failure. `Some(delay)` to wait before the next try (the server's `after` when
    /// it gave one, capped at `max_backoff`), `None` when `max_attempts` is spent.
    pub fn failed(&mut self, after: Option<Duration>) -> Option<Duration> {
        self.failed += 1;
        if self.failed >= self.config.max_attempts {
            return None;
        }
        Some(
            after
                .unwrap_or_else(|| self.config.backoff(self.failed))
                .min(self.config.max_backoff),
        )
    }

    /// Progress was made: the count starts again.
    pub fn reset(&mut self) {
        self.failed = 0;
    }

    /// Failures so far.
    pub fn count(&self) -> u32 {
        self.failed
    }
}

/// Sleeps, or returns `Err(())` as soon as `cancel` fires.
pub async fn sleep_unless_cancelled(d: Duration, cancel: &CancellationToken) -> Result<(), ()> {
    tokio::select! {
        _ = cancel.cancelled() => Err(()),
        _ = tokio::time::sleep(d) => Ok(()),
    }
}

/// [`sleep_unless_cancelled`] for publish code.
pub(crate) async fn sleep_or_cancel(
    d: Duration,
    cancel: &CancellationToken,
) -> Result<(), PublishError> {
    sleep_unless_cancelled(d, cancel)
        .await
        .map_err(|()| PublishError::Cancelled)
}

/// True for HTTP statuses worth retrying: 408, 429 and 5xx.
pub(crate) fn is_retryable_status(status: reqwest::StatusCode) -> bool {
    status == reqwest::StatusCode::REQUEST_TIMEOUT
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let c = RetryConfig {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(400),
        };
        assert!(c.backoff(1) >= Duration::from_millis(100));
        assert!(c.backoff(1) < Duration::from_millis(126));
        assert!(c.backoff(3) >= Duration::from_millis(400));
        assert!(c.backoff(30) <= Duration::from_millis(500));
    }

    #[test]
    fn attempts_are_bounded_and_reset_by_progress() {
        let c = RetryConfig {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
        };
        let mut a = Attempts::new(c);
        assert!(a.failed(None).is_some());
        assert_eq!(
            a.failed(Some(Duration::from_secs(9))),
            Some(Duration::from_millis(50))
        );
        assert_eq!(a.failed(None), None, "third failure of three attempts");
        a.reset();
        assert!(a.failed(Some(Duration::ZERO)) == Some(Duration::ZERO));
    }
}
