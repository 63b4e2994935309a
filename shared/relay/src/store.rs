//! What the relay keeps on disk: [`paths`] (the data directory), [`init`] (`relay init`),
//! [`db`] (the SQLite database and its migrations), [`failures`] (persisted brute-force
//! counters), [`audit`] (the hash-chained, checkpoint-signed audit log), [`sessions`] (the
//! record of relayed sessions), [`recordings`] (session recordings: ciphertext files and their
//! index), [`retention`] (how long records are kept; the pruning pass),
//! [`inventory`] (what is stored, where, why, how long).

pub mod audit;
pub mod db;
pub mod failures;
pub mod init;
pub mod inventory;
pub mod paths;
pub mod recordings;
pub mod retention;
pub mod sessions;
