//! Shared harness: the Terraform binary, a filesystem mirror holding the provider under test (built
//! once per test binary), and per-test working directories with a clean environment.

#![allow(dead_code)]

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub(crate) const SOURCE: &str = "registry.terraform.io/hybridops/hyops";
pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");
/// sha256 of `examples/quickstart/vyos-fixture.iso`.
pub(crate) const SHA: &str = "d4733478c22bff28c4174fd096d0000ff171ea02c4de0eed4410fd5baddd4bf8";

/// Environment variables of the provider that a test must set explicitly, never inherit.
const PROVIDER_ENV: &[&str] = &[
    "HYOPS_VYOS_GCS_SA_JSON",
    "HYOPS_VYOS_GCS_SA_JSON_FILE",
    "HYOPS_GCS_ENDPOINT",
    "HYOPS_VYOS_ISO_BUILD_METHOD",
    "HYOPS_VYOS_ISO_BUILD_COMMAND",
    "HYOPS_RUNTIME_ROOT",
    "HYOPS_ENV",
    "HYOPS_VYOS_ALLOW_TCG",
    "TF_LOG",
    "TF_LOG_PATH",
    "TF_LOG_PROVIDER",
    "TF_PLUGIN_CACHE_DIR",
    // Application Default Credentials of the machine running the tests
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GCE_METADATA_HOST",
    "CLOUDSDK_CONFIG",
    "NO_GCE_CHECK",
    "GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES",
    "HYOPS_GCS_IAM_ENDPOINT",
];

pub(crate) struct Mirror {
    _dir: tempfile::TempDir,
    pub(crate) cli_config: PathBuf,
}

pub(crate) fn terraform_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("HYOPS_TEST_TERRAFORM") {
        return PathBuf::from(p);
    }
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/bin/terraform");
    if local.exists() {
        return local;
    }
    PathBuf::from("terraform")
}

/// The bundled fixture ISO.
pub(crate) fn fixture_iso() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart/vyos-fixture.iso")
}

/// A filesystem mirror holding the binary under test, and a CLI config that installs only from it.
pub(crate) fn mirror() -> &'static Mirror {
    static MIRROR: OnceLock<Mirror> = OnceLock::new();
    MIRROR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let platform = format!("{}_{}", std::env::consts::OS, go_arch());
        let pkg = dir
            .path()
            .join("mirror")
            .join(SOURCE)
            .join(VERSION)
            .join(platform);
        std::fs::create_dir_all(&pkg).expect("mirror dir");
        let exe = pkg.join(format!("terraform-provider-hyops_v{VERSION}"));
        std::fs::copy(env!("CARGO_BIN_EXE_terraform-provider-hyops"), &exe).expect("copy binary");
        let cli_config = dir.path().join("terraformrc");
        std::fs::write(
            &cli_config,
            format!(
                "provider_installation {{\n  filesystem_mirror {{\n    path    = {:?}\n    include = [\"{SOURCE}\"]\n  }}\n}}\n",
                dir.path().join("mirror")
            ),
        )
        .expect("cli config");
        Mirror {
            _dir: dir,
            cli_config,
        }
    })
}

/// The client under test: name (`terraform` or `tofu`) and version, from `version -json`.
pub(crate) struct Client {
    pub(crate) name: &'static str,
    pub(crate) version: (u32, u32, u32),
}

impl Client {
    /// Terraform ≥ 1.11 announces write-only attribute support and has ephemeral variables.
    pub(crate) fn supports_write_only(&self) -> bool {
        self.name == "terraform" && self.version >= (1, 11, 0)
    }

    pub(crate) fn label(&self) -> String {
        let (a, b, c) = self.version;
        format!("{} {a}.{b}.{c}", self.name)
    }
}

/// The Terraform (or OpenTofu) binary the suite runs under (`HYOPS_TEST_TERRAFORM`, one lane).
pub(crate) fn client() -> &'static Client {
    static CLIENT: OnceLock<Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        let bin = terraform_bin();
        let out = Command::new(&bin)
            .args(["version", "-json"])
            .env("CHECKPOINT_DISABLE", "1")
            .output()
            .expect("run terraform version -json");
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("terraform version -json");
        let text = v["terraform_version"].as_str().expect("terraform_version");
        let mut parts = text
            .split(|c: char| !c.is_ascii_digit())
            .map(|p| p.parse::<u32>().unwrap_or(0));
        let version = (
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
        );
        let name = if bin
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("tofu"))
        {
            "tofu"
        } else {
            "terraform"
        };
        eprintln!("Terraform lane: {name} {text} ({})", bin.display());
        Client { name, version }
    })
}

pub(crate) fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The `terraform` block every test configuration starts with.
pub(crate) fn terraform_block() -> String {
    format!(
        "terraform {{\n  required_providers {{\n    hyops = {{\n      source  = \"{SOURCE}\"\n      version = \"{VERSION}\"\n    }}\n  }}\n}}\n\n"
    )
}

/// A Terraform working directory with one `main.tf`.
pub(crate) struct Workdir {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) cli_config: PathBuf,
    /// extra environment for every command (provider settings, credentials)
    pub(crate) env: Vec<(String, String)>,
}

impl Workdir {
    /// `main_tf` after the standard `terraform` block; runs `terraform init`.
    pub(crate) fn new(main_tf: &str) -> Workdir {
        Workdir::with_cli_config(main_tf, &mirror().cli_config)
    }

    pub(crate) fn with_cli_config(main_tf: &str, cli_config: &Path) -> Workdir {
        let wd = Workdir::bare(cli_config);
        wd.write_main(main_tf);
        wd.init();
        wd
    }

    /// An empty working directory (write files, then [`Workdir::init`]).
    pub(crate) fn bare(cli_config: &Path) -> Workdir {
        Workdir {
            dir: tempfile::tempdir().expect("tempdir"),
            cli_config: cli_config.to_path_buf(),
            env: Vec::new(),
        }
    }

    /// Replaces `main.tf` with the standard `terraform` block plus `main_tf`.
    pub(crate) fn write_main(&self, main_tf: &str) {
        std::fs::write(self.path().join("main.tf"), terraform_block() + main_tf).expect("main.tf");
    }

    pub(crate) fn init(&self) {
        let init = self.run(&["init", "-input=false", "-no-color"]);
        assert!(
            init.status.success(),
            "terraform init failed:\n{}",
            text(&init)
        );
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Adds an environment variable for every later command.
    pub(crate) fn set_env(&mut self, k: &str, v: impl Into<String>) {
        self.env.retain(|(name, _)| name != k);
        self.env.push((k.to_owned(), v.into()));
    }

    /// The command for `terraform ARGS` in this directory (clean provider environment).
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(terraform_bin());
        c.args(args)
            .current_dir(self.dir.path())
            .env("TF_CLI_CONFIG_FILE", &self.cli_config)
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_INPUT", "0")
            .env("HYOPS_VYOS_ISO_CACHE_DIR", self.dir.path().join("cache"));
        for k in PROVIDER_ENV {
            c.env_remove(k);
        }
        // No ambient Google credentials: no gcloud ADC file, no metadata server (loopback only;
        // a test that wants them sets them).
        c.env("CLOUDSDK_CONFIG", self.dir.path().join("no-gcloud"))
            .env("NO_GCE_CHECK", "true");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Runs `terraform ARGS`, bounded by [`COMMAND_LIMIT`]: on overrun the whole process group
    /// (terraform, provider, builders) is killed and the test fails.
    pub(crate) fn run(&self, args: &[&str]) -> Output {
        run_bounded(self.command(args), args)
    }

    /// Runs and asserts success.
    pub(crate) fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert!(out.status.success(), "terraform {args:?}:\n{}", text(&out));
        out
    }

    /// `terraform output -json` as JSON.
    pub(crate) fn outputs(&self) -> serde_json::Value {
        let out = self.ok(&["output", "-json"]);
        serde_json::from_slice(&out.stdout).expect("outputs JSON")
    }

    /// `terraform state list`.
    pub(crate) fn state_list(&self) -> Vec<String> {
        let out = self.run(&["state", "list"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .filter(|l| !l.is_empty())
            .collect()
    }

    /// `plan -detailed-exitcode`: 0 no changes, 2 changes (1 is a failure and panics).
    pub(crate) fn plan_code(&self) -> (i32, String) {
        let out = self.run(&["plan", "-detailed-exitcode", "-no-color", "-input=false"]);
        let code = out.status.code().unwrap_or(-1);
        assert!(code == 0 || code == 2, "plan failed:\n{}", text(&out));
        (code, text(&out))
    }

    pub(crate) fn apply(&self) -> Output {
        self.run(&["apply", "-auto-approve", "-no-color", "-input=false"])
    }
}

/// Upper bound on one terraform command in these tests (they build tiny fixture images).
pub(crate) const COMMAND_LIMIT: Duration = Duration::from_secs(300);

fn run_bounded(mut cmd: Command, args: &[&str]) -> Output {
    let mut child = cmd
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run terraform");
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + COMMAND_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for terraform") {
            break status;
        }
        if Instant::now() > deadline {
            // SAFETY: killing the process group of the child this function spawned.
            unsafe { libc::killpg(child.id() as i32, libc::SIGKILL) };
            let _ = child.wait();
            panic!("terraform {args:?} did not finish within {COMMAND_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// [`text`] with every whitespace run as one space (Terraform wraps diagnostics at its width).
pub(crate) fn flat(o: &Output) -> String {
    text(o).split_whitespace().collect::<Vec<_>>().join(" ")
}

pub(crate) fn text(o: &Output) -> String {
    format!(
        "status: {}\n--- stdout\n{}\n--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A builder command (for `HYOPS_VYOS_ISO_BUILD_COMMAND` or `build.command`) that appends a line
/// to `marker` each time it runs, then turns the ISO into a 2 GiB qcow2 with qemu-img.
pub(crate) fn counting_builder(marker: &Path) -> String {
    format!(
        "echo built >> '{}' && qemu-img convert -f raw -O qcow2 \"$HYOPS_VYOS_SOURCE_ISO_PATH\" \"$HYOPS_VYOS_ARTIFACT_LOCAL_PATH\" && qemu-img resize -q \"$HYOPS_VYOS_ARTIFACT_LOCAL_PATH\" 2G",
        marker.display()
    )
}

/// How many times a [`counting_builder`] ran.
pub(crate) fn builds(marker: &Path) -> usize {
    std::fs::read_to_string(marker)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// `file://` URL of the fixture ISO.
pub(crate) fn fixture_iso_url() -> String {
    format!("file://{}", fixture_iso().display())
}

/// Every file under `dir` (recursively), skipping provider binaries under `.terraform/`.
pub(crate) fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                if !p.ends_with(".terraform/providers") {
                    stack.push(p);
                }
            } else if ft.is_file() {
                out.push(p);
            }
        }
    }
    out
}

/// Every file and directory under `dir` (recursively).
pub(crate) fn entries_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}

/// sha256 hex of bytes.
pub(crate) fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}
