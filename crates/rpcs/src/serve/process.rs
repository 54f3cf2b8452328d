//! Starting a served program in a process group of its own, and ending the
//! whole group: at the timeout (SIGTERM, then SIGKILL after the grace), when
//! the program exits (whatever it left running goes with it), and when the
//! call is dropped (the caller went away).

use super::config::MethodDef;
use rpcs_core::Fault;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use tracing::warn;

/// A running program and its process group.
pub struct Process {
    child: Child,
    /// The process group (the program's pid): every descendant that did not
    /// leave it.
    group: libc::pid_t,
    /// The program was reaped and its group ended: its id may be reused now,
    /// so it must not be signalled again.
    reaped: bool,
}

/// The program's ends of its standard streams.
pub struct Pipes {
    /// Standard input, when the method feeds it.
    pub stdin: Option<ChildStdin>,
    pub stdout: ChildStdout,
    pub stderr: ChildStderr,
}

/// How a program ended.
#[derive(Debug, Clone, Copy)]
pub struct Ended {
    /// The exit status, or minus the signal's number (as Python's subprocess
    /// reports it).
    pub code: i64,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
}

impl From<ExitStatus> for Ended {
    fn from(status: ExitStatus) -> Ended {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => Ended {
                code: code.into(),
                signal: None,
            },
            (None, Some(signal)) => Ended {
                code: -i64::from(signal),
                signal: Some(signal),
            },
            (None, None) => Ended {
                code: -1,
                signal: None,
            },
        }
    }
}

impl Process {
    /// Starts the method's program with `argv` (after the program itself),
    /// its own environment and directory, and standard input piped when
    /// `with_stdin`.
    pub fn spawn(
        def: &MethodDef,
        argv: &[String],
        with_stdin: bool,
    ) -> Result<(Process, Pipes), Fault> {
        let mut command = Command::new(&def.program);
        command
            .args(argv)
            .current_dir(&def.cwd)
            .env_clear()
            .envs(def.env.iter().map(|(k, v)| (k, v)))
            .stdin(if with_stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own group, so that one signal reaches every descendant.
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|e| {
            // Callers learn the method, the log says which file.
            warn!(program = %def.program.display(), error = %e, "a served program could not start");
            Fault::named(
                "SpawnError",
                format_args!("{} could not start: {e}", def.name),
            )
        })?;
        let group = child
            .id()
            .and_then(|id| libc::pid_t::try_from(id).ok())
            .ok_or_else(|| Fault::internal("the program has no process id"))?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(Fault::internal("the program's output is not piped"));
        };
        let pipes = Pipes {
            stdin: child.stdin.take(),
            stdout,
            stderr,
        };
        let process = Process {
            child,
            group,
            reaped: false,
        };
        Ok((process, pipes))
    }

    /// Waits for the program to exit, then ends what it left running in its
    /// group (which could otherwise hold its output open, and outlive the call).
    pub async fn wait(&mut self) -> Result<Ended, Fault> {
        let status = self.child.wait().await;
        self.signal_group(libc::SIGKILL);
        self.reaped = true;
        let status =
            status.map_err(|e| Fault::internal(format!("waiting for the program: {e}")))?;
        Ok(status.into())
    }

    /// Ends the whole group: SIGTERM, and SIGKILL once `grace` has passed
    /// (or at once, when the program has exited and left others behind).
    pub async fn terminate(&mut self, grace: Duration) {
        if self.reaped {
            return;
        }
        self.signal_group(libc::SIGTERM);
        let _ = tokio::time::timeout(grace, self.child.wait()).await;
        self.signal_group(libc::SIGKILL);
        let _ = self.child.wait().await;
        self.reaped = true;
    }

    fn signal_group(&self, signal: libc::c_int) {
        // SAFETY: kill has no memory effects; a group that is gone (ESRCH) is
        // what we wanted.
        unsafe {
            libc::kill(-self.group, signal);
        }
    }
}

impl Drop for Process {
    /// A call that is dropped (its caller left, or the server's call limit
    /// struck) takes its program's whole group with it; tokio reaps the child.
    fn drop(&mut self) {
        // Until the program is reaped its id is still its group's.
        if !self.reaped {
            self.signal_group(libc::SIGKILL);
        }
    }
}
