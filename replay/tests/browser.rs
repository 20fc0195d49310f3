//! The viewer in a real browser, as a person uses it: headless Chromium driven over `WebDriver`
//! opens the fixture run (served, then exported and opened from disk), opens a sample, and
//! checks that its renders load, its reward table has rows and the 3D view drew.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`cargo xtask setup` installs them).
//! Screenshots go to the target directory's `tmp/replay-browser/`.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// A running chromedriver, stopped on drop.
struct Driver {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromedriver() -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("chromedriver"))
            .find(|candidate| candidate.is_file())
    });
    on_path.unwrap_or_else(|| {
        panic!(
            "chromedriver is not installed (looked on PATH): the browser test needs Debian's \
             chromium and chromium-driver; run `cargo xtask setup` to install them"
        )
    })
}

impl Driver {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(chromedriver())
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = std::net::TcpStream::connect(driver.addr).is_ok()
                && common::get(driver.addr, "/status").json()["value"]["ready"] == true;
            if ready {
                return driver;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn call(&self, method: &str, path: &str, body: &Value) -> Value {
        let body = body.to_string();
        let reply = common::request(
            self.addr,
            method,
            path,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        );
        let value = reply.json();
        assert_eq!(reply.status, 200, "{method} {path}: {value}");
        value["value"].clone()
    }

    fn session(&self) -> Session<'_> {
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            // Readiness is the page's own `__replayReady`; waiting for every subresource as
            // well only adds a way to stall.
            "pageLoadStrategy": "eager",
            "goog:chromeOptions": {"args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                // Software WebGL, so the 3D view draws on machines without a GPU.
                "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
                "--window-size=1400,1800", "--allow-file-access-from-files"
            ]}
        }}});
        let created = self.call("POST", "/session", &capabilities);
        Session {
            driver: self,
            id: created["sessionId"].as_str().unwrap().to_owned(),
        }
    }
}

/// One browser window.
struct Session<'a> {
    driver: &'a Driver,
    id: String,
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        let path = format!("/session/{}", self.id);
        let _ = common::request(self.driver.addr, "DELETE", &path, &[], b"");
    }
}

impl Session<'_> {
    fn call(&self, method: &str, path: &str, body: &Value) -> Value {
        self.driver
            .call(method, &format!("/session/{}{path}", self.id), body)
    }

    fn open(&self, url: &str) {
        self.call("POST", "/url", &json!({ "url": url }));
    }

    fn eval(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            &json!({"script": script, "args": []}),
        )
    }

    /// Waits until `expression` is truthy in the page.
    fn wait_for(&self, expression: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let value = self.eval(&format!("return !!({expression});"));
            if value == true {
                return;
            }
            if Instant::now() > deadline {
                let page = self.eval("return document.body.innerText.slice(0, 600);");
                panic!("timed out waiting for `{expression}`; the page shows:\n{page}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Clicks the element a CSS selector finds, as a pointer would.
    fn click(&self, selector: &str) {
        let found = self.call(
            "POST",
            "/element",
            &json!({"using": "css selector", "value": selector}),
        );
        let id = found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {selector}"))
            .to_owned();
        self.call("POST", &format!("/element/{id}/click"), &json!({}));
    }

    fn screenshot(&self, name: &str) -> PathBuf {
        let encoded = self.call("GET", "/screenshot", &json!({}));
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap())
            .unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("replay-browser");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, png).unwrap();
        path
    }
}

/// What a person does with the page at `url`: glance at the charts, open step 1, open a
/// sample and compare it with another.
fn open_a_sample(session: &Session<'_>, url: &str, screenshot: &str) {
    session.open(url);
    session.wait_for("window.__replayReady === true");
    // Every chart family of the fixture has a chart, and each chart drew its canvas.
    let charts = session.eval(
        "return [...document.querySelectorAll('#charts .chart h3')].map(h => h.textContent);",
    );
    for title in [
        "Total reward",
        "Reward components (mean)",
        "Loss",
        "KL to the reference",
        "Entropy",
        "Response length (tokens)",
        "Throughput (tokens/s)",
        "Time breakdown (s)",
    ] {
        assert!(
            charts.as_array().unwrap().iter().any(|t| t == title),
            "no chart {title}: {charts}"
        );
    }
    session.wait_for("[...document.querySelectorAll('#charts canvas')].every(c => c.width > 0)");

    session.click("#tabs button[data-tab=rollouts]");
    session.wait_for("document.querySelectorAll('tr.sample-row').length === 4");
    session.click("tr.sample-row[data-group='0'][data-sample='1'] td");
    session.wait_for("document.querySelector('.pane[data-pane=A]')");
    // The renders of turn 1 load from the run directory.
    session.wait_for(
        "[...document.querySelectorAll('.pane[data-pane=A] img.render')].length === 2 && \
         [...document.querySelectorAll('.pane[data-pane=A] img.render')].every(i => i.complete && i.naturalWidth === 32)",
    );
    let views = session.eval("return [...document.querySelectorAll('.pane[data-pane=A] img.render')].map(i => i.dataset.view);");
    assert_eq!(views, json!(["perspective", "top"]));
    // The reward table lists the four components, the violations their three problems.
    let components = session.eval("return [...document.querySelectorAll('.pane[data-pane=A] table.rewards tbody tr td:first-child')].map(td => td.textContent);");
    assert_eq!(
        components,
        json!(["bounds", "collision", "format", "relations"])
    );
    let violations = session
        .eval("return document.querySelectorAll('.pane[data-pane=A] ul.violations li').length;");
    assert_eq!(violations, 3);
    // The 3D view drew something besides its background (read back from WebGL).
    session.wait_for("window.__replay3dDrawn === true");

    // Turn 2, then the other sample of the group beside it.
    session.click(".pane[data-pane=A] button.turn[data-turn='2']");
    session.wait_for(
        "document.querySelector('.pane[data-pane=A] button.turn.active').dataset.turn === '2'",
    );
    session.click("tr.sample-row[data-group='0'][data-sample='0'] button.compare");
    session.wait_for("document.querySelectorAll('#panes.compare .pane').length === 2");
    session.wait_for("[...document.querySelectorAll('.pane img.render')].every(i => i.complete && i.naturalWidth > 0)");

    // Groups list samples by reward, highest first; clicking the header turns that around.
    let order = session.eval("return [...document.querySelectorAll('#groups .group:nth-child(2) tr.sample-row')].map(r => r.dataset.sample);");
    assert_eq!(order, json!(["1", "0"]));
    session.click("#groups .group:nth-child(2) th[data-sort=reward]");
    let order = session.eval("return [...document.querySelectorAll('#groups .group:nth-child(2) tr.sample-row')].map(r => r.dataset.sample);");
    assert_eq!(order, json!(["0", "1"]));
    let shot = session.screenshot(screenshot);
    eprintln!("screenshot: {}", shot.display());
}

#[test]
fn a_person_opens_a_sample_served_and_exported() {
    let driver = Driver::start();
    let session = driver.session();

    let server = metaspatial_replay::Server::start(&common::fixture(), "127.0.0.1", 0).unwrap();
    open_a_sample(&session, &server.url(), "served.png");

    let out = tempfile::tempdir().unwrap();
    let site = out.path().join("site");
    metaspatial_replay::export(&common::fixture(), &site).unwrap();
    let url = format!("file://{}", site.join("index.html").display());
    open_a_sample(&session, &url, "exported.png");
    assert_eq!(
        session.eval("return document.querySelector('#live').textContent;"),
        "static export"
    );
}
