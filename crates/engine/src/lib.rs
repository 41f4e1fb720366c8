//! The Sluice engine (being moved here from `sluice-scheduler`).
