//! Preflight: every check's failure message through injected probes, plus the real host's probes.

use super::*;

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
    /// per-directory prefix: (filesystem id, free bytes); overrides `free`
    filesystems: Vec<(&'static str, u64, u64)>,
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
            filesystems: Vec::new(),
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
    fn free_bytes(&self, dir: &Path) -> Result<u64, String> {
        Ok(self.filesystem(dir).map_or(self.free, |(_, _, free)| free))
    }
    fn filesystem_id(&self, dir: &Path) -> Option<u64> {
        self.filesystem(dir).map(|(_, id, _)| id)
    }
}

impl FakeProbes {
    fn filesystem(&self, dir: &Path) -> Option<(&'static str, u64, u64)> {
        self.filesystems
            .iter()
            .find(|(prefix, _, _)| dir.starts_with(prefix))
            .copied()
    }
}

fn request(method: BuildMethod) -> PreflightRequest {
    PreflightRequest {
        method,
        allow_tcg: false,
        work_dir: PathBuf::from("/var/tmp/hyops-work"),
        iso_bytes: 1 << 30,
        iso_cache_dir: None,
        iso_cached: false,
        disk_size_gb: 10,
        boot_accelerator: None,
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
    assert_eq!(
        p.filesystem_id(Path::new("/tmp/does/not/exist/yet")),
        p.filesystem_id(Path::new("/tmp")),
        "an absent directory is measured at its nearest ancestor"
    );
    assert!(p.tool_version("hyops-no-such-tool").await.is_none());
}

#[tokio::test]
async fn preflight_measures_the_staging_folder_and_the_iso_cache_not_build_workdir() {
    let staging = PathBuf::from("/cache/builds/.staging-0123/work");
    let req = PreflightRequest {
        work_dir: staging.clone(),
        iso_cache_dir: Some(PathBuf::from("/cache/iso")),
        iso_cached: false,
        ..request(BuildMethod::Packer)
    };
    // Staging and the ISO cache on two filesystems; staging is short (needs 2×10 + 2 GiB).
    let split = FakeProbes {
        filesystems: vec![("/cache/builds", 1, 21 << 30), ("/cache/iso", 2, 1 << 30)],
        ..FakeProbes::default()
    };
    let (check, found, _) = single_failure(split.clone(), req.clone()).await;
    assert_eq!(check, "disk-space");
    assert!(found.contains(&staging.display().to_string()), "{found}");
    assert!(
        found.contains("(build staging)") && found.contains("need 22.0 GiB"),
        "{found}"
    );
    // Enough at staging; the ISO cache (needs the 1 GiB ISO) is measured on its own.
    let iso_short = FakeProbes {
        filesystems: vec![("/cache/builds", 1, 22 << 30), ("/cache/iso", 2, 1 << 29)],
        ..FakeProbes::default()
    };
    let (_, found, _) = single_failure(iso_short, req.clone()).await;
    assert!(found.contains("/cache/iso (ISO cache)"), "{found}");
    // Once the ISO is cached it needs no room there.
    let cached = PreflightRequest {
        iso_cached: true,
        ..req.clone()
    };
    let iso_full = FakeProbes {
        filesystems: vec![("/cache/builds", 1, 22 << 30), ("/cache/iso", 2, 0)],
        ..FakeProbes::default()
    };
    run_preflight(&iso_full, &cached).await.unwrap();
    // One filesystem: the needs add up.
    let shared = FakeProbes {
        filesystems: vec![("/cache", 1, 22 << 30)],
        ..FakeProbes::default()
    };
    let (_, found, _) = single_failure(shared, req).await;
    assert!(
        found.contains("build staging + ISO cache") && found.contains("need 23.0 GiB"),
        "{found}"
    );
}

#[tokio::test]
async fn boot_verification_requires_qemu_system_and_a_usable_accelerator() {
    use hyops::engine::spec::BootAccelerator;
    let no_qemu = FakeProbes {
        programs: vec!["qemu-img"],
        kvm: Err("open /dev/kvm: No such file or directory".into()),
        ..FakeProbes::default()
    };
    // The command method needs neither until boot verification is enabled.
    let mut req = request(BuildMethod::Command);
    run_preflight(&no_qemu, &req).await.unwrap();

    req.boot_accelerator = Some(BootAccelerator::Auto);
    let err = run_preflight(&no_qemu, &req).await.unwrap_err();
    let checks: Vec<&str> = err.failures.iter().map(|f| f.check.as_str()).collect();
    assert!(checks.contains(&"tool:qemu-system-x86_64"), "{err}");
    assert!(checks.contains(&"boot-accelerator"), "{err}");
    assert!(err.to_string().contains("allow_tcg"), "{err}");

    // auto + allow_tcg, or an explicit tcg, accept a host without KVM.
    let with_qemu = FakeProbes {
        kvm: Err("open /dev/kvm: No such file or directory".into()),
        ..FakeProbes::default()
    };
    req.allow_tcg = true;
    run_preflight(&with_qemu, &req).await.unwrap();
    req.allow_tcg = false;
    req.boot_accelerator = Some(BootAccelerator::Tcg);
    run_preflight(&with_qemu, &req).await.unwrap();
    // kvm is refused without KVM, naming tcg as the way out.
    req.boot_accelerator = Some(BootAccelerator::Kvm);
    let err = run_preflight(&with_qemu, &req).await.unwrap_err();
    assert!(err.to_string().contains("accelerator = \"tcg\""), "{err}");
}
