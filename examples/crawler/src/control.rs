//! What a crawler is told through the provider: a message sent to it (or
//! broadcast to every client) is one of these commands, as a string or as
//! `{"command": "..."}`; anything else is logged and ignored.

use rpcs_core::Value;
use tokio::sync::watch;

/// What a crawler is doing, as commanded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Taking and fetching URLs.
    Running,
    /// Taking nothing new; pages in flight finish.
    Paused,
    /// Finishing the pages in flight, then exiting.
    Stopping,
    /// Giving the URLs in flight back at once, then exiting.
    Aborting,
}

impl Mode {
    /// The name shown in the crawler's status.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Running => "running",
            Mode::Paused => "paused",
            Mode::Stopping => "stopping",
            Mode::Aborting => "aborting",
        }
    }

    /// Whether the crawler is on its way out.
    pub fn is_ending(self) -> bool {
        matches!(self, Mode::Stopping | Mode::Aborting)
    }
}

/// A command, from a provider message.
pub fn command_of(message: &Value) -> Option<Mode> {
    let text = match message {
        Value::String(s) => s.as_str(),
        Value::Struct(m) => m.get("command")?.as_str()?,
        _ => return None,
    };
    match text.trim().to_ascii_lowercase().as_str() {
        "pause" => Some(Mode::Paused),
        "resume" => Some(Mode::Running),
        "stop" => Some(Mode::Stopping),
        "abort" => Some(Mode::Aborting),
        _ => None,
    }
}

/// The crawler's mode, shared by its tasks.
#[derive(Clone)]
pub struct Control {
    tx: watch::Sender<Mode>,
}

impl Default for Control {
    fn default() -> Self {
        Control {
            tx: watch::channel(Mode::Running).0,
        }
    }
}

impl Control {
    /// Running.
    pub fn new() -> Control {
        Control::default()
    }

    /// The mode now.
    pub fn mode(&self) -> Mode {
        *self.tx.borrow()
    }

    /// Applies a command; an ending crawler is not brought back, and an abort
    /// overrides a stop.
    pub fn apply(&self, command: Mode) {
        self.tx.send_if_modified(|mode| {
            let next = match (*mode, command) {
                (Mode::Aborting, _) => Mode::Aborting,
                (Mode::Stopping, Mode::Aborting) => Mode::Aborting,
                (Mode::Stopping, _) => Mode::Stopping,
                (_, c) => c,
            };
            let changed = next != *mode;
            *mode = next;
            changed
        });
    }

    /// Waits while paused; the mode it ends in.
    pub async fn unpaused(&self) -> Mode {
        let mut rx = self.tx.subscribe();
        let mode = *rx
            .wait_for(|m| *m != Mode::Paused)
            .await
            .expect("the sender lives in self");
        mode
    }

    /// Waits until the mode is one `pred` accepts (at once if it already is:
    /// no change between a look and the wait can be missed).
    pub async fn until(&self, pred: impl Fn(Mode) -> bool) -> Mode {
        let mut rx = self.tx.subscribe();
        let mode = *rx
            .wait_for(|m| pred(*m))
            .await
            .expect("the sender lives in self");
        mode
    }

    /// Waits until the mode changes.
    pub async fn changed(&self) {
        let mut rx = self.tx.subscribe();
        let _ = rx.changed().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_read_as_strings_or_structs_and_endings_stick() {
        let mut m = rpcs_core::Map::new();
        m.insert("command".into(), Value::String("Pause".into()));
        assert_eq!(command_of(&Value::Struct(m)), Some(Mode::Paused));
        assert_eq!(command_of(&Value::String("hello".into())), None);
        assert_eq!(command_of(&Value::Int(1)), None);
        let c = Control::new();
        c.apply(Mode::Paused);
        assert_eq!(c.mode(), Mode::Paused);
        c.apply(Mode::Running);
        c.apply(Mode::Stopping);
        c.apply(Mode::Running);
        assert_eq!(c.mode(), Mode::Stopping, "a stop is not taken back");
        c.apply(Mode::Aborting);
        c.apply(Mode::Stopping);
        assert_eq!(c.mode(), Mode::Aborting);
    }
}
