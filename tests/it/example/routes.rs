//! The example's own routes answer in the crate's JSON error format too, outside `/api/auth`.

use serde_json::{Value, json};

use super::ExampleServer;

#[tokio::test]
async fn unknown_path_and_wrong_method_outside_the_auth_routes_are_json_errors() {
    let server = ExampleServer::start().await;
    let http = reqwest::Client::new();

    let reply = http.get(server.url("/no/such/page")).send().await.unwrap();
    assert_eq!(reply.status(), 404);
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body["error"], json!("not_found"));

    let reply = http.post(server.url("/api/me")).send().await.unwrap();
    assert_eq!(reply.status(), 405);
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body["error"], json!("method_not_allowed"));
}
