//! Publish engine against real stores on 127.0.0.1: GCS (gcp-storage-emulator behind a JWT-checking
//! token endpoint and auth/fault proxy, `test-fixtures/gcs/gcs_stack.py`), S3 (moto_server), Azure
//! (azurite-blob), the file backend, the publish command, credentials and HyOps state.
//!
//! Emulator tests run when their tool is installed; set `HYOPS_TEST_GCS=1`, `HYOPS_TEST_S3=1`,
//! `HYOPS_TEST_AZURE=1` to make a missing tool a failure instead of a skip (CI does).

#[path = "publish/adc.rs"]
mod adc;
#[path = "publish/adc_wif.rs"]
mod adc_wif;
#[path = "publish/azure_integrity.rs"]
mod azure_integrity;
#[path = "publish/file_backend.rs"]
mod file_backend;
#[path = "publish/gcs.rs"]
mod gcs;
#[path = "publish/gcs_faults.rs"]
mod gcs_faults;
#[path = "common/gcs_stack.rs"]
mod gcs_stack_common;
#[path = "publish/hyops_state.rs"]
mod hyops_state_files;
#[path = "publish/object_stores.rs"]
mod object_stores;
#[path = "publish/s3_faults.rs"]
mod s3_faults;
#[path = "publish/secrets.rs"]
mod secrets;
#[path = "publish/support.rs"]
mod support;
