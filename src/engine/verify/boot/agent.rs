//! The guest agent task of one boot: connects to the agent's socket, syncs, pings, asks for
//! `guest-info`, then (when cloud-init is checked) polls `/var/lib/cloud/data/instance-id` until
//! it holds the seed's instance-id. Publishes what it found through a `watch` channel; the boot
//! loop decides. Retries forever; the loop aborts it.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::qga::{Qga, QgaError};
use super::seed::MARKER_PATH;
use super::QGA_COMMAND_TIMEOUT;

/// What the guest agent task found so far.
#[derive(Debug, Clone, Default)]
pub(super) struct AgentState {
    /// time the agent answered ping + info, and its version
    pub(super) agent: Option<(Duration, String)>,
    /// time cloud-init reported our instance-id
    pub(super) cloud_init: Option<Duration>,
    /// the last thing that went wrong (for the failure message)
    pub(super) last_problem: Option<String>,
    /// the user-data's marker file holds the instance-id (checked once cloud-init reported it)
    pub(super) user_data: Option<bool>,
}

/// Talk to the agent until it answered and (when asked) cloud-init reported `instance_id`.
pub(super) async fn agent_task(
    socket: PathBuf,
    instance_id: String,
    want_cloud_init: bool,
    started: Instant,
    tx: watch::Sender<AgentState>,
) {
    let mut state = AgentState::default();
    let mut sync_id: u64 = u64::from(std::process::id()) << 20;
    let mut conn: Option<Qga> = None;
    loop {
        let done = state.agent.is_some() && (!want_cloud_init || state.cloud_init.is_some());
        if done {
            let _ = tx.send(state.clone());
            return;
        }
        let mut qga = match conn.take() {
            Some(q) => q,
            None => match Qga::connect(&socket, QGA_COMMAND_TIMEOUT).await {
                Ok(q) => q,
                Err(e) => {
                    state.last_problem = Some(format!("agent socket not ready: {e}"));
                    let _ = tx.send(state.clone());
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            },
        };
        sync_id += 1;
        let step = async {
            qga.sync(sync_id).await?;
            if state.agent.is_none() {
                let version = qga.ping_and_info().await?;
                state.agent = Some((started.elapsed(), version));
            }
            if want_cloud_init && state.cloud_init.is_none() {
                match qga.read_file("/var/lib/cloud/data/instance-id").await {
                    Ok(bytes) => {
                        let seen = String::from_utf8_lossy(&bytes).trim().to_owned();
                        if seen == instance_id {
                            state.cloud_init = Some(started.elapsed());
                            // The user-data's write_files marker (informational: proves the
                            // user-data, not only the meta-data, was consumed).
                            state.user_data = Some(match qga.read_file(MARKER_PATH).await {
                                Ok(marker) => {
                                    String::from_utf8_lossy(&marker).trim() == instance_id
                                }
                                Err(QgaError::Guest { .. }) => false,
                                Err(e) => return Err(e),
                            });
                        } else {
                            state.last_problem = Some(format!(
                                "cloud-init reports instance-id {seen:?}, not the seed's {instance_id:?}"
                            ));
                        }
                    }
                    Err(QgaError::Guest { desc, .. }) => {
                        state.last_problem = Some(format!(
                            "cloud-init has not recorded an instance-id yet \
                             (/var/lib/cloud/data/instance-id: {desc})"
                        ));
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok::<(), QgaError>(())
        };
        match step.await {
            Ok(()) => conn = Some(qga),
            Err(QgaError::Timeout(what)) => {
                // The agent is not up yet: keep the connection, ask again with a new id.
                state.last_problem = Some(format!("no answer to {what}"));
                conn = Some(qga);
            }
            Err(e) => {
                state.last_problem = Some(e.to_string());
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        let _ = tx.send(state.clone());
        if state.agent.is_some() && want_cloud_init && state.cloud_init.is_none() {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}
