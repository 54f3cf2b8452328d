//! `rpcs completions SHELL` and `rpcs man`: shell completions and manual
//! pages generated from the command definition itself, so they never drift
//! from the flags the binary takes.

use anyhow::Context as _;
use clap::{Args, Command};
use clap_complete::Shell;
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `rpcs completions`.
#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: Shell,
}

/// Arguments of `rpcs man`.
#[derive(Args, Debug)]
pub struct ManArgs {
    /// Write one page per command (rpcs.1, rpcs-master.1, ...) into this
    /// directory instead of printing rpcs.1.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Prints the completion script for `args.shell`.
pub fn completions(args: CompletionsArgs, mut cli: Command) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut cli, "rpcs", &mut out);
    out.flush()?;
    Ok(())
}

/// Prints the manual page of `rpcs`, or writes every command's into a directory.
pub fn man(args: ManArgs, cli: Command) -> anyhow::Result<()> {
    let Some(dir) = args.dir else {
        let mut out = std::io::stdout().lock();
        clap_mangen::Man::new(cli).render(&mut out)?;
        out.flush()?;
        return Ok(());
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, command) in pages(cli) {
        let path = dir.join(format!("{name}.1"));
        let mut page = Vec::new();
        clap_mangen::Man::new(command).render(&mut page)?;
        std::fs::write(&path, page).with_context(|| format!("writing {}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(())
}

/// The top command and every subcommand (nested ones too), each named as
/// its page is (`rpcs-token-new`).
fn pages(cli: Command) -> Vec<(String, Command)> {
    let mut out = Vec::new();
    collect(cli.name("rpcs"), "rpcs", &mut out);
    out
}

fn collect(command: Command, name: &str, out: &mut Vec<(String, Command)>) {
    for sub in command.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        let sub_name = format!("{name}-{}", sub.get_name());
        // The page's title and synopsis read `rpcs-master`, as `man rpcs-master` finds it.
        let page = sub
            .clone()
            .name(sub_name.clone())
            .bin_name(sub_name.replace('-', " "));
        collect(page, &sub_name, out);
    }
    out.push((name.to_owned(), command));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli() -> Command {
        Command::new("rpcs")
            .subcommand(Command::new("master").arg(clap::Arg::new("backend").long("backend")))
            .subcommand(Command::new("token").subcommand(Command::new("new")))
    }

    #[test]
    fn every_command_gets_a_page_named_after_its_path() {
        let names: Vec<String> = pages(cli()).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            ["rpcs-master", "rpcs-token-new", "rpcs-token", "rpcs"]
        );
    }

    #[test]
    fn a_page_shows_its_commands_flags() {
        let (_, master) = pages(cli()).into_iter().next().unwrap();
        let mut page = Vec::new();
        clap_mangen::Man::new(master).render(&mut page).unwrap();
        let page = String::from_utf8(page).unwrap();
        assert!(page.contains(".TH rpcs-master 1"), "{page}");
        assert!(page.contains("backend"), "{page}");
    }
}
