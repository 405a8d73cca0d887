//! hclog-shaped JSON logging on stderr, the format go-plugin (and so Terraform) parses from a
//! plugin's stderr: one JSON object per line with `@level`, `@message`, `@module`, `@timestamp`
//! and every other field as a string.
//!
//! Level: `TF_LOG_PROVIDER`, else `TF_LOG` — `TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR`; `OFF`
//! or unset disables logging (Terraform's default: logging is off); any other value (e.g.
//! `JSON`) means TRACE, as Terraform treats it. Events of other crates (tonic, h2, rustls…) are
//! capped at INFO so TRACE stays readable; their `@module` names the crate.
//!
//! Caveat: `@timestamp` must keep exactly six fractional digits
//! (`2006-01-02T15:04:05.000000Z07:00`), or go-plugin shows the line as unparsed text.

use std::fmt::Write as _;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;

/// `@module` of this provider's own events.
pub const MODULE: &str = "provider.terraform-provider-hyops";

/// The level chosen by `TF_LOG_PROVIDER` / `TF_LOG` values (`None` = off).
pub fn level_from_env_values(provider: Option<&str>, global: Option<&str>) -> Option<Level> {
    let value = [provider, global]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|v| !v.is_empty())?;
    match value.to_ascii_uppercase().as_str() {
        "OFF" => None,
        "ERROR" => Some(Level::ERROR),
        "WARN" => Some(Level::WARN),
        "INFO" => Some(Level::INFO),
        "DEBUG" => Some(Level::DEBUG),
        // TRACE, JSON, or anything else Terraform reads as "on".
        _ => Some(Level::TRACE),
    }
}

/// Install the hclog layer as the global subscriber, at the level the environment asks for.
/// Does nothing when logging is off or a subscriber is already installed.
pub fn init_from_env() {
    let provider = std::env::var("TF_LOG_PROVIDER").ok();
    let global = std::env::var("TF_LOG").ok();
    if let Some(level) = level_from_env_values(provider.as_deref(), global.as_deref()) {
        let _ = tracing_subscriber::registry()
            .with(HclogLayer::new(level, std::io::stderr))
            .try_init();
    }
}

/// A `tracing` layer writing hclog JSON lines.
pub struct HclogLayer<W> {
    level: Level,
    make_writer: W,
}

impl<W> std::fmt::Debug for HclogLayer<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HclogLayer")
            .field("level", &self.level)
            .finish_non_exhaustive()
    }
}

impl<W, O> HclogLayer<W>
where
    W: Fn() -> O + Send + Sync + 'static,
    O: std::io::Write,
{
    /// Log events at `level` and above, each line written to a fresh `make_writer()`.
    pub fn new(level: Level, make_writer: W) -> Self {
        HclogLayer { level, make_writer }
    }
}

fn is_own(target: &str) -> bool {
    target == "hyops"
        || target.starts_with("hyops::")
        || target.starts_with("terraform_provider_hyops")
}

fn enabled_for(level: Level, meta: &Metadata<'_>) -> bool {
    let cap = if is_own(meta.target()) {
        level
    } else {
        // Less verbose of the two: dependencies at most INFO.
        std::cmp::min(level, Level::INFO)
    };
    *meta.level() <= cap
}

fn module_for(target: &str) -> String {
    if is_own(target) {
        MODULE.to_string()
    } else {
        let krate = target.split("::").next().unwrap_or(target);
        format!("{MODULE}.{krate}")
    }
}

fn hclog_level(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    }
}

/// `2006-01-02T15:04:05.000000Z` in UTC.
fn timestamp(now: time::OffsetDateTime) -> String {
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    now.format(&fmt).unwrap_or_default()
}

/// Collects an event's or span's fields as strings.
#[derive(Default)]
struct Fields {
    message: Option<String>,
    pairs: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.to_string());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut s = String::new();
        let _ = write!(s, "{value:?}");
        self.put(field, s);
    }
}

impl Fields {
    fn put(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            self.message = Some(value);
        } else {
            self.pairs.push((field.name().to_string(), value));
        }
    }
}

/// Span fields, stored in the span's extensions and added to every event inside it.
struct SpanFields(Vec<(String, String)>);

impl<S, W, O> Layer<S> for HclogLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: Fn() -> O + Send + Sync + 'static,
    O: std::io::Write,
{
    fn enabled(&self, meta: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        enabled_for(self.level, meta)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::from_level(self.level))
    }

    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields.pairs));
        }
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: Context<'_, S>,
    ) {
        let mut fields = Fields::default();
        values.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            let mut ext = span.extensions_mut();
            if let Some(existing) = ext.get_mut::<SpanFields>() {
                existing.0.extend(fields.pairs);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut obj = Map::new();
        obj.insert("@level".into(), Value::from(hclog_level(meta.level())));
        obj.insert(
            "@message".into(),
            Value::from(fields.message.unwrap_or_default()),
        );
        obj.insert("@module".into(), Value::from(module_for(meta.target())));
        obj.insert(
            "@timestamp".into(),
            Value::from(timestamp(time::OffsetDateTime::now_utc())),
        );
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(sf) = span.extensions().get::<SpanFields>() {
                    for (k, v) in &sf.0 {
                        obj.insert(k.clone(), Value::from(v.as_str()));
                    }
                }
            }
        }
        for (k, v) in fields.pairs {
            obj.insert(k, Value::from(v));
        }
        let mut line = Value::Object(obj).to_string();
        line.push('\n');
        // One write per line so concurrent events never interleave mid-line.
        let _ = (self.make_writer)().write_all(line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn level_precedence_and_values() {
        assert_eq!(level_from_env_values(None, None), None);
        assert_eq!(level_from_env_values(Some(""), None), None);
        assert_eq!(
            level_from_env_values(None, Some("debug")),
            Some(Level::DEBUG)
        );
        assert_eq!(
            level_from_env_values(Some("WARN"), Some("TRACE")),
            Some(Level::WARN)
        );
        assert_eq!(
            level_from_env_values(None, Some("JSON")),
            Some(Level::TRACE)
        );
        assert_eq!(level_from_env_values(Some("off"), Some("TRACE")), None);
    }

    #[test]
    fn timestamp_has_six_fractional_digits() {
        let t = time::macros::datetime!(2024-03-05 07:08:09.123456789 UTC);
        assert_eq!(timestamp(t), "2024-03-05T07:08:09.123456Z");
        let t = time::macros::datetime!(2024-03-05 07:08:09 UTC);
        assert_eq!(timestamp(t), "2024-03-05T07:08:09.000000Z");
    }

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn events_become_hclog_json_lines() {
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::registry()
            .with(HclogLayer::new(Level::DEBUG, move || writer.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(target: "hyops::provider", "rpc", tf_rpc = "GetSchema");
            let _g = span.enter();
            tracing::debug!(target: "hyops::provider", count = 3, "schema served");
            tracing::trace!(target: "hyops::provider", "too verbose");
            tracing::debug!(target: "h2::codec", "dependency debug is capped");
            tracing::warn!(target: "h2::codec", "dependency warning");
        });
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert_eq!(lines[0]["@level"], "debug");
        assert_eq!(lines[0]["@message"], "schema served");
        assert_eq!(lines[0]["@module"], MODULE);
        assert_eq!(lines[0]["count"], "3");
        assert_eq!(lines[0]["tf_rpc"], "GetSchema");
        let ts = lines[0]["@timestamp"].as_str().unwrap();
        assert_eq!(ts.len(), "2006-01-02T15:04:05.000000Z".len(), "{ts}");
        assert_eq!(lines[1]["@level"], "warn");
        assert_eq!(lines[1]["@module"], format!("{MODULE}.h2"));
    }
}
