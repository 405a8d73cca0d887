//! `vyos-vm-images` under `sudo -n` (forced here; the tests run as root, so sudo always allows
//! it): root gets exactly the allow-listed names, never values on the command line, and a cancel
//! still ends the root-owned tree.

use super::builder_tests::{
    env_with_path, fixture, recorded_argv, recording_prelude, write_script, Fixture,
};
use super::*;

fn sudo_available() -> bool {
    std::process::Command::new("sudo")
        .args(["-n", "true"])
        .status()
        .is_ok_and(|s| s.success())
}

fn vyos_settings(f: &Fixture) -> BuildSettings {
    let checkout = f.dir.path().join("vyos-vm-images");
    std::fs::create_dir_all(&checkout).unwrap();
    let spec = BuildSpec {
        method: Some(BuildMethod::VyosVmImages),
        vyos_vm_images_dir: Some(checkout),
        ..BuildSpec::default()
    };
    BuildSettings::resolve(&spec, &EngineEnv::from_env()).unwrap()
}

async fn run_under_sudo(
    f: &Fixture,
    settings: &BuildSettings,
    env: &BTreeMap<String, String>,
    cancel: &CancellationToken,
) -> Result<PathBuf, BuildError> {
    let work = f.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let out = f.dir.path().join("out.qcow2");
    let log = f.dir.path().join("build.log");
    let iso_sha256 = "ab".repeat(32);
    let ctx = BuildContext {
        settings,
        iso_path: &f.iso,
        iso_sha256: &iso_sha256,
        output_path: &out,
        work_dir: &work,
        log_path: &log,
        env,
        accelerator: Accelerator::Kvm,
        use_sudo: true,
        cancel,
        progress: &NoProgress,
    };
    build::builder_for(settings.method).build(&ctx).await
}

#[tokio::test]
async fn sudo_build_gets_allowed_names_only_and_no_values_in_argv() {
    init();
    if !sudo_available() {
        eprintln!(
            "skipped: `sudo -n true` does not work here (scripts/install-tools.sh installs sudo)"
        );
        return;
    }
    let f = fixture();
    // The stand-in also records its parent's argv: sudo's command line.
    let body = recording_prelude(&f.rec)
        + &format!("tr '\\0' '\\n' < /proc/$PPID/cmdline > {}/sudo-argv\n", f.rec.display())
        + "for a in \"$@\"; do case \"$a\" in vyos_qemu_img=*) printf qcow > \"${a#vyos_qemu_img=}\";; esac; done";
    write_script(&f.bin.join("ansible-playbook"), &body);
    let settings = vyos_settings(&f);
    let user_home = f.dir.path().join("user-home");
    let env = env_with_path(
        &f.bin,
        &[
            ("HYOPS_VYOS_ARTIFACT_KEY", "vyos-sudo"),
            ("BUILD_ENV_ENTRY", "value-not-for-argv-4c2e"),
            ("HOME", user_home.to_str().unwrap()),
        ],
    );
    run_under_sudo(&f, &settings, &env, &CancellationToken::new())
        .await
        .unwrap();

    let sudo_argv = std::fs::read_to_string(f.rec.join("sudo-argv")).unwrap();
    let sudo_argv: Vec<&str> = sudo_argv.lines().collect();
    assert_eq!(sudo_argv[0], "sudo", "{sudo_argv:?}");
    assert_eq!(sudo_argv[1], "-n", "{sudo_argv:?}");
    // sudo tokenizes the list in place (commas become NULs in /proc/PID/cmdline), so the names
    // run from the flag to `--`.
    let dashdash = sudo_argv.iter().position(|a| *a == "--").unwrap();
    let preserve = sudo_argv[2..dashdash].join(",");
    let names: Vec<&str> = preserve
        .strip_prefix("--preserve-env=")
        .unwrap_or_else(|| panic!("{sudo_argv:?}"))
        .split(',')
        .collect();
    for want in [
        "HYOPS_VYOS_ARTIFACT_KEY",
        "BUILD_ENV_ENTRY",
        "ANSIBLE_NOCOLOR",
    ] {
        assert!(names.contains(&want), "{want} not preserved: {names:?}");
    }
    for never in [
        "HOME",
        "PATH",
        "USER",
        "LOGNAME",
        "SHELL",
        "AWS_SECRET_ACCESS_KEY",
        "HYOPS_VYOS_GCS_SA_JSON",
    ] {
        assert!(!names.contains(&never), "{never} preserved: {names:?}");
    }
    assert_eq!(
        sudo_argv[dashdash + 1],
        f.bin.join("ansible-playbook").display().to_string()
    );
    let joined = sudo_argv.join(" ");
    assert!(
        !joined.contains("value-not-for-argv-4c2e"),
        "a value reached argv: {joined}"
    );
    assert_eq!(recorded_argv(&f.rec, 0)[0], "qemu.yml");

    let root_env = std::fs::read_to_string(f.rec.join("env.0")).unwrap();
    assert!(root_env.contains("HYOPS_VYOS_ARTIFACT_KEY=vyos-sudo"));
    assert!(root_env.contains("BUILD_ENV_ENTRY=value-not-for-argv-4c2e"));
    assert!(
        !root_env.contains(&user_home.display().to_string()),
        "root got the user's HOME"
    );
    assert_no_credentials(&root_env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_ends_a_root_build_tree_that_ignores_sigterm() {
    init();
    if !sudo_available() {
        eprintln!(
            "skipped: `sudo -n true` does not work here (scripts/install-tools.sh installs sudo)"
        );
        return;
    }
    let f = fixture();
    let pids = f.dir.path().join("pids");
    std::fs::create_dir_all(&pids).unwrap();
    let p = pids.display();
    write_script(
        &f.bin.join("ansible-playbook"),
        &format!("trap '' TERM\nsleep 300 &\necho $! > {p}/grandchild.tmp; mv {p}/grandchild.tmp {p}/grandchild\necho $$ > {p}/leader.tmp; mv {p}/leader.tmp {p}/leader\nwait"),
    );
    let settings = vyos_settings(&f);
    let env = env_with_path(&f.bin, &[]);
    let cancel = CancellationToken::new();
    let canceller = {
        let cancel = cancel.clone();
        let pids = pids.clone();
        tokio::spawn(async move {
            wait_for_file(&pids.join("grandchild")).await;
            wait_for_file(&pids.join("leader")).await;
            cancel.cancel();
        })
    };
    let res = run_under_sudo(&f, &settings, &env, &cancel).await;
    canceller.await.unwrap();
    assert!(res.as_ref().is_err_and(BuildError::is_cancelled), "{res:?}");
    let leader: i32 = std::fs::read_to_string(pids.join("leader"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let grandchild: i32 = std::fs::read_to_string(pids.join("grandchild"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // /proc, not kill(pid, 0): a non-root run cannot signal root processes (EPERM).
    let exists = |pid: i32| Path::new(&format!("/proc/{pid}")).exists();
    assert!(!exists(leader), "the root playbook survived");
    assert!(!exists(grandchild), "the root playbook's child survived");
}
