//! What the crate reports: its metrics, counted exactly per outcome by a recorder of this test's
//! own (`counts`), and its spans and events, recorded whole by a subscriber of this test's own
//! and searched for secrets (`spans`). The example server's `/metrics` is scraped in
//! `example::metrics`.

mod counts;
mod spans;

use std::collections::BTreeMap;

use metrics_util::debugging::{DebugValue, Snapshotter};

/// A metric's labels, sorted by name.
type Labels = Vec<(String, String)>;

/// What a recorder of the test's own recorded since the last [`Recorded::take`]: counters and
/// histograms by name and labels.
#[derive(Debug, Default)]
pub(crate) struct Recorded {
    counters: BTreeMap<(String, Labels), u64>,
    gauges: BTreeMap<(String, Labels), f64>,
    histograms: BTreeMap<(String, Labels), Vec<f64>>,
}

impl Recorded {
    /// Everything `snapshots`' recorder recorded since the last call (its snapshot resets it).
    pub(crate) fn take(snapshots: &Snapshotter) -> Self {
        let mut recorded = Self::default();
        for (key, _, _, value) in snapshots.snapshot().into_vec() {
            let key = key.key();
            let mut labels: Labels = key
                .labels()
                .map(|label| (label.key().to_owned(), label.value().to_owned()))
                .collect();
            labels.sort();
            let id = (key.name().to_owned(), labels);
            match value {
                DebugValue::Counter(value) => {
                    recorded.counters.insert(id, value);
                }
                DebugValue::Gauge(value) => {
                    recorded.gauges.insert(id, value.into_inner());
                }
                DebugValue::Histogram(values) => {
                    recorded
                        .histograms
                        .insert(id, values.into_iter().map(|v| v.into_inner()).collect());
                }
            }
        }
        recorded
    }

    /// The counter `name`'s increments by the value of its one label, those of zero left out.
    pub(crate) fn counts(&self, name: &str) -> BTreeMap<String, u64> {
        self.counters
            .iter()
            .filter(|((metric, _), value)| metric == name && **value > 0)
            .map(|((_, labels), value)| (one_label(labels), *value))
            .collect()
    }

    /// The counter `name` without labels.
    pub(crate) fn count(&self, name: &str) -> u64 {
        self.counters
            .get(&(name.to_owned(), Vec::new()))
            .copied()
            .unwrap_or(0)
    }

    /// The gauge `name` without labels, if it was set.
    pub(crate) fn gauge(&self, name: &str) -> Option<f64> {
        self.gauges.get(&(name.to_owned(), Vec::new())).copied()
    }

    /// The samples of the histogram `name` with the labels `labels`.
    pub(crate) fn samples(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        let mut labels: Labels = labels
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        labels.sort();
        self.histograms
            .get(&(name.to_owned(), labels))
            .cloned()
            .unwrap_or_default()
    }

    /// How many samples the histogram `name` got, by the value of its one label.
    pub(crate) fn sample_counts(&self, name: &str) -> BTreeMap<String, usize> {
        self.histograms
            .iter()
            .filter(|((metric, _), values)| metric == name && !values.is_empty())
            .map(|((_, labels), values)| (one_label(labels), values.len()))
            .collect()
    }
}

/// The value of a metric's one label, or `""` without labels.
fn one_label(labels: &Labels) -> String {
    assert!(labels.len() <= 1, "one label expected: {labels:?}");
    labels
        .first()
        .map(|(_, value)| value.clone())
        .unwrap_or_default()
}

/// A map from label values to counts, for comparing with [`Recorded::counts`].
pub(crate) fn by<V: Copy>(pairs: &[(&str, V)]) -> BTreeMap<String, V> {
    pairs
        .iter()
        .map(|(label, value)| ((*label).to_owned(), *value))
        .collect()
}
