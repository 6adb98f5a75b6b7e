//! The example's page in headless Chromium, driven through ChromeDriver as a person would use
//! it: sign up, look at the session, call the protected route, refresh, sign out, sign in; then
//! see and end the sessions of other devices, change the password, and sign out everywhere.
//! [`in_browser`], [`Page`] and [`answer`] serve the walks through the mailed links (`links.rs`)
//! and the second factor (`two_factor.rs`) too.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use reqwest::header::{SET_COOKIE, USER_AGENT};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::ExampleServer;
use crate::support::PASSWORD;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const INSTALL: &str = "apt-get update && apt-get install -y chromium chromium-driver";

/// How long the page may take to show an answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);

/// The password after a change.
pub(super) const NEW_PASSWORD: &str = "a new and longer passphrase";

/// The user agent of the device that signs in besides the browser.
const OTHER_DEVICE: &str = "authingo-test other device";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_page_signs_up_refreshes_signs_out_and_in_in_a_browser() {
    let started = Instant::now();
    let server = ExampleServer::start().await;
    in_browser(|page| walk_through_the_page(page, server.url(""))).await;
    eprintln!("browser walk-through took {:?}", started.elapsed());
}

async fn walk_through_the_page(mut page: Page, base: String) {
    page.goto(&format!("{base}/")).await;

    page.fill("name", "Ada").await;
    page.fill("email", "Ada@Example.com").await;
    page.fill("password", PASSWORD).await;
    let shown = page.click("sign-up").await;
    assert!(shown.starts_with("POST /api/auth/sign-up → 200"), "{shown}");
    assert!(shown.contains(r#""email": "ada@example.com""#), "{shown}");
    assert!(!shown.contains("password"), "{shown}");
    // The session cookies are HttpOnly: the page's script cannot read them.
    let cookies = page
        .browser
        .execute("return document.cookie", vec![])
        .await
        .unwrap();
    assert_eq!(cookies, json!(""));

    let shown = page.click("session").await;
    assert!(shown.starts_with("GET /api/auth/session → 200"), "{shown}");
    assert!(shown.contains(r#""session": {"#), "{shown}");
    assert!(!shown.contains("token"), "{shown}");

    let shown = page.click("me").await;
    assert!(shown.starts_with("GET /api/me → 200"), "{shown}");
    assert!(shown.contains("Hello, Ada!"), "{shown}");

    let shown = page.click("refresh").await;
    assert!(shown.starts_with("POST /api/auth/refresh → 200"), "{shown}");
    let shown = page.click("me").await;
    assert!(
        shown.starts_with("GET /api/me → 200"),
        "after refresh: {shown}"
    );

    let shown = page.click("sign-out").await;
    assert!(
        shown.starts_with("POST /api/auth/sign-out → 200"),
        "{shown}"
    );
    assert!(shown.contains(r#""success": true"#), "{shown}");
    let shown = page.click("me").await;
    assert!(
        shown.starts_with("GET /api/me → 401"),
        "after sign-out: {shown}"
    );
    let shown = page.click("session").await;
    assert!(
        shown.starts_with("GET /api/auth/session → 401"),
        "after sign-out: {shown}"
    );

    let shown = page.click("sign-in").await;
    assert!(shown.starts_with("POST /api/auth/sign-in → 200"), "{shown}");
    let shown = page.click("me").await;
    assert!(
        shown.starts_with("GET /api/me → 200"),
        "after sign-in: {shown}"
    );
    assert!(shown.contains("Hello, Ada!"), "{shown}");

    sessions_of_other_devices(&mut page, &base).await;
}

/// Another device signs in beside the browser; the page lists both sessions and ends the
/// other's, by revoking it, by revoking all others, and by changing the password; then it signs
/// out everywhere.
async fn sessions_of_other_devices(page: &mut Page, base: &str) {
    let other = OtherDevice::sign_in(base, PASSWORD).await;
    let shown = page.click("list-sessions").await;
    assert!(shown.starts_with("GET /api/auth/sessions → 200"), "{shown}");
    let listed = answer(&shown);
    let sessions = listed["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{shown}");
    for session in sessions {
        assert_eq!(session["ip"], json!("127.0.0.1"), "{shown}");
    }
    let (current, others): (Vec<_>, Vec<_>) =
        sessions.iter().partition(|s| s["current"] == json!(true));
    assert_eq!((current.len(), others.len()), (1, 1), "{shown}");
    assert_eq!(others[0]["user_agent"], json!(OTHER_DEVICE), "{shown}");
    let browser_agent = current[0]["user_agent"].as_str().unwrap_or_default();
    assert!(browser_agent.contains("Chrome"), "{shown}");
    assert_eq!(page.count("li.session").await, 2);
    assert_eq!(page.count("li.session[data-current='true']").await, 1);

    let revoke_other = Locator::Css("li.session[data-current='false'] button.revoke");
    let shown = page.click_on(revoke_other).await;
    assert!(
        shown.starts_with("POST /api/auth/sessions/revoke → 200"),
        "{shown}"
    );
    assert_eq!(page.count("li.session").await, 1, "the list shrinks");
    assert_eq!(page.count("li.session[data-current='true']").await, 1);
    assert_eq!(other.session_status().await, 401, "revoked");

    let other = OtherDevice::sign_in(base, PASSWORD).await;
    let shown = page.click("revoke-others").await;
    assert!(
        shown.starts_with("POST /api/auth/sessions/revoke-others → 200"),
        "{shown}"
    );
    assert!(shown.contains(r#""revoked": 1"#), "{shown}");
    assert_eq!(page.count("li.session").await, 1);
    assert_eq!(other.session_status().await, 401, "revoked with the others");

    let other = OtherDevice::sign_in(base, PASSWORD).await;
    page.fill("current-password", PASSWORD).await;
    page.fill("new-password", NEW_PASSWORD).await;
    let shown = page.click("change-password").await;
    assert!(
        shown.starts_with("POST /api/auth/change-password → 200"),
        "{shown}"
    );
    assert_eq!(other.session_status().await, 401, "ended by the change");
    assert_eq!(page.count("li.session[data-current='true']").await, 1);
    let shown = page.click("me").await;
    assert!(shown.starts_with("GET /api/me → 200"), "{shown}");
    let shown = page.click("sign-in").await;
    assert!(
        shown.starts_with("POST /api/auth/sign-in → 401"),
        "the old password: {shown}"
    );
    page.fill("password", NEW_PASSWORD).await;
    let shown = page.click("sign-in").await;
    assert!(shown.starts_with("POST /api/auth/sign-in → 200"), "{shown}");

    let shown = page.click("sign-out-everywhere").await;
    assert!(
        shown.starts_with("POST /api/auth/sign-out-everywhere → 200"),
        "{shown}"
    );
    assert_eq!(page.count("li.session").await, 0);
    let shown = page.click("me").await;
    assert!(shown.starts_with("GET /api/me → 401"), "{shown}");
}

/// The JSON of an answer the page shows (below its status line).
pub(super) fn answer(shown: &str) -> Value {
    let (_, body) = shown.split_once('\n').unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|err| panic!("{err}: {shown}"))
}

/// A device signed in over plain HTTP, holding its session cookie.
struct OtherDevice {
    http: reqwest::Client,
    base: String,
    cookie: String,
}

impl OtherDevice {
    async fn sign_in(base: &str, password: &str) -> Self {
        let http = reqwest::Client::new();
        let reply = http
            .post(format!("{base}/api/auth/sign-in"))
            .header("X-Authingo-Client", "true")
            .header(USER_AGENT, OTHER_DEVICE)
            .json(&json!({"email": "ada@example.com", "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200);
        // Sent by hand: the cookie is `Secure` and this is plain HTTP.
        let cookie = reply
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok()?.split(';').next())
            .find(|pair| pair.starts_with("authingo_session="))
            .unwrap()
            .to_owned();
        Self {
            http,
            base: base.to_owned(),
            cookie,
        }
    }

    /// The status of `GET /api/auth/session` with this device's cookie.
    async fn session_status(&self) -> u16 {
        self.http
            .get(format!("{}/api/auth/session", self.base))
            .header("X-Authingo-Client", "true")
            .header("Cookie", &self.cookie)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}

/// Runs `walk` on a page of a new headless Chromium. The browser is closed whatever the walk's
/// outcome, so none outlives a failed assertion; then the walk's panic, if any, goes on.
pub(super) async fn in_browser<W, F>(walk: W)
where
    W: FnOnce(Page) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let driver = ChromeDriver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let browser = driver.session(profile.path()).await;
    let page = Page {
        browser: browser.clone(),
        answers: 0,
    };
    let steps = tokio::spawn(walk(page)).await;
    browser.close().await.unwrap();
    drop(driver);
    if let Err(panic) = steps {
        std::panic::resume_unwind(panic.into_panic());
    }
}

/// The demo page, through its ids: the inputs, the buttons and `#out`, whose `data-answers`
/// counts the answers shown.
pub(super) struct Page {
    pub(super) browser: Client,
    answers: u32,
}

impl Page {
    /// Loads `url`, a fresh page whose count of answers starts again.
    pub(super) async fn goto(&mut self, url: &str) {
        self.browser.goto(url).await.unwrap();
        self.answers = 0;
    }

    pub(super) async fn fill(&self, id: &str, text: &str) {
        let input = self.browser.find(Locator::Id(id)).await.unwrap();
        input.clear().await.unwrap();
        input.send_keys(text).await.unwrap();
    }

    /// How many elements match `css`.
    pub(super) async fn count(&self, css: &str) -> usize {
        self.browser
            .find_all(Locator::Css(css))
            .await
            .unwrap()
            .len()
    }

    /// Clicks button `id` and returns the answer the page then shows.
    pub(super) async fn click(&mut self, id: &str) -> String {
        self.click_on(Locator::Id(id)).await
    }

    /// Clicks the button `button` finds and returns the answer the page then shows.
    pub(super) async fn click_on(&mut self, button: Locator<'_>) -> String {
        self.browser
            .find(button)
            .await
            .unwrap_or_else(|err| panic!("no {button:?}: {err}"))
            .click()
            .await
            .unwrap();
        self.answers += 1;
        let shown = format!("#out[data-answers='{}']", self.answers);
        self.browser
            .wait()
            .at_most(ANSWER_TIMEOUT)
            .for_element(Locator::Css(&shown))
            .await
            .unwrap_or_else(|err| {
                panic!("no answer to {button:?} within {ANSWER_TIMEOUT:?}: {err}")
            })
            .text()
            .await
            .unwrap()
    }
}

/// ChromeDriver on a free port, stopped when dropped.
struct ChromeDriver {
    process: Child,
    port: u16,
}

impl ChromeDriver {
    async fn start() -> Self {
        for program in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(program).is_file(),
                "{program} is missing: {INSTALL}"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut process = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|err| panic!("starting {CHROMEDRIVER}: {err}; {INSTALL}"));
        let mut lines = BufReader::new(process.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(Duration::from_secs(20), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("started successfully") {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(ready, Ok(true), "ChromeDriver did not start on port {port}");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { process, port }
    }

    /// A new headless Chromium with its profile in `profile`.
    async fn session(&self, profile: &Path) -> Client {
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ]
        .map(str::to_owned)
        .into_iter()
        .chain([format!("--user-data-dir={}", profile.display())])
        .collect::<Vec<_>>();
        let capabilities = json!({
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .unwrap_or_else(|err| panic!("starting Chromium through ChromeDriver: {err}"))
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.process.start_kill();
    }
}
