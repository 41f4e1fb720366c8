//! How far a run has got: progress for displays ([`RunEvent`], [`JobProgress`]) and one
//! tracing span per Ballista stage.

use std::collections::{HashMap, HashSet};

use crate::introspection::{StageSnapshot, StageState};

/// What a run is doing, for progress displays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEvent {
    /// Listing sources, inferring schemas, checking columns.
    Planning,
    /// Executing on the cluster.
    Running(JobProgress),
    /// Sealing the new version and updating the catalog.
    Committing,
}

/// Where a stage is, as progress displays show it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProgressState {
    /// Not started.
    #[default]
    Waiting,
    /// Running.
    Running,
    /// Finished.
    Done,
    /// Failed.
    Failed,
}

impl ProgressState {
    /// The name the job service sends (`waiting`, `running`, `done`, `failed`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }
}

impl From<StageState> for ProgressState {
    fn from(state: StageState) -> Self {
        match state {
            StageState::Successful => Self::Done,
            StageState::Running => Self::Running,
            StageState::Failed => Self::Failed,
            StageState::Unresolved | StageState::Resolved => Self::Waiting,
        }
    }
}

/// How far one stage has got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StageProgress {
    /// Stage id.
    pub stage_id: usize,
    /// Waiting, running, done or failed.
    pub state: ProgressState,
    /// Tasks of the stage (0 while its inputs are not ready).
    pub tasks: usize,
    /// Tasks finished.
    pub tasks_done: usize,
}

/// How far a job has got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobProgress {
    /// Stages in the job.
    pub stages: usize,
    /// Stages finished.
    pub stages_done: usize,
    /// Tasks of the stages known so far.
    pub tasks: usize,
    /// Tasks finished.
    pub tasks_done: usize,
    /// Every stage, by id.
    pub stage_list: Vec<StageProgress>,
}

impl JobProgress {
    /// Progress summed over the stages of one snapshot, with one entry per stage.
    pub fn from_stages(snapshot: &[StageSnapshot]) -> Self {
        let mut p = Self::default();
        let mut stages: Vec<&StageSnapshot> = snapshot.iter().collect();
        stages.sort_by_key(|s| (s.job_id.clone(), s.stage_id));
        for s in stages {
            let state = ProgressState::from(s.state);
            p.stages += 1;
            p.stages_done += usize::from(state == ProgressState::Done);
            p.tasks += s.partitions;
            p.tasks_done += s.partitions_done;
            p.stage_list.push(StageProgress {
                stage_id: s.stage_id,
                state,
                tasks: s.partitions,
                tasks_done: s.partitions_done,
            });
        }
        p
    }
}

/// `stage` spans (children of the run's span) that open when the scheduler starts a stage
/// and close when it finishes, with one event per finished task.
#[derive(Default)]
pub(crate) struct StageSpans {
    /// Open spans, with the ids of the tasks already reported on each.
    open: HashMap<(String, usize), (tracing::Span, HashSet<usize>)>,
    ended: HashSet<(String, usize)>,
}

impl StageSpans {
    /// Opens, reports on and closes spans as `snapshot` shows the stages.
    pub(crate) fn update(&mut self, snapshot: Vec<StageSnapshot>) {
        for s in snapshot {
            let key = (s.job_id.clone(), s.stage_id);
            if !s.state.started() || self.ended.contains(&key) {
                continue;
            }
            let (span, reported) = self.open.entry(key).or_insert_with(|| {
                (
                    tracing::info_span!("stage", job = %s.job_id, stage = s.stage_id, partitions = s.partitions),
                    HashSet::new(),
                )
            });
            // Tasks are listed by id, not in the order they finished: report each new one.
            for (task, ms) in &s.finished_tasks {
                if reported.insert(*task) {
                    tracing::info!(parent: &*span, task, duration_ms = ms, "task finished");
                }
            }
            if s.state != StageState::Running {
                tracing::info!(parent: &*span, state = s.state.as_str(), "stage ended");
                let key = (s.job_id.clone(), s.stage_id);
                self.open.remove(&key);
                self.ended.insert(key);
            }
        }
        // A job that ends leaves the running jobs before the write returns: its stages
        // vanish from a tick's snapshot. Their spans stay open, with what they reported, until
        // the final snapshot of the finished jobs ends them (or the run ends and drops them);
        // closing them here made the final snapshot open them again and report tasks twice.
    }
}
