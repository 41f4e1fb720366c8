//! Memory limits: the `--memory-limit` value (sizes such as `2GiB`, `512MiB`, `0.5GB`), the
//! default derived from the memory this process may use, the DataFusion memory pool built
//! from a limit, and a spill-file counter.
//!
//! DataFusion's operators reserve their large buffers (hash tables, sort buffers, aggregation
//! state, repartition queues) from the runtime's memory pool. With a bounded pool a sort, an
//! aggregation, a repartition and a sort-merge join write their state to spill files when the
//! pool is full instead of growing; a hash join cannot spill its build side (see
//! `sluice_engine`'s join selection for how Sluice handles that).

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::common::DataFusionError;
use datafusion::common::Result as DfResult;
use datafusion::execution::disk_manager::{DiskManager, DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{
    FairSpillPool, MemoryConsumer, MemoryLimit as PoolLimit, MemoryPool, MemoryReservation,
    TrackConsumersPool,
};
use datafusion::execution::{SpillFile, SpillWriter, TempFileFactory};
// The `bytes` and `futures` types of DataFusion's spill file API, as tonic re-exports them.
use tonic::codegen::Bytes;
use tonic::codegen::tokio_stream::Stream;

/// jemalloc's settings for the job runners (`sluice` and `sluice-executor`), a C string for
/// their `_rjem_malloc_conf` symbol; `_RJEM_MALLOC_CONF` in the environment overrides them.
///
/// `thp:always`: jemalloc asks the kernel for transparent huge pages (`madvise`, which
/// Debian's default `[madvise]` mode honours) for its memory. A hash join's build side is
/// probed and gathered at random, each access a TLB miss with 4 KiB pages; on the x1000
/// Spotify job this took 16.41 s (14.95-16.60) against 17.68 s (17.55-18.40), peak RSS
/// 1,691 MiB against 1,438 MiB (`bench/ab.py`, 3 interleaved rounds).
pub const JEMALLOC_CONF: &[u8] = b"thp:always\0";

/// Share of the process's memory limit given to DataFusion's memory pool by default. The rest
/// is for what the pool does not track: batches in flight between operators, file readers
/// and writers (a Parquet row group being encoded), shuffle files' buffers, the allocator's
/// slack. Ballista's executor uses the same share.
pub const DEFAULT_FRACTION: f64 = 0.70;

/// Spill files a sort merges in one pass (it merges in several passes beyond that): each
/// open file holds a batch in memory, and a sort capped at a small share of the limit
/// writes many small files.
pub const SPILL_MERGE_FAN_IN: usize = 4;

/// Consumers named in the error when the pool is exhausted.
const REPORTED_CONSUMERS: usize = 5;

/// Parses a size: a number of bytes (`1048576`) or a number with a unit (`2GiB`, `512MiB`,
/// `0.5GB`, `64m`). `KB`/`MB`/`GB`/`TB` are powers of 1000, `KiB`/`MiB`/`GiB`/`TiB` powers of
/// 1024, and `K`/`M`/`G`/`T` alone powers of 1024 (as DataFusion's
/// `datafusion.runtime.memory_limit` reads them). Units are case-insensitive; a space between
/// number and unit is allowed. The error says what is accepted.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let accepted = "expected a size such as 2GiB, 512MiB, 0.5GB or a number of bytes";
    if number.is_empty() {
        return Err(format!("'{text}' is not a size: {accepted}"));
    }
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        other => {
            return Err(format!(
                "'{text}' has an unknown unit '{other}': {accepted} (units: B, KB, MB, GB, TB, \
                 KiB, MiB, GiB, TiB)"
            ));
        }
    };
    if let Ok(whole) = number.parse::<u64>() {
        return whole
            .checked_mul(factor)
            .ok_or_else(|| format!("'{text}' is too large"));
    }
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a size: {accepted}"))?;
    let bytes = value * factor as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("'{text}' is too large"));
    }
    Ok(bytes as u64)
}

/// A memory limit as given on the command line: a size, or `0` for none (the pool is then
/// unbounded and nothing spills).
pub fn parse_memory_limit(text: &str) -> Result<MemoryLimit, String> {
    match parse_size(text)? {
        0 => Ok(MemoryLimit::Unbounded),
        bytes => Ok(MemoryLimit::Bytes(bytes)),
    }
}

/// How much memory DataFusion's operators may hold in one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryLimit {
    /// At most this many bytes; operators spill beyond it.
    Bytes(u64),
    /// No limit (`--memory-limit 0`).
    Unbounded,
}

impl MemoryLimit {
    /// The limit given, else [`default_limit`] (unbounded when the process's memory cannot
    /// be read).
    pub fn or_default(given: Option<MemoryLimit>) -> MemoryLimit {
        given
            .or_else(|| default_limit().map(MemoryLimit::Bytes))
            .unwrap_or(MemoryLimit::Unbounded)
    }

    /// The limit in bytes, `None` when unbounded.
    pub fn bytes(self) -> Option<u64> {
        match self {
            MemoryLimit::Bytes(b) => Some(b),
            MemoryLimit::Unbounded => None,
        }
    }
}

impl std::fmt::Display for MemoryLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MemoryLimit::Bytes(b) => f.write_str(&human_size(*b)),
            MemoryLimit::Unbounded => f.write_str("unbounded"),
        }
    }
}

/// `bytes` in the largest binary unit that keeps one decimal (`1.5 GiB`, `64.0 MiB`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The default limit: [`DEFAULT_FRACTION`] of [`process_memory`].
pub fn default_limit() -> Option<u64> {
    process_memory().map(|bytes| (bytes as f64 * DEFAULT_FRACTION) as u64)
}

/// The memory this process may use: the smallest cgroup v2 `memory.max` on the path from its
/// own cgroup up to the root (a container's or a systemd unit's limit), else the machine's
/// physical memory (`MemTotal`), whichever is smaller. `None` when neither can be read.
pub fn process_memory() -> Option<u64> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|text| cgroup_limit(Path::new("/sys/fs/cgroup"), &text));
    let host = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| mem_total(&text));
    match (cgroup, host) {
        (Some(c), Some(h)) => Some(c.min(h)),
        (c, h) => c.or(h),
    }
}

/// The smallest `memory.max` from the cgroup v2 path in `self_cgroup` (the text of
/// `/proc/self/cgroup`, whose v2 line is `0::/path`) up to `root`; `max` means none.
fn cgroup_limit(root: &Path, self_cgroup: &str) -> Option<u64> {
    let path = self_cgroup
        .lines()
        .find_map(|line| line.strip_prefix("0::"))?
        .trim()
        .trim_start_matches('/');
    let mut dir: PathBuf = root.join(path);
    let mut smallest: Option<u64> = None;
    loop {
        if let Ok(text) = std::fs::read_to_string(dir.join("memory.max"))
            && let Ok(bytes) = text.trim().parse::<u64>()
        {
            smallest = Some(smallest.map_or(bytes, |s| s.min(bytes)));
        }
        if dir == root || !dir.pop() || !dir.starts_with(root) {
            break;
        }
    }
    smallest
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
}

/// A memory pool of `bytes` shared by `slots` task slots: DataFusion's fair spill pool (each
/// spilling operator gets an equal share of what the non-spilling ones leave), reporting its
/// largest consumers when exhausted, with each spilling operator capped at
/// [`spiller_cap`] (see [`CappedPool`]).
pub fn bounded_pool(bytes: u64, slots: usize) -> Arc<dyn MemoryPool> {
    let size = usize::try_from(bytes).unwrap_or(usize::MAX);
    let top = NonZeroUsize::new(REPORTED_CONSUMERS).unwrap_or(NonZeroUsize::MIN);
    Arc::new(CappedPool {
        inner: TrackConsumersPool::new(FairSpillPool::new(size), top),
        cap: spiller_cap(size, slots),
    })
}

/// The most one spilling operator may hold in a pool of `bytes` shared by `slots` task
/// slots: a quarter of a slot's share (a slot runs a few spilling operators at once: both
/// sorts of a sort-merge join, an aggregation, the shuffle writer).
pub fn spiller_cap(bytes: usize, slots: usize) -> usize {
    (bytes / (4 * slots.max(1))).max(1)
}

/// A pool that refuses a spilling operator more than `cap` bytes, so that it spills then.
///
/// A fair spill pool shares memory among the spilling operators registered *at the moment*:
/// a sort that starts while few others run may take most of the pool, and when its input ends
/// without having spilled, it keeps its sorted batches in memory (no longer spillable) while
/// they are merged out. The sorts that start after it (the other side of a sort-merge join,
/// other partitions) then cannot get even one batch and the job fails. With a cap every sort
/// spills early, so the memory held outside the spillers' reach stays small.
#[derive(Debug)]
struct CappedPool<I> {
    inner: I,
    cap: usize,
}

impl<I: MemoryPool> std::fmt::Display for CappedPool<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (each spilling operator at most {})",
            self.inner,
            human_size(self.cap as u64)
        )
    }
}

impl<I: MemoryPool> MemoryPool for CappedPool<I> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.inner.register(consumer)
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.inner.unregister(consumer)
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.inner.grow(reservation, additional)
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.inner.shrink(reservation, shrink)
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> DfResult<()> {
        if reservation.consumer().can_spill()
            && reservation.size().saturating_add(additional) > self.cap
        {
            return Err(DataFusionError::ResourcesExhausted(format!(
                "{} may hold at most {} of the memory limit (it spills beyond that); it holds \
                 {} and asked for {} more",
                reservation.consumer().name(),
                human_size(self.cap as u64),
                human_size(reservation.size() as u64),
                human_size(additional as u64)
            )));
        }
        self.inner.try_grow(reservation, additional)
    }

    fn reserved(&self) -> usize {
        self.inner.reserved()
    }

    fn memory_limit(&self) -> PoolLimit {
        self.inner.memory_limit()
    }
}

/// Spill files and bytes written by a process's operators since it started.
#[derive(Debug, Default)]
pub struct SpillCounter {
    files: AtomicU64,
    bytes: AtomicU64,
}

impl SpillCounter {
    /// Spill files created.
    pub fn files(&self) -> u64 {
        self.files.load(Ordering::Relaxed)
    }

    /// Bytes written to spill files.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// A disk manager builder whose spill files go to a `datafusion-*` folder under `dir` (the
/// OS's temporary folder when `None`) and are counted in `counter`.
pub fn counting_disk_manager(
    dir: Option<PathBuf>,
    counter: Arc<SpillCounter>,
) -> DfResult<DiskManagerBuilder> {
    let mode = match dir {
        Some(dir) => DiskManagerMode::Directories(vec![dir]),
        None => DiskManagerMode::OsTmpDirectory,
    };
    let inner = Arc::new(DiskManager::builder().with_mode(mode).build()?);
    Ok(DiskManager::builder()
        .with_max_spill_merge_fan_in(SPILL_MERGE_FAN_IN)
        .with_temp_file_factory(Arc::new(CountingFiles { inner, counter })))
}

/// Creates spill files with a local disk manager and counts them.
struct CountingFiles {
    inner: Arc<DiskManager>,
    counter: Arc<SpillCounter>,
}

impl TempFileFactory for CountingFiles {
    fn create_temp_file(&self, description: &str) -> DfResult<Arc<dyn SpillFile>> {
        let file = self.inner.create_tmp_file(description)?;
        self.counter.files.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            "spill file for {description} (limit reached; {} so far)",
            self.counter.files()
        );
        Ok(Arc::new(CountedFile {
            inner: file,
            counter: self.counter.clone(),
        }))
    }
}

/// A spill file whose writes are counted.
struct CountedFile {
    inner: Arc<dyn SpillFile>,
    counter: Arc<SpillCounter>,
}

impl SpillFile for CountedFile {
    fn path(&self) -> Option<&Path> {
        self.inner.path()
    }

    fn size(&self) -> Option<u64> {
        self.inner.size()
    }

    fn read_stream(&self) -> DfResult<Pin<Box<dyn Stream<Item = DfResult<Bytes>> + Send>>> {
        self.inner.read_stream()
    }

    fn open_writer(&self) -> DfResult<Box<dyn SpillWriter>> {
        Ok(Box::new(CountedWriter {
            inner: self.inner.open_writer()?,
            counter: self.counter.clone(),
        }))
    }
}

/// A spill writer that counts the bytes it writes.
struct CountedWriter {
    inner: Box<dyn SpillWriter>,
    counter: Arc<SpillCounter>,
}

impl std::io::Write for CountedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.counter
            .bytes
            .fetch_add(written as u64, Ordering::Relaxed);
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl SpillWriter for CountedWriter {
    fn finish(&mut self) -> DfResult<()> {
        self.inner.finish()
    }
}
