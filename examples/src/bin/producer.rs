//! The stack example's producer: creates stack "in" on a master and pushes 0..9.
//!
//! `cargo run -p rpcs-examples --bin producer -- [URL]` (default http://localhost:8000)

use rpcs_net::BlockingClient;

fn main() -> anyhow::Result<()> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://localhost:8000".into());
    let master = BlockingClient::new(&url)?;
    master.call("stack.create", ("in",))?;
    for item in 0..10 {
        println!("push item {item}");
        master.call("stack.push", ("in", item))?;
    }
    Ok(())
}
