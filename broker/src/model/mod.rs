//! Pure domain types: no tokio, no IO. Exchanges and their routing indexes, messages.

pub mod exchange;
pub mod headers;
pub mod message;
pub mod topic_trie;
