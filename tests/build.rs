//! Build engine: supervisor (real shells), builder invocation contracts (recording stand-ins on
//! PATH), packaged packer templates (real `packer validate`), preflight messages (injected probes),
//! and the create path end to end with the command builder and real qemu-img.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::Duration;

use hyops::engine::build::{
    self, materialize_packaged_templates, Accelerator, BuildContext, BuildError, BuildSettings,
};
use hyops::engine::create::create;
use hyops::engine::env::EngineEnv;
use hyops::engine::error::EngineError;
use hyops::engine::preflight::{run_preflight, PreflightRequest, Probes, SystemProbes};
use hyops::engine::progress::NoProgress;
use hyops::engine::spec::{BuildMethod, BuildSpec, ImageSpec, SmokeVerifySpec};
use hyops::engine::supervisor::{self, CommandSpec, SupervisorError};
use hyops::engine::verify::{smoke_verify, VerifyError, VerifyRequest};
use sha2::Digest;
use tokio_util::sync::CancellationToken;

const SECRET_JSON: &str = "{\"private_key\":\"TOPSECRET-SA-JSON\"}";
const SECRET_AWS: &str = "TOPSECRET-AWS";

/// Every test runs with credentials in the parent environment, so each child's recorded
/// environment proves they were removed.
fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::env::set_var("HYOPS_VYOS_GCS_SA_JSON", SECRET_JSON);
        std::env::set_var("HYOPS_VYOS_GCS_SA_JSON_FILE", "/nonexistent/parent-sa.json");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET_AWS);
    });
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks existence.
    unsafe { libc::kill(pid, 0) == 0 }
}

fn group_gone(pgid: i32) -> bool {
    // SAFETY: signal 0 to a process group only checks existence.
    let rc = unsafe { libc::kill(-pgid, 0) };
    rc == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

async fn wait_for_file(path: &Path) -> String {
    // Generous: the machine may be busy compiling.
    for _ in 0..6000 {
        if let Ok(text) = std::fs::read_to_string(path) {
            if text.ends_with('\n') {
                return text;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{} never appeared", path.display());
}

fn assert_no_credentials(env_dump: &str) {
    assert!(
        !env_dump.contains("TOPSECRET"),
        "a secret reached a child: {env_dump}"
    );
    assert!(
        !env_dump.contains("/nonexistent/parent-sa.json"),
        "the parent's credential file path reached a child"
    );
    for line in env_dump.split(['\n', '\0']) {
        assert!(
            !line.starts_with("HYOPS_VYOS_GCS_SA_JSON"),
            "credential variable in child env: {line}"
        );
    }
}

// ---------------------------------------------------------------- supervisor (real shells)

#[tokio::test]
async fn cancel_kills_whole_process_group_including_grandchild() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let script =
        format!("echo $$ > {d}/leader; (trap '' TERM; exec sleep 300) & echo $! > {d}/child; wait");
    let spec = CommandSpec::bash_script(script, "group-test", dir.path().join("log"))
        .grace(Duration::from_millis(300));
    let cancel = CancellationToken::new();
    let task = {
        let cancel = cancel.clone();
        tokio::spawn(async move { supervisor::run(&spec, &cancel).await })
    };
    let leader: i32 = wait_for_file(&dir.path().join("leader"))
        .await
        .trim()
        .parse()
        .unwrap();
    let child: i32 = wait_for_file(&dir.path().join("child"))
        .await
        .trim()
        .parse()
        .unwrap();
    assert!(alive(child));
    cancel.cancel();
    let err = task.await.unwrap().unwrap_err();
    assert!(matches!(err, SupervisorError::Cancelled { .. }), "{err:?}");
    assert!(
        group_gone(leader),
        "process group {leader} still has members"
    );
    assert!(
        !alive(child),
        "grandchild {child} (ignoring SIGTERM) survived"
    );
}

#[tokio::test]
async fn dropping_the_run_kills_the_group() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let script = format!("echo $$ > {d}/leader; sleep 300 & echo $! > {d}/child; wait");
    let spec = CommandSpec::bash_script(script, "dropped", dir.path().join("log"));
    let task = tokio::spawn(async move { supervisor::run(&spec, &CancellationToken::new()).await });
    let leader: i32 = wait_for_file(&dir.path().join("leader"))
        .await
        .trim()
        .parse()
        .unwrap();
    let child: i32 = wait_for_file(&dir.path().join("child"))
        .await
        .trim()
        .parse()
        .unwrap();
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    for _ in 0..3000 {
        if group_gone(leader) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(group_gone(leader), "group of a dropped run survived");
    assert!(!alive(child));
}

#[tokio::test]
async fn timeout_terminates_group_and_reports_log_tail() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let script = format!("echo $$ > {d}/leader; echo progress-line-before-hang; sleep 300");
    // Generous timeout: the leader must have written its pid before it passes.
    let spec = CommandSpec::program("/bin/bash", dir.path().join("log"))
        .args(["-c", &script])
        .timeout(Duration::from_secs(8))
        .grace(Duration::from_millis(300));
    let err = supervisor::run(&spec, &CancellationToken::new())
        .await
        .unwrap_err();
    let leader: i32 = std::fs::read_to_string(dir.path().join("leader"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    match &err {
        SupervisorError::TimedOut { tail, .. } => {
            assert!(tail.contains("progress-line-before-hang"), "{tail}")
        }
        other => panic!("expected TimedOut, got {other:?}"),
    }
    assert!(group_gone(leader));
}

#[tokio::test]
async fn failed_exit_carries_status_and_log_tail() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let script = "for i in $(seq 1 100); do echo noise-$i; done; echo 'the-real-cause' >&2; exit 3";
    let spec = CommandSpec::bash_script(script, "failing", dir.path().join("log"));
    let err = supervisor::run(&spec, &CancellationToken::new())
        .await
        .unwrap_err();
    match &err {
        SupervisorError::Exited { code, tail, .. } => {
            assert_eq!(*code, Some(3));
            assert!(tail.contains("the-real-cause"), "{tail}");
            assert!(!tail.contains("noise-1\n"), "tail is not bounded: {tail}");
        }
        other => panic!("expected Exited, got {other:?}"),
    }
    assert!(err.to_string().contains("the-real-cause"));
}

#[tokio::test]
async fn missing_program_is_could_not_start() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let spec = CommandSpec::program("/nonexistent/hyops-no-such-tool", dir.path().join("log"));
    let err = supervisor::run(&spec, &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(matches!(err, SupervisorError::Spawn { .. }), "{err:?}");
}

#[tokio::test]
async fn child_env_has_spec_vars_and_no_credentials() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("env");
    let spec = CommandSpec::bash_script(
        format!("env > {}", dump.display()),
        "env",
        dir.path().join("log"),
    )
    .env("HYOPS_VYOS_ARTIFACT_KEY", "vyos-test")
    .env("HYOPS_VYOS_GCS_SA_JSON", "smuggled");
    supervisor::run(&spec, &CancellationToken::new())
        .await
        .unwrap();
    let env = std::fs::read_to_string(&dump).unwrap();
    assert!(env.contains("HYOPS_VYOS_ARTIFACT_KEY=vyos-test"));
    assert!(env.lines().any(|l| l.starts_with("PATH=")));
    assert!(!env.contains("smuggled"));
    assert_no_credentials(&env);
}

#[tokio::test]
async fn publish_command_sees_only_the_credential_file_path() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("env");
    let cred = dir.path().join("sa.json");
    let spec = CommandSpec::bash_script(
        format!("env > {}", dump.display()),
        "publish",
        dir.path().join("log"),
    )
    .credential_file(&cred);
    supervisor::run(&spec, &CancellationToken::new())
        .await
        .unwrap();
    let env = std::fs::read_to_string(&dump).unwrap();
    let gcs: Vec<&str> = env
        .lines()
        .filter(|l| l.starts_with("HYOPS_VYOS_GCS_SA_JSON"))
        .collect();
    assert_eq!(
        gcs,
        vec![format!("HYOPS_VYOS_GCS_SA_JSON_FILE={}", cred.display()).as_str()]
    );
    assert!(!env.contains("TOPSECRET"));
}

#[tokio::test]
async fn captured_stdout_is_separate_and_stderr_goes_to_log() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let spec = CommandSpec::bash_script(
        "echo diagnostics >&2; echo https://example.test/x",
        "pub",
        &log,
    )
    .capture_stdout();
    let out = supervisor::run(&spec, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        out.stdout.as_deref().map(str::trim),
        Some("https://example.test/x")
    );
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("diagnostics"));
    let mode = std::fs::metadata(&log).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

// ---------------------------------------------------------------- builder invocation contracts

fn write_script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/bash\nset -e\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A stand-in that records argv (NUL-separated), env and cwd as `<rec>/{argv,env,cwd}.<n>`.
fn recording_prelude(rec: &Path) -> String {
    let r = rec.display();
    format!(
        "mkdir -p {r}; n=$(ls {r} | grep -c '^argv' || true)\n\
         for a in \"$@\"; do printf '%s\\0' \"$a\"; done > {r}/argv.$n\n\
         env > {r}/env.$n\npwd > {r}/cwd.$n\n"
    )
}

fn recorded_argv(rec: &Path, n: usize) -> Vec<String> {
    let raw = std::fs::read(rec.join(format!("argv.{n}"))).unwrap();
    raw.split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8(s.to_vec()).unwrap())
        .collect()
}

struct Fixture {
    dir: tempfile::TempDir,
    bin: PathBuf,
    rec: PathBuf,
    iso: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    let rec = dir.path().join("rec");
    std::fs::create_dir_all(&bin).unwrap();
    let iso = dir.path().join("vyos.iso");
    std::fs::write(&iso, b"not really an iso").unwrap();
    Fixture { dir, bin, rec, iso }
}

fn env_with_path(bin: &Path, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
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
    use hyops::engine::cache::fingerprint;
    init();
    let f = create_fixture();
    let env = f.env();
    let fp = |spec: &ImageSpec| {
        fingerprint(spec, &BuildSettings::resolve(&spec.build, &env).unwrap()).unwrap()
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

// ---------------------------------------------------------------- preflight (injected probes)

#[derive(Clone)]
struct FakeProbes {
    os: &'static str,
    existing: Vec<PathBuf>,
    programs: Vec<&'static str>,
    kvm: Result<i32, String>,
    euid: u32,
    sudo: bool,
    versions: BTreeMap<&'static str, &'static str>,
    free: u64,
}

impl Default for FakeProbes {
    fn default() -> Self {
        FakeProbes {
            os: "linux",
            existing: Vec::new(),
            programs: vec![
                "qemu-img",
                "packer",
                "qemu-system-x86_64",
                "ansible-playbook",
            ],
            kvm: Ok(12),
            euid: 0,
            sudo: false,
            versions: BTreeMap::from([
                ("qemu-img", "qemu-img version 7.2.0"),
                ("packer", "Packer v1.6.6"),
                ("qemu-system-x86_64", "QEMU emulator version 7.2.0"),
                ("ansible-playbook", "ansible-playbook [core 2.14.3]"),
            ]),
            free: 100 << 30,
        }
    }
}

impl Probes for FakeProbes {
    fn os(&self) -> String {
        self.os.to_owned()
    }
    fn path_exists(&self, path: &Path) -> bool {
        self.existing.iter().any(|p| p == path)
    }
    fn find_program(&self, name: &str) -> Option<PathBuf> {
        self.programs
            .contains(&name)
            .then(|| PathBuf::from(format!("/usr/bin/{name}")))
    }
    fn kvm_api_version(&self) -> Result<i32, String> {
        self.kvm.clone()
    }
    fn euid(&self) -> u32 {
        self.euid
    }
    async fn passwordless_sudo(&self) -> bool {
        self.sudo
    }
    async fn tool_version(&self, tool: &str) -> Option<String> {
        if !self.programs.contains(&tool) {
            return None;
        }
        self.versions.get(tool).map(|v| (*v).to_owned())
    }
    fn free_bytes(&self, _dir: &Path) -> Result<u64, String> {
        Ok(self.free)
    }
}

fn request(method: BuildMethod) -> PreflightRequest {
    PreflightRequest {
        method,
        allow_tcg: false,
        work_dir: PathBuf::from("/var/tmp/hyops-work"),
        iso_bytes: 1 << 30,
        disk_size_gb: 10,
    }
}

async fn single_failure(probes: FakeProbes, req: PreflightRequest) -> (String, String, String) {
    let err = run_preflight(&probes, &req).await.unwrap_err();
    assert_eq!(err.failures.len(), 1, "{err}");
    let f = &err.failures[0];
    (f.check.clone(), f.found.clone(), f.fix.clone())
}

#[tokio::test]
async fn preflight_passes_on_a_good_packer_host() {
    let report = run_preflight(&FakeProbes::default(), &request(BuildMethod::Packer))
        .await
        .unwrap();
    assert_eq!(report.accelerator, Accelerator::Kvm);
    assert_eq!(
        report.tools.get("packer").map(String::as_str),
        Some("Packer v1.6.6")
    );
    assert!(report.warnings.is_empty());
}

#[tokio::test]
async fn preflight_refuses_non_linux() {
    let probes = FakeProbes {
        os: "macos",
        ..FakeProbes::default()
    };
    let (check, found, fix) = single_failure(probes, request(BuildMethod::Packer)).await;
    assert_eq!(check, "os");
    assert!(found.contains("macos"));
    assert!(fix.contains("Linux"));
}

#[tokio::test]
async fn preflight_refuses_proxmox_host() {
    let probes = FakeProbes {
        existing: vec![PathBuf::from("/etc/pve")],
        programs: vec!["qemu-img", "ansible-playbook", "qm", "pveversion"],
        ..FakeProbes::default()
    };
    let (check, found, fix) = single_failure(probes, request(BuildMethod::VyosVmImages)).await;
    assert_eq!(check, "proxmox-host");
    assert!(
        found.contains("/etc/pve") && found.contains("qm") && found.contains("pveversion"),
        "{found}"
    );
    assert!(fix.contains("not on the hypervisor"));
}

#[tokio::test]
async fn preflight_refuses_tcg_unless_allowed() {
    let probes = FakeProbes {
        kvm: Err("cannot open /dev/kvm: No such file or directory".into()),
        ..FakeProbes::default()
    };
    let (check, found, fix) = single_failure(probes.clone(), request(BuildMethod::Packer)).await;
    assert_eq!(check, "kvm");
    assert!(found.contains("/dev/kvm"));
    assert!(
        fix.contains("allow_tcg") && fix.contains("HYOPS_VYOS_ALLOW_TCG=1"),
        "{fix}"
    );

    let mut req = request(BuildMethod::Packer);
    req.allow_tcg = true;
    let report = run_preflight(&probes, &req).await.unwrap();
    assert_eq!(report.accelerator, Accelerator::Tcg);
    assert!(report.warnings[0].contains("TCG"));
}

#[tokio::test]
async fn preflight_wrong_kvm_api_version_is_named() {
    let probes = FakeProbes {
        kvm: Ok(11),
        ..FakeProbes::default()
    };
    let (check, found, _) = single_failure(probes, request(BuildMethod::Packer)).await;
    assert_eq!(check, "kvm");
    assert!(found.contains("11"), "{found}");
}

#[tokio::test]
async fn preflight_needs_root_or_passwordless_sudo_for_vyos_vm_images() {
    let probes = FakeProbes {
        euid: 1000,
        sudo: false,
        ..FakeProbes::default()
    };
    let (check, found, fix) =
        single_failure(probes.clone(), request(BuildMethod::VyosVmImages)).await;
    assert_eq!(check, "root");
    assert!(found.contains("uid 1000") && found.contains("sudo -n true"));
    assert!(fix.contains("passwordless sudo"));

    let with_sudo = FakeProbes {
        sudo: true,
        ..probes
    };
    let report = run_preflight(&with_sudo, &request(BuildMethod::VyosVmImages))
        .await
        .unwrap();
    assert!(report.use_sudo);
}

#[tokio::test]
async fn preflight_names_missing_and_old_tools() {
    let missing = FakeProbes {
        programs: vec!["qemu-img", "qemu-system-x86_64"],
        ..FakeProbes::default()
    };
    let (check, found, fix) = single_failure(missing, request(BuildMethod::Packer)).await;
    assert_eq!(check, "tool:packer");
    assert!(found.contains("not found"));
    assert!(fix.contains("apt-get install packer"));

    let mut old = FakeProbes::default();
    old.versions.insert("packer", "Packer v1.4.5");
    let (check, found, _) = single_failure(old, request(BuildMethod::Packer)).await;
    assert_eq!(check, "tool:packer");
    assert!(found.contains("1.4"), "{found}");

    let no_ansible = FakeProbes {
        programs: vec!["qemu-img"],
        ..FakeProbes::default()
    };
    let (check, _, fix) = single_failure(no_ansible, request(BuildMethod::VyosVmImages)).await;
    assert_eq!(check, "tool:ansible-playbook");
    assert!(fix.contains("community.general"));
}

#[tokio::test]
async fn preflight_names_short_disk_space() {
    let probes = FakeProbes {
        free: 3 << 30,
        ..FakeProbes::default()
    };
    let (check, found, fix) = single_failure(probes, request(BuildMethod::Packer)).await;
    assert_eq!(check, "disk-space");
    assert!(
        found.contains("3.0 GiB free") && found.contains("need 23.0 GiB"),
        "{found}"
    );
    assert!(fix.contains("disk_size_gb"));
}

#[tokio::test]
async fn preflight_for_command_needs_only_qemu_img_and_disk() {
    let probes = FakeProbes {
        os: "linux",
        existing: vec![PathBuf::from("/etc/pve")],
        programs: vec!["qemu-img"],
        kvm: Err("no kvm".into()),
        euid: 1000,
        ..FakeProbes::default()
    };
    run_preflight(&probes, &request(BuildMethod::Command))
        .await
        .unwrap();
    let no_qemu_img = FakeProbes {
        programs: vec![],
        ..probes
    };
    let (check, _, _) = single_failure(no_qemu_img, request(BuildMethod::Command)).await;
    assert_eq!(check, "tool:qemu-img");
}

#[tokio::test]
async fn system_probes_read_this_host() {
    init();
    let p = SystemProbes;
    assert_eq!(p.os(), "linux");
    assert_eq!(
        p.kvm_api_version(),
        Ok(12),
        "this machine has a working /dev/kvm"
    );
    let v = p
        .tool_version("qemu-img")
        .await
        .expect("qemu-img installed");
    assert!(v.contains("qemu-img version"), "{v}");
    assert!(p.free_bytes(Path::new("/tmp/does/not/exist/yet")).unwrap() > 0);
    assert!(p.tool_version("hyops-no-such-tool").await.is_none());
}

// ---------------------------------------------------------------- smoke verify

#[tokio::test]
async fn smoke_verify_default_gate_and_command_override() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let good = dir.path().join("good.qcow2");
    let tiny = dir.path().join("tiny.qcow2");
    for (p, size) in [(&good, "2G"), (&tiny, "64M")] {
        let st = std::process::Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2"])
            .arg(p)
            .arg(size)
            .status()
            .unwrap();
        assert!(st.success());
    }
    let env = BTreeMap::new();
    let default = SmokeVerifySpec::default();
    let req = |image: &Path, smoke: &SmokeVerifySpec| -> VerifyOutcomeFuture {
        let image = image.to_owned();
        let smoke = smoke.clone();
        let env = env.clone();
        let work = dir.path().to_owned();
        let log = log.clone();
        Box::pin(async move {
            smoke_verify(
                &VerifyRequest {
                    image: &image,
                    smoke: &smoke,
                    env: &env,
                    workdir: &work,
                    log_path: &log,
                },
                &CancellationToken::new(),
            )
            .await
        })
    };
    let ok = req(&good, &default).await.unwrap();
    assert_eq!(ok.detected_format.as_deref(), Some("qcow2"));
    assert_eq!(ok.virtual_size, Some(2 << 30));

    let err = req(&tiny, &default).await.unwrap_err();
    assert!(matches!(err, VerifyError::Refused { .. }));
    assert!(err.to_string().contains("virtual size"), "{err}");

    let failing = SmokeVerifySpec {
        command: Some("echo verify-said-no >&2; exit 1".into()),
        required: true,
    };
    let err = req(&good, &failing).await.unwrap_err();
    assert!(err.to_string().contains("verify-said-no"), "{err}");

    let optional = SmokeVerifySpec {
        required: false,
        ..failing
    };
    let warned = req(&good, &optional).await.unwrap();
    assert!(
        warned.warnings[0].contains("not required"),
        "{:?}",
        warned.warnings
    );
}

type VerifyOutcomeFuture = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = Result<hyops::engine::verify::VerifyOutcome, VerifyError>>,
    >,
>;

// ---------------------------------------------------------------- create, end to end

struct CreateFixture {
    dir: tempfile::TempDir,
    iso_url: String,
    iso_sha256: String,
}

fn create_fixture() -> CreateFixture {
    let dir = tempfile::tempdir().unwrap();
    let iso = dir.path().join("fixture.iso");
    let bytes: Vec<u8> = (0..(256 * 1024u32)).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&iso, &bytes).unwrap();
    CreateFixture {
        iso_url: url::Url::from_file_path(&iso).unwrap().to_string(),
        iso_sha256: hex::encode(sha2::Sha256::digest(&bytes)),
        dir,
    }
}

impl CreateFixture {
    fn spec(&self, command: &str) -> ImageSpec {
        serde_json::from_value(serde_json::json!({
            "artifact_key": "vyos-test",
            "artifact_version": "1.5-test",
            "source_iso_url": self.iso_url,
            "source_iso_sha256": self.iso_sha256,
            "build": { "method": "command", "command": command, "disk_size_gb": 2 }
        }))
        .unwrap()
    }

    fn env(&self) -> EngineEnv {
        EngineEnv::from_env().with_cache_dir(self.dir.path().join("cache"))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn sha256_file(path: &Path) -> String {
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_with_command_builder_then_cache_hit_then_rebuild() {
    init();
    let f = create_fixture();
    let marker = f.path("runs");
    let env_dump = f.path("build-env");
    let command = format!(
        "echo run >> {m}; env > {e}; qemu-img create -q -f qcow2 \"$HYOPS_VYOS_ARTIFACT_LOCAL_PATH\" 1G",
        m = marker.display(),
        e = env_dump.display()
    );
    let spec = f.spec(&command);
    let env = f.env();

    let first = create(&spec, &env, CancellationToken::new(), &NoProgress)
        .await
        .unwrap();
    assert!(!first.cache_hit);
    let c = &first.contract;
    assert_eq!(c.artifact_key, "vyos-test");
    assert_eq!(c.artifact_format, "qcow2");
    assert_eq!(c.artifact_version, "1.5-test");
    assert!(!c.published);
    assert!(c.artifact_url.starts_with("file:///"), "{}", c.artifact_url);
    assert_eq!(c.artifact_url, c.artifact_storage_uri);
    let local = PathBuf::from(&c.artifact_local_path);
    assert_eq!(sha256_file(&local), c.artifact_sha256);
    assert_eq!(
        std::fs::metadata(&local).unwrap().len(),
        c.artifact_size_bytes
    );
    assert_eq!(c.artifact_virtual_size_bytes, 1 << 30);
    assert_eq!(c.source_iso_sha256, f.iso_sha256);
    assert!(c.build_id.starts_with("vyos-test-"), "{}", c.build_id);
    assert_eq!(c.artifacts["vyos-test"].artifact_sha256, c.artifact_sha256);

    let build_env = std::fs::read_to_string(&env_dump).unwrap();
    for var in [
        "HYOPS_VYOS_ARTIFACT_KEY=vyos-test",
        "HYOPS_VYOS_ARTIFACT_FORMAT=qcow2",
        "HYOPS_VYOS_ARTIFACT_VERSION=1.5-test",
        "HYOPS_VYOS_DISK_SIZE_GB=2",
        "HYOPS_VYOS_CLOUD_INIT_DS=NoCloud,ConfigDrive",
        "HYOPS_VYOS_GUEST_AGENT=qemu",
    ] {
        assert!(build_env.lines().any(|l| l == var), "missing {var}");
    }
    assert!(build_env.contains(&format!("HYOPS_VYOS_SOURCE_ISO_URL={}", f.iso_url)));
    assert!(build_env
        .lines()
        .any(|l| l.starts_with("HYOPS_VYOS_SOURCE_ISO_PATH=/")));
    assert_no_credentials(&build_env);

    let second = create(&spec, &env, CancellationToken::new(), &NoProgress)
        .await
        .unwrap();
    assert!(second.cache_hit);
    assert_eq!(second.contract, first.contract);
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap().lines().count(),
        1,
        "builder re-ran"
    );

    let mut rebuild = spec.clone();
    rebuild.rebuild_if_exists = true;
    let third = create(&rebuild, &env, CancellationToken::new(), &NoProgress)
        .await
        .unwrap();
    assert!(!third.cache_hit);
    assert_eq!(std::fs::read_to_string(&marker).unwrap().lines().count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_delivers_to_artifact_local_path_with_extra_formats() {
    init();
    let f = create_fixture();
    let mut spec = f.spec("qemu-img create -q -f raw \"$HYOPS_VYOS_ARTIFACT_LOCAL_PATH\" 1G");
    spec.artifact_format = hyops::engine::spec::ArtifactFormat::Raw;
    spec.additional_formats = vec![hyops::engine::spec::ExtraFormat::RawZst];
    let target = f.path("out/images/vyos-edge.raw");
    spec.artifact_local_path = Some(target.clone());
    let out = create(&spec, &f.env(), CancellationToken::new(), &NoProgress)
        .await
        .unwrap();
    let c = out.contract;
    assert_eq!(c.artifact_local_path, target.display().to_string());
    assert_eq!(sha256_file(&target), c.artifact_sha256);
    let extra = &c.artifacts["vyos-test+raw.zst"];
    assert_eq!(
        extra.artifact_local_path,
        f.path("out/images/vyos-edge.raw.zst").display().to_string()
    );
    assert_eq!(
        sha256_file(Path::new(&extra.artifact_local_path)),
        extra.artifact_sha256
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_mid_build_kills_group_and_claims_nothing() {
    init();
    let f = create_fixture();
    let d = f.dir.path().display();
    let command = format!("echo $$ > {d}/leader; sleep 300 & echo $! > {d}/child; wait");
    let mut spec = f.spec(&command);
    let target = f.path("never/vyos.qcow2");
    spec.artifact_local_path = Some(target.clone());
    let env = f.env();
    let cancel = CancellationToken::new();
    let task = {
        let (spec, env, cancel) = (spec.clone(), env.clone(), cancel.clone());
        tokio::spawn(async move { create(&spec, &env, cancel, &NoProgress).await })
    };
    let leader: i32 = wait_for_file(&f.path("leader"))
        .await
        .trim()
        .parse()
        .unwrap();
    let child: i32 = wait_for_file(&f.path("child"))
        .await
        .trim()
        .parse()
        .unwrap();
    cancel.cancel();
    let err = task.await.unwrap().unwrap_err();
    assert!(
        matches!(err, EngineError::Cancelled { stage: "build" }),
        "{err:?}"
    );
    assert!(group_gone(leader), "builder group survived");
    assert!(!alive(child));
    assert!(!target.exists(), "an artifact was claimed");
    let builds = env.cache_dir().join("builds");
    let leftovers: Vec<String> = std::fs::read_dir(&builds)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "staging or entry left behind: {leftovers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_timeout_terminates_builder() {
    init();
    let f = create_fixture();
    let d = f.dir.path().display();
    let mut spec = f.spec(&format!("echo $$ > {d}/leader; sleep 300"));
    spec.timeouts.create = Some("15s".into());
    // Its own build slot (no queueing behind other tests' builds) so the builder starts well
    // before the timeout.
    let env = f.env().with_max_parallel_builds(97);
    let err = create(&spec, &env, CancellationToken::new(), &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::TimedOut { .. }), "{err:?}");
    let leader: i32 = std::fs::read_to_string(f.path("leader"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(group_gone(leader));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_build_reports_log_tail_and_sha_mismatch_is_refused() {
    init();
    let f = create_fixture();
    let spec = f.spec("echo 'builder exploded: no space' >&2; exit 7");
    let err = create(&spec, &f.env(), CancellationToken::new(), &NoProgress)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("builder exploded: no space"),
        "{err}"
    );

    let mut wrong = f.spec("true");
    wrong.source_iso_sha256 = "0".repeat(64);
    let err = create(&wrong, &f.env(), CancellationToken::new(), &NoProgress)
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        hyops::engine::error::ErrorKind::Refused,
        "{err}"
    );
}

#[tokio::test]
async fn invalid_spec_names_the_fields() {
    init();
    let f = create_fixture();
    let mut spec = f.spec("true");
    spec.artifact_key = "Bad Key".into();
    spec.build.command = None;
    spec.timeouts.create = Some("3 hours".into());
    let err = create(&spec, &f.env(), CancellationToken::new(), &NoProgress)
        .await
        .unwrap_err();
    let EngineError::Invalid(problems) = &err else {
        panic!("{err:?}")
    };
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        vec!["artifact_key", "build.command", "timeouts.create"],
        "{err}"
    );
}

#[test]
fn create_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let f = create_fixture();
    let spec = f.spec("true");
    let env = f.env();
    let fut = create(&spec, &env, CancellationToken::new(), &NoProgress);
    assert_send(&fut);
}

// ---------------------------------------------------------------- operator CLI

#[test]
fn cli_image_apply_prints_the_contract_json() {
    init();
    let f = create_fixture();
    let spec = serde_json::json!({
        "artifact_key": "vyos-cli",
        "artifact_version": "1.5-cli",
        "source_iso_url": f.iso_url,
        "source_iso_sha256": f.iso_sha256,
        "build": [{ "method": "command", "command": "qemu-img create -q -f qcow2 \"$HYOPS_VYOS_ARTIFACT_LOCAL_PATH\" 1G" }],
        "provider": { "cache_dir": f.path("cli-cache") }
    });
    let spec_path = f.path("spec.json");
    std::fs::write(&spec_path, serde_json::to_vec(&spec).unwrap()).unwrap();
    let args = |sub: &str| -> Vec<OsString> {
        vec![
            "terraform-provider-hyops".into(),
            "image".into(),
            sub.into(),
            "--config".into(),
            spec_path.clone().into(),
        ]
    };

    let mut out = Vec::new();
    let code = hyops::cli::run_to(args("validate"), &mut out);
    assert_eq!(code, std::process::ExitCode::SUCCESS);
    assert!(out.is_empty());

    let code = hyops::cli::run_to(args("apply"), &mut out);
    assert_eq!(code, std::process::ExitCode::SUCCESS);
    let contract: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(contract["artifact_key"], "vyos-cli");
    assert_eq!(contract["published"], false);
    let local = contract["artifact_local_path"].as_str().unwrap();
    assert!(
        local.starts_with(&f.path("cli-cache").display().to_string()),
        "{local}"
    );
    assert_eq!(
        sha256_file(Path::new(local)),
        contract["artifact_sha256"].as_str().unwrap()
    );

    let bad = f.path("bad.json");
    std::fs::write(&bad, br#"{"artifact_key": "x", "frobnicate": 1}"#).unwrap();
    let mut out = Vec::new();
    // As main.rs passes them: Strings, program name excluded.
    let code = hyops::cli::run_to(
        vec![
            "image".to_owned(),
            "validate".to_owned(),
            "--config".to_owned(),
            bad.display().to_string(),
        ],
        &mut out,
    );
    assert_eq!(code, std::process::ExitCode::from(2));
}

// ---------------------------------------------------------------- publish wiring (file backend)

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_publish_then_retry_reuses_the_build_and_writes_hyops_state() {
    init();
    let f = create_fixture();
    let marker = f.path("runs");
    let command = format!(
        "echo run >> {}; qemu-img create -q -f qcow2 \"$HYOPS_VYOS_ARTIFACT_LOCAL_PATH\" 1G",
        marker.display()
    );
    let runtime_root = f.path("hyops-runtime");
    // No credential configured for the publish command (the process environment carries a
    // deliberately unusable one).
    let env = f
        .env()
        .with_runtime_root(&runtime_root)
        .with_store_settings(hyops::engine::publish::StoreSettings::default());

    // First attempt: a publish command that fails after the build succeeded.
    let mut spec = f.spec(&command);
    spec.hyops_state_instance = Some("edge".into());
    spec.publish = Some(hyops::engine::spec::PublishSpec {
        command: Some("echo 'upload refused by remote' >&2; exit 9".into()),
        ..Default::default()
    });
    let err = create(&spec, &env, CancellationToken::new(), &NoProgress).await;
    let err = err.unwrap_err();
    assert!(
        err.to_string().contains("upload refused by remote"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&marker).unwrap().lines().count(), 1);
    assert!(!runtime_root.exists(), "state written for a failed create");

    let repo = f.path("repo");
    std::fs::create_dir_all(&repo).unwrap();
    spec.publish = Some(hyops::engine::spec::PublishSpec {
        backend: Some(hyops::engine::spec::Backend::File),
        bucket: Some(repo.display().to_string()),
        prefix: Some("vyos/images".into()),
        ..Default::default()
    });
    let out = create(&spec, &env, CancellationToken::new(), &NoProgress)
        .await
        .unwrap();
    assert!(out.cache_hit, "the retry rebuilt the image");
    assert_eq!(std::fs::read_to_string(&marker).unwrap().lines().count(), 1);
    let c = &out.contract;
    assert!(c.published);
    assert!(!c.published_at.is_empty());
    assert!(c.artifact_url.contains("vyos/images"), "{}", c.artifact_url);
    assert!(!c.manifest_url.is_empty());
    assert_ne!(c.artifact_url, format!("file://{}", c.artifact_local_path));
    let state =
        runtime_root.join("state/modules/core__shared__vyos-image-build/instances/edge.json");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(doc["status"], "ok");
    assert_eq!(
        doc["outputs"]["artifact_sha256"],
        c.artifact_sha256.as_str()
    );
}

/// Not a test on its own: the body of the child process spawned by
/// `cli_sigint_cancels_build_and_prints_nothing` (runs only with `HYOPS_TEST_CLI_ARGS` set).
#[test]
fn cli_child_entry() {
    let Ok(raw) = std::env::var("HYOPS_TEST_CLI_ARGS") else {
        return;
    };
    let args: Vec<String> = serde_json::from_str(&raw).unwrap();
    let mut out = Vec::new();
    let code = hyops::cli::run_to(args, &mut out);
    std::fs::write(std::env::var("HYOPS_TEST_CLI_STDOUT").unwrap(), &out).unwrap();
    let numeric = [0u8, 1, 2, 130]
        .into_iter()
        .find(|n| std::process::ExitCode::from(*n) == code)
        .unwrap_or(255);
    std::process::exit(i32::from(numeric));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_sigint_cancels_build_and_prints_nothing() {
    init();
    let f = create_fixture();
    let d = f.dir.path().display();
    let spec = serde_json::json!({
        "artifact_key": "vyos-sigint",
        "artifact_version": "1.5-sigint",
        "source_iso_url": f.iso_url,
        "source_iso_sha256": f.iso_sha256,
        "build": { "method": "command",
                   "command": format!("echo $$ > {d}/leader; sleep 300 & echo $! > {d}/child; wait") },
        "provider": { "cache_dir": f.path("cli-cache") }
    });
    let spec_path = f.path("spec.json");
    std::fs::write(&spec_path, serde_json::to_vec(&spec).unwrap()).unwrap();
    let args = serde_json::json!(["image", "apply", "--config", spec_path]);
    let stdout_path = f.path("cli-stdout");
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "cli_child_entry",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("HYOPS_TEST_CLI_ARGS", args.to_string())
        .env("HYOPS_TEST_CLI_STDOUT", &stdout_path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let leader: i32 = wait_for_file(&f.path("leader"))
        .await
        .trim()
        .parse()
        .unwrap();
    let grandchild: i32 = wait_for_file(&f.path("child"))
        .await
        .trim()
        .parse()
        .unwrap();
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id().unwrap() as i32, libc::SIGINT) };
    let status = child.wait().await.unwrap();
    let mut stderr = String::new();
    tokio::io::AsyncReadExt::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr)
        .await
        .unwrap();
    assert_eq!(status.code(), Some(130), "stderr: {stderr}");
    assert!(stderr.contains("cancelled"), "{stderr}");
    assert!(
        std::fs::read(&stdout_path).unwrap().is_empty(),
        "a contract was printed"
    );
    assert!(group_gone(leader));
    assert!(!alive(grandchild));
    let builds = f.path("cli-cache").join("builds");
    let leftovers: Vec<String> = std::fs::read_dir(&builds)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
