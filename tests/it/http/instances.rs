//! Several instances of a service on one database: three engines, each with a pool of its own
//! and its routes served on a port of its own, as three processes behind a load balancer. What
//! one issues the others honour, and their cleanup loops share the dead rows without waiting on
//! each other or failing.

use std::time::{Duration, Instant};

use authingo::{Auth, Store as _};
use reqwest::StatusCode;

use super::app::app;
use super::server::TestServer;
use crate::support::{EngineBuilder, TestDb, capture_logs, count, exec, rows, user};

/// How long a condition the test waits for may take to hold.
const DEADLINE: Duration = Duration::from_secs(20);

/// Three engines on `db`, each on a pool of its own, with their routes under `/api/auth`;
/// `cleanup` is each one's cleanup interval (its first sweep within 10 ms), or `None`.
async fn instances(db: &TestDb, cleanup: Option<Duration>) -> Vec<(Auth, TestServer)> {
    let mut instances = Vec::new();
    for _ in 0..3 {
        let auth = EngineBuilder::over(db)
            .await
            .with(|options| {
                options
                    .cleanup_interval(cleanup)
                    .cleanup_first_delay(Duration::from_millis(10))
            })
            .build();
        let server = TestServer::start(app(&auth, "/api/auth")).await;
        instances.push((auth, server));
    }
    instances
}

/// Waits until `condition` holds, polling it; panics with `what` after [`DEADLINE`].
async fn wait_until<F: AsyncFnMut() -> bool>(what: &str, mut condition: F) {
    let deadline = Instant::now() + DEADLINE;
    while !condition().await {
        assert!(Instant::now() < deadline, "{what}: not within {DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_made_on_one_instance_is_used_refreshed_and_ended_on_the_others() {
    let db = TestDb::new().await;
    let instances = instances(&db, None).await;
    let [a, b, c] = [&instances[0].1, &instances[1].1, &instances[2].1];

    let (signed_up, issued) = a.sign_up("ada@example.com").await;
    let on_b = b.session(&issued.access_cookie()).await;
    on_b.assert_ok();
    let session_id = on_b.json()["session"]["id"].clone();
    assert_eq!(on_b.json()["user"]["id"], signed_up.user_id());

    // Rotated on C: the same session, with tokens that A and B accept.
    let refreshed = c.refresh(&issued.refresh_cookie()).await;
    refreshed.assert_ok();
    let rotated = refreshed.tokens();
    assert_ne!(rotated.access, issued.access);
    for server in [a, b] {
        let seen = server.session(&rotated.access_cookie()).await;
        seen.assert_ok();
        assert_eq!(seen.json()["session"]["id"], session_id);
    }

    // Signed out on B: gone for A and C, whichever token they are shown.
    b.sign_out(&rotated.access_cookie()).await.assert_ok();
    for server in [a, c] {
        let gone = server.session(&rotated.access_cookie()).await;
        gone.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
        let refused = server.refresh(&rotated.refresh_cookie()).await;
        refused.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
    }
    assert_eq!(rows(&db, "sessions").await, 0);
}

/// Inserts `n` sessions of `user_id` named `ses_<label>_<i>` in one statement, with the given
/// SQL expressions as expiries.
async fn seed(db: &TestDb, user_id: &str, label: &str, n: i64, expires: &str, refresh: &str) {
    exec(
        &mut db.conn().await,
        &format!(
            "INSERT INTO sessions (id, user_id, token, refresh_token, expires_at, refresh_expires_at)
             SELECT 'ses_{label}_' || i, '{user_id}', '{label}_a' || i, '{label}_r' || i,
                    {expires}, {refresh}
             FROM generate_series(1, {n}) AS i"
        ),
    )
    .await;
}

/// The three loops run on this thread (a current-thread runtime), so that their log lines can be
/// captured; each has its own pool, so their statements run on the server together.
#[tokio::test]
async fn three_cleanup_loops_sweep_together_without_waiting_or_failing() {
    const DEAD: i64 = 4500;
    const HELD: i64 = 10;
    const KEPT: i64 = 200;
    let db = TestDb::new().await;
    let ada = user("ada@example.com");
    db.store()
        .await
        .create_user_with_session(&ada, &crate::support::live_session(&ada).0)
        .await
        .unwrap();
    let past = "now() - interval '31 days'";
    for (label, n, expires, refresh) in [
        ("dead", DEAD, past, "now() - interval '1 second'"),
        ("held", HELD, past, "now() - interval '1 second'"),
        // Access token expired, refresh token valid: not dead.
        ("idle", KEPT / 2, past, "now() + interval '29 days'"),
        (
            "live",
            KEPT / 2,
            "now() + interval '15 minutes'",
            "now() + interval '30 days'",
        ),
    ] {
        seed(&db, &ada.id, label, n, expires, refresh).await;
    }
    let labelled = |label: &str| {
        format!("SELECT count(*) AS n FROM sessions WHERE id LIKE 'ses\\_{label}\\_%'")
    };
    let (dead, held) = (labelled("dead"), labelled("held"));

    // Another transaction holds some dead rows for the whole run, as a sweep in progress
    // holds its batch: a sweep that waited on rows another holds would stop here.
    let mut holder = db.conn().await;
    exec(&mut holder, "BEGIN").await;
    let lock = "SELECT id FROM sessions WHERE id LIKE 'ses\\_held\\_%' FOR UPDATE";
    exec(&mut holder, lock).await;

    // Any backend of this database waiting on a lock, seen while the loops run.
    let lock_waits = format!(
        "SELECT count(*) AS n FROM pg_stat_activity \
         WHERE datname = '{}' AND wait_event_type = 'Lock'",
        db.name()
    );
    let mut waits_seen = 0;

    let (logs, guard) = capture_logs();
    let instances = instances(&db, Some(Duration::from_millis(20))).await;
    let sweeps = || {
        instances
            .iter()
            .map(|(auth, _)| auth.cleanup_sweeps())
            .collect::<Vec<_>>()
    };

    wait_until(
        "every unheld dead row deleted, three sweeps on each instance",
        async || {
            waits_seen += count(&db, &lock_waits).await;
            count(&db, &dead).await == 0 && sweeps().iter().all(|&n| n >= 3)
        },
    )
    .await;
    // Sweeps finished while the held rows were locked: they skipped them.
    assert_eq!(count(&db, &held).await, HELD);

    // Live traffic while the loops run: made on one instance, seen on the next.
    for i in 0..3 {
        let (_, tokens) = instances[i]
            .1
            .sign_up(&format!("user{i}@example.com"))
            .await;
        instances[(i + 1) % 3]
            .1
            .session(&tokens.access_cookie())
            .await
            .assert_ok();
    }

    exec(&mut holder, "COMMIT").await;
    let released = sweeps();
    wait_until(
        "the released rows deleted, a sweep more on each instance",
        async || {
            waits_seen += count(&db, &lock_waits).await;
            let now = sweeps();
            count(&db, &held).await == 0 && now.iter().zip(&released).all(|(now, then)| now > then)
        },
    )
    .await;
    for (auth, _) in &instances {
        auth.shutdown().await;
    }
    drop(guard);

    assert_eq!(
        waits_seen, 0,
        "a backend waited on a lock while the loops ran"
    );
    assert_eq!(count(&db, &labelled("idle")).await, KEPT / 2);
    assert_eq!(count(&db, &labelled("live")).await, KEPT / 2);
    // Ada's first session and the three signed up above.
    assert_eq!(rows(&db, "sessions").await, KEPT + 4);

    // Every sweep logged that it finished, none that it failed; together they deleted each dead
    // row once.
    let logs = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    let finished: Vec<u64> = logs
        .lines()
        .filter(|line| line.contains("session cleanup finished"))
        .map(|line| {
            let (_, after) = line.split_once("deleted=").unwrap();
            after.split(' ').next().unwrap().parse().unwrap()
        })
        .collect();
    let total_sweeps: u64 = sweeps().iter().sum();
    assert_eq!(finished.len() as u64, total_sweeps, "{logs}");
    assert_eq!(finished.iter().sum::<u64>(), (DEAD + HELD) as u64, "{logs}");
    let other = logs
        .lines()
        .filter(|line| {
            line.contains("cleanup")
                && !line.contains("cleanup batch")
                && !line.contains("abuse counters cleaned up")
                && !line.contains("second-factor rows cleaned up")
        })
        .find(|line| !line.contains("session cleanup finished"));
    assert_eq!(other, None, "a sweep did not finish");
}
