//! How the CLI prints reports, tables and query results.

use std::io::Write;

use anyhow::{Context, Result};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use sluice_catalog::TableEntry;
use sluice_engine::RunReport;
use sluice_job::LoadedJob;

use crate::Format;

/// `1.2 MB`, `512 B`.
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// `19,621`.
pub(crate) fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// ` (3 stages, 4 tasks; first task 2 ms after submit)` for a run's time line, or nothing
/// when no stage was reported (a failed run, or a record from an older scheduler).
pub(crate) fn run_shape(stages: usize, tasks: usize, first_task_ms: Option<u64>) -> String {
    if stages == 0 {
        return String::new();
    }
    let start = first_task_ms
        .map(|ms| format!("; first task {ms} ms after submit"))
        .unwrap_or_default();
    format!(
        " ({}, {}{start})",
        plural(stages, "stage"),
        plural(tasks, "task")
    )
}

/// ` (in this process: 2 partitions; joins: 2 broadcast, 0 partitioned)` for a run the
/// embedded engine ran in its own process.
pub(crate) fn in_process_shape(shape: &sluice_engine::InProcessShape) -> String {
    format!(
        " (in this process: {}; joins: {} broadcast, {} partitioned)",
        plural(shape.partitions, "partition"),
        shape.broadcast_joins,
        shape.partitioned_joins
    )
}

/// `n word`, with an `s` unless `n` is 1.
fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Prints what a run did.
pub(crate) fn print_report(job: &LoadedJob, r: &RunReport) {
    let t = &r.table;
    let catalog_kind = r.catalog;
    outln!("Job '{}' succeeded: run {}", job.spec.name, r.run_id);
    let width = r.sources.iter().map(|s| s.name.len()).max().unwrap_or(0);
    for (i, s) in r.sources.iter().enumerate() {
        let label = if i == 0 { "read " } else { "     " };
        let rows = s
            .rows
            .map(|n| format!("{} rows", thousands(n)))
            .unwrap_or_else(|| "rows not reported".into());
        outln!(
            "  {label} {:<width$}  {:>14}  {}  {}",
            s.name,
            rows,
            plural(s.files, "file"),
            human_bytes(s.bytes)
        );
    }
    let total_in: u64 = r.sources.iter().filter_map(|s| s.rows).sum();
    outln!(
        "        {:<width$}  {:>14}",
        "total",
        format!("{} rows", thousands(total_in))
    );
    outln!(
        "  wrote  {} rows in {} ({}) to {}",
        thousands(r.rows_written),
        plural(r.files_written, "file"),
        human_bytes(r.bytes_written),
        t.location
    );
    outln!(
        "  table  {}.{} registered in the {catalog_kind} catalog (version {}, {} columns{})",
        t.database,
        t.name,
        t.version,
        t.columns.len() + t.partition_keys.len(),
        if t.partitions.is_empty() {
            String::new()
        } else {
            format!(", {}", plural(t.partitions.len(), "partition"))
        }
    );
    print_columns(t);
    for change in &r.schema_changes {
        outln!("  schema {change}");
    }
    for line in sluice_engine::quality::describe_results(&r.quality) {
        outln!("  rule   {line}");
    }
    if let Some(table) = &r.quality_table {
        outln!("  rules  outcomes appended to {table}");
    }
    if r.versions_removed > 0 {
        outln!(
            "  pruned {} of the table",
            plural(r.versions_removed, "old version")
        );
    }
    let first_task_ms = r.first_task.map(|d| d.as_millis() as u64);
    let shape = match &r.in_process {
        Some(shape) => in_process_shape(shape),
        None => run_shape(r.stages, r.tasks, first_task_ms),
    };
    outln!("  time   {:.2} s{shape}", r.elapsed.as_secs_f64());
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.len() + word.len() + 1 > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Standard output for the command's results. When the reader has gone away (`sluice …
/// | head -1`) the process ends at once, successfully and without a message: the reader
/// has what it wanted. Any other write error ends it with a message.
pub(crate) struct Stdout;

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        std::io::stdout().write(buf).map_err(quit_on_broken_pipe)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stdout().flush().map_err(quit_on_broken_pipe)
    }
}

/// Ends the process quietly if `e` says the reader of standard output has gone away.
fn quit_on_broken_pipe(e: std::io::Error) -> std::io::Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    e
}

/// Writes one line of output (see [`Stdout`]); used by `outln!`.
pub(crate) fn write_line(args: std::fmt::Arguments<'_>) {
    let mut out = Stdout;
    if let Err(e) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        eprintln!("error: cannot write the output: {e}");
        std::process::exit(1);
    }
}

/// Prints query results in the chosen format.
pub(crate) fn print_batches(batches: &[RecordBatch], format: Format) -> Result<()> {
    match format {
        Format::Table => {
            outln!(
                "{}",
                pretty_format_batches(batches).context("cannot format the result")?
            );
        }
        Format::Csv => {
            let mut w = arrow_csv::WriterBuilder::new()
                .with_header(true)
                .build(Stdout);
            for b in batches {
                w.write(b).context("cannot write CSV")?;
            }
        }
        Format::Json => {
            let mut w = arrow_json::LineDelimitedWriter::new(Stdout);
            for b in batches {
                w.write(b).context("cannot write JSON")?;
            }
            w.finish().context("cannot write JSON")?;
        }
    }
    Ok(())
}

/// Prints the catalog's tables.
pub(crate) fn print_tables(tables: &[TableEntry], format: Format) -> Result<()> {
    match format {
        Format::Json => {
            for t in tables {
                outln!("{}", serde_json::to_string(t)?);
            }
        }
        Format::Csv => {
            outln!("database,table,rows,files,bytes,version,location");
            for t in tables {
                outln!(
                    "{},{},{},{},{},{},{}",
                    t.database,
                    t.name,
                    t.parameters.get("recordCount").map_or("", |s| s),
                    t.parameters.get("objectCount").map_or("", |s| s),
                    t.parameters.get("sizeKey").map_or("", |s| s),
                    t.version,
                    t.location
                );
            }
        }
        Format::Table => {
            for t in tables {
                let rows: u64 = t
                    .parameters
                    .get("recordCount")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                let bytes: u64 = t
                    .parameters
                    .get("sizeKey")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                outln!(
                    "{}.{}  {} rows, {}, version {}, updated {}",
                    t.database,
                    t.name,
                    thousands(rows),
                    human_bytes(bytes),
                    t.version,
                    t.updated_at
                );
                outln!("  location {}", t.location);
                let cols: Vec<String> = t
                    .columns
                    .iter()
                    .map(|c| format!("{} {}", c.name, c.hive_type))
                    .collect();
                for line in wrap(&cols.join(", "), 90) {
                    outln!("  {line}");
                }
            }
        }
    }
    Ok(())
}

fn print_columns(t: &TableEntry) {
    let cols: Vec<String> = t
        .columns
        .iter()
        .map(|c| format!("{} {}", c.name, c.hive_type))
        .chain(
            t.partition_keys
                .iter()
                .map(|c| format!("{} {} (partition)", c.name, c.hive_type)),
        )
        .collect();
    for line in wrap(&cols.join(", "), 90) {
        outln!("         {line}");
    }
}

/// Prints a table a crawl registered.
pub(crate) fn print_crawled(
    t: &TableEntry,
    files: usize,
    changes: &[String],
    kept: bool,
    catalog_kind: &str,
) {
    let records = t
        .parameters
        .get("recordCount")
        .and_then(|r| r.parse::<u64>().ok())
        .unwrap_or(0);
    outln!(
        "  table  {}.{} registered in the {catalog_kind} catalog (version {}): {} {} from {}, {} rows{}",
        t.database,
        t.name,
        t.version,
        t.classification,
        plural(files, "file"),
        t.location,
        thousands(records),
        if t.partitions.is_empty() {
            String::new()
        } else {
            format!(", {}", plural(t.partitions.len(), "partition"))
        }
    );
    print_columns(t);
    for change in changes {
        let note = if kept {
            " (kept: schema_change log)"
        } else {
            ""
        };
        outln!("  schema {change}{note}");
    }
}
