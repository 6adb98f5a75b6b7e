//! Expiry, written into the database (its `now()` decides).

use reqwest::StatusCode;

use super::app::default_server;
use crate::support::{TestDb, exec};

/// Moves every session's access expiry (and, if `refresh` is set, its refresh expiry) into the
/// past.
async fn expire_sessions(db: &TestDb, refresh: bool) {
    let mut conn = db.conn().await;
    let sql = if refresh {
        "UPDATE sessions SET expires_at = now() - interval '2 minutes', \
         refresh_expires_at = now() - interval '1 minute'"
    } else {
        "UPDATE sessions SET expires_at = now() - interval '1 minute'"
    };
    exec(&mut conn, sql).await;
}

#[tokio::test]
async fn an_expired_access_cookie_is_401_until_a_refresh_renews_it() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    let (_, old) = server.sign_up("ada@example.com").await;
    expire_sessions(&db, false).await;

    for path in ["/api/auth/session", "/api/me", "/api/profile"] {
        let reply = server.get_with_cookie(path, &old.access_cookie()).await;
        reply.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
        reply.assert_no_cookies();
    }
    let refreshed = server.refresh(&old.refresh_cookie()).await;
    refreshed.assert_ok();
    let new = refreshed.tokens();
    let me = server
        .get_with_cookie("/api/me", &new.access_cookie())
        .await;
    me.assert_ok();
}

/// Deliberate difference 6: the access cookie outlives its token, so sign-out still finds the
/// session of a user idle past the access TTL.
#[tokio::test]
async fn sign_out_with_an_expired_access_cookie_still_ends_the_session() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    let (_, tokens) = server.sign_up("ada@example.com").await;
    expire_sessions(&db, false).await;

    let signed_out = server.sign_out(&tokens.access_cookie()).await;
    signed_out.assert_ok();
    signed_out.assert_expires_both("/api/auth/refresh");
    let refresh = server.refresh(&tokens.refresh_cookie()).await;
    refresh.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
}

#[tokio::test]
async fn an_expired_refresh_cookie_is_401_and_expires_both() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    let (_, tokens) = server.sign_up("ada@example.com").await;
    expire_sessions(&db, true).await;

    let reply = server.refresh(&tokens.refresh_cookie()).await;
    reply.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
    reply.assert_expires_both("/api/auth/refresh");
}
