//! Schema of resource `hyops_vyos_image`. Argument names are the HyOps module input names, so
//! inputs files translate one to one.

use crate::cty::Type;
use crate::tfplugin5::schema::{Attribute, Block, NestedBlock, Schema};

use super::contract::computed_attributes;

pub(super) fn schema() -> Schema {
    let s = Type::String;
    let mut attributes = vec![
        Attribute::required(
            "artifact_key",
            s.clone(),
            "Key naming the artifact in object storage, manifests and HyOps state. Pattern \
             ^[a-z0-9][a-z0-9._-]{1,62}$, e.g. \"vyos-1.5-qcow2\".",
        ),
        Attribute::optional(
            "artifact_format",
            s.clone(),
            "Disk format of the primary artifact: \"qcow2\" (default), \"raw\" or \"img\".",
        ),
        Attribute::optional(
            "additional_formats",
            Type::list(s.clone()),
            "Extra published encodings of the same build, each once: \"raw.xz\", \"raw.zst\", \
             \"raw.gz\", \"qcow2\". They appear in artifacts keyed <artifact_key>+<format>.",
        ),
        Attribute::optional_computed(
            "artifact_version",
            s.clone(),
            "Version label of the artifact. Default: the VyOS version read from the ISO's \
             version.json.",
        ),
        Attribute::required(
            "source_iso_url",
            s.clone(),
            "Official URL of the VyOS ISO (http, https or file), recorded as provenance and \
             downloaded from unless source_iso_mirror_url is set. The manifest, the contract and \
             builders get it without user info or query string; Terraform keeps the argument \
             as written, so put signed or authenticated URLs in source_iso_mirror_url.",
        ),
        Attribute::optional(
            "source_iso_mirror_url",
            s.clone(),
            "Pinned mirror (http, https or file) to download the ISO from instead of \
             source_iso_url. Used for the download only (never in the manifest, the contract or \
             a child's environment); Terraform keeps it in state as written.",
        ),
        Attribute::required(
            "source_iso_sha256",
            s.clone(),
            "SHA-256 of the ISO as 64 hex digits; a download that does not match is refused.",
        ),
        Attribute::optional_computed(
            "artifact_local_path",
            s.clone(),
            "File path the built artifact is written to (a file, not a directory: must not end \
             in /). Default: under the provider's cache_dir.",
        ),
        Attribute::optional(
            "rebuild_if_exists",
            Type::Bool,
            "Rebuild even when a verified artifact already exists at artifact_local_path. \
             Default false.",
        ),
        Attribute::optional(
            "hyops_state_instance",
            s.clone(),
            "When set, write the HyOps state file \
             state/modules/core__shared__vyos-image-build/instances/<name>.json under the \
             provider's runtime_root after a successful build (a plain name: no / .. or control \
             characters).",
        ),
        Attribute::optional(
            "notes",
            s.clone(),
            "Free-form notes kept in state; changing them updates in place.",
        ),
        Attribute::optional(
            "gcs_credentials_wo",
            s.clone(),
            "Google Cloud service-account JSON as a write-only argument: used for this apply and \
             never stored in state or plan. Needs Terraform 1.11 or later; older clients use \
             the provider's gcs_credentials_file or HYOPS_VYOS_GCS_SA_JSON instead.",
        )
        .sensitive()
        .write_only(),
        Attribute::optional(
            "gcs_credentials_wo_version",
            s.clone(),
            "Version label of gcs_credentials_wo; change it to signal a rotated credential (the \
             write-only value itself is not stored, so Terraform cannot see it change). Requires \
             gcs_credentials_wo. Updates in place.",
        ),
    ];
    attributes.extend(computed_attributes());

    Schema {
        version: 0,
        block: Block {
            description: "One reproducible build-and-publish of a VyOS disk image from a pinned \
                          ISO: fetch and verify the ISO, build, smoke-verify, normalize and hash, \
                          publish, and expose the artifact contract. Every build or publish input \
                          forces replacement; timeouts, notes, publish.retain_on_destroy and \
                          gcs_credentials_wo_version update in place."
                .into(),
            attributes,
            block_types: vec![
                NestedBlock::single("build", build_block()),
                NestedBlock::single("smoke_verify", smoke_verify_block()),
                NestedBlock::single("publish", publish_block()),
                NestedBlock::single("timeouts", timeouts_block()),
            ],
        },
    }
}

fn build_block() -> Block {
    let s = Type::String;
    Block {
        description: "How the image is built.".into(),
        block_types: vec![],
        attributes: vec![
            Attribute::optional(
                "method",
                s.clone(),
                "Builder: \"vyos-vm-images\" (default), \"packer\" or \"command\". Environment \
                 default: HYOPS_VYOS_ISO_BUILD_METHOD.",
            ),
            Attribute::optional(
                "command",
                s.clone(),
                "Shell command run by method \"command\" (via /bin/bash -lc in workdir) with the \
                 HYOPS_VYOS_* build environment; it must write HYOPS_VYOS_ARTIFACT_LOCAL_PATH. \
                 Environment default: HYOPS_VYOS_ISO_BUILD_COMMAND.",
            ),
            Attribute::optional(
                "workdir",
                s.clone(),
                "Working directory of the build. Default: a private directory under the cache.",
            ),
            Attribute::optional(
                "disk_size_gb",
                Type::Number,
                "Virtual disk size in GiB, 1 to 2048. Default 10.",
            ),
            Attribute::optional(
                "cloud_init",
                Type::Bool,
                "Install cloud-init in the image. Default true.",
            ),
            Attribute::optional(
                "cloud_init_datasources",
                Type::list(s.clone()),
                "cloud-init datasources to enable. Default [\"NoCloud\", \"ConfigDrive\"].",
            ),
            Attribute::optional(
                "guest_agent",
                s.clone(),
                "Guest agent installed in the image: \"qemu\" (default), \"vmware\" or \"none\".",
            ),
            Attribute::optional(
                "console",
                s.clone(),
                "Default boot console of the image: \"kvm\" (default) or \"serial\".",
            ),
            Attribute::optional(
                "allow_tcg",
                Type::Bool,
                "Allow software emulation (TCG) when /dev/kvm is unusable; slow. Default false; \
                 environment HYOPS_VYOS_ALLOW_TCG=1.",
            ),
            Attribute::optional(
                "skip_preflight",
                Type::Bool,
                "Skip the preflight checks (KVM, Proxmox host, tools). Default false.",
            ),
            Attribute::optional(
                "packer_template",
                s.clone(),
                "Packer template for method \"packer\". Environment default: \
                 HYOPS_VYOS_PACKER_TEMPLATE; default: the templates packaged in the provider.",
            ),
            Attribute::optional(
                "packer_vars_file",
                s.clone(),
                "Packer variables file passed with -var-file (default: the packaged vars file).",
            ),
            Attribute::optional(
                "packer_extra_args",
                Type::list(s.clone()),
                "Extra arguments appended to the packer build command line.",
            ),
            Attribute::optional(
                "vyos_vm_images_dir",
                s.clone(),
                "Checkout of vyos-vm-images for method \"vyos-vm-images\". Environment default: \
                 HYOPS_VYOS_VM_IMAGES_DIR.",
            ),
            Attribute::optional(
                "normalize",
                s.clone(),
                "What happens to the builder's image before hashing: \"auto\" (default) takes \
                 it as it is when it already is artifact_format (a qcow2 without backing file \
                 that passed the smoke gate, or a raw image) and converts only when the formats \
                 differ; \"always\" re-encodes (compressed qcow2 with zlib, or raw) for \
                 reproducible bytes from any builder; \"compress\" re-encodes as compressed \
                 qcow2 with zstd where qemu-img supports it, else zlib (qcow2 only).",
            ),
            Attribute::optional(
                "environment",
                Type::map(s.clone()),
                "Extra environment variables for the builder process.",
            ),
            Attribute::optional(
                "triggers",
                Type::map(s.clone()),
                "Arbitrary values that force a rebuild when they change (like null_resource \
                 triggers): part of the build fingerprint, never passed to the builder. Use it \
                 for inputs the fingerprint cannot see (files a script reads, tools on PATH).",
            ),
            Attribute::optional(
                "pass_environment",
                Type::list(s),
                "Names of variables of the provider's own environment to pass to every child \
                 process (builder, smoke_verify.command, publish.command). Children otherwise \
                 get only PATH, HOME, USER, LOGNAME, SHELL, LANG, LC_*, TZ, TERM, TMPDIR, the \
                 proxy variables (http_proxy, https_proxy, no_proxy, all_proxy, either case), \
                 SSL_CERT_FILE, SSL_CERT_DIR, the HYOPS_VYOS_* contract variables and \
                 build.environment: list e.g. AWS_PROFILE or SSH_AUTH_SOCK here to opt in. \
                 HYOPS_VYOS_GCS_SA_JSON* are refused. Changing it updates in place.",
            ),
        ],
    }
}

fn smoke_verify_block() -> Block {
    Block {
        description: "Verification of the built image before it is published.".into(),
        block_types: vec![NestedBlock::single("boot", boot_verify_block())],
        attributes: vec![
            Attribute::optional(
                "command",
                Type::String,
                "Shell command that verifies the image (run with the HYOPS_VYOS_* build \
                 environment); replaces the default qemu-img check.",
            ),
            Attribute::optional(
                "required",
                Type::Bool,
                "Fail the build when verification fails. Default true; false turns a failure \
                 into a warning.",
            ),
        ],
    }
}

fn boot_verify_block() -> Block {
    let s = Type::String;
    Block {
        description: "Boot the image under QEMU before publishing (-snapshot, no network, no \
                      display) with a fresh NoCloud seed, and require the console, the QEMU guest \
                      agent and cloud-init to show a working cloud image."
            .into(),
        block_types: vec![],
        attributes: vec![
            Attribute::optional(
                "enabled",
                Type::Bool,
                "Boot-verify the image. Default true for the packer and vyos-vm-images methods, \
                 false for command.",
            ),
            Attribute::optional(
                "accelerator",
                s.clone(),
                "\"auto\" (default: KVM when usable, TCG only with build.allow_tcg), \"kvm\" or \
                 \"tcg\".",
            ),
            Attribute::optional(
                "timeout",
                s.clone(),
                "Give up after this long (Go duration). Default \"5m\".",
            ),
            Attribute::optional(
                "memory_mb",
                Type::Number,
                "Guest memory in MiB. Default 1024.",
            ),
            Attribute::optional(
                "guest_agent",
                Type::Bool,
                "Require the QEMU guest agent to answer guest-ping and guest-info on its \
                 virtio-serial channel. Default: build.guest_agent = \"qemu\".",
            ),
            Attribute::optional(
                "cloud_init",
                Type::Bool,
                "Attach a NoCloud seed (label cidata) with a fresh instance-id and require \
                 cloud-init to report it (through the guest agent, or on the serial console). \
                 Default: build.cloud_init.",
            ),
            Attribute::optional(
                "expect",
                Type::list(s.clone()),
                "Regexes that must all appear on the serial console. Default: a login prompt \
                 when build.console = \"serial\".",
            ),
            Attribute::optional(
                "fail_on",
                Type::list(s),
                "Regexes that fail the boot at once. Default: kernel panic, emergency mode, \
                 \"No bootable device\".",
            ),
        ],
    }
}

fn publish_block() -> Block {
    let s = Type::String;
    Block {
        description: "Where the artifact is published. Without this block the image is built \
                      locally and the contract points at the local file (published = false)."
            .into(),
        block_types: vec![],
        attributes: vec![
            Attribute::optional(
                "repo_state_ref",
                s.clone(),
                "HyOps state reference of the object repository, e.g. \
                 \"org/gcp/object-repo#vyos_artifacts\" (preferred); backend and bucket are \
                 read from its outputs.",
            ),
            Attribute::optional(
                "backend",
                s.clone(),
                "Storage backend: \"gcs\", \"s3\", \"azure\" or \"file\". Derived from the repo \
                 state when omitted.",
            ),
            Attribute::optional(
                "bucket",
                s.clone(),
                "Bucket (or Azure container) overriding the repo state; for backend \"file\" the \
                 root directory.",
            ),
            Attribute::optional(
                "prefix",
                s.clone(),
                "Object name prefix inside the bucket, e.g. \"images/vyos\" (relative; no .. \
                 segments or control characters).",
            ),
            Attribute::optional(
                "public_base_url",
                s.clone(),
                "http(s) base URL that artifact_url is built from instead of the store's own URL.",
            ),
            Attribute::optional(
                "command",
                s.clone(),
                "Publish-command override (run via /bin/bash -lc with the HYOPS_VYOS_* \
                 environment); prints the final artifact URL alone on stdout.",
            ),
            Attribute::optional("workdir", s, "Working directory of the publish command."),
            Attribute::optional(
                "retain_on_destroy",
                Type::Bool,
                "Keep the published objects and manifest when the resource is destroyed. Default \
                 false. Updates in place.",
            ),
            Attribute::optional(
                "chunk_size_mib",
                Type::Number,
                "Upload in requests of this many MiB (1-4096). GCS: by default the whole object \
                 goes in one resumable request (resumed from the committed offset after a \
                 failure); set this only behind a proxy that caps request bodies. S3/Azure: the \
                 part/block size (default 64 MiB; S3 needs at least 5). Updates in place.",
            ),
        ],
    }
}

fn timeouts_block() -> Block {
    Block {
        description: "Operation time limits in Go duration syntax (e.g. \"3h\", \"1h30m\", \
                      \"90s\"). Updates in place."
            .into(),
        block_types: vec![],
        attributes: vec![
            Attribute::optional(
                "create",
                Type::String,
                "Time limit of create (build and publish). Default \"3h\".",
            ),
            Attribute::optional(
                "delete",
                Type::String,
                "Time limit of destroy (deleting published objects). Default \"30m\".",
            ),
        ],
    }
}
