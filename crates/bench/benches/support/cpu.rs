//! CPU time spent on each side of a call: this process (the client: the store or the baseline,
//! tokio, the pool) and the server backends of its pool, read from `/proc` (Linux, a server on
//! the same machine). Where the gap between two implementations comes from: a client that does
//! more per call, or a server asked to do more (a statement parsed and planned on every call).

use std::time::Duration;

use tokio_postgres::Client;

use super::Result;

/// Linux's `USER_HZ`: the unit of `utime` and `stime` in `/proc/<pid>/stat`.
const TICKS_PER_SECOND: u64 = 100;

/// CPU time (user + system) of `pid`, or of this process for `None`; `None` when unreadable.
fn cpu_of(pid: Option<u32>) -> Option<Duration> {
    let path = pid.map_or_else(
        || "/proc/self/stat".to_owned(),
        |pid| format!("/proc/{pid}/stat"),
    );
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces: `utime` and
    // `stime` are the 14th and 15th fields of the line, the 12th and 13th after the name.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis(
        (utime + stime) * 1000 / TICKS_PER_SECOND,
    ))
}

/// Busy CPU time of the whole machine, from the first line of `/proc/stat`.
fn machine_busy() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .map(|field| field.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal: all but idle and iowait are busy.
    let busy: u64 = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| ticks.get(i))
        .sum();
    Some(Duration::from_millis(busy * 1000 / TICKS_PER_SECOND))
}

/// CPU time of this process and of every PostgreSQL process on the machine.
fn ours() -> Option<Duration> {
    let mut total = cpu_of(None)?;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let is_postgres = std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|comm| comm.trim_end() == "postgres");
        if is_postgres {
            total += cpu_of(Some(pid)).unwrap_or_default();
        }
    }
    Some(total)
}

/// A reading of both sides' CPU time, and of everything else on the machine.
#[derive(Debug, Clone)]
pub(crate) struct Reading {
    client: Option<Duration>,
    /// The backends' pids and their CPU times (empty when the server is not local).
    server: Vec<(u32, Duration)>,
    machine: Option<Duration>,
    ours: Option<Duration>,
    /// A helper process of the bench's own (the flood generator), when one runs.
    helper: Option<Duration>,
}

/// The CPU spent between two readings.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Spent {
    pub(crate) client: Option<Duration>,
    pub(crate) server: Option<Duration>,
    /// By processes other than this one and PostgreSQL's: the machine is shared, and this says
    /// how much a measurement was disturbed.
    pub(crate) foreign: Option<Duration>,
    /// By the bench's helper process (the flood generator), not counted as foreign.
    pub(crate) helper: Option<Duration>,
}

impl Spent {
    pub(crate) fn add(&mut self, other: Self) {
        let sum = |a: Option<Duration>, b: Option<Duration>| match (a, b) {
            (Some(a), Some(b)) => Some(a + b),
            (a, None) => a,
            (None, b) => b,
        };
        self.client = sum(self.client, other.client);
        self.server = sum(self.server, other.server);
        self.foreign = sum(self.foreign, other.foreign);
        self.helper = sum(self.helper, other.helper);
    }
}

/// Reads this process and the whole machine, without any server backend.
pub(crate) fn read_local() -> Reading {
    Reading {
        client: cpu_of(None),
        server: Vec::new(),
        machine: machine_busy(),
        ours: ours(),
        helper: None,
    }
}

/// Reads this process and the server backends connected to `admin`'s database under
/// `application_name`.
pub(crate) async fn read(admin: &Client, application_name: &str) -> Result<Reading> {
    let rows = admin
        .query(
            "SELECT pid FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = $1",
            &[&application_name],
        )
        .await?;
    let mut server = Vec::new();
    for row in rows {
        let pid = u32::try_from(row.try_get::<_, i32>(0)?)?;
        // Only a process that is a PostgreSQL backend on this machine (not a pid that means
        // something else here, as with a server in a container).
        let is_backend = std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|cmdline| cmdline.starts_with(b"postgres"));
        if let Some(cpu) = is_backend.then(|| cpu_of(Some(pid))).flatten() {
            server.push((pid, cpu));
        }
    }
    Ok(Reading {
        server,
        ..read_local()
    })
}

impl Reading {
    /// Adds the CPU time of the bench's helper process `pid`, so that it is reported apart and
    /// not as another process's.
    pub(crate) fn with_helper(mut self, pid: Option<u32>) -> Self {
        self.helper = pid.and_then(|pid| cpu_of(Some(pid)));
        self
    }

    /// What was spent from `self` to `later`, counting only backends seen both times.
    pub(crate) fn until(&self, later: &Self) -> Spent {
        let client = match (self.client, later.client) {
            (Some(before), Some(after)) => Some(after.saturating_sub(before)),
            _ => None,
        };
        let server = (!self.server.is_empty()).then(|| {
            later
                .server
                .iter()
                .filter_map(|(pid, after)| {
                    self.server
                        .iter()
                        .find(|(seen, _)| seen == pid)
                        .map(|(_, before)| after.saturating_sub(*before))
                })
                .sum()
        });
        let helper = match (self.helper, later.helper) {
            (Some(before), Some(after)) => Some(after.saturating_sub(before)),
            _ => None,
        };
        let foreign = match (self.machine, later.machine, self.ours, later.ours) {
            (Some(m0), Some(m1), Some(o0), Some(o1)) => Some(
                m1.saturating_sub(m0)
                    .saturating_sub(o1.saturating_sub(o0))
                    .saturating_sub(helper.unwrap_or_default()),
            ),
            _ => None,
        };
        Spent {
            client,
            server,
            foreign,
            helper,
        }
    }
}
