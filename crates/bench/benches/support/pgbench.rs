//! pgbench on `get_session`'s statement: the server's own ceiling for it at a client count.
//!
//! pgbench cannot hold a list of precomputed digests, so the script draws a live session
//! number and computes its digest in the statement: `token = encode(sha256(('tok' || :i)::bytea),
//! 'hex')` where the store's statement has `token = $1`. That keeps the statement's plan (an
//! index scan with the digest as its key), the rows and the randomness of the store's calls;
//! it adds one SHA-256 of a few bytes per call on the server, a few microseconds against the
//! call's round trip. A lookup of the digest in a table would add a second index scan instead,
//! and a few literal digests would make every call hit the same cached pages.

use std::process::Stdio;
use std::time::Duration;

use super::Result;
use super::baseline;
use super::workload::{Dataset, Op};

/// What one pgbench run gave.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    Ran {
        tps: f64,
        latency_ms: f64,
    },
    /// No `pgbench` on `PATH`.
    Missing,
    Failed(String),
}

/// The script: a random live session outside the refresh reserve, as `get_session` draws.
fn script(data: Dataset) -> String {
    let sql =
        baseline::sql(Op::GetSession).replace("$1", "encode(sha256(('tok' || :i)::bytea), 'hex')");
    // The statement without its `--` comments (pgbench would pass them on) and with one `;`.
    let sql: Vec<&str> = sql
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect();
    let sql = sql.join("\n");
    format!(
        "\\set k random(0, {last})\n\\set i 2 * :k + 1\n{};\n",
        sql.trim_end().trim_end_matches(';'),
        last = data.readable() - 1
    )
}

/// Runs `pgbench -M prepared -n -T <duration> -c <clients> -j <clients>` on the database at
/// `url`.
pub(crate) async fn run(url: &str, data: Dataset, clients: usize, duration: Duration) -> Outcome {
    match try_run(url, data, clients, duration).await {
        Ok(outcome) => outcome,
        Err(err) => Outcome::Failed(err.to_string()),
    }
}

async fn try_run(url: &str, data: Dataset, clients: usize, duration: Duration) -> Result<Outcome> {
    let path = std::env::temp_dir().join(format!(
        "authingo_bench_{}_get_session.pgbench",
        std::process::id()
    ));
    std::fs::write(&path, script(data))?;
    let seconds = duration.as_secs_f64().ceil().max(1.0).to_string();
    let clients = clients.to_string();
    let output = tokio::process::Command::new("pgbench")
        .args([
            "-M", "prepared", "-n", "-T", &seconds, "-c", &clients, "-j", &clients, "-f",
        ])
        .arg(&path)
        // pgbench takes a connection URI where the database name goes.
        .arg(url)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await;
    // Best effort: a leftover script in the temporary folder is harmless.
    let _ = std::fs::remove_file(&path);
    let output = match output {
        Ok(output) => output,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Outcome::Missing),
        Err(err) => return Err(err.into()),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Ok(Outcome::Failed(format!(
            "{}: {}",
            output.status,
            stderr.trim()
        )));
    }
    let field = |prefix: &str| {
        stdout.lines().find_map(|line| {
            line.trim()
                .strip_prefix(prefix)
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|number| number.parse::<f64>().ok())
        })
    };
    match (field("tps = "), field("latency average = ")) {
        (Some(tps), Some(latency_ms)) => Ok(Outcome::Ran { tps, latency_ms }),
        _ => Ok(Outcome::Failed(format!(
            "unexpected output: {}",
            stdout.trim()
        ))),
    }
}
