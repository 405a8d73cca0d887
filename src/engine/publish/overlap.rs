//! Uploads that overlap the work still producing files: [`UploadQueue`] opens the store (a GCS
//! store fetches its token then, while the caller is still hashing), takes finished files one
//! at a time and uploads each as soon as it arrives, in order, while the caller encodes the next.
//! [`publish_after`](super::publish_after) then confirms every object with a `head` and writes the
//! manifest last, as a plain publish does.
//!
//! Only files whose digests are known are queued, and every upload declares them: nothing becomes
//! visible in the store before its checksum is known. Knows nothing about builds.
//!
//! Costly caveat: when the producer fails after some files were uploaded, those objects stay
//! (content-addressed, no manifest points at them; a later publish of the same build finds them
//! identical and uploads nothing).

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::flow::LocalFile;
use super::layout::ObjectLayout;
use super::store::{PutOutcome, Store};
use super::{PublishError, PublishTarget};

/// Format → (object name, sha256, outcome) of the files an [`UploadQueue`] uploaded.
pub(super) type EarlyDone = BTreeMap<String, (String, String, PutOutcome)>;

/// Uploads made ahead of [`publish_after`](super::publish_after), keyed by format.
#[derive(Debug)]
pub struct EarlyUploads {
    pub(super) store: Arc<dyn Store>,
    /// format → (object name, sha256, outcome)
    pub(super) done: EarlyDone,
}

impl EarlyUploads {
    /// Files uploaded (not found already present).
    pub fn uploaded(&self) -> usize {
        self.done
            .values()
            .filter(|(_, _, o)| matches!(o, PutOutcome::Created(_)))
            .count()
    }

    /// Files handled (uploaded or found identical).
    pub fn len(&self) -> usize {
        self.done.len()
    }

    /// Nothing was handled.
    pub fn is_empty(&self) -> bool {
        self.done.is_empty()
    }
}

/// A running upload task fed file by file; the first file is the primary (it names the
/// content-addressed directory).
#[derive(Debug)]
pub struct UploadQueue {
    tx: Option<mpsc::UnboundedSender<LocalFile>>,
    task: Option<JoinHandle<Result<EarlyUploads, PublishError>>>,
}

impl UploadQueue {
    /// Starts the queue for `target`; `None` for a publish command (it runs after the build,
    /// once per delivered file). Must be called inside a tokio runtime.
    pub fn start(
        target: &PublishTarget,
        artifact_key: &str,
        artifact_version: &str,
        cancel: &CancellationToken,
    ) -> Result<Option<UploadQueue>, PublishError> {
        if target.command.is_some() {
            return Ok(None);
        }
        let store: Arc<dyn Store> = Arc::from(target.store()?);
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(
            store,
            target.prefix.clone(),
            artifact_key.to_owned(),
            artifact_version.to_owned(),
            target.reference_id.clone(),
            rx,
            cancel.clone(),
        ));
        Ok(Some(UploadQueue {
            tx: Some(tx),
            task: Some(task),
        }))
    }

    /// Queues a finished file (ignored once the task has stopped on an error; `finish` reports
    /// it).
    pub fn push(&self, file: LocalFile) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(file);
        }
    }

    /// Waits until every queued file is uploaded.
    pub async fn finish(mut self) -> Result<EarlyUploads, PublishError> {
        drop(self.tx.take());
        match self.task.take() {
            Some(task) => task.await.map_err(|e| {
                PublishError::Config(format!("the upload task stopped unexpectedly: {e}"))
            })?,
            None => Err(PublishError::Config("upload queue already finished".into())),
        }
    }
}

impl Drop for UploadQueue {
    fn drop(&mut self) {
        // Dropped without `finish` (the producer failed): stop uploading.
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn run(
    store: Arc<dyn Store>,
    prefix: String,
    key: String,
    version: String,
    reference_id: Option<String>,
    mut rx: mpsc::UnboundedReceiver<LocalFile>,
    cancel: CancellationToken,
) -> Result<EarlyUploads, PublishError> {
    store.prepare().await;
    let mut layout: Option<ObjectLayout> = None;
    let mut done = BTreeMap::new();
    let result = upload_each(
        store.as_ref(),
        &prefix,
        &key,
        &version,
        reference_id.as_deref(),
        &mut rx,
        &mut layout,
        &mut done,
        &cancel,
    )
    .await;
    match result {
        Ok(()) => Ok(EarlyUploads { store, done }),
        Err(e) => {
            // A failed queue leaves no claim behind (the publish step claims again on a retry).
            if let (Some(layout), Some(id)) = (&layout, &reference_id) {
                if let Err(d) = super::refs::drop_claim(store.as_ref(), layout.dir(), id).await {
                    tracing::warn!(error = %d, "could not remove this create's reference after the failure");
                }
            }
            Err(e)
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn upload_each(
    store: &dyn Store,
    prefix: &str,
    key: &str,
    version: &str,
    reference_id: Option<&str>,
    rx: &mut mpsc::UnboundedReceiver<LocalFile>,
    layout: &mut Option<ObjectLayout>,
    done: &mut EarlyDone,
    cancel: &CancellationToken,
) -> Result<(), PublishError> {
    while let Some(f) = rx.recv().await {
        let layout = match layout {
            Some(l) => &*l,
            None => {
                let l = layout.insert(ObjectLayout::new(prefix, key, version, &f.sha256)?);
                if let Some(id) = reference_id {
                    // claimed before the first upload or adoption, so a concurrent destroy of
                    // another user sees this instance and keeps the objects
                    super::refs::claim(store, l.dir(), id, key, cancel).await?;
                }
                &*l
            }
        };
        let name = layout.artifact(&f.format)?;
        let src = f.upload_source();
        let outcome = store.put_file_if_absent(&name, &src, cancel).await?;
        tracing::info!(object = %name, uploaded = matches!(outcome, PutOutcome::Created(_)), "early upload done");
        done.insert(f.format.clone(), (name, f.sha256.clone(), outcome));
    }
    Ok(())
}
