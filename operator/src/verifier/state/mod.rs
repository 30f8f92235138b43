//! In-memory state: data structures and their bookkeeping, no rules, no I/O. The rules
//! that read and move this state are in `decide/`; nothing here imports `session/` or
//! `persist/`.

pub mod index;
pub mod ledger;
pub mod meter;
pub mod poc;
pub mod schedule;
