//! The build fingerprint: every input that shapes the image forces a rebuild (template
//! subdirectories, a real git checkout, the script a command runs, `build.triggers`) while an
//! unchanged input reuses the entry; `image explain` names the input that changed. Builders are
//! recording stand-ins writing real qcow2 images with qemu-img.

use std::process::ExitCode;

use hyops::engine::create::CreateOutcome;

use super::*;

pub(super) fn write_exec(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/bash\nset -e\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

pub(super) async fn run(spec: &ImageSpec, env: &EngineEnv) -> CreateOutcome {
    create(spec, env, CancellationToken::new(), &NoProgress)
        .await
        .unwrap()
}

pub(super) fn runs(path: &Path) -> usize {
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
    // The stand-in writes a blank disk: nothing to boot.
    spec.smoke_verify.boot = Some(hyops::engine::spec::BootVerifySpec {
        enabled: Some(false),
        ..Default::default()
    });
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
    // The stand-in writes a blank disk: nothing to boot.
    spec.smoke_verify.boot = Some(hyops::engine::spec::BootVerifySpec {
        enabled: Some(false),
        ..Default::default()
    });
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

pub(super) fn cli(args: &[&str]) -> (ExitCode, serde_json::Value) {
    let mut out = Vec::new();
    let code = hyops::cli::run_to(args.iter().map(|s| s.to_string()), &mut out);
    let json = serde_json::from_slice(&out).unwrap_or(serde_json::Value::Null);
    (code, json)
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

/// Every field of the resolved build block is a fingerprint input, so a setting added later (such
/// as `build.normalize`) forces a rebuild without touching the fingerprint code; map fields are
/// one input per key, digest only.
#[test]
fn every_build_setting_is_a_fingerprint_input() {
    init();
    let f = create_fixture();
    let mut spec = f.spec("make-image");
    spec.build
        .environment
        .insert("K".into(), "secret-value".into());
    spec.build.triggers.insert("T".into(), "x".into());
    let settings = BuildSettings::resolve(&spec.build, &f.env()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let fp = rt
        .block_on(hyops::engine::cache::fingerprint(
            &spec,
            &settings,
            &CancellationToken::new(),
        ))
        .unwrap();
    let serde_json::Value::Object(fields) = serde_json::to_value(&settings).unwrap() else {
        panic!("settings serialize as an object")
    };
    for (field, value) in fields {
        match value {
            serde_json::Value::Object(map) => {
                for key in map.keys() {
                    let input = &fp.inputs[&format!("build.{field}.{key}")];
                    assert!(input.summary.is_none(), "map values are not displayed");
                }
            }
            _ => assert!(
                fp.inputs.contains_key(&format!("build.{field}")),
                "build.{field} is not a fingerprint input"
            ),
        }
    }
}
