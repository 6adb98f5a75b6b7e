//! The example server's `/metrics` with `METRICS=1`: scraped before and after some traffic, read
//! by a real parser of Prometheus's text format (`prometheus-parse`), the counters moved by what
//! the traffic did.

use authingo::telemetry::{
    POOL_CONNECTIONS_OPEN, REFRESHES_TOTAL, SIGN_INS_TOTAL, SIGN_UPS_TOTAL, STORE_OPERATION_SECONDS,
};
use prometheus_parse::{Sample, Scrape, Value};
use reqwest::header::SET_COOKIE;
use serde_json::json;

use super::ExampleServer;

/// `GET /metrics`, parsed.
async fn scrape(http: &reqwest::Client, server: &ExampleServer) -> Vec<Sample> {
    let reply = http.get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(reply.status(), 200);
    let content_type = reply.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = reply.text().await.unwrap();
    Scrape::parse(text.lines().map(|line| Ok(line.to_owned())))
        .unwrap()
        .samples
}

/// The value of the counter `name` whose label `label` is `value`; 0 when absent.
fn counter(samples: &[Sample], name: &str, label: &str, value: &str) -> f64 {
    samples
        .iter()
        .filter(|sample| sample.metric == name && sample.labels.get(label) == Some(value))
        .map(|sample| match sample.value {
            Value::Counter(count) => count,
            ref other => panic!("{name} is not a counter: {other:?}"),
        })
        .sum()
}

/// How many observations the histogram `name` with `label` = `value` holds (its `+Inf` bucket).
fn observations(samples: &[Sample], name: &str, label: &str, value: &str) -> f64 {
    samples
        .iter()
        .filter(|sample| sample.metric == name && sample.labels.get(label) == Some(value))
        .map(|sample| match &sample.value {
            Value::Histogram(buckets) => buckets
                .iter()
                .find(|bucket| bucket.less_than == f64::INFINITY)
                .map_or(0.0, |bucket| bucket.count),
            other => panic!("{name} is not a histogram: {other:?}"),
        })
        .sum()
}

/// The `name=value` pair of the cookie `name` among a reply's `Set-Cookie` headers.
fn cookie(reply: &reqwest::Response, name: &str) -> String {
    reply
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok()?.split(';').next())
        .find(|pair| pair.starts_with(&format!("{name}=")))
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn with_metrics_on_the_server_serves_counters_that_move_with_traffic() {
    let server = ExampleServer::start_with(&[("METRICS", "1")]).await;
    let http = reqwest::Client::new();
    let before = scrape(&http, &server).await;

    let post = |path: &str| {
        http.post(server.url(&format!("/api/auth/{path}")))
            .header("X-Authingo-Client", "true")
    };
    let account =
        json!({"email": "ada@example.com", "password": "correct horse battery", "name": "Ada"});
    let reply = post("sign-up").json(&account).send().await.unwrap();
    assert_eq!(reply.status(), 200);
    let reply = post("sign-in").json(&account).send().await.unwrap();
    assert_eq!(reply.status(), 200);
    // Sent by hand: the cookie is `Secure` and this is plain HTTP.
    let refresh = cookie(&reply, "authingo_refresh");
    let wrong = json!({"email": "ada@example.com", "password": "wrong password"});
    let reply = post("sign-in").json(&wrong).send().await.unwrap();
    assert_eq!(reply.status(), 401);
    let reply = post("refresh")
        .header("Cookie", &refresh)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);

    let after = scrape(&http, &server).await;
    let moved = |name: &str, label: &str, value: &str| {
        counter(&after, name, label, value) - counter(&before, name, label, value)
    };
    assert_eq!(moved(SIGN_UPS_TOTAL, "outcome", "success"), 1.0);
    assert_eq!(moved(SIGN_INS_TOTAL, "outcome", "success"), 1.0);
    assert_eq!(moved(SIGN_INS_TOTAL, "outcome", "invalid_credentials"), 1.0);
    assert_eq!(moved(REFRESHES_TOTAL, "outcome", "rotated"), 1.0);
    assert_eq!(moved(REFRESHES_TOTAL, "outcome", "reuse_detected"), 0.0);
    // Two sign-ins looked their user up; durations are histograms with buckets.
    let lookups = |samples: &[Sample]| {
        observations(samples, STORE_OPERATION_SECONDS, "op", "get_user_by_email")
    };
    assert_eq!(lookups(&after) - lookups(&before), 2.0);
    assert!(
        after
            .iter()
            .any(|sample| sample.metric == POOL_CONNECTIONS_OPEN
                && matches!(sample.value, Value::Gauge(open) if open >= 1.0))
    );
}

#[tokio::test]
async fn without_metrics_the_server_has_no_metrics_route() {
    let server = ExampleServer::start().await;
    let reply = reqwest::get(server.url("/metrics")).await.unwrap();
    assert_eq!(reply.status(), 404);
}
