//! The stack example's consumer: pops stack "in" until it is empty.
//!
//! `cargo run -p rpcs-examples --bin consumer -- [URL]` (default http://localhost:8000)

use rpcs_core::Value;
use rpcs_net::{BlockingClient, ClientError};

fn main() -> anyhow::Result<()> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://localhost:8000".into());
    let master = BlockingClient::new(&url)?;
    master.call("stack.create", ("in",))?;
    loop {
        match master.call("stack.pop", ("in",)) {
            Ok(Value::Int(item)) => println!("pop item {item}"),
            Ok(other) => println!("pop item {other:?}"),
            Err(ClientError::Fault(f)) if f.name() == Some("StackIndexError") => break,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
