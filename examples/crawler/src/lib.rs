//! The distributed web crawler: crawlers on any number of hosts take URLs
//! from a stack on the rpcs master under a lease, fetch and save each page,
//! and push its new links back, the master deduplicating them
//! (`stack.pushNew`) and spacing requests to each host (`storage.reserveSlot`).

pub mod frontier;
pub mod links;
pub mod normalize;
pub mod robots;
pub mod save;
pub mod scope;
