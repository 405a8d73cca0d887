//! The one redirect policy: follow up to a limit, only to http(s), and never from https down to
//! http anywhere in the chain. Every hop is logged redacted; refusals name redacted URLs only.

use super::redact;

/// A reqwest redirect policy following at most `max` hops.
pub fn policy(max: usize) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        let next = attempt.url().clone();
        let previous = attempt.previous();
        let Some(from) = previous.last() else {
            return attempt.follow();
        };
        let from = from.clone();
        let seen_https = previous.iter().any(|u| u.scheme() == "https");
        if !matches!(next.scheme(), "http" | "https") {
            let msg = format!("unsupported scheme in {}", redact(&next));
            return attempt.error(msg);
        }
        if seen_https && next.scheme() != "https" {
            let msg = format!(
                "refusing to follow {} -> {} (https downgrade)",
                redact(&from),
                redact(&next)
            );
            return attempt.error(msg);
        }
        if previous.len() > max {
            return attempt.error(format!("more than {max} redirects"));
        }
        tracing::debug!(from = %redact(&from), to = %redact(&next), "following redirect");
        attempt.follow()
    })
}

/// The policy's own refusal text of a redirect error (the innermost cause), without URLs from
/// reqwest's wrapping.
pub fn refusal(e: &reqwest::Error) -> String {
    let mut last: Option<&dyn std::error::Error> = None;
    let mut cur = std::error::Error::source(e);
    while let Some(s) = cur {
        last = Some(s);
        cur = s.source();
    }
    last.map(ToString::to_string)
        .unwrap_or_else(|| "redirect refused".into())
}
