//! The admin command, `authingo`, run as a process on a database of the test's own: what it
//! prints, what it changes (checked through the engine and the tables), and its exit codes.

use std::collections::BTreeMap;
use std::net::{IpAddr, TcpListener};

use authingo::{Auth, AuthError, RequestContext, SignUp, SignedIn};

use crate::support::{EngineBuilder, PASSWORD, TestDb, engine, exec, rows, sign_in_failures};

/// What a run of the command left.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The `name<TAB>value` lines of stdout.
    fn fields(&self) -> BTreeMap<&str, &str> {
        self.stdout
            .lines()
            .map(|line| line.split_once('\t').unwrap())
            .collect()
    }
}

/// Runs `authingo ARGS` with `DATABASE_URL` set to `url` (unset for `None`).
async fn authingo(url: Option<&str>, args: &[&str]) -> Run {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_authingo"));
    command.args(args).env_remove("DATABASE_URL");
    if let Some(url) = url {
        command.env("DATABASE_URL", url);
    }
    let output = command.output().await.unwrap();
    Run {
        code: output.status.code().unwrap(),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// Asserts that `run` failed with `code`, saying why on one line of stderr and nothing on stdout.
#[track_caller]
fn assert_failed(run: &Run, code: i32) {
    assert_eq!(run.code, code, "stderr: {}", run.stderr);
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.starts_with("authingo: "), "{}", run.stderr);
}

async fn sign_up(auth: &Auth, email: &str) -> SignedIn {
    auth.sign_up(email, PASSWORD, "Ada", &RequestContext::default())
        .await
        .and_then(SignUp::signed_in)
        .unwrap()
}

async fn sign_in(auth: &Auth, email: &str, agent: &str) -> SignedIn {
    let client = RequestContext::default()
        .user_agent(Some(agent))
        .ip_address(Some(IpAddr::from([203, 0, 113, 7])));
    auth.sign_in(email, PASSWORD, &client)
        .await
        .and_then(authingo::SignIn::signed_in)
        .unwrap()
}

async fn alive(auth: &Auth, signed_in: &SignedIn) -> bool {
    auth.get_session(signed_in.tokens.access_token.expose())
        .await
        .unwrap()
        .is_some()
}

#[tokio::test]
async fn migrate_applies_every_migration_once_and_the_schema_then_verifies() {
    let db = TestDb::empty().await;
    let first = authingo(Some(db.url()), &["migrate"]).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(!first.stdout.is_empty());
    assert!(
        first
            .stdout
            .lines()
            .all(|line| line.starts_with("applied\t"))
    );
    let again = authingo(Some(db.url()), &["migrate", "--json"]).await;
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.stdout, "{\"applied\":[]}\n");
    let verified = authingo(Some(db.url()), &["verify-schema"]).await;
    assert_eq!(verified.code, 0, "{}", verified.stderr);
    assert_eq!(verified.stdout, "schema\tok\n");
}

#[tokio::test]
async fn verify_schema_prints_each_problem_and_exits_5() {
    let db = TestDb::new().await;
    exec(
        &mut db.conn().await,
        "ALTER TABLE users DROP COLUMN name, ADD COLUMN nickname TEXT NOT NULL",
    )
    .await;
    let run = authingo(Some(db.url()), &["verify-schema"]).await;
    assert_eq!(run.code, 5, "{}", run.stderr);
    let lines: Vec<_> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", run.stdout);
    assert_eq!(lines[0], "table\tproblem");
    assert!(lines[1].starts_with("users\tmissing column name"));
    assert!(lines[2].starts_with("users\tcolumn nickname is NOT NULL"));
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
}

#[tokio::test]
async fn users_show_prints_the_account_found_as_a_sign_in_finds_it_without_its_hash() {
    let db = TestDb::new().await;
    let auth = engine(&db).await;
    let ada = sign_up(&auth, "ada@example.com").await;
    sign_in(&auth, "ada@example.com", "curl/8").await;
    let hash = auth
        .user_by_email("ada@example.com")
        .await
        .unwrap()
        .unwrap();

    let run = authingo(Some(db.url()), &["users", "show", " ADA@Example.com "]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let fields = run.fields();
    assert_eq!(
        fields.keys().copied().collect::<Vec<_>>(),
        [
            "created",
            "email",
            "id",
            "live_sessions",
            "name",
            "updated",
            "verified"
        ]
    );
    assert_eq!(fields["id"], ada.user.id);
    assert_eq!(fields["email"], "ada@example.com");
    assert_eq!(fields["name"], "Ada");
    assert_eq!(fields["verified"], "false");
    assert_eq!(fields["live_sessions"], "2");
    assert!(fields["created"].ends_with('Z'), "{}", fields["created"]);
    assert!(!run.stdout.contains(&hash.password_hash));

    let json = authingo(
        Some(db.url()),
        &["users", "show", "ada@example.com", "--json"],
    )
    .await;
    assert_eq!(json.code, 0, "{}", json.stderr);
    let value: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(value["id"], ada.user.id.as_str());
    assert_eq!(value["live_sessions"], 2);
    assert_eq!(value["verified"], false);
    assert!(!json.stdout.contains(&hash.password_hash));
}

#[tokio::test]
async fn sessions_list_shows_each_live_session_and_revoke_ends_one_or_all() {
    let db = TestDb::new().await;
    let auth = engine(&db).await;
    let first = sign_up(&auth, "ada@example.com").await;
    let second = sign_in(&auth, "ada@example.com", "Firefox/128").await;
    let third = sign_in(&auth, "ada@example.com", "curl/8").await;
    let url = Some(db.url());

    let listed = authingo(url, &["sessions", "list", "--user", "ada@example.com"]).await;
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let lines: Vec<_> = listed.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "id\tcreated\tlast_used\texpires\trefresh_expires\tabsolute_expires\tip\tuser_agent"
    );
    assert_eq!(lines.len(), 4, "{}", listed.stdout);
    let row = lines
        .iter()
        .find(|line| line.starts_with(&second.session.id))
        .unwrap();
    assert!(row.ends_with("\t203.0.113.7\tFirefox/128"), "{row}");
    for signed_in in [&first, &second, &third] {
        assert!(listed.stdout.contains(&signed_in.session.id));
        assert!(!listed.stdout.contains(signed_in.session.token.as_str()));
        assert!(
            !listed
                .stdout
                .contains(signed_in.session.refresh_token.as_str())
        );
        assert!(
            !listed
                .stdout
                .contains(signed_in.tokens.access_token.expose())
        );
    }

    let one = ["sessions", "revoke", "--user", "ada@example.com"];
    let one = [&one[..], &["--session", &second.session.id]].concat();
    let revoked = authingo(url, &one).await;
    assert_eq!(revoked.code, 0, "{}", revoked.stderr);
    assert_eq!(revoked.stdout, "revoked\t1\n");
    assert!(!alive(&auth, &second).await);
    assert!(alive(&auth, &first).await && alive(&auth, &third).await);
    assert_failed(&authingo(url, &one).await, 3);

    let all = authingo(url, &["sessions", "revoke", "--user", "ada@example.com"]).await;
    assert_eq!(all.code, 0, "{}", all.stderr);
    assert_eq!(all.stdout, "revoked\t2\n");
    assert!(!alive(&auth, &first).await && !alive(&auth, &third).await);
}

#[tokio::test]
async fn unlock_clears_the_failed_sign_ins_of_an_email() {
    let db = TestDb::new().await;
    let auth = engine(&db).await;
    sign_up(&auth, "ada@example.com").await;
    for _ in 0..2 {
        let wrong = auth
            .sign_in(
                "ada@example.com",
                "wrong password",
                &RequestContext::default(),
            )
            .await
            .and_then(authingo::SignIn::signed_in);
        assert!(matches!(wrong, Err(AuthError::InvalidCredentials)));
    }
    assert_eq!(sign_in_failures(&db, "ada@example.com").await, 2);

    let run = authingo(Some(db.url()), &["unlock", "Ada@Example.com"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "had_failures\ttrue\n");
    assert_eq!(sign_in_failures(&db, "ada@example.com").await, 0);
    let again = authingo(Some(db.url()), &["unlock", "ada@example.com", "--json"]).await;
    assert_eq!(again.stdout, "{\"had_failures\":false}\n");
}

#[tokio::test]
async fn an_unknown_email_or_session_exits_3() {
    let db = TestDb::new().await;
    sign_up(&engine(&db).await, "ada@example.com").await;
    let url = Some(db.url());
    for args in [
        &["users", "show", "bob@example.com"][..],
        &["sessions", "list", "--user", "bob@example.com"],
        &["sessions", "revoke", "--user", "bob@example.com"],
        &[
            "sessions",
            "revoke",
            "--user",
            "ada@example.com",
            "--session",
            "ses_0",
        ],
    ] {
        let run = authingo(url, args).await;
        assert_failed(&run, 3);
        assert!(!run.stderr.contains("example.com"), "{}", run.stderr);
    }
}

#[tokio::test]
async fn usage_errors_exit_2() {
    let db = TestDb::new().await;
    assert_eq!(authingo(None, &["migrate"]).await.code, 2);
    assert_eq!(authingo(Some(db.url()), &["frobnicate"]).await.code, 2);
    let pace = authingo(Some(db.url()), &["cleanup", "--pace", "fast"]).await;
    assert_eq!(pace.code, 2);
    assert_failed(
        &authingo(Some(db.url()), &["users", "show", "not an email"]).await,
        2,
    );
    let url = format!("{}?sslmode=sometimes", db.url());
    assert_failed(&authingo(Some(&url), &["verify-schema"]).await, 2);
}

#[tokio::test]
async fn an_unreachable_database_exits_4_without_showing_the_url() {
    // A port that was free a moment ago: connections to it are refused.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://postgres:s3cret@127.0.0.1:{port}/authingo");
    for args in [&["migrate"][..], &["users", "show", "ada@example.com"]] {
        let run = authingo(Some(&url), args).await;
        assert_failed(&run, 4);
        assert!(run.stderr.contains("cannot connect"), "{}", run.stderr);
        assert!(!run.stderr.contains("s3cret"), "{}", run.stderr);
    }
}

#[tokio::test]
async fn cleanup_deletes_what_expired_and_keeps_what_lives() {
    let db = TestDb::new().await;
    let auth = EngineBuilder::over(&db).await.rate_limits(None).build();
    let live = sign_up(&auth, "ada@example.com").await;
    let dead = sign_in(&auth, "ada@example.com", "curl/8").await;
    let mut conn = db.conn().await;
    exec(
        &mut conn,
        &format!(
            "UPDATE sessions SET expires_at = now() - interval '2 days', \
             refresh_expires_at = now() - interval '1 day' WHERE id = '{}'",
            dead.session.id
        ),
    )
    .await;
    exec(
        &mut conn,
        &format!(
            "INSERT INTO one_time_tokens (token, user_id, purpose, expires_at) VALUES \
             ('expired', '{id}', 'verify_email', now() - interval '1 hour'), \
             ('live', '{id}', 'reset_password', now() + interval '1 hour')",
            id = live.user.id
        ),
    )
    .await;
    exec(
        &mut conn,
        "INSERT INTO rate_limits (key, hits, window_ends_at) VALUES \
         ('sign_in:203.0.113.7', 3, now() - interval '1 minute'), \
         ('sign_in:203.0.113.8', 3, now() + interval '1 minute')",
    )
    .await;

    let run = authingo(Some(db.url()), &["cleanup", "--pace", "unthrottled"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "sessions\t1\ntokens\t1\ncounters\t1\n");
    assert_eq!(rows(&db, "sessions").await, 1);
    assert!(alive(&auth, &live).await);
    assert_eq!(rows(&db, "one_time_tokens").await, 1);
    assert_eq!(rows(&db, "rate_limits").await, 1);
}
