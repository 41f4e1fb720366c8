//! Data-quality rules in AWS Glue's Data Quality Definition Language (DQDL): parsing a
//! ruleset, and turning its rules into as few SQL passes over a table as possible.
//!
//! [`parse`] reads `Rules = [ ... ]` with the pest grammar in `dqdl.pest`; [`Plan::new`]
//! compiles the rules for a table's columns into one aggregate query
//! ([`Plan::aggregate_sql`]) plus separate [`Plan::queries`] for uniqueness, `CustomSql` and
//! `ReferentialIntegrity`; [`Plan::judge`] decides each rule from the measured values.

pub mod ast;
mod compile;
mod parse;

pub use ast::{Condition, Rule, RuleType, Ruleset, TopRule, Value};
pub use compile::{
    HASH64, Measured, Options, Outcome, Plan, Query, Shortcut, Status, TABLE, holds, ident,
    literal, predicate,
};
pub use parse::{ParseError, parse};

#[cfg(test)]
mod tests;
