//! The state file: runs, finished rows and the ledger, in SQLite.
