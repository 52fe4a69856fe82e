//! A real headless Chromium for page tests, driven over WebDriver: Debian's `chromium` and
//! `chromedriver`, spoken to with `fantoccini`.
//!
//! [`Browser::start`] launches a chromedriver of its own on a free port and opens one headless
//! session. Without Chromium or chromedriver the test is skipped with a printed reason — except
//! under `CI=true`, where that is a failure (`.ci/run` installs both).
//!
//! Screenshots are test artefacts: [`Browser::screenshot`] writes PNGs to
//! `target/test-artifacts/screenshots/` (or `$TANDEM_TEST_ARTIFACTS/screenshots/`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

const CHROMEDRIVER: &str = "chromedriver";
const CHROMIUM_CANDIDATES: &[&str] =
    &["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];

/// One headless Chromium session and the chromedriver serving it; both end when it is dropped.
pub struct Browser {
    pub client: Client,
    driver: Child,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser").field("driver", &self.driver.id()).finish_non_exhaustive()
    }
}

/// Panics under `CI=true`; otherwise prints why the test is skipped.
fn unavailable(reason: &str) -> Option<Browser> {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{reason} (install Debian's chromium and chromium-driver; under CI=true that is a failure)");
    }
    eprintln!("skipping browser test: {reason}");
    None
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Browser {
    /// A desktop-sized window (1280×900).
    pub async fn start() -> Option<Browser> {
        Self::start_sized(1280, 900).await
    }

    /// A window of the given size, e.g. 390×844 for a phone.
    pub async fn start_sized(width: u32, height: u32) -> Option<Browser> {
        let Some(chromium) = CHROMIUM_CANDIDATES.iter().find(|p| Path::new(p).exists()) else {
            return unavailable("no Chromium binary found");
        };
        let port = free_port();
        let driver = match Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(child) => child,
            Err(e) => return unavailable(&format!("cannot start {CHROMEDRIVER}: {e}")),
        };
        let mut guard = DriverGuard(Some(driver));
        let url = format!("http://127.0.0.1:{port}");
        // chromedriver listens a moment after it starts: poll its port until it accepts.
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen on port {port} within 20 s");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--disable-extensions",
                    format!("--window-size={width},{height}"),
                ],
            }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&url)
            .await
            .unwrap_or_else(|e| panic!("chromedriver refused a headless Chromium session: {e}"));
        Some(Browser { client, driver: guard.0.take().expect("the driver") })
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    }

    /// The element matching a CSS selector, waiting (up to the session's implicit wait) for it.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element matches {css:?}: {e}"))
    }

    /// Whether any element matches a CSS selector right now.
    pub async fn exists(&self, css: &str) -> bool {
        self.client.find_all(Locator::Css(css)).await.map(|v| !v.is_empty()).unwrap_or(false)
    }

    /// The visible text of the page's body.
    pub async fn text(&self) -> String {
        self.find("body").await.text().await.unwrap_or_default()
    }

    /// Runs JavaScript in the page and returns its result.
    pub async fn eval(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute(script, args).await.unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Saves a PNG of the viewport as a test artefact and returns where it went.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.unwrap_or_else(|e| panic!("no screenshot: {e}"));
        let dir = artefact_dir().join("screenshots");
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    }

    /// Ends the session (and chromedriver with it).
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Kills chromedriver if starting the session fails half-way.
struct DriverGuard(Option<Child>);

impl Drop for DriverGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Where test artefacts go: `$TANDEM_TEST_ARTIFACTS`, else the workspace's `target/test-artifacts`.
pub fn artefact_dir() -> PathBuf {
    match std::env::var_os("TANDEM_TEST_ARTIFACTS") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts"),
    }
}
