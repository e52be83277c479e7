//! Class 90, tx: standard transactions over publishes and acks.

use super::empty_method;

empty_method!(
    /// Puts the channel in transactional mode.
    TxSelect
);
empty_method!(
    /// Confirms transactional mode.
    TxSelectOk
);
empty_method!(
    /// Commits the publishes and acks made since the last commit/rollback.
    TxCommit
);
empty_method!(
    /// Confirms the commit.
    TxCommitOk
);
empty_method!(
    /// Discards the publishes and acks made since the last commit/rollback.
    TxRollback
);
empty_method!(
    /// Confirms the rollback.
    TxRollbackOk
);
