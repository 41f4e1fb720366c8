//! `sluice`: run ETL jobs on an embedded cluster, list the catalog's tables, query the lake.

/// `println!` for the command's output. A reader that goes away (`sluice … | head -1`)
/// ends the command quietly instead of panicking on the broken pipe.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::write_line(format_args!($($arg)*))
    };
}

mod bookmark;
mod connection;
mod flight_query;
mod output;
mod remote;
mod schedule;
mod serve;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, Subcommand, ValueEnum};
use connection::SchedulerArgs;
use indicatif::{ProgressBar, ProgressStyle};
use sluice_catalog::schema::SchemaChangePolicy;
use sluice_catalog::{Catalog, CatalogKind, Catalogs};
use sluice_engine::{Engine, RunError, RunEvent, RunReport, query, run_job, target_catalog};
use sluice_job::LoadedJob;
use sluice_lake::Lake;
use sluice_planner::PlanError;

/// Sluice: CSV staging → ETL on Ballista → Parquet lake → catalog → SQL.
#[derive(Parser)]
#[command(name = "sluice", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the lake (and the embedded catalog inside it) lives.
#[derive(clap::Args, Clone)]
struct LakeArgs {
    /// Lake folder (or file:// URL); the embedded catalog is kept inside it.
    #[arg(long, env = "SLUICE_LAKE", default_value = "lake")]
    lake: String,
    /// Catalog for targets that name none, for `tables`, `query` and `crawl`: `embedded`
    /// (in the lake) or `glue` (AWS Glue: region, credentials and endpoint from the
    /// standard AWS settings, e.g. AWS_REGION and AWS_ENDPOINT_URL_GLUE).
    #[arg(long, env = "SLUICE_CATALOG", default_value = "embedded")]
    catalog: CatalogKind,
}

/// How results are printed.
#[derive(clap::Args, Clone, Copy)]
struct OutputArgs {
    /// Output format.
    #[arg(long, env = "SLUICE_FORMAT", value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Subcommand)]
enum Command {
    /// Run a job file on the embedded cluster (scheduler and executor in this process).
    Run {
        /// The job file (YAML).
        job: PathBuf,
        #[command(flatten)]
        lake: LakeArgs,
        /// Task slots of the embedded executor (default: the number of cores).
        #[arg(long, env = "SLUICE_PARTITIONS")]
        partitions: Option<usize>,
        /// Memory the job's joins, sorts and aggregations may hold together; beyond it they
        /// spill to the temporary folder (TMPDIR), and a join whose smaller side is estimated
        /// above a quarter of it runs as a sort-merge join. A size: 2GiB, 512MiB, 0.5GB or
        /// bytes; 0 for no limit (default: 70% of the process's cgroup v2 memory.max, else of
        /// the machine's memory).
        #[arg(long, env = "SLUICE_MEMORY_LIMIT", value_name = "SIZE",
              value_parser = sluice_engine::session::parse_memory_limit)]
        memory_limit: Option<sluice_engine::session::MemoryLimit>,
        /// Rows of the result to show after the run (0 for none).
        #[arg(long, env = "SLUICE_PREVIEW", default_value_t = 5)]
        preview: usize,
    },
    /// Submit a job file to a scheduler and follow the run (exits non-zero unless it succeeds).
    Submit {
        /// The job file (YAML).
        job: PathBuf,
        #[command(flatten)]
        scheduler: SchedulerArgs,
        /// Print the run id and return at once.
        #[arg(long, env = "SLUICE_DETACH")]
        detach: bool,
    },
    /// List a scheduler's runs, newest first.
    Jobs {
        #[command(flatten)]
        scheduler: SchedulerArgs,
        /// Only runs in these states (waiting, running, succeeded, failed, …).
        #[arg(long = "state", env = "SLUICE_STATE", value_delimiter = ',')]
        states: Vec<String>,
        /// At most this many runs.
        #[arg(long, env = "SLUICE_LIMIT", default_value_t = 50)]
        limit: u32,
    },
    /// Show one run.
    Status {
        /// The run id.
        run_id: String,
        #[command(flatten)]
        scheduler: SchedulerArgs,
    },
    /// Follow a run until it ends (exits non-zero unless it succeeds).
    Watch {
        /// The run id.
        run_id: String,
        #[command(flatten)]
        scheduler: SchedulerArgs,
    },
    /// Stop a run: it ends STOPPED and publishes nothing.
    Cancel {
        /// The run id.
        run_id: String,
        #[command(flatten)]
        scheduler: SchedulerArgs,
    },
    /// Check a job file without running it: its structure, then its data as `run` would
    /// (files exist and are not empty, schemas infer, every column named resolves).
    Validate {
        /// The job file (YAML).
        job: PathBuf,
        /// Check the file's structure only, without reading the data.
        #[arg(long, env = "SLUICE_OFFLINE")]
        offline: bool,
    },
    /// List the catalog's tables.
    Tables {
        #[command(flatten)]
        lake: LakeArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Register the Parquet or CSV files under a folder or S3 prefix as tables, as a Glue
    /// crawler does: schemas merged across files, `key=value` folders as partitions.
    Crawl {
        /// Folder or URL (`s3://bucket/prefix/`) to crawl. Data files or partition folders
        /// directly under it make one table; plain folders make one table each.
        url: String,
        /// Database to register the tables in.
        #[arg(long, env = "SLUICE_DATABASE")]
        database: String,
        /// Table name, when the URL holds one table (default: the folder's name).
        #[arg(long, env = "SLUICE_TABLE")]
        table: Option<String>,
        /// When a table exists with other columns: `update` it, or `log` and keep it.
        #[arg(long, env = "SLUICE_SCHEMA_CHANGE", value_enum, default_value_t = Policy::Update)]
        schema_change: Policy,
        #[command(flatten)]
        lake: LakeArgs,
    },
    /// Serve the dashboards, catalog, runs and SQL pages over the lake (open the URL it
    /// prints); panel queries run on an embedded cluster.
    Serve {
        #[command(flatten)]
        lake: LakeArgs,
        /// Folder of dashboard files (or one file). Default: examples/spotify/dashboard.yaml
        /// when it exists, else none.
        #[arg(long, env = "SLUICE_DASHBOARDS")]
        dashboards: Option<PathBuf>,
        /// Address of the HTTP server. Without --users only a loopback address is allowed.
        #[arg(long, env = "SLUICE_HTTP_BIND", default_value = "127.0.0.1:8080")]
        http_bind: std::net::SocketAddr,
        /// YAML file whose `users:` (name, password_hash, role; the scheduler's config
        /// file works) must log in.
        #[arg(long, env = "SLUICE_USERS")]
        users: Option<PathBuf>,
        /// Task slots of the embedded executor (default: the number of cores).
        #[arg(long, env = "SLUICE_PARTITIONS")]
        partitions: Option<usize>,
        /// How long, and how many, SQL workbench results are kept in the lake
        /// (`_sluice/results/`): an age (30m, 12h, 7d), a count (500), or both (7d,500).
        #[arg(long, env = "SLUICE_RESULTS_RETENTION", default_value = "7d,1000")]
        results_retention: sluice_dashboard::Retention,
    },
    /// Show or reset a job's bookmark (the files its committed runs processed).
    Bookmark {
        #[command(subcommand)]
        action: bookmark::BookmarkCommand,
    },
    /// Register a job file's `schedule:` (cron timer and/or `after:` jobs) with a scheduler.
    Schedule {
        /// The job file (YAML); it must carry `schedule:`.
        job: PathBuf,
        /// The schedule's name (default: the job's name); registering a name again
        /// replaces it.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        scheduler: SchedulerArgs,
    },
    /// List a scheduler's schedules: cron, time zone, next fire, last fire and its run.
    Schedules {
        #[command(flatten)]
        scheduler: SchedulerArgs,
    },
    /// Remove a schedule (runs it started go on).
    Unschedule {
        /// The schedule's name.
        name: String,
        #[command(flatten)]
        scheduler: SchedulerArgs,
    },
    /// Run SQL over the catalog's tables (`database.table`).
    Query {
        /// The SQL statement.
        sql: String,
        #[command(flatten)]
        lake: LakeArgs,
        #[command(flatten)]
        scheduler: SchedulerArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
}

/// A crawler's schema change policy.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Policy {
    /// New columns are added and types widened (UPDATE_IN_DATABASE).
    Update,
    /// The registered table is kept; differences are printed (LOG).
    Log,
}

/// How results are printed.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Format {
    /// An aligned text table.
    Table,
    /// CSV with a header line.
    Csv,
    /// One JSON object per line.
    Json,
}

/// jemalloc instead of glibc's malloc. A job allocates and frees large buffers (CSV batches,
/// a join's build side, Parquet pages) on many threads; glibc maps each large one afresh and
/// unmaps it on free, so its pages fault in again every time. On the x1000 Spotify job,
/// jemalloc preloaded into the same binary took 24.0-25.6 s against 27.6-29.2 s, with a peak
/// RSS of 1,415-1,487 MiB against 1,691-1,824 MiB
/// (`bench/results/2026-11-28-allocators-x1000.md`).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read by jemalloc itself at start
/// (see [`sluice_executor::memory::JEMALLOC_CONF`]).
#[allow(non_upper_case_globals, unsafe_code)]
#[unsafe(export_name = "_rjem_malloc_conf")]
static malloc_conf: &[u8] = sluice_executor::memory::JEMALLOC_CONF;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // The OTLP exporter needs the runtime while it is built.
    let _enter = runtime.enter();
    let _telemetry = sluice_telemetry::init("sluice", "off");
    match runtime.block_on(dispatch(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run {
            job,
            lake,
            partitions,
            memory_limit,
            preview,
        } => run(&job, &lake, partitions, memory_limit, preview).await,
        Command::Submit {
            job,
            scheduler,
            detach,
        } => remote::submit(&job, &scheduler, detach).await,
        Command::Jobs {
            scheduler,
            states,
            limit,
        } => remote::jobs(&scheduler, &states, limit).await,
        Command::Status { run_id, scheduler } => remote::status(&scheduler, &run_id).await,
        Command::Watch { run_id, scheduler } => remote::watch(&scheduler, &run_id).await,
        Command::Cancel { run_id, scheduler } => remote::cancel(&scheduler, &run_id).await,
        Command::Validate { job, offline } => validate(&job, offline).await,
        Command::Tables {
            lake,
            output: OutputArgs { format },
        } => tables(&lake, format).await,
        Command::Crawl {
            url,
            database,
            table,
            schema_change,
            lake,
        } => {
            let policy = match schema_change {
                Policy::Update => SchemaChangePolicy::Update,
                Policy::Log => SchemaChangePolicy::Log,
            };
            crawl(&url, &database, table.as_deref(), policy, &lake).await
        }
        Command::Serve {
            lake,
            dashboards,
            http_bind,
            users,
            partitions,
            results_retention,
        } => {
            serve::serve(serve::ServeArgs {
                lake,
                dashboards,
                http_bind,
                users,
                partitions,
                results_retention,
            })
            .await
        }
        Command::Bookmark { action } => bookmark::run(action).await,
        Command::Schedule {
            job,
            name,
            scheduler,
        } => schedule::schedule(&job, name, &scheduler).await,
        Command::Schedules { scheduler } => schedule::schedules(&scheduler).await,
        Command::Unschedule { name, scheduler } => schedule::unschedule(&name, &scheduler).await,
        Command::Query {
            sql,
            lake,
            scheduler,
            output: OutputArgs { format },
        } => {
            let batches = match &scheduler.scheduler {
                Some(url) => flight_query::query(url, &scheduler.login, &sql).await?,
                None => query_lake(&lake, &sql).await?,
            };
            output::print_batches(&batches, format)
        }
    }
}

/// Checks a job file; unless `offline`, plans it against its data as `sluice run` does.
async fn validate(path: &Path, offline: bool) -> Result<()> {
    let loaded = load_job(path)?;
    let shape = format!(
        "{} sources, {} transforms",
        loaded.spec.sources.len(),
        loaded.spec.transforms.len()
    );
    if offline {
        outln!(
            "{}: job '{}' is well formed ({shape}); its data was not checked (--offline)",
            path.display(),
            loaded.spec.name
        );
        return Ok(());
    }
    // A plain single-node session: planning lists files and infers schemas, which needs
    // the object stores but no cluster.
    let ctx = query::query_context();
    let planned = sluice_planner::plan_job(&ctx, &loaded.spec)
        .await
        .map_err(|e| plan_error(&loaded, e))?;
    let fields = planned.output.schema().fields().clone();
    for field in fields.iter() {
        // The checks `run` makes before it writes: Athena names and types the catalog knows.
        let problem = match sluice_job::names::check_catalog_name(field.name()) {
            Err(e) => Some(format!(
                "output column {e}: rename it with a 'rename' transform"
            )),
            Ok(()) => sluice_catalog::types::hive_type(field.data_type())
                .err()
                .map(|e| format!("column '{}': {e}", field.name())),
        };
        if let Some(message) = problem {
            let d = sluice_job::Diagnostic::new("target.input", message);
            bail!("invalid job:\n{}", loaded.describe(&d));
        }
    }
    let files: usize = planned.sources.iter().map(|s| s.files.len()).sum();
    outln!(
        "{}: job '{}' is valid ({shape}; {files} input files found, {} output columns)",
        path.display(),
        loaded.spec.name,
        fields.len()
    );
    Ok(())
}

/// A planning error, pointing at the job file's line when the job is at fault.
fn plan_error(job: &LoadedJob, e: PlanError) -> anyhow::Error {
    match e {
        PlanError::Invalid(d) => anyhow!("invalid job:\n{}", job.describe(&d)),
        other => anyhow!("{other}"),
    }
}

fn load_job(path: &Path) -> Result<LoadedJob> {
    sluice_job::load(path).map_err(|e| anyhow!("invalid job file:\n{e}"))
}

/// The lake argument as an absolute `file://` URL (or the URL as given).
fn lake_url(arg: &str) -> Result<String> {
    Ok(sluice_storage::lake_url(arg)?)
}

async fn run(
    job_path: &Path,
    lake_arg: &LakeArgs,
    partitions: Option<usize>,
    memory_limit: Option<sluice_engine::session::MemoryLimit>,
    preview: usize,
) -> Result<()> {
    let loaded = load_job(job_path)?;
    let partitions = partitions
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(100));
    bar.set_message("starting the embedded cluster");
    let mut options = sluice_engine::EngineOptions::new(partitions);
    if let Some(limit) = memory_limit {
        options.memory_limit = limit;
    }
    let limit = options.memory_limit;
    let engine = Engine::embedded_with(options)
        .await
        .context("cannot start the embedded cluster")?;
    let lake = Lake::open(&engine, &lake_url(&lake_arg.lake)?).context("cannot open the lake")?;
    let catalogs = lake.catalogs(lake_arg.catalog);
    let progress_bar = bar.clone();
    let progress = move |event: RunEvent| match event {
        RunEvent::Planning => {
            progress_bar.set_message("planning: listing sources, inferring schemas")
        }
        RunEvent::Running(p) => {
            let width = 30;
            let filled = (width * p.tasks_done)
                .checked_div(p.tasks)
                .unwrap_or(0)
                .min(width);
            progress_bar.set_message(format!(
                "running  [{}{}] stages {}/{}  tasks {}/{}",
                "#".repeat(filled),
                "-".repeat(width - filled),
                p.stages_done,
                p.stages,
                p.tasks_done,
                p.tasks
            ));
        }
        RunEvent::Committing => {
            progress_bar.set_message("committing: sealing the version, updating the catalog")
        }
    };
    let run_id = sluice_lake::new_run_id();
    let result = run_job(&engine, &lake, &catalogs, &loaded.spec, &run_id, &progress).await;
    bar.finish_and_clear();
    let report = result.map_err(|e| memory_hint(run_error(&loaded, e), limit))?;
    if let Some(note) = &report.note {
        outln!("run {}: {note}", report.run_id);
        return Ok(());
    }
    output::print_report(&loaded, &report);
    let spills = engine.spills();
    if spills.files() > 0 {
        outln!(
            "  spill  {} to disk in {} files (memory limit {limit})",
            sluice_engine::session::human_size(spills.bytes()),
            spills.files()
        );
    }
    if preview > 0 {
        let table = format!("{}.{}", report.table.database, report.table.name);
        // The first columns only, so the preview fits a terminal.
        let columns: Vec<String> = report
            .table
            .columns
            .iter()
            .take(6)
            .map(|c| format!("\"{}\"", c.name))
            .collect();
        let sql = format!("SELECT {} FROM {table} LIMIT {preview}", columns.join(", "));
        let target = loaded.spec.target.clone().unwrap_or_default();
        let catalog = target_catalog(&catalogs, &target).await?;
        let batches = query_catalog(catalog.as_ref(), &sql).await?;
        outln!("\nFirst {preview} rows of {table} (first columns):");
        output::print_batches(&batches, Format::Table)?;
    }
    print_next_steps(&report, lake_arg);
    Ok(())
}

/// `error` with advice when the job ran out of memory under `limit` (what could spill did).
fn memory_hint(error: anyhow::Error, limit: sluice_engine::session::MemoryLimit) -> anyhow::Error {
    let text = format!("{error:#}");
    if !(text.contains("ResourcesExhausted") || text.contains("Resources exhausted")) {
        return error;
    }
    error.context(format!(
        "the job needs more memory than --memory-limit {limit} allows, even spilling to \
         disk what can spill: raise --memory-limit (or SLUICE_MEMORY_LIMIT)"
    ))
}

fn run_error(job: &LoadedJob, e: RunError) -> anyhow::Error {
    match e {
        RunError::Plan(PlanError::Invalid(d)) => {
            anyhow!("invalid job:\n{}\nnothing was published", job.describe(&d))
        }
        RunError::Quality(results) => anyhow!(
            "{}:\n{}\nnothing was published; the table's previous version (if any) is unchanged; the outcomes are in {}.{}",
            RunError::Quality(results.clone()),
            sluice_engine::quality::failure_summary(&results),
            sluice_engine::quality_log::QUALITY_DATABASE,
            sluice_engine::quality_log::QUALITY_TABLE,
        ),
        other => anyhow!(
            "{other}\nnothing was published; the table's previous version (if any) is unchanged"
        ),
    }
}

/// How to query the table just written: the same lake, and the catalog it is registered in
/// when that is not the one `sluice query` would use anyway.
fn print_next_steps(report: &RunReport, lake_args: &LakeArgs) {
    let lake_arg = lake_args.lake.as_str();
    let me = if std::env::var_os("CARGO").is_some() {
        "cargo run -q --bin sluice --".to_string()
    } else {
        "sluice".to_string()
    };
    let lake = if lake_arg == "lake" {
        String::new()
    } else {
        format!(" --lake {lake_arg}")
    };
    let default_catalog = match lake_args.catalog {
        CatalogKind::Embedded => "embedded",
        CatalogKind::Glue => "glue",
    };
    let lake = if report.catalog != "embedded" || default_catalog != "embedded" {
        format!("{lake} --catalog {}", report.catalog)
    } else {
        lake
    };
    let table = format!("{}.{}", report.table.database, report.table.name);
    outln!("\nQuery it:");
    outln!("  {me} query \"SELECT count(*) AS rows FROM {table}\"{lake}");
    outln!("  {me} tables{lake}");
}

async fn query_catalog(
    catalog: &dyn Catalog,
    sql: &str,
) -> Result<Vec<datafusion::arrow::record_batch::RecordBatch>> {
    let tables = catalog
        .list_tables()
        .await
        .context("cannot read the catalog")?;
    let ctx = query::query_context();
    query::register_tables(&ctx, &tables).await.map_err(|e| {
        anyhow!(
            "cannot open the catalog's tables: {}",
            sluice_planner::clean_message(&e)
        )
    })?;
    let df = ctx
        .sql(sql)
        .await
        .map_err(|e| anyhow!("query failed: {}", sluice_planner::clean_message(&e)))?;
    df.collect()
        .await
        .map_err(|e| anyhow!("query failed: {}", sluice_planner::clean_message(&e)))
}

/// The lake's catalogs, without starting a cluster.
fn open_catalogs(lake_arg: &LakeArgs) -> Result<Catalogs> {
    let lake =
        Lake::open(&local_store, &lake_url(&lake_arg.lake)?).context("cannot open the lake")?;
    Ok(lake.catalogs(lake_arg.catalog))
}

/// The object store holding `url`, from this process's own stores (folders, and S3 clients
/// from its environment): what the lake and the crawler read without a cluster.
fn local_store(
    url: &url::Url,
) -> std::result::Result<std::sync::Arc<dyn object_store::ObjectStore>, sluice_lake::BoxError> {
    use datafusion::execution::object_store::ObjectStoreRegistry;
    Ok(sluice_storage::SluiceObjectStores::new().get_store(url)?)
}

/// The lake's default catalog.
async fn default_catalog(lake_arg: &LakeArgs) -> Result<std::sync::Arc<dyn Catalog>> {
    open_catalogs(lake_arg)?
        .get(None)
        .await
        .context("cannot open the catalog")
}

async fn query_lake(
    lake_arg: &LakeArgs,
    sql: &str,
) -> Result<Vec<datafusion::arrow::record_batch::RecordBatch>> {
    let catalog = default_catalog(lake_arg).await?;
    query_catalog(catalog.as_ref(), sql).await
}

async fn tables(lake_arg: &LakeArgs, format: Format) -> Result<()> {
    let catalog = default_catalog(lake_arg).await?;
    let tables = catalog
        .list_tables()
        .await
        .context("cannot read the catalog")?;
    if tables.is_empty() && format == Format::Table {
        bail!(
            "no tables in the {} catalog; run a job first",
            catalog.kind()
        );
    }
    output::print_tables(&tables, format)
}

async fn crawl(
    url_arg: &str,
    database: &str,
    table: Option<&str>,
    policy: SchemaChangePolicy,
    lake_arg: &LakeArgs,
) -> Result<()> {
    let url = if url_arg.contains("://") {
        url_arg.to_string()
    } else {
        let dir =
            std::fs::canonicalize(url_arg).with_context(|| format!("cannot crawl {url_arg}"))?;
        url::Url::from_directory_path(&dir)
            .map_err(|_| anyhow!("cannot crawl {}: not a folder path", dir.display()))?
            .to_string()
    };
    let parsed = url::Url::parse(&url).with_context(|| format!("{url} is not a URL"))?;
    let store = local_store(&parsed).map_err(|e| anyhow!("cannot open {url}: {e}"))?;
    let catalog = default_catalog(lake_arg).await?;
    let bar = ProgressBar::new_spinner();
    bar.enable_steady_tick(Duration::from_millis(100));
    bar.set_message(format!("crawling {url}: listing files, reading schemas"));
    let found = sluice_crawler::crawl(store, &parsed, database, table).await;
    bar.finish_and_clear();
    let found = found.map_err(|e| anyhow!("crawl failed: {e}\nnothing was registered"))?;
    // Every table is checked against the catalog before any is registered.
    for t in &found.tables {
        if let Some(old) = catalog.get_table(&t.entry.database, &t.entry.name).await? {
            sluice_catalog::schema::reconcile(
                &format!("{}.{}", old.database, old.name),
                Some(sluice_catalog::schema::Registered {
                    columns: &old.columns,
                    partition_keys: &old.partition_keys,
                }),
                &t.entry.columns,
                &t.entry.partition_keys,
                policy,
            )
            .map_err(|e| anyhow!("crawl failed: {e}\nnothing was registered"))?;
        }
    }
    for t in &found.tables {
        let (entry, changes) = sluice_crawler::register(catalog.as_ref(), t, policy)
            .await
            .map_err(|e| anyhow!("cannot register {}.{}: {e}", t.entry.database, t.entry.name))?;
        output::print_crawled(
            &entry,
            t.files,
            &changes,
            policy == SchemaChangePolicy::Log,
            catalog.kind(),
        );
    }
    for f in &found.skipped {
        outln!("  skipped {f} (neither Parquet nor CSV)");
    }
    Ok(())
}
