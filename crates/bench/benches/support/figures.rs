//! The figures every section prints and writes: ratios, latencies, CPU per call, a
//! measurement as JSON, and the note that other processes disturbed one.

use serde_json::{Value, json};

use super::measure::Stats;

/// Ops/s of `a` over `b`'s.
pub(crate) fn ops_ratio(a: &Stats, b: &Stats) -> f64 {
    ratio(a.ops_per_sec, b.ops_per_sec)
}

/// p99 of `a` over `idle`'s.
pub(crate) fn p99_ratio(a: &Stats, idle: &Stats) -> f64 {
    ratio(a.p99_us, idle.p99_us)
}

/// 0 rather than a division by zero when nothing was measured.
pub(crate) fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// "p50 / p99" in µs.
pub(crate) fn latency(stats: &Stats) -> String {
    format!("{:.0} / {:.0}", stats.p50_us, stats.p99_us)
}

/// A CPU time per call in µs, or "-" when it was not measured.
pub(crate) fn us(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"))
}

/// Warns when other processes took a noticeable share of the CPU during a measurement.
pub(crate) fn disturbed(phase: &str, stats: &Stats) {
    if let Some(share) = stats.foreign_cpu.filter(|share| *share > 0.05) {
        println!(
            "  note: other processes used {:.0}% of the CPU {phase}",
            share * 100.0
        );
    }
}

/// A measurement as JSON.
pub(crate) fn stats_json(stats: &Stats) -> Value {
    json!({
        "ops": stats.ops,
        "misses": stats.misses,
        "ops_per_sec": stats.ops_per_sec,
        "p50_us": stats.p50_us,
        "p99_us": stats.p99_us,
        "client_cpu_us_per_op": stats.client_cpu_us,
        "server_cpu_us_per_op": stats.server_cpu_us,
        "foreign_cpu_share": stats.foreign_cpu,
    })
}
