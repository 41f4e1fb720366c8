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
        /// The job file (YAML); with --scheduler, the job's name also works.
        job: String,
        #[command(flatten)]
        lake: LakeArgs,
        #[command(flatten)]
        scheduler: SchedulerArgs,
    },
    /// Forget a job's bookmark (its next run reads every file), or rewind it to an earlier
    /// run's with --to. The next run honours it.
    Reset {
        /// The job file (YAML); with --scheduler, the job's name also works.
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
                let (lake, catalogs, spec) = embedded(&job, &lake)?;
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
                let (lake, catalogs, spec) = embedded(&job, &lake)?;
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
/// history: the job file names the table).
fn embedded(
    job: &str,
    lake_arg: &LakeArgs,
) -> Result<(Lake, sluice_catalog::Catalogs, pb::JobSpec)> {
    let path = Path::new(job);
    if !path.is_file() {
        bail!(
            "{job}: no such job file (on the embedded default give the job file; a job name alone works with --scheduler)"
        );
    }
    let loaded = crate::load_job(path)?;
    let lake = Lake::open(&crate::local_store, &crate::lake_url(&lake_arg.lake)?)
        .context("cannot open the lake")?;
    let catalogs = lake.catalogs(lake_arg.catalog);
    Ok((lake, catalogs, loaded.spec))
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
