//! Progress reporting: the engine's long steps report through a [`Progress`] sink and never log as
//! Terraform. The provider forwards events to its log; the operator CLI prints them on stderr.

/// A step of the create path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// fetching / verifying the ISO
    Fetch,
    /// preflight checks
    Preflight,
    /// running the builder
    Build,
    /// smoke verification
    Verify,
    /// normalizing and hashing
    Normalize,
    /// uploading / publishing
    Publish,
}

impl Stage {
    /// A short lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Fetch => "fetch",
            Stage::Preflight => "preflight",
            Stage::Build => "build",
            Stage::Verify => "verify",
            Stage::Normalize => "normalize",
            Stage::Publish => "publish",
        }
    }
}

/// Receives progress events. Implementations must be cheap and must not block.
pub trait Progress: Send + Sync {
    /// A human-readable progress message for a stage.
    fn message(&self, stage: Stage, message: &str);
    /// Bytes done out of an optional total (downloads, uploads, hashing).
    fn bytes(&self, stage: Stage, done: u64, total: Option<u64>) {
        let _ = (stage, done, total);
    }
}

/// A sink that drops everything (tests, quiet callers).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn message(&self, _stage: Stage, _message: &str) {}
}
