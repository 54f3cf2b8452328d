//! Integration tests for rpcs-core, in one binary to keep link time down.

mod dispatch;
mod xmlrpc;

/// Runs a future that never waits (every plain handler, and async ones that do not
/// block) to completion without an async runtime.
pub fn ready<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("future did not complete on first poll"),
    }
}
