//! Boot verification (`smoke_verify.boot`) with the real `qemu-system-x86_64` under TCG, against the
//! bootable fixture built from Debian packages by `test-fixtures/boot/build-fixture.sh` (cached in
//! `.tools/boot-fixture/`, built once per run). Gated by `HYOPS_TEST_BOOT=1` (scripts/test.sh sets
//! it): each boot costs 10-40 s of CPU, so the number of boots is kept small.
//!
//! Files: `boot/support.rs` (fixture, CLI runs, process checks), `boot/cli.rs` (operator CLI),
//! `boot/terraform.rs` (real Terraform 1.0.3 apply, the quickstart example).

#[path = "boot/cli.rs"]
mod cli;
#[path = "terraform/harness.rs"]
mod harness;
#[path = "boot/support.rs"]
mod support;
#[path = "boot/terraform.rs"]
mod terraform;
