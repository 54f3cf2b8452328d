//! The rpcs master: shared named stacks, parameter storages and a client
//! provider, served over every protocol rpcs speaks.
//!
//! # Layout
//!
//! Services arrive one file each under `services/`, over a backend trait with
//! memory, embedded and Redis implementations.
