//! Data-quality rules in AWS Glue's Data Quality Definition Language (DQDL): parsing a
//! ruleset, and turning its rules into as few SQL passes over a table as possible.
