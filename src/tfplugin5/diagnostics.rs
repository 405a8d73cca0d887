//! Diagnostics: how every problem reaches Terraform (never a gRPC error).
//!
//! Owns our [`Diagnostic`] / [`Diagnostics`] model, its conversion into the wire
//! [`pb::Diagnostic`] (with [`cty::Path`] → [`pb::AttributePath`]) and the conversion of a caught
//! panic into an error diagnostic, so a provider bug is reported instead of dropping the
//! connection. Knows nothing about resources or the engine.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;

use super::pb;
use crate::cty::{Path, PathStep};

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The operation failed.
    Error,
    /// The operation went on; the user should know.
    Warning,
}

/// One problem or warning, optionally pointing at the attribute at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// One line, shown first.
    pub summary: String,
    /// The explanation and what to do about it.
    pub detail: String,
    /// The attribute at fault, when one is.
    pub attribute: Option<Path>,
}

impl Diagnostic {
    /// An error diagnostic not tied to an attribute.
    pub fn error(summary: impl Into<String>, detail: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            summary: summary.into(),
            detail: detail.into(),
            attribute: None,
        }
    }

    /// A warning diagnostic not tied to an attribute.
    pub fn warning(summary: impl Into<String>, detail: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            summary: summary.into(),
            detail: detail.into(),
            attribute: None,
        }
    }

    /// This diagnostic, pointing at `path`.
    pub fn at(mut self, path: Path) -> Diagnostic {
        self.attribute = Some(path);
        self
    }

    /// Whether this is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The error diagnostic for a panic caught at the service edge. `payload` is what
    /// `std::panic::catch_unwind` returned; `context` names the operation (e.g. the RPC).
    pub fn from_panic(context: &str, payload: &(dyn Any + Send)) -> Diagnostic {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic with a non-string payload".to_string());
        Diagnostic::error(
            "Provider bug: internal error",
            format!(
                "terraform-provider-hyops panicked during {context}: {message}\n\n\
                 This is a bug in the provider, please report it together with the Terraform \
                 log (TF_LOG_PROVIDER=DEBUG)."
            ),
        )
    }
}

/// An ordered collection of diagnostics, as each RPC response carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// No diagnostics.
    pub fn new() -> Diagnostics {
        Diagnostics(Vec::new())
    }

    /// Add one diagnostic.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.0.push(diagnostic);
    }

    /// Add an error not tied to an attribute.
    pub fn error(&mut self, summary: impl Into<String>, detail: impl Into<String>) {
        self.push(Diagnostic::error(summary, detail));
    }

    /// Add an error pointing at `path`.
    pub fn error_at(&mut self, path: Path, summary: impl Into<String>, detail: impl Into<String>) {
        self.push(Diagnostic::error(summary, detail).at(path));
    }

    /// Add a warning not tied to an attribute.
    pub fn warning(&mut self, summary: impl Into<String>, detail: impl Into<String>) {
        self.push(Diagnostic::warning(summary, detail));
    }

    /// Add a warning pointing at `path`.
    pub fn warning_at(
        &mut self,
        path: Path,
        summary: impl Into<String>,
        detail: impl Into<String>,
    ) {
        self.push(Diagnostic::warning(summary, detail).at(path));
    }

    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }

    /// Append all of `other`.
    pub fn extend(&mut self, other: impl IntoIterator<Item = Diagnostic>) {
        self.0.extend(other);
    }

    /// Number of diagnostics.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Iterate in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    /// The wire form, for a response's `diagnostics` field.
    pub fn into_pb(self) -> Vec<pb::Diagnostic> {
        self.0.into_iter().map(pb::Diagnostic::from).collect()
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Diagnostics {
        Diagnostics(vec![d])
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl FromIterator<Diagnostic> for Diagnostics {
    fn from_iter<I: IntoIterator<Item = Diagnostic>>(iter: I) -> Diagnostics {
        Diagnostics(iter.into_iter().collect())
    }
}

impl From<&Path> for pb::AttributePath {
    fn from(path: &Path) -> pb::AttributePath {
        use pb::attribute_path::step::Selector;
        let steps = path
            .0
            .iter()
            .map(|step| pb::attribute_path::Step {
                selector: Some(match step {
                    PathStep::Attribute(name) => Selector::AttributeName(name.clone()),
                    PathStep::Key(key) => Selector::ElementKeyString(key.clone()),
                    PathStep::Index(i) => Selector::ElementKeyInt(*i),
                }),
            })
            .collect();
        pb::AttributePath { steps }
    }
}

impl From<&pb::AttributePath> for Path {
    /// Steps without a selector (never sent by Terraform) are skipped.
    fn from(path: &pb::AttributePath) -> Path {
        use pb::attribute_path::step::Selector;
        Path(
            path.steps
                .iter()
                .filter_map(|step| match step.selector.as_ref()? {
                    Selector::AttributeName(name) => Some(PathStep::Attribute(name.clone())),
                    Selector::ElementKeyString(key) => Some(PathStep::Key(key.clone())),
                    Selector::ElementKeyInt(i) => Some(PathStep::Index(*i)),
                })
                .collect(),
        )
    }
}

impl From<Diagnostic> for pb::Diagnostic {
    fn from(d: Diagnostic) -> pb::Diagnostic {
        let severity = match d.severity {
            Severity::Error => pb::diagnostic::Severity::Error,
            Severity::Warning => pb::diagnostic::Severity::Warning,
        };
        pb::Diagnostic {
            severity: severity as i32,
            summary: d.summary,
            detail: d.detail,
            attribute: d.attribute.as_ref().map(pb::AttributePath::from),
        }
    }
}

/// Run `fut`, turning a panic inside it into an error diagnostic naming `context`.
///
/// Use at the service edge around each RPC body: the RPC then answers with that diagnostic
/// instead of tonic dropping the stream.
pub async fn catch_panic<F, T>(context: &str, fut: F) -> Result<T, Diagnostic>
where
    F: Future<Output = T>,
{
    AssertUnwindSafe(fut)
        .catch_unwind()
        .await
        .map_err(|payload| Diagnostic::from_panic(context, payload.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_steps_map_to_wire_selectors() {
        use pb::attribute_path::step::Selector;
        let path = Path::attr("artifacts")
            .join_key("k+raw.xz")
            .join_attr("x")
            .join_index(3);
        let wire = pb::AttributePath::from(&path);
        let selectors: Vec<_> = wire.steps.iter().map(|s| s.selector.clone()).collect();
        assert_eq!(
            selectors,
            vec![
                Some(Selector::AttributeName("artifacts".into())),
                Some(Selector::ElementKeyString("k+raw.xz".into())),
                Some(Selector::AttributeName("x".into())),
                Some(Selector::ElementKeyInt(3)),
            ]
        );
        assert_eq!(Path::from(&wire), path);
    }

    #[test]
    fn severities_and_attribute_reach_the_wire() {
        let mut diags = Diagnostics::new();
        diags.warning("w", "wd");
        assert!(!diags.has_errors());
        diags.error_at(Path::attr("artifact_key"), "bad key", "detail");
        assert!(diags.has_errors());
        let wire = diags.into_pb();
        assert_eq!(wire[0].severity, pb::diagnostic::Severity::Warning as i32);
        assert!(wire[0].attribute.is_none());
        assert_eq!(wire[1].severity, pb::diagnostic::Severity::Error as i32);
        assert_eq!(wire[1].summary, "bad key");
        assert_eq!(wire[1].attribute.as_ref().map(|a| a.steps.len()), Some(1));
    }

    #[tokio::test]
    async fn panic_becomes_error_diagnostic() {
        let r: Result<(), Diagnostic> =
            catch_panic("PlanResourceChange", async { panic!("boom {}", 7) }).await;
        let d = r.unwrap_err();
        assert!(d.is_error());
        assert!(d.detail.contains("PlanResourceChange"));
        assert!(d.detail.contains("boom 7"));
        assert!(d.detail.contains("please report"));
        let ok = catch_panic("x", async { 5 }).await;
        assert_eq!(ok, Ok(5));
    }
}
