//! Build cache eviction: least recently used entries and ISOs go first, an entry whose build is
//! running is kept, `cache prune --dry-run` changes nothing, the cache stays usable (a warm re-run
//! of a kept entry is a hit); failed work directories by age; log rotation.

use std::process::ExitCode;

use hyops::engine::cache::eviction::{self, ItemKind, PrunePolicy};

use super::cache_tests::{cli, run, write_exec};
use super::*;

fn set_age(path: &Path, age: Duration) {
    let when = std::time::SystemTime::now() - age;
    std::fs::File::open(path)
        .unwrap()
        .set_modified(when)
        .unwrap();
}

#[test]
fn prune_removes_old_failed_work_dirs_and_rotates_logs() {
    init();
    let f = create_fixture();
    let cache = f.path("cache");
    let failed = cache.join("failed");
    let logs = cache.join("logs");
    std::fs::create_dir_all(failed.join("old-build/stage1-output")).unwrap();
    std::fs::create_dir_all(failed.join("new-build")).unwrap();
    std::fs::write(failed.join("old-build/stage1-output/image.qcow2"), b"disk").unwrap();
    set_age(&failed.join("old-build"), Duration::from_secs(8 * 86400));
    std::fs::create_dir_all(&logs).unwrap();
    let total = eviction::LOG_KEEP + 10;
    for i in 0..total {
        let p = logs.join(format!("build-{i:03}.log"));
        std::fs::write(&p, "log\n").unwrap();
        // build-000 is the oldest; the first three are older than the failed-work age.
        let age = if i < 3 { 9 * 86400 } else { 3600 };
        set_age(&p, Duration::from_secs(age + (total - i) as u64));
    }
    // Staging directories left by a killed process go; one whose create still runs stays.
    let builds = cache.join("builds");
    let (dead, live) = ("0123456789abcdef", "fedcba9876543210");
    let _running = hyops::engine::cache::lock::exclusive_blocking(
        &builds.join(format!("{live}{}.lock", "0".repeat(48))),
    )
    .unwrap();
    for prefix in [dead, live] {
        let dir = builds.join(format!(".staging-{prefix}-x1y2z3"));
        std::fs::create_dir_all(dir.join("work")).unwrap();
        set_age(&dir, Duration::from_secs(8 * 86400));
    }
    let report = eviction::prune(&cache, &PrunePolicy::default()).unwrap();
    assert!(!builds.join(format!(".staging-{dead}-x1y2z3")).exists());
    assert!(builds.join(format!(".staging-{live}-x1y2z3")).exists());
    assert!(!failed.join("old-build").exists());
    assert!(failed.join("new-build").exists());
    let mut left: Vec<String> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left.len(), eviction::LOG_KEEP);
    assert_eq!(left[0], "build-010.log", "the oldest logs go first");
    assert!(report
        .removed
        .iter()
        .any(|i| i.kind == ItemKind::Failed && i.name == "old-build"));

    // A configured, shorter age.
    let young = cache.join("failed/young-build");
    std::fs::create_dir_all(&young).unwrap();
    set_age(&young, Duration::from_secs(7200));
    set_age(&failed.join("new-build"), Duration::from_secs(60));
    eviction::prune(
        &cache,
        &PrunePolicy {
            failed_max_age: Duration::from_secs(3600),
            ..PrunePolicy::default()
        },
    )
    .unwrap();
    assert!(!young.exists());
    assert!(failed.join("new-build").exists(), "younger than an hour");
}

/// Three entries made with one gated script (so a rebuild can be held running), told apart by
/// `build.triggers`.
struct EvictionFixture {
    f: CreateFixture,
    env: EngineEnv,
    go: PathBuf,
    started: PathBuf,
    command: String,
}

impl EvictionFixture {
    fn new() -> Self {
        let f = create_fixture();
        let go = f.path("go");
        let started = f.path("started");
        let script = f.path("gated-build.sh");
        write_exec(
            &script,
            &format!(
                "echo started > {s}\nwhile [ ! -e {g} ]; do sleep 0.05; done\n\
                 qemu-img create -q -f qcow2 \"$HYOPS_VYOS_ARTIFACT_LOCAL_PATH\" 1G",
                s = started.display(),
                g = go.display()
            ),
        );
        std::fs::write(&go, "").unwrap();
        EvictionFixture {
            env: f.env(),
            command: script.display().to_string(),
            f,
            go,
            started,
        }
    }

    fn spec(&self, name: &str) -> ImageSpec {
        let mut s = self.f.spec(&self.command);
        s.build.triggers.insert("entry".into(), name.into());
        s
    }

    /// Build a, b, c, then reuse a: LRU order b, (ISO), c, a. Returns the entries' fingerprints.
    async fn populate(&self) -> [String; 3] {
        let mut fps = Vec::new();
        for name in ["a", "b", "c"] {
            let out = run(&self.spec(name), &self.env).await;
            assert!(!out.cache_hit);
            fps.push(
                out.cache_entry
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
        assert!(run(&self.spec("a"), &self.env).await.cache_hit);
        [fps[0].clone(), fps[1].clone(), fps[2].clone()]
    }

    fn cache_dir(&self) -> &Path {
        self.env.cache_dir()
    }
}

/// Wait until no build entry or ISO of `dir` is reported in use. A child process forked by
/// another test while this test's creates held their locks keeps a copy of them until it execs;
/// on a loaded machine that can outlast the create.
async fn wait_until_idle(dir: &Path) {
    for _ in 0..6000 {
        let inv = eviction::inventory(dir);
        if inv.builds.iter().all(|b| !b.item.in_use) && inv.isos.iter().all(|i| !i.in_use) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{} stayed in use", dir.display());
}

/// Every path under `dir` with its size and mtime.
fn snapshot(dir: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let m = e.metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            }
            out.push((e.path(), m.len(), m.modified().unwrap()));
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eviction_removes_least_recently_used_first_and_the_cache_stays_usable() {
    init();
    let x = EvictionFixture::new();
    let [a, b, c] = x.populate().await;
    wait_until_idle(x.cache_dir()).await;
    let inv = eviction::inventory(x.cache_dir());
    let names: Vec<&str> = inv.builds.iter().map(|e| e.item.name.as_str()).collect();
    assert_eq!(names, [&a, &c, &b], "most recently used first");
    assert_eq!(inv.isos.len(), 1);
    let entry_size = inv.builds[0].item.size;
    // Below the cache's size: room for one entry and a half.
    let limit = entry_size + entry_size / 2;
    assert!(inv.limited_size > limit);

    // `cache ls` shows the entries with their fingerprint inputs.
    let dir = x.cache_dir().display().to_string();
    let (code, ls) = cli(&["cache", "ls", "--cache-dir", &dir, "--json"]);
    assert_eq!(code, ExitCode::SUCCESS);
    assert_eq!(ls["builds"].as_array().unwrap().len(), 3);
    assert!(ls["builds"][0]["record"]["inputs"]["build.command.script"]["digest"].is_string());
    assert!(ls["builds"][0]["record"]["inputs"]["build.triggers.entry"].is_object());

    // A dry run decides the same and changes nothing.
    let before = snapshot(x.cache_dir());
    let limit_arg = format!("{limit}B");
    let (code, report) = cli(&[
        "cache",
        "prune",
        "--cache-dir",
        &dir,
        "--max-size",
        &limit_arg,
        "--dry-run",
        "--json",
    ]);
    assert_eq!(code, ExitCode::SUCCESS);
    assert_eq!(report["dry_run"], true);
    let would: Vec<&str> = report["removed"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] != "log" && i["kind"] != "failed")
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    let iso = inv.isos[0].name.as_str();
    assert_eq!(
        would,
        [b.as_str(), iso, c.as_str()],
        "LRU order: a={a} {report:#} {inv:#?}"
    );
    assert_eq!(snapshot(x.cache_dir()), before, "dry run changed the cache");

    // The real prune.
    let report = eviction::prune(
        x.cache_dir(),
        &PrunePolicy {
            max_size_bytes: Some(limit),
            ..PrunePolicy::default()
        },
    )
    .unwrap();
    let removed: Vec<&str> = report.removed.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(removed, [b.as_str(), iso, c.as_str()]);
    assert!(report.limited_size_after <= limit);
    let inv = eviction::inventory(x.cache_dir());
    assert_eq!(inv.builds.len(), 1);
    assert_eq!(inv.builds[0].item.name, a);
    assert!(inv.isos.is_empty());

    // Still usable: the kept entry is a warm hit, an evicted one rebuilds (re-fetching the ISO).
    assert!(run(&x.spec("a"), &x.env).await.cache_hit);
    assert!(!run(&x.spec("b"), &x.env).await.cache_hit);

    // The create-time limit: after a successful create everything else goes, never its own entry.
    wait_until_idle(x.cache_dir()).await;
    let tight = x.env.clone().with_cache_max_size_bytes(Some(1));
    let d = run(&x.spec("d"), &tight).await;
    assert!(!d.cache_hit);
    let inv = eviction::inventory(x.cache_dir());
    let left: Vec<&str> = inv.builds.iter().map(|e| e.item.name.as_str()).collect();
    assert_eq!(left, [d.cache_entry.file_name().unwrap().to_str().unwrap()]);
    assert!(run(&x.spec("d"), &x.env).await.cache_hit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eviction_keeps_an_entry_whose_build_is_running() {
    init();
    let x = EvictionFixture::new();
    let [a, b, c] = x.populate().await;
    wait_until_idle(x.cache_dir()).await;

    // Rebuild b (the least recently used entry) and hold it running.
    std::fs::remove_file(&x.go).unwrap();
    std::fs::remove_file(&x.started).unwrap();
    let mut rebuild = x.spec("b");
    rebuild.rebuild_if_exists = true;
    let task = {
        let env = x.env.clone();
        tokio::spawn(
            async move { create(&rebuild, &env, CancellationToken::new(), &NoProgress).await },
        )
    };
    wait_for_file(&x.started).await;

    let inv = eviction::inventory(x.cache_dir());
    let size_of = |fp: &str| {
        inv.builds
            .iter()
            .find(|e| e.item.name == fp)
            .unwrap()
            .item
            .size
    };
    assert!(inv.builds.iter().any(|e| e.item.name == b && e.item.in_use));
    assert!(inv.isos[0].in_use, "the running build reads the ISO");
    // Room for everything but c.
    let limit = inv.limited_size - size_of(&c);
    let report = eviction::prune(
        x.cache_dir(),
        &PrunePolicy {
            max_size_bytes: Some(limit),
            ..PrunePolicy::default()
        },
    )
    .unwrap();
    let removed: Vec<&str> = report
        .removed
        .iter()
        .filter(|i| i.kind == ItemKind::Build || i.kind == ItemKind::Iso)
        .map(|i| i.name.as_str())
        .collect();
    assert_eq!(removed, [c.as_str()]);
    let kept: Vec<&str> = report.kept_in_use.iter().map(|i| i.name.as_str()).collect();
    assert!(kept.contains(&b.as_str()), "{kept:?}");
    assert!(x
        .cache_dir()
        .join("builds")
        .join(&b)
        .join("record.json")
        .exists());
    assert!(x.cache_dir().join("builds").join(&a).exists());

    std::fs::write(&x.go, "").unwrap();
    let rebuilt = task.await.unwrap().unwrap();
    assert!(!rebuilt.cache_hit);
    assert!(run(&x.spec("b"), &x.env).await.cache_hit);
    assert!(
        run(&x.spec("a"), &x.env).await.cache_hit,
        "kept entry is still warm"
    );
}
