//! Progress on stderr for the operator CLI: one line per message (`[stage] text`, which a build
//! runner's caller parses), byte counters every 10 %. Writes never panic: on a runner, stderr is
//! an SSH channel that may close mid-build (the cancel path must still run).

use std::sync::Mutex;

use crate::engine::progress::{Progress, Stage};

/// Prints progress to stderr.
#[derive(Debug, Default)]
pub(crate) struct StderrProgress {
    last_percent: Mutex<Option<(Stage, u64)>>,
}

impl Progress for StderrProgress {
    fn message(&self, stage: Stage, message: &str) {
        say(format_args!("[{}] {message}", stage.as_str()));
    }

    fn bytes(&self, stage: Stage, done: u64, total: Option<u64>) {
        let Some(total) = total.filter(|t| *t > 0) else {
            return;
        };
        let percent = done.saturating_mul(100) / total;
        let bucket = percent / 10 * 10;
        let Ok(mut last) = self.last_percent.lock() else {
            return;
        };
        if *last != Some((stage, bucket)) {
            *last = Some((stage, bucket));
            say(format_args!(
                "[{}] {bucket}% ({done} of {total} bytes)",
                stage.as_str()
            ));
        }
    }
}

/// One line on stderr; a closed stderr is ignored (unlike `eprintln!`, which panics).
pub(crate) fn say(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{args}");
}
