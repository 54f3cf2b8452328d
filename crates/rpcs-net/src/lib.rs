//! rpcs-net
