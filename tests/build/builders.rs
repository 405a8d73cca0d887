//! Builder invocation contracts (recording stand-ins on PATH), packaged packer templates (real `packer validate`), fingerprint inputs.

use super::*;

pub(super) fn write_script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/bash\nset -e\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A stand-in that records argv (NUL-separated), env and cwd as `<rec>/{argv,env,cwd}.<n>`.
pub(super) fn recording_prelude(rec: &Path) -> String {
    let r = rec.display();
    format!(
        "mkdir -p {r}; n=$(ls {r} | grep -c '^argv' || true)\n\
         for a in \"$@\"; do printf '%s\\0' \"$a\"; done > {r}/argv.$n\n\
         env > {r}/env.$n\npwd > {r}/cwd.$n\n"
    )
}

pub(super) fn recorded_argv(rec: &Path, n: usize) -> Vec<String> {
    let raw = std::fs::read(rec.join(format!("argv.{n}"))).unwrap();
    raw.split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8(s.to_vec()).unwrap())
        .collect()
}

pub(super) struct Fixture {
    pub(super) dir: tempfile::TempDir,
    pub(super) bin: PathBuf,
    pub(super) rec: PathBuf,
    pub(super) iso: PathBuf,
}

pub(super) fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    let rec = dir.path().join("rec");
    std::fs::create_dir_all(&bin).unwrap();
    let iso = dir.path().join("vyos.iso");
    std::fs::write(&iso, b"not really an iso").unwrap();
    Fixture { dir, bin, rec, iso }
}

pub(super) fn env_with_path(bin: &Path, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    env.insert(
        "PATH".to_owned(),
        format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        ),
    );
    for (k, v) in extra {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    env
}

async fn run_builder(
    f: &Fixture,
    settings: &BuildSettings,
    env: &BTreeMap<String, String>,
    accelerator: Accelerator,
) -> (Result<PathBuf, BuildError>, PathBuf) {
    let work = f.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let out = f.dir.path().join("out.qcow2");
    let log = f.dir.path().join("build.log");
    let cancel = CancellationToken::new();
    let iso_sha256 = "ab".repeat(32);
    let ctx = BuildContext {
        settings,
        iso_path: &f.iso,
        iso_sha256: &iso_sha256,
        output_path: &out,
        work_dir: &work,
        log_path: &log,
        env,
        accelerator,
        use_sudo: false,
        cancel: &cancel,
        progress: &NoProgress,
    };
    let builder = build::builder_for(settings.method);
    (builder.build(&ctx).await, out)
}

#[tokio::test]
async fn vyos_vm_images_invocation_contract() {
    init();
    let f = fixture();
    let checkout = f.dir.path().join("vyos-vm-images");
    std::fs::create_dir_all(&checkout).unwrap();
    let body = recording_prelude(&f.rec)
        + "for a in \"$@\"; do case \"$a\" in vyos_qemu_img=*) printf qcow > \"${a#vyos_qemu_img=}\";; esac; done";
    write_script(&f.bin.join("ansible-playbook"), &body);
    let spec = BuildSpec {
        method: Some(BuildMethod::VyosVmImages),
        vyos_vm_images_dir: Some(checkout.clone()),
        disk_size_gb: Some(12),
        console: Some(hyops::engine::spec::Console::Serial),
        ..BuildSpec::default()
    };
    let settings = BuildSettings::resolve(&spec, &EngineEnv::from_env()).unwrap();
    let env = env_with_path(&f.bin, &[("HYOPS_VYOS_ARTIFACT_KEY", "vyos-edge")]);
    let (res, out) = run_builder(&f, &settings, &env, Accelerator::Kvm).await;
    res.unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), b"qcow");

    let argv = recorded_argv(&f.rec, 0);
    assert_eq!(argv[0], "qemu.yml");
    let extras: Vec<&str> = argv
        .windows(2)
        .filter(|w| w[0] == "-e")
        .map(|w| w[1].as_str())
        .collect();
    let iso = format!("iso_local={}", f.iso.display());
    for want in [
        iso.as_str(),
        "disk_size=12",
        "cloud_init=true",
        "cloud_init_ds=NoCloud,ConfigDrive",
        "guest_agent=qemu",
        "grub_console=serial",
    ] {
        assert!(extras.contains(&want), "missing -e {want} in {argv:?}");
    }
    assert!(extras.iter().any(|e| e.starts_with("vyos_qemu_img=")));
    let cwd = std::fs::read_to_string(f.rec.join("cwd.0")).unwrap();
    assert_eq!(cwd.trim(), checkout.display().to_string());
    let env_dump = std::fs::read_to_string(f.rec.join("env.0")).unwrap();
    assert!(env_dump.contains("HYOPS_VYOS_ARTIFACT_KEY=vyos-edge"));
    assert_no_credentials(&env_dump);
}

fn packer_standin(f: &Fixture) {
    let body = recording_prelude(&f.rec)
        + "out=''; prev=''\n\
           for a in \"$@\"; do if [ \"$prev\" = -var ]; then case \"$a\" in build_output_directory=*) out=\"${a#build_output_directory=}\";; esac; fi; prev=\"$a\"; done\n\
           mkdir -p \"$out\"; printf \"disk-from-call-$n\" > \"$out/image.qcow2\"";
    write_script(&f.bin.join("packer"), &body);
}

#[tokio::test]
async fn packer_two_stage_invocation_contract() {
    init();
    let f = fixture();
    packer_standin(&f);
    let spec = BuildSpec {
        method: Some(BuildMethod::Packer),
        packer_extra_args: Some(vec!["-var".into(), "serial_device=file:/tmp/s.log".into()]),
        ..BuildSpec::default()
    };
    let settings = BuildSettings::resolve(&spec, &EngineEnv::from_env()).unwrap();
    let env = env_with_path(&f.bin, &[]);
    let (res, out) = run_builder(&f, &settings, &env, Accelerator::Tcg).await;
    res.unwrap();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "disk-from-call-1");

    let first = recorded_argv(&f.rec, 0);
    let second = recorded_argv(&f.rec, 1);
    assert!(!f.rec.join("argv.2").exists(), "packer ran more than twice");
    for argv in [&first, &second] {
        assert_eq!(argv[0], "build");
        assert!(argv.contains(&"-on-error=abort".to_owned()), "{argv:?}");
        assert!(argv
            .iter()
            .any(|a| a.starts_with("-var-file=") && a.ends_with("vyos.pkrvars.hcl")));
        assert!(
            argv.contains(&"qemu_accelerator=tcg".to_owned()),
            "{argv:?}"
        );
        assert!(argv.contains(&"serial_device=file:/tmp/s.log".to_owned()));
    }
    assert!(first.last().unwrap().ends_with("stage1.pkr.hcl"));
    assert!(second.last().unwrap().ends_with("stage2.pkr.hcl"));
    assert!(first.contains(&format!("source_iso_path={}", f.iso.display())));
    assert!(first.contains(&format!("source_iso_checksum=sha256:{}", "ab".repeat(32))));
    let stage1_out = first
        .iter()
        .find_map(|a| a.strip_prefix("build_output_directory="))
        .unwrap();
    assert!(
        second.contains(&format!("source_disk_path={stage1_out}/image.qcow2")),
        "{second:?}"
    );
    let env_dump = std::fs::read_to_string(f.rec.join("env.1")).unwrap();
    assert!(env_dump.contains("CHECKPOINT_DISABLE=1"));
    assert_no_credentials(&env_dump);
}

#[tokio::test]
async fn custom_packer_template_missing_variable_is_refused_before_packer_runs() {
    init();
    let f = fixture();
    packer_standin(&f);
    let tpl = f.dir.path().join("custom.pkr.hcl");
    std::fs::write(
        &tpl,
        "variable \"source_iso_path\" {\n  type = string\n}\nsource \"null\" \"x\" {}\n",
    )
    .unwrap();
    let spec = BuildSpec {
        method: Some(BuildMethod::Packer),
        packer_template: Some(tpl),
        ..BuildSpec::default()
    };
    let settings = BuildSettings::resolve(&spec, &EngineEnv::from_env()).unwrap();
    let (res, _) = run_builder(&f, &settings, &env_with_path(&f.bin, &[]), Accelerator::Kvm).await;
    let err = res.unwrap_err();
    assert!(matches!(err, BuildError::Refused(_)), "{err:?}");
    assert!(
        err.to_string().contains("\"build_output_directory\""),
        "{err}"
    );
    assert!(
        !f.rec.exists(),
        "packer ran although the template was refused"
    );
}

#[test]
fn packaged_packer_templates_pass_real_packer_validate() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let t = materialize_packaged_templates(&dir.path().join("packer")).unwrap();
    let iso = dir.path().join("vyos.iso");
    std::fs::write(&iso, b"iso").unwrap();
    let stages = [
        (&t.stage1, format!("source_iso_path={}", iso.display())),
        (&t.stage2, format!("source_disk_path={}", iso.display())),
    ];
    for (template, input) in stages {
        let out = std::process::Command::new("packer")
            .env("CHECKPOINT_DISABLE", "1")
            .arg("validate")
            .arg(format!("-var-file={}", t.vars_file.display()))
            .args(["-var", &input])
            .args([
                "-var",
                &format!("build_output_directory={}", dir.path().join("o").display()),
            ])
            .arg(template)
            .output()
            .expect("packer is installed (apt-get install -y packer)");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "packer validate {}: {text}",
            template.display()
        );
        assert!(
            !text.contains("Undefined"),
            "vars file sets undeclared variables: {text}"
        );
    }
}

/// Issue #10 point 2: the rendered stage-2 template ends with the sanitation provisioner, and the
/// rendered script, run on a fake root (`HYOPS_SANITIZE_ROOT`), leaves no SSH host key, an empty
/// machine-id, no cloud-init state, no hw-id or persistent-net rule, no `service ssh` and a
/// locked build password in the saved config.
#[test]
fn packaged_stage2_sanitizes_the_template_before_shutdown() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let t = materialize_packaged_templates(&dir.path().join("packer")).unwrap();
    let stage2 = std::fs::read_to_string(&t.stage2).unwrap();
    let last = stage2.rfind("provisioner \"").unwrap();
    assert!(
        stage2[last..].contains("sanitize.sh")
            && stage2[last..].contains("HYOPS_LOCK_BUILD_PASSWORD"),
        "sanitation is not the last provisioner:\n{}",
        &stage2[last..]
    );
    let script = dir.path().join("packer/sanitize.sh");
    assert!(script.exists());

    let root = dir.path().join("root");
    for d in [
        "etc/ssh",
        "etc/udev/rules.d",
        "var/lib/cloud/instance",
        "var/lib/dhcp",
        "var/lib/dbus",
        "config",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    for f in [
        "etc/ssh/ssh_host_rsa_key",
        "etc/ssh/ssh_host_ed25519_key.pub",
        "etc/udev/rules.d/70-persistent-net.rules",
        "var/lib/dhcp/dhclient.eth0.leases",
        "var/lib/cloud/instance/boot-finished",
    ] {
        std::fs::write(root.join(f), b"x").unwrap();
    }
    std::fs::write(
        root.join("etc/machine-id"),
        b"0123456789abcdef0123456789abcdef\n",
    )
    .unwrap();
    std::fs::write(root.join("var/lib/dbus/machine-id"), b"0123\n").unwrap();
    let config = "interfaces {\n    ethernet eth0 {\n        hw-id 52:54:00:12:34:56\n    }\n}\n\
service {\n    ntp {\n        server time1.vyos.net {\n        }\n    }\n    ssh {\n        port 22\n    }\n}\n\
system {\n    login {\n        user vyos {\n            authentication {\n                \
encrypted-password $6$rounds=656000$salt$hash\n                plaintext-password \"\"\n            }\n        }\n    }\n}\n";
    std::fs::write(root.join("config/config.boot"), config).unwrap();

    let out = std::process::Command::new("bash")
        .arg(&script)
        .env("HYOPS_SANITIZE_ROOT", &root)
        .env("HYOPS_LOCK_BUILD_PASSWORD", "true")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let ssh_keys: Vec<_> = std::fs::read_dir(root.join("etc/ssh")).unwrap().collect();
    assert!(ssh_keys.is_empty(), "host keys remain: {ssh_keys:?}");
    assert_eq!(std::fs::read(root.join("etc/machine-id")).unwrap(), b"");
    assert!(!root.join("var/lib/dbus/machine-id").exists());
    assert_eq!(
        std::fs::read_dir(root.join("var/lib/cloud"))
            .unwrap()
            .count(),
        0
    );
    assert!(!root
        .join("etc/udev/rules.d/70-persistent-net.rules")
        .exists());
    assert!(!root.join("var/lib/dhcp/dhclient.eth0.leases").exists());
    let saved = std::fs::read_to_string(root.join("config/config.boot")).unwrap();
    assert!(!saved.contains("hw-id"), "{saved}");
    assert!(!saved.contains("ssh"), "{saved}");
    assert!(saved.contains("ntp {"), "unrelated config kept: {saved}");
    assert!(saved.contains("encrypted-password \"!\""), "{saved}");
    assert!(!saved.contains("$6$"), "{saved}");
}

#[test]
fn packaged_stage1_accepts_the_debug_knobs() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let t = materialize_packaged_templates(&dir.path().join("packer")).unwrap();
    let out = std::process::Command::new("packer")
        .env("CHECKPOINT_DISABLE", "1")
        .arg("validate")
        .arg(format!("-var-file={}", t.vars_file.display()))
        .args([
            "-var",
            "source_iso_path=/tmp/x.iso",
            "-var",
            "build_output_directory=/tmp/o",
        ])
        .args(["-var", "serial_device=file:/tmp/serial.log"])
        .args(["-var", "monitor_device=unix:/tmp/mon.sock,server,nowait"])
        .args(["-var", "boot_wait=5s", "-var", "qemu_accelerator=tcg"])
        .args(["-var", r#"boot_command=["vyos<enter>"]"#])
        .arg(&t.stage1)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn fingerprint_tracks_byte_affecting_inputs_only() {
    init();
    let f = create_fixture();
    let env = f.env();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let fp = |spec: &ImageSpec| {
        let settings = BuildSettings::resolve(&spec.build, &env).unwrap();
        rt.block_on(hyops::engine::cache::fingerprint(
            spec,
            &settings,
            &CancellationToken::new(),
        ))
        .unwrap()
        .hex
    };
    let base = f.spec("make-image");
    let base_fp = fp(&base);
    assert_eq!(base_fp.len(), 64);
    assert_eq!(fp(&base), base_fp, "not deterministic");

    let mut published = base.clone();
    published.publish = Some(hyops::engine::spec::PublishSpec {
        backend: Some(hyops::engine::spec::Backend::File),
        bucket: Some("/srv/repo".into()),
        ..Default::default()
    });
    published.notes = Some("notes do not change bytes".into());
    assert_eq!(fp(&published), base_fp);

    let mut changed = Vec::new();
    let mut s = base.clone();
    s.build.command = Some("make-other-image".into());
    changed.push(s);
    let mut s = base.clone();
    s.build.disk_size_gb = Some(20);
    changed.push(s);
    let mut s = base.clone();
    s.build.environment.insert("EXTRA".into(), "1".into());
    changed.push(s);
    let mut s = base.clone();
    s.source_iso_sha256 = "1".repeat(64);
    changed.push(s);
    let mut s = base.clone();
    s.additional_formats = vec![hyops::engine::spec::ExtraFormat::RawXz];
    changed.push(s);
    for s in &changed {
        assert_ne!(fp(s), base_fp, "{:?}", s.build);
    }

    // Packer: the template's contents count, not just its path.
    let tpl = f.path("custom.pkr.hcl");
    std::fs::write(&tpl, "variable \"a\" {}\n").unwrap();
    let mut p = base.clone();
    p.build.method = Some(BuildMethod::Packer);
    p.build.command = None;
    p.build.packer_template = Some(tpl.clone());
    let before = fp(&p);
    std::fs::write(&tpl, "variable \"b\" {}\n").unwrap();
    assert_ne!(fp(&p), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_packer_stage2_keeps_the_stage1_disk_and_claims_nothing() {
    init();
    let f = fixture();
    // Stage 1 succeeds (writes a disk), stage 2 fails.
    let body = recording_prelude(&f.rec)
        + "out=''; prev=''\n\
           for a in \"$@\"; do if [ \"$prev\" = -var ]; then case \"$a\" in build_output_directory=*) out=\"${a#build_output_directory=}\";; esac; fi; prev=\"$a\"; done\n\
           if [ \"$n\" = 1 ]; then echo 'stage 2: ssh handshake timed out' >&2; exit 1; fi\n\
           mkdir -p \"$out\"; printf stage1-disk > \"$out/image.qcow2\"";
    write_script(&f.bin.join("packer"), &body);
    let c = create_fixture();
    let mut spec = c.spec("unused");
    spec.build.method = Some(BuildMethod::Packer);
    spec.build.command = None;
    spec.build.skip_preflight = Some(true);
    spec.build.environment.insert(
        "PATH".into(),
        format!("{}:{}", f.bin.display(), std::env::var("PATH").unwrap()),
    );
    let env = c.env();
    let err = create(&spec, &env, CancellationToken::new(), &NoProgress)
        .await
        .unwrap_err();
    let EngineError::Build {
        kept: Some(kept), ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert!(err.to_string().contains("ssh handshake timed out"), "{err}");
    let disk = Path::new(kept).join("stage1-output/image.qcow2");
    assert_eq!(std::fs::read_to_string(&disk).unwrap(), "stage1-disk");
    let builds = env.cache_dir().join("builds");
    let leftovers: Vec<String> = std::fs::read_dir(&builds)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
