//! The application as its users reach it: sign up through authingo's routes, then its own
//! protected routes, whose listing joins `posts` with authingo's `users`.

#![allow(clippy::unwrap_used, reason = "tests")]

use authingo_test_db::{MigrateFuture, Template, TestDatabase};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt as _;

const MIGRATIONS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");

/// Databases with the application's migrations, applied by its embedded harness.
static TEMPLATE: Template = Template::new(MIGRATIONS_DIR, migrate);

fn migrate(url: String) -> MigrateFuture {
    Box::pin(async move {
        authingo::postgres::run_migrations_from(&url, diesel_app::MIGRATIONS).await?;
        Ok(())
    })
}

/// Sends a request with the client header (and `cookie`, and a JSON `body`), and returns the
/// status, the `Set-Cookie` headers and the JSON answer.
async fn send(
    app: &Router,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Vec<String>, Value) {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("x-authingo-client", "true");
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    let request = match body {
        Some(body) => request
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string())),
        None => request.body(Body::empty()),
    }
    .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let cookies = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .collect();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, cookies, json)
}

/// The `name=value` of the session cookie among `set_cookies`.
fn session_cookie(set_cookies: &[String]) -> String {
    set_cookies
        .iter()
        .find(|cookie| cookie.starts_with("authingo_session="))
        .and_then(|cookie| cookie.split(';').next())
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_signed_in_user_posts_and_lists_posts_joined_with_their_authors() {
    let db = TestDatabase::new(&TEMPLATE).await;
    let app = diesel_app::app(diesel_app::state(db.url()).await.unwrap());

    let (status, _, body) = send(&app, "GET", "/api/posts", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "no_session");

    let mut cookies = Vec::new();
    for (email, name, title) in [
        ("ada@example.com", "Ada", "Notes on the engine"),
        ("grace@example.com", "Grace", "Compilers"),
    ] {
        let signed_up = json!({"email": email, "password": "correct horse battery", "name": name});
        let (status, set_cookies, _) =
            send(&app, "POST", "/api/auth/sign-up", None, Some(signed_up)).await;
        assert_eq!(status, StatusCode::OK);
        let cookie = session_cookie(&set_cookies);
        let post = json!({"title": title});
        let (status, _, _) = send(&app, "POST", "/api/posts", Some(&cookie), Some(post)).await;
        assert_eq!(status, StatusCode::CREATED);
        cookies.push(cookie);
    }

    let (status, _, body) = send(&app, "GET", "/api/posts", Some(&cookies[1]), None).await;
    assert_eq!(status, StatusCode::OK);
    let listed: Vec<(&str, &str)> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|post| {
            (
                post["title"].as_str().unwrap(),
                post["author"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [("Notes on the engine", "Ada"), ("Compilers", "Grace")]
    );
}

/// After an upgrade of authingo, `cargo run -p diesel-app --bin copy-authingo-migrations` brings
/// its new migrations; this fails until it is run.
#[test]
fn the_application_holds_every_authingo_migration() {
    assert_eq!(
        authingo::postgres::missing_migrations(MIGRATIONS_DIR).unwrap(),
        Vec::<&str>::new(),
        "run `cargo run -p diesel-app --bin copy-authingo-migrations` and commit what it writes"
    );
}
