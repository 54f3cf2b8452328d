//! rpcs-master
