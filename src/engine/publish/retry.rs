//! Retry policy shared by the hand-written HTTP backends: exponential backoff with jitter,
//! a bounded number of attempts, cancellable sleeps. Which requests are retried (idempotent
//! ones, and resumable-upload chunks whose progress is re-queried) is decided by the caller.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::PublishError;

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

/// Sleeps, or returns `Cancelled` as soon as `cancel` fires.
pub(crate) async fn sleep_or_cancel(
    d: Duration,
    cancel: &CancellationToken,
) -> Result<(), PublishError> {
    tokio::select! {
        _ = cancel.cancelled() => Err(PublishError::Cancelled),
        _ = tokio::time::sleep(d) => Ok(()),
    }
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
}
