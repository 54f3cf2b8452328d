//! The local backends behind the [`Backend`] interface: the time from their
//! clock, and the wake-ups after each change that frees what someone waits for.

use super::LocalBackend;
use crate::backend::{Answer, Backend, Carry, Claims, PopLimit, Session, Taken, Waiters};
use crate::state::Client;
use rpcs_core::Value;
use std::sync::Arc;

fn session(client: &Client) -> Session {
    Session {
        host: client.host.clone(),
        login_ms: client.login_ms,
        visit_ms: client.visit_ms,
        status: client.status.clone(),
        info: client.info.clone(),
        pending: client.queue.len() as u64,
    }
}

impl Backend for LocalBackend {
    fn create_stack(&self, name: String) -> Answer<'_, bool> {
        Box::pin(LocalBackend::create_stack(self, name))
    }

    fn push(&self, name: String, items: Vec<Vec<u8>>) -> Answer<'_, u64> {
        Box::pin(async move {
            let size = LocalBackend::push(self, name.clone(), items).await?;
            self.stack_waiters.wake(&name);
            Ok(size)
        })
    }

    fn claim(&self, name: String, entries: Claims) -> Answer<'_, Vec<bool>> {
        Box::pin(async move {
            let pushing = entries.iter().any(|(_, item)| item.is_some());
            let new = LocalBackend::claim(self, name.clone(), entries).await?;
            if pushing {
                self.stack_waiters.wake(&name);
            }
            Ok(new)
        })
    }

    fn pop<'a>(
        &'a self,
        name: String,
        limit: PopLimit,
        carry: Carry<'a>,
    ) -> Answer<'a, Option<Vec<Vec<u8>>>> {
        Box::pin(LocalBackend::pop(self, name, limit, carry))
    }

    fn take<'a>(
        &'a self,
        name: String,
        lease_ms: i64,
        owner: Option<String>,
        carry: Carry<'a>,
    ) -> Answer<'a, Option<Taken>> {
        let now = self.clock.now_ms();
        Box::pin(LocalBackend::take(self, name, lease_ms, owner, now, carry))
    }

    fn ack(&self, name: String, id: String) -> Answer<'_, bool> {
        Box::pin(LocalBackend::ack(self, name, id))
    }

    fn extend(&self, name: String, id: String, lease_ms: i64) -> Answer<'_, bool> {
        let now = self.clock.now_ms();
        Box::pin(LocalBackend::extend(self, name, id, lease_ms, now))
    }

    fn release(&self, name: String, id: String) -> Answer<'_, bool> {
        Box::pin(async move {
            let released = LocalBackend::release(self, name.clone(), id).await?;
            if released {
                self.stack_waiters.wake(&name);
            }
            Ok(released)
        })
    }

    fn expire(&self) -> Answer<'_, usize> {
        Box::pin(async move {
            let stacks = LocalBackend::expire(self, self.clock.now_ms()).await?;
            for name in &stacks {
                self.stack_waiters.wake(name);
            }
            Ok(stacks.len())
        })
    }

    fn truncate(&self, name: String) -> Answer<'_, u64> {
        Box::pin(LocalBackend::truncate(self, name))
    }

    fn remove_stack(&self, name: String) -> Answer<'_, ()> {
        Box::pin(LocalBackend::remove_stack(self, name))
    }

    fn stack_size(&self, name: String) -> Answer<'_, Option<u64>> {
        Box::pin(async move { Ok(LocalBackend::stack_size(self, &name)) })
    }

    fn stack_leased(&self, name: String) -> Answer<'_, Option<u64>> {
        Box::pin(async move { Ok(LocalBackend::stack_leased(self, &name)) })
    }

    fn stack_names(&self) -> Answer<'_, Vec<String>> {
        Box::pin(async move { Ok(LocalBackend::stack_names(self)) })
    }

    fn create_storage(&self, name: String) -> Answer<'_, bool> {
        Box::pin(LocalBackend::create_storage(self, name))
    }

    fn set_params(&self, name: String, params: Vec<(String, Vec<u8>)>) -> Answer<'_, ()> {
        Box::pin(LocalBackend::set_params(self, name, params))
    }

    fn get_param(&self, name: String, param: String) -> Answer<'_, Option<Vec<u8>>> {
        Box::pin(async move { LocalBackend::get_param(self, &name, &param) })
    }

    fn params(&self, name: String) -> Answer<'_, Vec<(String, Vec<u8>)>> {
        Box::pin(async move { LocalBackend::params(self, &name) })
    }

    fn remove_param(&self, name: String, param: String) -> Answer<'_, bool> {
        Box::pin(LocalBackend::remove_param(self, name, param))
    }

    fn storage_exists(&self, name: String) -> Answer<'_, bool> {
        Box::pin(async move { Ok(LocalBackend::storage_exists(self, &name)) })
    }

    fn storage_size(&self, name: String) -> Answer<'_, Option<u64>> {
        Box::pin(async move { Ok(LocalBackend::storage_size(self, &name)) })
    }

    fn remove_storage(&self, name: String) -> Answer<'_, ()> {
        Box::pin(LocalBackend::remove_storage(self, name))
    }

    fn storage_names(&self) -> Answer<'_, Vec<String>> {
        Box::pin(async move { Ok(LocalBackend::storage_names(self)) })
    }

    fn compare_and_set(
        &self,
        name: String,
        param: String,
        expected: Value,
        new: Vec<u8>,
    ) -> Answer<'_, bool> {
        Box::pin(LocalBackend::compare_and_set(
            self, name, param, expected, new,
        ))
    }

    fn set_if_absent(&self, name: String, param: String, value: Vec<u8>) -> Answer<'_, bool> {
        Box::pin(LocalBackend::set_if_absent(self, name, param, value))
    }

    fn increment(&self, name: String, param: String, delta: i64) -> Answer<'_, i64> {
        Box::pin(LocalBackend::increment(self, name, param, delta))
    }

    fn reserve(&self, name: String, param: String, interval_ms: i64) -> Answer<'_, i64> {
        let now = self.clock.now_ms();
        Box::pin(LocalBackend::reserve(self, name, param, interval_ms, now))
    }

    fn login(&self, name: String, host: String, info: Vec<u8>) -> Answer<'_, ()> {
        let now = self.clock.now_ms();
        Box::pin(LocalBackend::login(self, name, host, now, info))
    }

    fn logout(&self, name: String) -> Answer<'_, ()> {
        Box::pin(async move {
            let ended = LocalBackend::logout(self, name).await?;
            self.wake_ended(&ended);
            Ok(())
        })
    }

    fn end_idle(&self, idle_ms: i64) -> Answer<'_, usize> {
        let cutoff = self.clock.now_ms().saturating_sub(idle_ms);
        Box::pin(async move {
            let ended = LocalBackend::end_idle(self, cutoff).await?;
            self.wake_ended(&ended);
            Ok(ended.clients.len())
        })
    }

    fn visit<'a>(
        &'a self,
        name: String,
        status: Option<Vec<u8>>,
        carry: Carry<'a>,
    ) -> Answer<'a, Option<Vec<u8>>> {
        let now = self.clock.now_ms();
        Box::pin(async move {
            let next = LocalBackend::visit(self, name, now, status, carry).await?;
            Ok(next.map(|(_, message)| message))
        })
    }

    fn seen(&self, name: String) -> Answer<'_, bool> {
        let now = self.clock.now_ms();
        Box::pin(LocalBackend::seen(self, name, now))
    }

    fn send(&self, name: String, message: Vec<u8>, max_queue: usize) -> Answer<'_, ()> {
        Box::pin(async move {
            LocalBackend::send(self, name.clone(), message, max_queue).await?;
            self.client_waiters.wake(&name);
            Ok(())
        })
    }

    fn broadcast(&self, message: Vec<u8>, max_queue: usize) -> Answer<'_, u64> {
        Box::pin(async move {
            let recipients = LocalBackend::broadcast(self, message, max_queue).await?;
            for name in &recipients {
                self.client_waiters.wake(name);
            }
            Ok(recipients.len() as u64)
        })
    }

    fn peek_message(&self, name: String) -> Answer<'_, Option<(u64, Vec<u8>)>> {
        Box::pin(async move { Ok(LocalBackend::peek_message(self, &name)) })
    }

    fn delivered(&self, name: String, seq: u64) -> Answer<'_, bool> {
        Box::pin(LocalBackend::delivered(self, name, seq))
    }

    fn session(&self, name: String) -> Answer<'_, Option<Session>> {
        Box::pin(async move { Ok(self.read(|s| s.clients.get(&name).map(session))) })
    }

    fn sessions(&self) -> Answer<'_, Vec<(String, Session)>> {
        Box::pin(async move {
            Ok(self.read(|s| {
                s.clients
                    .iter()
                    .map(|(n, c)| (n.clone(), session(c)))
                    .collect()
            }))
        })
    }

    fn stack_waiters(&self) -> &Waiters {
        &self.stack_waiters
    }

    fn client_waiters(&self) -> &Waiters {
        &self.client_waiters
    }

    fn sees_every_change(&self) -> bool {
        true
    }

    fn maintain(self: Arc<Self>) -> Answer<'static, ()> {
        Box::pin(async move {
            if !self.wants_compaction() {
                return Ok(());
            }
            compact_off_thread(self).await
        })
    }

    fn shutdown(self: Arc<Self>) -> Answer<'static, ()> {
        Box::pin(async move {
            if !self.journal_is_empty() {
                compact_off_thread(self.clone()).await?;
            }
            self.close();
            Ok(())
        })
    }

    fn flush(&self) -> Answer<'_, ()> {
        Box::pin(async move {
            self.settle();
            Ok(())
        })
    }
}

/// Compacts on a blocking thread: a snapshot waits on the disk.
async fn compact_off_thread(backend: Arc<LocalBackend>) -> Result<(), rpcs_core::Fault> {
    match tokio::task::spawn_blocking(move || backend.compact()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(super::storage_fault(format!("compaction failed: {e}"))),
        Err(_) => Err(rpcs_core::Fault::internal("compaction panicked")),
    }
}

impl LocalBackend {
    /// Wakes who waits on what ended sessions gave back, and on the clients
    /// (their subscriptions end).
    fn wake_ended(&self, ended: &super::Ended) {
        for name in &ended.stacks {
            self.stack_waiters.wake(name);
        }
        for name in &ended.clients {
            self.client_waiters.wake(name);
        }
    }
}
