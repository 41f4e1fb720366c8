//! The SQL workbench in a real browser: charts, saved queries, results kept in the lake and downloaded as CSV and Parquet.
