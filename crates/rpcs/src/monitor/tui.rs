//! The live terminal view (ratatui): refreshed in place every interval, with
//! keys to steer the selected client or all of them.

use super::send;
use super::snapshot::{change, per_second, server_line, Snapshot, StackRow};
use anyhow::Result;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::widgets::{Block, Paragraph, Row, Table, TableState};
use ratatui::{DefaultTerminal, Frame};
use rpcs_net::Client;
use std::time::Duration;
use tokio::sync::mpsc;

const HELP: &str = "↑↓ select  p/r/s/x pause/resume/stop/abort it  P/R/S/X all  m message  q quit";

/// What the view holds between frames.
struct View {
    url: String,
    snapshot: Option<Snapshot>,
    error: Option<String>,
    selected: TableState,
    /// A message being typed, when in that mode.
    typing: Option<String>,
    /// What the last key did.
    note: String,
}

/// Runs until `q` (or Esc).
pub async fn run(client: Client, url: &str, interval: Duration) -> Result<()> {
    let mut terminal = ratatui::init();
    let result = event_loop(&mut terminal, client, url, interval).await;
    ratatui::restore();
    result
}

/// Reads keys on a thread of its own (crossterm's reads block).
fn keys() -> mpsc::UnboundedReceiver<KeyCode> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || loop {
        if tx.is_closed() {
            return;
        }
        if !event::poll(Duration::from_millis(100)).unwrap_or(false) {
            continue;
        }
        if let Ok(Event::Key(key)) = event::read() {
            if key.kind == KeyEventKind::Press && tx.send(key.code).is_err() {
                return;
            }
        }
    });
    rx
}

async fn event_loop(
    terminal: &mut DefaultTerminal,
    client: Client,
    url: &str,
    interval: Duration,
) -> Result<()> {
    let mut view = View {
        url: url.to_owned(),
        snapshot: None,
        error: None,
        selected: TableState::default().with_selected(Some(0)),
        typing: None,
        note: String::new(),
    };
    let mut keys = keys();
    let mut tick = tokio::time::interval(interval);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                match Snapshot::gather(&client, view.snapshot.as_ref()).await {
                    Ok(s) => { view.snapshot = Some(s); view.error = None; }
                    Err(e) => view.error = Some(format!("{e:#}")),
                }
            }
            key = keys.recv() => {
                let Some(key) = key else { return Ok(()) };
                if !view.key(key, &client).await {
                    return Ok(());
                }
            }
        }
        terminal.draw(|f| view.draw(f))?;
    }
}

fn command_of(key: char) -> Option<(&'static str, bool)> {
    Some(match key {
        'p' => ("pause", false),
        'r' => ("resume", false),
        's' => ("stop", false),
        'x' => ("abort", false),
        'P' => ("pause", true),
        'R' => ("resume", true),
        'S' => ("stop", true),
        'X' => ("abort", true),
        _ => return None,
    })
}

impl View {
    fn selected_client(&self) -> Option<String> {
        let clients = &self.snapshot.as_ref()?.clients;
        clients
            .get(self.selected.selected()?)
            .map(|c| c.name.clone())
    }

    /// Handles a key; false to quit.
    async fn key(&mut self, key: KeyCode, client: &Client) -> bool {
        if let Some(text) = &mut self.typing {
            match key {
                KeyCode::Enter => {
                    let text = std::mem::take(text);
                    self.typing = None;
                    let to = self.selected_client();
                    self.deliver(client, to.as_deref(), &text).await;
                }
                KeyCode::Esc => self.typing = None,
                KeyCode::Backspace => {
                    text.pop();
                }
                KeyCode::Char(c) => text.push(c),
                _ => {}
            }
            return true;
        }
        let count = self.snapshot.as_ref().map_or(0, |s| s.clients.len());
        match key {
            KeyCode::Char('q') | KeyCode::Esc => return false,
            KeyCode::Down | KeyCode::Char('j') if count > 0 => {
                let i = self.selected.selected().unwrap_or(0);
                self.selected.select(Some((i + 1).min(count - 1)));
            }
            KeyCode::Up | KeyCode::Char('k') => {
                let i = self.selected.selected().unwrap_or(0);
                self.selected.select(Some(i.saturating_sub(1)));
            }
            KeyCode::Char('m') => self.typing = Some(String::new()),
            KeyCode::Char(c) => {
                if let Some((command, all)) = command_of(c) {
                    let to = if all { None } else { self.selected_client() };
                    if all || to.is_some() {
                        self.deliver(client, to.as_deref(), command).await;
                    }
                }
            }
            _ => {}
        }
        true
    }

    async fn deliver(&mut self, client: &Client, to: Option<&str>, message: &str) {
        self.note = match send(client, to, message).await {
            Ok(n) => format!(
                "sent {message:?} to {}",
                to.map_or(format!("{n} clients"), str::to_owned)
            ),
            Err(e) => format!("sending {message:?} failed: {e:#}"),
        };
    }

    fn draw(&mut self, f: &mut Frame) {
        let [title, clients, stacks, storages, foot] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Percentage(45),
            Constraint::Min(4),
            Constraint::Length(6),
            Constraint::Length(1),
        ])
        .areas(f.area());
        let empty = Snapshot {
            at: std::time::Instant::now(),
            clients: Vec::new(),
            stacks: Vec::new(),
            storages: Vec::new(),
            server: None,
        };
        let snap = self.snapshot.clone().unwrap_or(empty);
        let totals = snap.server.as_ref().map_or(String::new(), server_line);
        f.render_widget(
            Paragraph::new(format!("rpcs monitor {}   {totals}   {HELP}", self.url)),
            title,
        );
        let rows = snap.clients.iter().map(|c| {
            let dash = |v: Option<i64>| v.map_or("-".into(), |n| n.to_string());
            Row::new(vec![
                c.name.clone(),
                c.host.clone(),
                c.mode.clone(),
                dash(c.idle) + "s",
                dash(c.leases),
                dash(c.pages),
                dash(c.errors),
                c.url.clone(),
            ])
        });
        let table = Table::new(
            rows,
            [
                Constraint::Length(18),
                Constraint::Length(15),
                Constraint::Length(9),
                Constraint::Length(6),
                Constraint::Length(6),
                Constraint::Length(7),
                Constraint::Length(6),
                Constraint::Min(10),
            ],
        )
        .header(
            Row::new([
                "client", "host", "mode", "idle", "leases", "pages", "errors", "url",
            ])
            .style(Style::new().add_modifier(Modifier::BOLD)),
        )
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .block(Block::bordered().title(format!(" clients {} ", snap.clients.len())));
        f.render_stateful_widget(table, clients, &mut self.selected);
        f.render_widget(stack_table(&snap.stacks), stacks);
        let lines: Vec<String> = snap
            .storages
            .iter()
            .map(|(n, size)| format!("{n}  {size} parameters"))
            .collect();
        f.render_widget(
            Paragraph::new(lines.join("\n"))
                .block(Block::bordered().title(format!(" storages {} ", snap.storages.len()))),
            storages,
        );
        let footer = match (&self.typing, &self.error) {
            (Some(text), _) => {
                format!("message to the selected client: {text}▏ (Enter sends, Esc cancels)")
            }
            (None, Some(e)) => format!("error: {e}"),
            (None, None) => self.note.clone(),
        };
        f.render_widget(Paragraph::new(footer), foot);
    }
}

fn stack_table(stacks: &[StackRow]) -> Table<'static> {
    let rows = stacks.iter().map(|s| {
        Row::new(vec![
            s.name.clone(),
            s.size.to_string(),
            s.leased.to_string(),
            per_second(s.in_rate),
            per_second(s.out_rate),
            change(s.rate),
        ])
    });
    Table::new(
        rows,
        [
            Constraint::Min(20),
            Constraint::Length(10),
            Constraint::Length(8),
            Constraint::Length(10),
            Constraint::Length(10),
            Constraint::Length(10),
        ],
    )
    .header(
        Row::new(["stack", "size", "leased", "in", "out", "change"])
            .style(Style::new().add_modifier(Modifier::BOLD)),
    )
    .block(Block::bordered().title(format!(" stacks {} ", stacks.len())))
}
