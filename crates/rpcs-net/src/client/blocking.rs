//! A blocking facade over [`Client`] for programs without an async runtime.

use super::{Client, ClientConfig, ClientError, MethodInfo};
use rpcs_core::{Fault, IntoParams, Value};
use serde::de::DeserializeOwned;
use std::any::Any;

/// A client whose calls block the current thread.
///
/// It owns a small single-threaded runtime, so it must not be used from inside
/// an async task (use [`Client`] there).
pub struct BlockingClient {
    inner: Client,
    rt: tokio::runtime::Runtime,
}

impl BlockingClient {
    /// A blocking client for `url` (see [`Client::new`]).
    pub fn new(url: &str) -> Result<BlockingClient, ClientError> {
        BlockingClient::with_config(url, ClientConfig::default())
    }

    /// A blocking client for `url` with the given settings.
    pub fn with_config(url: &str, config: ClientConfig) -> Result<BlockingClient, ClientError> {
        // Stream transports keep reading between calls (to answer the server's
        // calls back), so the runtime gets a thread of its own.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| ClientError::Connect(format!("cannot start a runtime: {e}")))?;
        let inner = rt.block_on(async { Client::with_config(url, config) })?;
        Ok(BlockingClient { inner, rt })
    }

    /// A blocking client that answers the server's calls back from `handlers`
    /// (see [`Client::with_handlers`]).
    pub fn with_handlers(
        url: &str,
        config: ClientConfig,
        handlers: rpcs_core::MethodTable,
    ) -> Result<BlockingClient, ClientError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| ClientError::Connect(format!("cannot start a runtime: {e}")))?;
        let inner = rt.block_on(async { Client::with_handlers(url, config, handlers) })?;
        Ok(BlockingClient { inner, rt })
    }

    /// See [`Client::notify`].
    pub fn notify(&self, method: &str, params: impl IntoParams) -> Result<(), ClientError> {
        self.rt.block_on(self.inner.notify(method, params))
    }

    /// See [`Client::call`].
    pub fn call(&self, method: &str, params: impl IntoParams) -> Result<Value, ClientError> {
        self.rt.block_on(self.inner.call(method, params))
    }

    /// See [`Client::call_as`].
    pub fn call_as<T: DeserializeOwned + Any>(
        &self,
        method: &str,
        params: impl IntoParams,
    ) -> Result<T, ClientError> {
        self.rt.block_on(self.inner.call_as(method, params))
    }

    /// See [`Client::multicall`].
    pub fn multicall(
        &self,
        calls: Vec<(String, Vec<Value>)>,
    ) -> Result<Vec<Result<Value, Fault>>, ClientError> {
        self.rt.block_on(self.inner.multicall(calls))
    }

    /// See [`Client::describe`].
    pub fn describe(&self) -> Result<Vec<MethodInfo>, ClientError> {
        self.rt.block_on(self.inner.describe())
    }
}
