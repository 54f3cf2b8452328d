//! Running a program to the end: its standard input fed, both outputs read
//! (each up to the cap), within the timeout.

use super::config::{MethodDef, Overflow};
use super::process::{Ended, Pipes, Process};
use rpcs_core::{Fault, Map, Value};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::ChildStdin;

/// What was read of one output stream.
#[derive(Debug, Default)]
pub struct Capture {
    pub bytes: Vec<u8>,
    /// More was written than the cap kept.
    pub truncated: bool,
}

impl Capture {
    /// The output as a string when it is UTF-8, else as bytes.
    pub fn value(self) -> Value {
        match String::from_utf8(self.bytes) {
            Ok(text) => Value::String(text),
            Err(e) => Value::Bytes(e.into_bytes()),
        }
    }
}

/// A program that ran to its end.
#[derive(Debug)]
pub struct Finished {
    pub ended: Ended,
    pub stdout: Capture,
    pub stderr: Capture,
    pub duration: Duration,
}

impl Finished {
    /// The call's answer: `{exitCode, signal (only when killed by one),
    /// stdout, stderr, truncated, durationMs}`.
    pub fn value(self) -> Value {
        let mut map = Map::new();
        map.insert("exitCode".into(), Value::Int(self.ended.code));
        if let Some(signal) = self.ended.signal {
            map.insert("signal".into(), Value::Int(signal.into()));
        }
        let truncated = self.stdout.truncated || self.stderr.truncated;
        map.insert("stdout".into(), self.stdout.value());
        map.insert("stderr".into(), self.stderr.value());
        map.insert("truncated".into(), Value::Bool(truncated));
        let ms = i64::try_from(self.duration.as_millis()).unwrap_or(i64::MAX);
        map.insert("durationMs".into(), Value::Int(ms));
        Value::Struct(map)
    }
}

/// The program wrote more than the cap to a stream of a method whose
/// overflow kills.
pub struct Overflowed(pub &'static str);

/// Runs the method's program with `argv`, feeding `input` to its standard
/// input when the method has one.
pub async fn run(def: &MethodDef, argv: &[String], input: Vec<u8>) -> Result<Finished, Fault> {
    let started = Instant::now();
    let (mut process, pipes) = Process::spawn(def, argv, def.stdin.is_some())?;
    let Pipes {
        stdin,
        mut stdout,
        mut stderr,
    } = pipes;
    let (mut out, mut err) = (Capture::default(), Capture::default());
    let deadline = tokio::time::Instant::now() + def.timeout;
    let (cap, overflow) = (def.max_output, def.overflow);
    let outcome = {
        let reads = async {
            tokio::try_join!(
                read_capped(&mut stdout, &mut out, cap, overflow, "stdout"),
                read_capped(&mut stderr, &mut err, cap, overflow, "stderr"),
                feed(stdin, input),
            )
        };
        tokio::time::timeout_at(deadline, both(reads, &mut process, def.kill_grace)).await
    };
    match outcome {
        Ok(Ok(ended)) => Ok(Finished {
            ended: ended?,
            stdout: out,
            stderr: err,
            duration: started.elapsed(),
        }),
        Ok(Err(Overflowed(stream))) => {
            process.terminate(Duration::ZERO).await;
            Err(output_too_large(def, stream))
        }
        Err(_) => {
            process.terminate(def.kill_grace).await;
            Err(timed_out(def))
        }
    }
}

/// Runs the reads and the wait for the exit together: once the program has
/// exited (and its group was ended), what is still to read gets `grace`
/// more, in case something that left the group holds the pipes open.
pub async fn both<R, T>(
    reads: R,
    process: &mut Process,
    grace: Duration,
) -> Result<Result<Ended, Fault>, Overflowed>
where
    R: std::future::Future<Output = Result<T, Overflowed>>,
{
    tokio::pin!(reads);
    let ended = {
        let wait = process.wait();
        tokio::pin!(wait);
        tokio::select! {
            read = &mut reads => {
                read?;
                return Ok(wait.await);
            }
            ended = &mut wait => ended,
        }
    };
    match tokio::time::timeout(grace, reads).await {
        Ok(read) => read.map(|_| ended),
        Err(_) => Ok(ended),
    }
}

/// The `ProgramFailed` fault of a program that exited non-zero (or was
/// killed by a signal), for methods with `fail_on_exit` and for streams: the
/// message ends with the last line of its standard error, the data (where
/// the protocol carries it) is the whole result.
pub fn program_failed(def: &MethodDef, finished: Finished) -> Fault {
    let stderr = String::from_utf8_lossy(&finished.stderr.bytes);
    let last = stderr.trim_end().lines().last().unwrap_or_default();
    let last: String = last.chars().take(500).collect();
    let how = match finished.ended.signal {
        Some(signal) => format!("was killed by signal {signal}"),
        None => format!("exited with {}", finished.ended.code),
    };
    let sep = if last.is_empty() { "" } else { ": " };
    Fault::named(
        "ProgramFailed",
        format_args!("{} {how}{sep}{last}", def.name),
    )
    .with_data(finished.value())
}

/// The `ProgramTimedOut` fault.
pub fn timed_out(def: &MethodDef) -> Fault {
    Fault::new(
        Fault::LIMIT_EXCEEDED,
        format!(
            "ProgramTimedOut: {} ran longer than its timeout of {:?} and was killed",
            def.name, def.timeout
        ),
    )
}

/// The `OutputTooLarge` fault.
pub fn output_too_large(def: &MethodDef, stream: &str) -> Fault {
    Fault::new(
        Fault::LIMIT_EXCEEDED,
        format!(
            "OutputTooLarge: {} wrote more than {} bytes to {stream} and was killed",
            def.name, def.max_output
        ),
    )
}

/// Reads `pipe` to its end, keeping up to `cap` bytes: past them, the rest
/// is read and dropped (so the program is not blocked), or with
/// [`Overflow::Kill`] the read fails.
pub async fn read_capped<R: AsyncRead + Unpin>(
    pipe: &mut R,
    capture: &mut Capture,
    cap: usize,
    overflow: Overflow,
    stream: &'static str,
) -> Result<(), Overflowed> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return Ok(()),
            Ok(n) => n,
        };
        let room = cap.saturating_sub(capture.bytes.len());
        if n > room {
            if overflow == Overflow::Kill {
                return Err(Overflowed(stream));
            }
            capture.truncated = true;
        }
        capture.bytes.extend_from_slice(&buf[..n.min(room)]);
    }
}

/// Writes `input` to the program's standard input and closes it; a program
/// that does not read it all is no error.
pub async fn feed(stdin: Option<ChildStdin>, input: Vec<u8>) -> Result<(), Overflowed> {
    if let Some(mut stdin) = stdin {
        let _ = stdin.write_all(&input).await;
        let _ = stdin.shutdown().await;
    }
    Ok(())
}
