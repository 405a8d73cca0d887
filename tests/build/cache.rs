//! The build cache: every input that shapes the image forces a rebuild (template subdirectories,
//! a real git checkout, the script a command runs, `build.triggers`) while an unchanged input
//! reuses the entry; LRU eviction that keeps running builds; `cache prune --dry-run`; `image
//! explain`. Builders are recording stand-ins writing real qcow2 images with qemu-img.

use std::process::ExitCode;

use hyops::engine::cache::eviction::{self, ItemKind, PrunePolicy};
use hyops::engine::create::CreateOutcome;

use super::*;

fn write_exec(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/bash\nset -e\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

async fn run(spec: &ImageSpec, env: &EngineEnv) -> CreateOutcome {
    create(spec, env, CancellationToken::new(), &NoProgress)
        .await
        .unwrap()
}

fn runs(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// A PATH with `bin` first.
fn path_with(bin: &Path) -> String {
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap())
}

fn git(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .args([
            "-c",
            "user.name=hyops-test",
            "-c",
            "user.email=t@example.invalid",
        ])
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .expect("git is installed");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_a_file_in_a_packer_template_subdirectory_forces_a_rebuild() {
    init();
    let f = create_fixture();
    let bin = f.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let counter = f.path("packer-runs");
    write_exec(
        &bin.join("packer"),
        &format!(
            "out=''; prev=''\n\
             for a in \"$@\"; do if [ \"$prev\" = -var ]; then case \"$a\" in build_output_directory=*) out=\"${{a#build_output_directory=}}\";; esac; fi; prev=\"$a\"; done\n\
             echo run >> {c}\n\
             mkdir -p \"$out\"; qemu-img create -q -f qcow2 \"$out/image.qcow2\" 1G",
            c = counter.display()
        ),
    );
    let tpl = f.path("templates");
    std::fs::create_dir_all(tpl.join("scripts/provision")).unwrap();
    std::fs::create_dir_all(tpl.join(".git")).unwrap();
    for (name, vars) in [
        (
            "stage1.pkr.hcl",
            ["source_iso_path", "build_output_directory"],
        ),
        (
            "stage2.pkr.hcl",
            ["source_disk_path", "build_output_directory"],
        ),
    ] {
        let text: String = vars
            .iter()
            .map(|v| format!("variable \"{v}\" {{\n  type = string\n}}\n"))
            .collect();
        std::fs::write(tpl.join(name), text).unwrap();
    }
    let script = tpl.join("scripts/provision/setup.sh");
    std::fs::write(&script, "echo one\n").unwrap();
    std::fs::write(tpl.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();

    let mut spec = f.spec("unused");
    spec.build.method = Some(BuildMethod::Packer);
    spec.build.command = None;
    spec.build.skip_preflight = Some(true);
    spec.build.packer_template = Some(tpl.clone());
    spec.build
        .environment
        .insert("PATH".into(), path_with(&bin));
    let env = f.env();

    assert!(!run(&spec, &env).await.cache_hit);
    assert_eq!(runs(&counter), 2, "two packer stages");
    assert!(run(&spec, &env).await.cache_hit, "unchanged templates");
    // A VCS folder is not an input.
    std::fs::write(tpl.join(".git/HEAD"), "ref: refs/heads/other\n").unwrap();
    assert!(run(&spec, &env).await.cache_hit, "a .git change rebuilt");

    std::fs::write(&script, "echo two\n").unwrap();
    assert!(
        !run(&spec, &env).await.cache_hit,
        "nested script edit reused"
    );
    assert_eq!(runs(&counter), 4);
    assert!(run(&spec, &env).await.cache_hit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_commit_or_an_uncommitted_edit_in_the_vyos_vm_images_checkout_forces_a_rebuild() {
    init();
    let f = create_fixture();
    let bin = f.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let counter = f.path("ansible-runs");
    write_exec(
        &bin.join("ansible-playbook"),
        &format!(
            "echo run >> {c}\n\
             for a in \"$@\"; do case \"$a\" in vyos_qemu_img=*) qemu-img create -q -f qcow2 \"${{a#vyos_qemu_img=}}\" 1G;; esac; done",
            c = counter.display()
        ),
    );
    let checkout = f.path("vyos-vm-images");
    std::fs::create_dir_all(checkout.join("roles/install/tasks")).unwrap();
    git(&checkout, &["init", "-q"]);
    std::fs::write(checkout.join("qemu.yml"), "- hosts: localhost\n").unwrap();
    let task = checkout.join("roles/install/tasks/main.yml");
    std::fs::write(&task, "- debug: msg=one\n").unwrap();
    std::fs::write(checkout.join(".gitignore"), "*.log\n").unwrap();
    git(&checkout, &["add", "-A"]);
    git(&checkout, &["commit", "-q", "-m", "first"]);

    let mut spec = f.spec("unused");
    spec.build.method = Some(BuildMethod::VyosVmImages);
    spec.build.command = None;
    spec.build.skip_preflight = Some(true);
    spec.build.vyos_vm_images_dir = Some(checkout.clone());
    spec.build
        .environment
        .insert("PATH".into(), path_with(&bin));
    let env = f.env();

    assert!(!run(&spec, &env).await.cache_hit);
    assert!(run(&spec, &env).await.cache_hit, "clean checkout rebuilt");
    // An ignored file is not an input.
    std::fs::write(checkout.join("ansible.log"), "noise").unwrap();
    assert!(run(&spec, &env).await.cache_hit, "an ignored file rebuilt");

    // A new commit.
    std::fs::write(&task, "- debug: msg=two\n").unwrap();
    git(&checkout, &["commit", "-q", "-am", "second"]);
    assert!(!run(&spec, &env).await.cache_hit, "new commit reused");
    assert!(run(&spec, &env).await.cache_hit);

    // An uncommitted edit, then a second different one, then reverting to the commit.
    std::fs::write(&task, "- debug: msg=three\n").unwrap();
    assert!(!run(&spec, &env).await.cache_hit, "uncommitted edit reused");
    assert!(run(&spec, &env).await.cache_hit);
    std::fs::write(&task, "- debug: msg=four\n").unwrap();
    assert!(!run(&spec, &env).await.cache_hit, "second edit reused");
    std::fs::write(&task, "- debug: msg=two\n").unwrap();
    assert!(
        run(&spec, &env).await.cache_hit,
        "back at the commit: the committed entry is reused"
    );
    // An untracked file.
    std::fs::write(checkout.join("roles/install/tasks/extra.yml"), "- x\n").unwrap();
    assert!(!run(&spec, &env).await.cache_hit, "untracked file reused");
    assert_eq!(runs(&counter), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_the_script_build_command_runs_forces_a_rebuild() {
    init();
    let f = create_fixture();
    let counter = f.path("runs");
    let script = f.path("build-image.sh");
    let body = |comment: &str| {
        format!(
            "# {comment}\necho run >> {c}\nqemu-img create -q -f qcow2 \"$HYOPS_VYOS_ARTIFACT_LOCAL_PATH\" 1G",
            c = counter.display()
        )
    };
    write_exec(&script, &body("v1"));
    let env = f.env();
    for command in [
        script.display().to_string(),
        format!("bash {} --flag", script.display()),
    ] {
        let spec = f.spec(&command);
        let before = runs(&counter);
        assert!(!run(&spec, &env).await.cache_hit);
        assert!(
            run(&spec, &env).await.cache_hit,
            "{command}: unchanged script"
        );
        write_exec(&script, &body(&format!("edited for {command}")));
        assert!(
            !run(&spec, &env).await.cache_hit,
            "{command}: edited script reused"
        );
        assert!(run(&spec, &env).await.cache_hit);
        assert_eq!(runs(&counter), before + 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_build_triggers_forces_a_rebuild() {
    init();
    let f = create_fixture();
    let counter = f.path("runs");
    let mut spec = f.spec(&format!(
        "echo run >> {}; qemu-img create -q -f qcow2 \"$HYOPS_VYOS_ARTIFACT_LOCAL_PATH\" 1G",
        counter.display()
    ));
    spec.build
        .triggers
        .insert("ansible_roles".into(), "v1".into());
    spec.build
        .environment
        .insert("BUILD_TOKEN".into(), "TOPSECRET-BUILD-ENV".into());
    let env = f.env();
    let first = run(&spec, &env).await;
    assert!(!first.cache_hit);
    let record = std::fs::read_to_string(first.cache_entry.join("record.json")).unwrap();
    assert!(record.contains("build.environment.BUILD_TOKEN"), "{record}");
    assert!(
        !record.contains("TOPSECRET"),
        "an environment value reached the record"
    );
    assert!(run(&spec, &env).await.cache_hit);
    spec.build
        .triggers
        .insert("ansible_roles".into(), "v2".into());
    assert!(!run(&spec, &env).await.cache_hit, "changed trigger reused");
    assert!(run(&spec, &env).await.cache_hit);
    spec.build.triggers.insert("extra".into(), "1".into());
    assert!(!run(&spec, &env).await.cache_hit, "added trigger reused");
    assert_eq!(runs(&counter), 3);
    assert!(run(&spec, &env).await.cache_hit);
}

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
    let report = eviction::prune(&cache, &PrunePolicy::default()).unwrap();
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

fn cli(args: &[&str]) -> (ExitCode, serde_json::Value) {
    let mut out = Vec::new();
    let code = hyops::cli::run_to(args.iter().map(|s| s.to_string()), &mut out);
    let json = serde_json::from_slice(&out).unwrap_or(serde_json::Value::Null);
    (code, json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eviction_removes_least_recently_used_first_and_the_cache_stays_usable() {
    init();
    let x = EvictionFixture::new();
    let [a, b, c] = x.populate().await;
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
    assert_eq!(would, [b.as_str(), iso, c.as_str()], "LRU order");
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

#[test]
fn image_explain_names_the_input_that_changed() {
    init();
    let f = create_fixture();
    let script = f.path("build.sh");
    write_exec(
        &script,
        "qemu-img create -q -f qcow2 \"$HYOPS_VYOS_ARTIFACT_LOCAL_PATH\" 1G",
    );
    let cache = f.path("explain-cache");
    let spec_json = |triggers: serde_json::Value| {
        serde_json::json!({
            "artifact_key": "vyos-explain",
            "artifact_version": "1.5-explain",
            "source_iso_url": f.iso_url,
            "source_iso_sha256": f.iso_sha256,
            "build": { "method": "command", "command": script.display().to_string(), "triggers": triggers },
            "provider": { "cache_dir": cache }
        })
    };
    let spec_path = f.path("spec.json");
    let write_spec = |v: serde_json::Value| std::fs::write(&spec_path, v.to_string()).unwrap();
    let explain = || {
        let (code, json) = cli(&[
            "image",
            "explain",
            "--config",
            spec_path.to_str().unwrap(),
            "--json",
        ]);
        assert_eq!(code, ExitCode::SUCCESS);
        json
    };
    write_spec(spec_json(serde_json::json!({ "roles": "v1" })));
    let e = explain();
    assert_eq!(e["reuse"], false);
    assert!(
        e["reason"]
            .as_str()
            .unwrap()
            .contains("none for artifact_key"),
        "{e}"
    );

    let (code, _) = cli(&["image", "apply", "--config", spec_path.to_str().unwrap()]);
    assert_eq!(code, ExitCode::SUCCESS);
    let e = explain();
    assert_eq!(e["reuse"], true, "{e}");
    assert!(e["changed"].as_array().unwrap().is_empty());
    let built_fp = e["fingerprint"].as_str().unwrap().to_owned();

    write_exec(
        &script,
        "# edited\nqemu-img create -q -f qcow2 \"$HYOPS_VYOS_ARTIFACT_LOCAL_PATH\" 1G",
    );
    let e = explain();
    assert_eq!(e["reuse"], false);
    assert_ne!(e["fingerprint"], built_fp.as_str());
    let changed: Vec<&str> = e["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(changed, ["build.command.script"], "{e}");
    assert!(e["reason"]
        .as_str()
        .unwrap()
        .contains("build.command.script"));

    write_exec(
        &script,
        "qemu-img create -q -f qcow2 \"$HYOPS_VYOS_ARTIFACT_LOCAL_PATH\" 1G",
    );
    write_spec(spec_json(serde_json::json!({ "roles": "v2" })));
    let e = explain();
    let changed: Vec<&str> = e["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(changed, ["build.triggers.roles"], "{e}");
    assert!(
        !e.to_string().contains("\"v2\""),
        "trigger values are not displayed"
    );
}
