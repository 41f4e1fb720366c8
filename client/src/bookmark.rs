//! `sluice bookmark show|reset`: a job's bookmark, on the embedded default (read from the
//! lake) or through a scheduler's job service (`--scheduler`).

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use clap::Subcommand;
use sluice_lake::Lake;
use sluice_proto as pb;

use crate::LakeArgs;
use crate::connection::SchedulerArgs;

/// What to do with a bookmark.
#[derive(Subcommand)]
pub(crate) enum BookmarkCommand {
    /// Show a job's bookmark: per source, the files processed and the run that processed
    /// them; and the earlier runs it can be rewound to.
    Show {
        /// The job file (YAML), or the job's name (found in the lake's embedded catalog by
        /// the bookmark its table holds, or known to the scheduler with --scheduler).
        job: String,
        #[command(flatten)]
        lake: LakeArgs,
        #[command(flatten)]
        scheduler: SchedulerArgs,
    },
    /// Forget a job's bookmark (its next run reads every file), or rewind it to an earlier
    /// run's with --to. The next run honours it.
    Reset {
        /// The job file (YAML), or the job's name (found in the lake's embedded catalog by
        /// the bookmark its table holds, or known to the scheduler with --scheduler).
        job: String,
        /// Rewind to the bookmark this earlier run left.
        #[arg(long)]
        to: Option<String>,
        #[command(flatten)]
        lake: LakeArgs,
        #[command(flatten)]
        scheduler: SchedulerArgs,
    },
}

/// Runs a `sluice bookmark` command.
pub(crate) async fn run(command: BookmarkCommand) -> Result<()> {
    match command {
        BookmarkCommand::Show {
            job,
            lake,
            scheduler,
        } => {
            let bookmark = if scheduler.scheduler.is_some() {
                let mut client = crate::remote::connect(&scheduler).await?;
                client
                    .get_bookmark(pb::GetBookmarkRequest {
                        job_name: job_name(&job)?,
                    })
                    .await
                    .map_err(|s| anyhow!("the scheduler refused: {}", s.message()))?
                    .into_inner()
            } else {
                let (lake, catalogs, spec) = embedded(&job, &lake).await?;
                sluice_engine::job_bookmark(&lake, &catalogs, &spec).await?
            };
            print_bookmark(&bookmark);
        }
        BookmarkCommand::Reset {
            job,
            to,
            lake,
            scheduler,
        } => {
            let bookmark = if scheduler.scheduler.is_some() {
                let mut client = crate::remote::connect(&scheduler).await?;
                client
                    .reset_bookmark(pb::ResetBookmarkRequest {
                        job_name: job_name(&job)?,
                        to_run_id: to.clone().unwrap_or_default(),
                    })
                    .await
                    .map_err(|s| anyhow!("the scheduler refused: {}", s.message()))?
                    .into_inner()
            } else {
                let (lake, catalogs, spec) = embedded(&job, &lake).await?;
                sluice_engine::reset_job_bookmark(&lake, &catalogs, &spec, to.as_deref()).await?
            };
            match &to {
                Some(run) => outln!(
                    "bookmark of job '{}' rewound to run {run}: the next run starts from it",
                    bookmark.job_name
                ),
                None => outln!(
                    "bookmark of job '{}' reset: the next run reads every file",
                    bookmark.job_name
                ),
            }
            print_bookmark(&bookmark);
        }
    }
    Ok(())
}

/// The job's name: the file's `name` when `job` is a job file, else `job` itself.
fn job_name(job: &str) -> Result<String> {
    if Path::new(job).is_file() {
        Ok(crate::load_job(Path::new(job))?.spec.name)
    } else {
        Ok(job.to_string())
    }
}

/// The lake, its catalogs and the job's spec, for the embedded default (which keeps no run
/// history): the job file's, or for a job name, one naming the table of the lake's embedded
/// catalog whose current version holds the job's bookmark.
async fn embedded(
    job: &str,
    lake_arg: &LakeArgs,
) -> Result<(Lake, sluice_catalog::Catalogs, pb::JobSpec)> {
    let lake = Lake::open(&crate::local_store, &crate::lake_url(&lake_arg.lake)?)
        .context("cannot open the lake")?;
    let catalogs = lake.catalogs(lake_arg.catalog);
    let path = Path::new(job);
    if path.is_file() {
        return Ok((lake, catalogs, crate::load_job(path)?.spec));
    }
    if job.ends_with(".yaml") || job.ends_with(".yml") || job.contains(std::path::MAIN_SEPARATOR) {
        bail!("{job}: no such job file");
    }
    let spec = job_table(&lake, job).await?;
    Ok((lake, catalogs, spec))
}

/// A spec of job `job` naming its target: the one table of the lake's embedded catalog whose
/// current version holds the job's bookmark (the bookmark records the job's name).
async fn job_table(lake: &Lake, job: &str) -> Result<pb::JobSpec> {
    use sluice_catalog::Catalog as _;
    let catalog = lake.embedded_catalog();
    let tables = catalog
        .list_tables()
        .await
        .context("cannot read the lake's embedded catalog")?;
    let mut found = lake
        .bookmarked_tables(job, tables)
        .await
        .with_context(|| format!("cannot read the bookmarks of job '{job}'"))?;
    let (entry, table) = match found.len() {
        0 => bail!(
            "no table of the embedded catalog in {} holds a bookmark of job '{job}' (a bookmark \
             is kept in the table a committed `bookmark: enable` or `pause` run of the job \
             wrote); give the job file, or the scheduler with --scheduler",
            lake.url
        ),
        1 => found.remove(0),
        _ => bail!(
            "{} tables of the embedded catalog hold a bookmark of job '{job}': {}; give the job \
             file to say which",
            found.len(),
            found
                .iter()
                .map(|(e, _)| format!("{}.{}", e.database, e.name))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    Ok(pb::JobSpec {
        name: job.to_string(),
        target: Some(pb::Target {
            table: Some(pb::TableRef {
                database: entry.database,
                table: entry.name,
            }),
            location: table.root_url(),
            catalog: pb::CatalogKind::Embedded as i32,
            ..Default::default()
        }),
        ..Default::default()
    })
}

fn print_bookmark(b: &pb::Bookmark) {
    if b.run_id.is_empty() {
        outln!("job '{}': no file recorded as processed", b.job_name);
    } else {
        outln!("job '{}': bookmark as of run {}", b.job_name, b.run_id);
    }
    for s in &b.sources {
        outln!("  source {}: {} file(s) processed", s.source, s.files.len());
        for f in &s.files {
            outln!("    {}  {} bytes  run {}", f.url, f.size, f.run_id);
        }
    }
    if b.earlier_runs.is_empty() {
        outln!("  no earlier run to rewind to");
    } else {
        outln!("  earlier runs (rewind with --to RUN_ID):");
        for r in &b.earlier_runs {
            outln!("    {r}");
        }
    }
}
