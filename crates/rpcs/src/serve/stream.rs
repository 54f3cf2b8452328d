//! Streaming methods: the lines of a program's standard output as items, sent
//! as the program writes them (over zerorpc and WebSocket; collected into one
//! array on the other protocols).
//!
//! The program runs in a task of its own that hands lines over a small
//! channel: when the caller stops taking items the channel fills, the task
//! stops reading, and the program blocks on its full pipe (bounded by its
//! timeout); when the caller goes away the task ends and the program's whole
//! group is killed.

use super::config::MethodDef;
use super::limit::Slot;
use super::process::{Pipes, Process};
use super::run::{self, both, feed, read_capped, Capture, Finished, Overflowed};
use rpcs_core::{CallResult, Fault, Value, ValueStream};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::ChildStdout;
use tokio::sync::mpsc;

/// Lines waiting for the caller to take them.
const BUFFERED_LINES: usize = 16;

/// Starts the program and returns its lines as a stream; the slot is held
/// until the program has ended.
pub fn start(
    def: Arc<MethodDef>,
    argv: &[String],
    input: Vec<u8>,
    slot: Slot,
) -> Result<ValueStream, Fault> {
    let (process, pipes) = Process::spawn(&def, argv, def.stdin.is_some())?;
    let (tx, rx) = mpsc::channel(BUFFERED_LINES);
    tokio::spawn(async move {
        let tx2 = tx.clone();
        tokio::select! {
            outcome = pump(&def, process, pipes, input, &tx) => {
                if let Err(fault) = outcome {
                    let _ = tx.send(Err(fault)).await;
                }
            }
            // The caller went away: dropping the program kills its group.
            () = tx2.closed() => {}
        }
        drop(slot);
    });
    Ok(Box::pin(Lines(rx)))
}

/// Runs the program, sending its lines; a fault for a program that failed,
/// ran too long or wrote too much.
async fn pump(
    def: &MethodDef,
    mut process: Process,
    pipes: Pipes,
    input: Vec<u8>,
    tx: &mpsc::Sender<CallResult>,
) -> Result<(), Fault> {
    let started = Instant::now();
    let Pipes {
        stdin,
        stdout,
        mut stderr,
    } = pipes;
    let mut err = Capture::default();
    let deadline = tokio::time::Instant::now() + def.timeout;
    let (cap, overflow) = (def.max_output, def.overflow);
    let outcome = {
        let reads = async {
            tokio::try_join!(
                send_lines(stdout, cap, tx),
                read_capped(&mut stderr, &mut err, cap, overflow, "stderr"),
                feed(stdin, input),
            )
        };
        tokio::time::timeout_at(deadline, both(reads, &mut process, def.kill_grace)).await
    };
    let ended = match outcome {
        Ok(Ok(ended)) => ended?,
        Ok(Err(Overflowed(stream))) => {
            process.terminate(Duration::ZERO).await;
            return Err(run::output_too_large(def, stream));
        }
        Err(_) => {
            process.terminate(def.kill_grace).await;
            return Err(run::timed_out(def));
        }
    };
    if ended.code == 0 {
        return Ok(());
    }
    let finished = Finished {
        ended,
        stdout: Capture::default(),
        stderr: err,
        duration: started.elapsed(),
    };
    Err(run::program_failed(def, finished))
}

/// Sends each line of `stdout` (without its line end) until its end; past
/// `cap` bytes in all the program has written too much.
async fn send_lines(
    stdout: ChildStdout,
    cap: usize,
    tx: &mpsc::Sender<CallResult>,
) -> Result<(), Overflowed> {
    let mut reader = BufReader::new(stdout);
    let mut total = 0usize;
    loop {
        let mut line = Vec::new();
        // One past the room left, so a line that does not fit shows.
        let room = u64::try_from(cap - total)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let n = match (&mut reader).take(room).read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return Ok(()),
            Ok(n) => n,
        };
        total += n;
        if total > cap {
            return Err(Overflowed("stdout"));
        }
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        let item = match String::from_utf8(line) {
            Ok(text) => Value::String(text),
            Err(e) => Value::Bytes(e.into_bytes()),
        };
        if tx.send(Ok(item)).await.is_err() {
            // Nobody takes lines any more; the task ends the program.
            return Ok(());
        }
    }
}

/// The receiving end, as the method's stream.
struct Lines(mpsc::Receiver<CallResult>);

impl futures_util::Stream for Lines {
    type Item = CallResult;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<CallResult>> {
        self.0.poll_recv(cx)
    }
}
