//! Reconnecting with exponential backoff, for every transport that keeps a
//! connection.

use super::ClientError;
use std::time::Duration;
use tokio::time::Instant;

/// The first pause before reconnecting; it doubles after each failure.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// The longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Opens a connection with `open`, retrying with exponential backoff until
/// `deadline` (or not at all, unless `retry`). `backoff` carries the next
/// pause between calls, so a client that keeps failing waits longer; it is
/// reset on success.
pub(crate) async fn reconnect<T, F, Fut>(
    deadline: Instant,
    backoff: &mut Duration,
    timeout: Duration,
    retry: bool,
    mut open: F,
) -> Result<T, ClientError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ClientError>>,
{
    loop {
        match tokio::time::timeout_at(deadline, open()).await {
            Ok(Ok(conn)) => {
                *backoff = FIRST_BACKOFF;
                return Ok(conn);
            }
            // Refused credentials or certificates will not improve by trying again.
            Ok(Err(e)) if !retry || matches!(e, ClientError::Fault(_) | ClientError::Tls(_)) => {
                return Err(e)
            }
            Ok(Err(e)) => {
                let pause = (*backoff).max(FIRST_BACKOFF);
                *backoff = (pause * 2).min(MAX_BACKOFF);
                if Instant::now() + pause >= deadline {
                    return Err(e);
                }
                tokio::time::sleep(pause).await;
            }
            Err(_) => return Err(ClientError::Timeout(timeout)),
        }
    }
}
