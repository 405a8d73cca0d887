//! The console watcher: follows the serial console log QEMU writes, keeps the text seen so far
//! (bounded: the newest [`KEEP_BYTES`]), and tells which `expect` and `fail_on` patterns match.
//!
//! Patterns are matched against the kept text with ANSI escape sequences and carriage returns
//! removed, so firmware and bootloader screen control does not split a prompt. A pattern spanning
//! the cut at [`KEEP_BYTES`] can be missed; consoles of a boot are far smaller than that.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;

/// Console text kept for matching and for the failure tail.
pub(crate) const KEEP_BYTES: usize = 4 << 20;
/// Lines of console carried in a failure diagnostic.
pub(crate) const TAIL_LINES: usize = 25;

/// Follows one console log.
#[derive(Debug)]
pub struct ConsoleWatcher {
    path: PathBuf,
    offset: u64,
    text: String,
    pending: Vec<u8>,
    /// when each `expect` pattern first matched
    pub expect_seen: Vec<Option<Duration>>,
    /// when the console last grew
    pub last_growth: Option<Duration>,
}

fn strip_controls(raw: &str) -> String {
    // CSI sequences (`ESC [ … final`), two-byte escapes (`ESC c`), and carriage returns.
    static RE: std::sync::OnceLock<Option<Regex>> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| Regex::new(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_c]|\r").ok());
    match re {
        Some(re) => re.replace_all(raw, "").into_owned(),
        None => raw.to_owned(),
    }
}

impl ConsoleWatcher {
    /// Watch `path` (it may not exist yet) for `expect_len` expect patterns.
    pub fn new(path: &Path, expect_len: usize) -> Self {
        ConsoleWatcher {
            path: path.to_owned(),
            offset: 0,
            text: String::new(),
            pending: Vec::new(),
            expect_seen: vec![None; expect_len],
            last_growth: None,
        }
    }

    /// Read what was appended since the last poll. `now` is the time since the boot started.
    pub fn poll(&mut self, now: Duration) -> std::io::Result<()> {
        let mut f = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        f.seek(SeekFrom::Start(self.offset))?;
        let mut buf = Vec::new();
        f.take(KEEP_BYTES as u64).read_to_end(&mut buf)?;
        if buf.is_empty() {
            return Ok(());
        }
        self.offset += buf.len() as u64;
        self.last_growth = Some(now);
        self.pending.extend_from_slice(&buf);
        // Keep an incomplete UTF-8 sequence for the next poll.
        let valid = match std::str::from_utf8(&self.pending) {
            Ok(s) => s.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => self.pending.len(),
        };
        let chunk: Vec<u8> = self.pending.drain(..valid).collect();
        self.text
            .push_str(&strip_controls(&String::from_utf8_lossy(&chunk)));
        if self.text.len() > KEEP_BYTES {
            let mut cut = self.text.len() - KEEP_BYTES;
            while !self.text.is_char_boundary(cut) {
                cut += 1;
            }
            self.text.drain(..cut);
        }
        Ok(())
    }

    /// Record which `expect` patterns match now.
    pub fn check_expect(&mut self, expect: &[Regex], now: Duration) {
        for (i, re) in expect.iter().enumerate() {
            if self.expect_seen[i].is_none() && re.is_match(&self.text) {
                self.expect_seen[i] = Some(now);
            }
        }
    }

    /// All `expect` patterns have matched; the time the last of them did.
    pub fn all_expected(&self) -> Option<Duration> {
        self.expect_seen
            .iter()
            .try_fold(Duration::ZERO, |acc, t| t.map(|t| acc.max(t)))
    }

    /// The first `fail_on` pattern that matches, with the matching line.
    pub fn failed(&self, fail_on: &[Regex]) -> Option<(String, String)> {
        fail_on.iter().find_map(|re| {
            let m = re.find(&self.text)?;
            let start = self.text[..m.start()].rfind('\n').map_or(0, |i| i + 1);
            let end = self.text[m.end()..]
                .find('\n')
                .map_or(self.text.len(), |i| m.end() + i);
            Some((
                re.as_str().to_owned(),
                self.text[start..end].trim().to_owned(),
            ))
        })
    }

    /// Whether `needle` appears on the console.
    pub fn contains(&self, needle: &str) -> bool {
        self.text.contains(needle)
    }

    /// Nothing at all has been printed yet.
    pub fn is_empty(&self) -> bool {
        self.offset == 0
    }

    /// The last [`TAIL_LINES`] non-empty lines.
    pub fn tail(&self) -> String {
        let lines: Vec<&str> = self
            .text
            .lines()
            .map(str::trim_end)
            .filter(|l| !l.is_empty())
            .collect();
        let from = lines.len().saturating_sub(TAIL_LINES);
        lines[from..].join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watcher_with(text: &[u8], expect: usize) -> (tempfile::TempDir, ConsoleWatcher) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.log");
        std::fs::write(&path, text).unwrap();
        let mut w = ConsoleWatcher::new(&path, expect);
        w.poll(Duration::from_secs(1)).unwrap();
        (dir, w)
    }

    #[test]
    fn escape_sequences_and_carriage_returns_do_not_split_a_prompt() {
        let re = [Regex::new(crate::engine::verify::boot::LOGIN_PROMPT).unwrap()];
        let (_d, mut w) = watcher_with(b"\x1b[2J\x1b[1;1HWelcome\r\nvyos log\x1b[0min: \r\n", 1);
        w.check_expect(&re, Duration::from_secs(2));
        assert_eq!(w.all_expected(), Some(Duration::from_secs(2)));
        assert_eq!(w.tail(), "Welcome\nvyos login:");
    }

    #[test]
    fn fail_on_reports_the_whole_matching_line_and_growth_is_followed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.log");
        let mut w = ConsoleWatcher::new(&path, 0);
        w.poll(Duration::from_secs(1)).unwrap();
        assert!(w.is_empty(), "a missing log is an empty console");
        std::fs::write(&path, "booting\n[ 1.0] Kernel pa").unwrap();
        w.poll(Duration::from_secs(2)).unwrap();
        let fail_on = [Regex::new("Kernel panic").unwrap()];
        assert!(w.failed(&fail_on).is_none());
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut f, b"nic - not syncing: VFS\nmore\n").unwrap();
        w.poll(Duration::from_secs(3)).unwrap();
        assert_eq!(w.last_growth, Some(Duration::from_secs(3)));
        let (pattern, line) = w.failed(&fail_on).unwrap();
        assert_eq!(pattern, "Kernel panic");
        assert_eq!(line, "[ 1.0] Kernel panic - not syncing: VFS");
    }
}
