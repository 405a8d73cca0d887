//! Failures under real `terraform apply` leave nothing claimed: a wrong ISO checksum, a failing
//! builder, and Ctrl-C (SIGINT to terraform) during a slow build. File backend, bundled ISO.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::*;

fn config(key: &str, sha: &str, build_command: &str, repo: &Path) -> String {
    config_with(key, sha, build_command, repo, "")
}

fn config_with(key: &str, sha: &str, build_command: &str, repo: &Path, extra: &str) -> String {
    format!(
        r#"
provider "hyops" {{}}

resource "hyops_vyos_image" "img" {{
  artifact_key      = "{key}"
  source_iso_url    = "{iso}"
  source_iso_sha256 = "{sha}"

  build {{
    method  = "command"
    command = {command}
  }}

  publish {{
    backend = "file"
    bucket  = "{repo}"
  }}
{extra}
}}
"#,
        iso = fixture_iso_url(),
        command = serde_json::to_string(build_command).unwrap(),
        repo = repo.display()
    )
}

/// Files under `dir` (none when it does not exist).
fn published(dir: &Path) -> Vec<std::path::PathBuf> {
    files_under(dir)
}

#[test]
fn wrong_iso_checksum_fails_naming_the_attribute_and_both_sums() {
    let repo = tempfile::tempdir().unwrap();
    let marker = repo.path().join("builds");
    let wrong = "0".repeat(64);
    let wd = Workdir::new(&config(
        "vyos-badsum",
        &wrong,
        &counting_builder(&marker),
        &repo.path().join("repo"),
    ));
    let out = wd.apply();
    let all = text(&out);
    assert!(!out.status.success(), "{all}");
    assert!(all.contains("source_iso_sha256"), "{all}");
    assert!(all.contains(&wrong), "pinned sum missing:\n{all}");
    assert!(all.contains(SHA), "actual sum missing:\n{all}");
    assert_eq!(builds(&marker), 0, "a builder ran on a refused ISO");
    assert!(published(&repo.path().join("repo")).is_empty());
    assert!(wd.state_list().is_empty());
}

#[test]
fn builder_failure_shows_the_log_tail_and_leaves_no_state() {
    let repo = tempfile::tempdir().unwrap();
    let wd = Workdir::new(&config(
        "vyos-fails",
        SHA,
        "echo 'builder says: disk layout 7731 failed' >&2; exit 3",
        &repo.path().join("repo"),
    ));
    let out = wd.apply();
    let all = text(&out);
    assert!(!out.status.success(), "{all}");
    assert!(
        flat(&out).contains("disk layout 7731 failed"),
        "log tail missing:\n{all}"
    );
    assert!(published(&repo.path().join("repo")).is_empty());
    assert!(wd.state_list().is_empty());
}

/// Alive and not a zombie.
fn alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks for existence and permission.
    let exists = unsafe { libc::kill(pid, 0) } == 0;
    if !exists {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(true),
        Err(_) => false,
    }
}

fn read_pid(p: &Path) -> Option<i32> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

#[test]
fn sigint_during_a_slow_build_stops_the_builder_and_publishes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (command, shell_pid, sleep_pid) = slow_builder(tmp.path());
    let repo = tmp.path().join("repo");
    let wd = Workdir::new(&config("vyos-slow", SHA, &command, &repo));
    // Ctrl-C in a terminal signals the foreground process group: terraform (and a PyPI wrapper
    // around it, which does not forward signals) and the provider, which ignores SIGINT. The
    // builder runs in its own group, so only the provider's Stop handling can end it.
    let mut child = wd
        .command(&["apply", "-auto-approve", "-no-color", "-input=false"])
        .process_group(0)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("terraform apply");

    let deadline = Instant::now() + Duration::from_secs(180);
    let (shell, sleeper) = loop {
        if let (Some(a), Some(b)) = (read_pid(&shell_pid), read_pid(&sleep_pid)) {
            break (a, b);
        }
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "terraform exited ({status}) before the build started:\n{}",
                text(&out)
            );
        }
        assert!(Instant::now() < deadline, "the slow build never started");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(alive(shell) && alive(sleeper));

    // SAFETY: signalling the process group of the terraform child we spawned.
    assert_eq!(unsafe { libc::killpg(child.id() as i32, libc::SIGINT) }, 0);
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "terraform did not exit after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let all = text(&out);
    assert!(!out.status.success(), "apply succeeded:\n{all}");
    assert!(all.contains("cancelled"), "{all}");

    // the builder's group was killed (allow the grace period to run out)
    let deadline = Instant::now() + Duration::from_secs(30);
    while (alive(shell) || alive(sleeper)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!alive(shell), "builder shell {shell} survived");
    assert!(!alive(sleeper), "builder child {sleeper} survived");
    assert!(published(&repo).is_empty(), "{:?}", published(&repo));
    assert!(wd.state_list().is_empty());
    // no staging leftovers in the build cache, no build entry claimed
    let leftovers: Vec<_> = entries_under(&wd.path().join("cache"))
        .into_iter()
        .filter(|p| {
            let s = p.display().to_string();
            s.contains(".staging-") || s.ends_with(".qcow2")
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// A slow builder script that records its shell's and its child's pids, then waits.
fn slow_builder(dir: &Path) -> (String, std::path::PathBuf, std::path::PathBuf) {
    let shell_pid = dir.join("shell.pid");
    let sleep_pid = dir.join("sleep.pid");
    let script = dir.join("slow-build.sh");
    std::fs::write(
        &script,
        format!(
            "echo $$ > '{}.tmp' && mv '{0}.tmp' '{0}'\nsleep 300 &\necho $! > '{1}.tmp' && mv '{1}.tmp' '{1}'\nwait\n",
            shell_pid.display(),
            sleep_pid.display()
        ),
    )
    .unwrap();
    (format!("bash '{}'", script.display()), shell_pid, sleep_pid)
}

#[test]
fn create_timeout_stops_the_builder_and_names_timeouts_create() {
    let tmp = tempfile::tempdir().unwrap();
    let (command, shell_pid, sleep_pid) = slow_builder(tmp.path());
    let repo = tmp.path().join("repo");
    let wd = Workdir::new(&config_with(
        "vyos-timeout",
        SHA,
        &command,
        &repo,
        "  timeouts {\n    create = \"3s\"\n  }",
    ));
    let out = wd.apply();
    let all = text(&out);
    assert!(!out.status.success(), "{all}");
    assert!(flat(&out).contains("timed out"), "{all}");
    assert!(all.contains("timeouts.create"), "{all}");
    let (shell, sleeper) = (
        read_pid(&shell_pid).expect("the build started"),
        read_pid(&sleep_pid).expect("the build started"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while (alive(shell) || alive(sleeper)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !alive(shell) && !alive(sleeper),
        "builder survived the timeout"
    );
    assert!(published(&repo).is_empty());
    assert!(wd.state_list().is_empty());
}
