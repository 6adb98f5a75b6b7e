//! The example's page in headless Chromium, driven through ChromeDriver as a person would use
//! it: sign up, look at the session, call the protected route, refresh, sign out, sign in.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::ExampleServer;
use crate::fixtures::PASSWORD;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const INSTALL: &str = "apt-get update && apt-get install -y chromium chromium-driver";

/// How long the page may take to show an answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_page_signs_up_refreshes_signs_out_and_in_in_a_browser() {
    let started = Instant::now();
    let server = ExampleServer::start().await;
    let driver = ChromeDriver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let browser = driver.session(profile.path()).await;

    // The steps run before the session is closed whatever their outcome, so no browser outlives
    // a failed assertion.
    let steps = tokio::spawn(walk_through_the_page(browser.clone(), server.url("/"))).await;
    browser.close().await.unwrap();
    drop(driver);
    if let Err(panic) = steps {
        std::panic::resume_unwind(panic.into_panic());
    }
    eprintln!("browser walk-through took {:?}", started.elapsed());
}

async fn walk_through_the_page(browser: Client, url: String) {
    let page = Page {
        browser,
        answers: 0,
    };
    page.browser.goto(&url).await.unwrap();
    let mut page = page;

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
}

/// The demo page, through its ids: the inputs, the buttons and `#out`, whose `data-answers`
/// counts the answers shown.
struct Page {
    browser: Client,
    answers: u32,
}

impl Page {
    async fn fill(&self, id: &str, text: &str) {
        let input = self.browser.find(Locator::Id(id)).await.unwrap();
        input.clear().await.unwrap();
        input.send_keys(text).await.unwrap();
    }

    /// Clicks button `id` and returns the answer the page then shows.
    async fn click(&mut self, id: &str) -> String {
        self.browser
            .find(Locator::Id(id))
            .await
            .unwrap()
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
            .unwrap_or_else(|err| panic!("no answer to #{id} within {ANSWER_TIMEOUT:?}: {err}"))
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
