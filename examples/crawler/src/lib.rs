//! The distributed web crawler: crawlers on any number of hosts take URLs
//! from a stack on the rpcs master under a lease, fetch and save each page,
//! and push its new links back, the master deduplicating them
//! (`stack.pushNew`) and spacing requests to each host (`storage.reserveSlot`).

pub mod control;
pub mod crawl;
pub mod fetch;
pub mod frontier;
pub mod group_sync;
pub mod links;
pub mod normalize;
pub mod polite;
pub mod robots;
pub mod robots_cache;
pub mod save;
pub mod scope;
pub mod site;
pub mod sitemap;
pub mod warc;
