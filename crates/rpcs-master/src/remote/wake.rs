//! The wake-ups other masters publish: one RESP3 connection per master,
//! subscribed to every stack's and client's channel (`{NAMESPACE:s:NAME}:wake`,
//! `{NAMESPACE:c:NAME}:wake`), that wakes the local waiters of the stack or
//! client each message names (classic pub/sub reaches every node of a
//! cluster, so one node will do); a lost connection (messages may have
//! been missed meanwhile) wakes everyone.

use crate::waiters::Waiters;
use redis::aio::ConnectionManagerConfig;
use redis::{ProtocolVersion, PushInfo, PushKind, Value as Reply};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The listening task; stops when dropped.
pub struct Listener {
    task: JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Listener {
    /// Connects and subscribes; returns once Redis has confirmed.
    pub async fn start(
        url: &str,
        namespace: &str,
        stacks: Arc<Waiters>,
        clients: Arc<Waiters>,
    ) -> Result<Listener, redis::RedisError> {
        let info = redis::IntoConnectionInfo::into_connection_info(url)?;
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(settings))?;
        let (tx, mut rx) = mpsc::unbounded_channel::<PushInfo>();
        let config = ConnectionManagerConfig::new()
            .set_push_sender(tx)
            .set_automatic_resubscription();
        let mut con = client.get_connection_manager_with_config(config).await?;
        let stack_channel = format!("{{{namespace}:s:");
        let client_channel = format!("{{{namespace}:c:");
        const TAIL: &str = "}:wake";
        con.psubscribe(&[
            format!("{stack_channel}*{TAIL}"),
            format!("{client_channel}*{TAIL}"),
        ])
        .await?;
        let task = tokio::spawn(async move {
            // The connection lives as long as the task.
            let _con = con;
            while let Some(push) = rx.recv().await {
                match push.kind {
                    PushKind::PMessage => {
                        let Some(Reply::BulkString(channel)) = push.data.get(1) else {
                            continue;
                        };
                        let channel = String::from_utf8_lossy(channel);
                        let named = |head: &str| channel.strip_prefix(head)?.strip_suffix(TAIL);
                        if let Some(name) = named(&stack_channel) {
                            stacks.wake(name);
                        } else if let Some(name) = named(&client_channel) {
                            clients.wake(name);
                        }
                    }
                    PushKind::Disconnection => {
                        stacks.wake_all();
                        clients.wake_all();
                    }
                    _ => {}
                }
            }
        });
        Ok(Listener { task })
    }
}
