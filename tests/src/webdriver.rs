//! A minimal W3C WebDriver client for headless Debian Chromium via chromedriver: just the
//! calls the UI tests need (navigate, find, type, click, keys, read text and URL,
//! screenshot, print).
//! It reuses the harness's HTTP client, so the tests need no WebDriver crate.

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

use crate::{Client, TempDir};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// The Tab and Enter keys in [`Browser::keys`] (WebDriver's codes for them).
pub const TAB: char = '\u{E004}';
pub const ENTER: char = '\u{E007}';

pub struct Browser {
    driver: Child,
    client: Client,
    session: String,
    _profile: TempDir,
    downloads: TempDir,
}

/// The workspace's `target/` (the e2e crate lives one level below the workspace).
pub fn workspace_target() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target")
}

/// A file of the npm packages the UI tests use (`make deps-npm`: `target/npm`).
pub fn npm_file(rel: &str) -> std::path::PathBuf {
    workspace_target().join("npm/node_modules").join(rel)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

fn find_exe(names: &[&str]) -> String {
    for n in names {
        for dir in ["/usr/bin", "/usr/lib/chromium", "/usr/local/bin"] {
            let p = format!("{dir}/{n}");
            if std::path::Path::new(&p).exists() {
                return p;
            }
        }
    }
    panic!("{names:?} not found: install Debian's chromium and chromium-driver (make test does)")
}

impl Browser {
    pub async fn start() -> Browser {
        let driver_exe = find_exe(&["chromedriver"]);
        let chromium = find_exe(&["chromium"]);
        let port = free_port();
        let driver = Command::new(driver_exe)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver starts");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let mut client = Client::http(addr);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                let r = client.get("/status").await;
                if r.status == 200 && r.json()["value"]["ready"] == json!(true) {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = TempDir::new("chromium-profile");
        let downloads = TempDir::new("chromium-downloads");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            // The box's HTTPS certificate is self-signed; an admin accepts it once.
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1024,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
                "prefs": {
                    "download.default_directory": downloads.path().display().to_string(),
                    "download.prompt_for_download": false,
                }
            }
        }}});
        let r = client.post_json("/session", &caps).await;
        assert_eq!(r.status, 200, "new WebDriver session: {}", r.text());
        let session = r.json()["value"]["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_string();
        Browser {
            driver,
            client,
            session,
            _profile: profile,
            downloads,
        }
    }

    async fn cmd(&mut self, method: &str, path: &str, body: Option<Value>) -> Value {
        let p = format!("/session/{}{path}", self.session);
        let r = match body {
            Some(b) => self.client.post_json(&p, &b).await,
            None => self.client.send(method, &p, &[], None).await,
        };
        assert_eq!(r.status, 200, "WebDriver {method} {path}: {}", r.text());
        r.json()["value"].clone()
    }

    pub async fn goto(&mut self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url }))).await;
    }

    pub async fn url(&mut self) -> String {
        self.cmd("GET", "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Finds an element, waiting up to 10 s for it to appear.
    pub async fn find(&mut self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let p = format!("/session/{}/element", self.session);
            let r = self
                .client
                .post_json(&p, &json!({"using": "css selector", "value": css}))
                .await;
            if r.status == 200 {
                return r.json()["value"][ELEMENT_KEY]
                    .as_str()
                    .unwrap_or_else(|| panic!("element id in {}", r.text()))
                    .to_string();
            }
            assert!(
                Instant::now() < deadline,
                "no element {css:?} on {}",
                self.url().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn type_into(&mut self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.cmd("POST", &format!("/element/{e}/clear"), Some(json!({})))
            .await;
        self.cmd(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    pub async fn click(&mut self, css: &str) {
        let e = self.find(css).await;
        self.cmd("POST", &format!("/element/{e}/click"), Some(json!({})))
            .await;
    }

    /// The rendered (visible) text of an element.
    pub async fn text(&mut self, css: &str) -> String {
        let e = self.find(css).await;
        self.cmd("GET", &format!("/element/{e}/text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub async fn attr(&mut self, css: &str, name: &str) -> Option<String> {
        let e = self.find(css).await;
        self.cmd("GET", &format!("/element/{e}/attribute/{name}"), None)
            .await
            .as_str()
            .map(str::to_string)
    }

    /// Waits until the current URL's path is `path` (up to 10 s).
    pub async fn wait_for_path(&mut self, path: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let u = self.url().await;
            let p = u
                .splitn(4, '/')
                .nth(3)
                .map(|r| format!("/{r}"))
                .unwrap_or_default();
            if p == path || p.split('?').next() == Some(path) {
                return u;
            }
            assert!(Instant::now() < deadline, "still at {u}, expected {path}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `css` shows text containing `needle` (up to 10 s); returns the text.
    pub async fn wait_for_text(&mut self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let t = self.text(css).await;
            if t.contains(needle) {
                return t;
            }
            assert!(
                Instant::now() < deadline,
                "{css} shows {t:?}, expected {needle:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Keys pressed one after another on whatever has the focus, as a keyboard would
    /// (W3C actions: a key down and up per character; `TAB`, `ENTER` for those keys).
    pub async fn keys(&mut self, text: &str) {
        let actions: Vec<Value> = text
            .chars()
            .flat_map(|c| {
                let v = c.to_string();
                [
                    json!({"type": "keyDown", "value": v}),
                    json!({"type": "keyUp", "value": v}),
                ]
            })
            .collect();
        self.cmd(
            "POST",
            "/actions",
            Some(json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]})),
        )
        .await;
    }

    /// Runs `script` (a function body; `return` gives the value) in the page.
    pub async fn eval(&mut self, script: &str) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// Waits (up to 10 s) until `condition` (a JS expression) is true in the page; panics
    /// naming `what` otherwise.
    pub async fn wait_until(&mut self, condition: &str, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let script = format!("return !!({condition});");
        while self.eval(&script).await != json!(true) {
            assert!(
                Instant::now() < deadline,
                "{what} (at {})",
                self.url().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the page's script has wired everything (`body[data-ready]`).
    pub async fn wait_ready(&mut self) {
        self.wait_until(
            "document.body && document.body.dataset.ready === '1'",
            "page script not ready",
        )
        .await;
    }

    /// Runs `script` (a function body; its last argument is the callback to call with
    /// the value) in the page and waits for it (WebDriver's async script, 30 s).
    pub async fn eval_async(&mut self, script: &str) -> Value {
        self.cmd("POST", "/timeouts", Some(json!({"script": 30_000})))
            .await;
        self.cmd(
            "POST",
            "/execute/async",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// A Chrome DevTools Protocol command through chromedriver.
    pub async fn cdp(&mut self, cmd: &str, params: Value) -> Value {
        self.cmd(
            "POST",
            "/goog/cdp/execute",
            Some(json!({"cmd": cmd, "params": params})),
        )
        .await
    }

    /// `prefers-color-scheme: dark` (true) or light for the pages from now on.
    pub async fn color_scheme(&mut self, dark: bool) {
        let value = if dark { "dark" } else { "light" };
        self.cdp(
            "Emulation.setEmulatedMedia",
            json!({"features": [{"name": "prefers-color-scheme", "value": value}]}),
        )
        .await;
    }

    /// A phone's screen (390×844 CSS pixels, touch, device pixel ratio 3), or back to
    /// the desktop window with `None`.
    pub async fn viewport(&mut self, size: Option<(u32, u32)>) {
        match size {
            Some((w, h)) => {
                self.cdp(
                    "Emulation.setDeviceMetricsOverride",
                    json!({"width": w, "height": h, "deviceScaleFactor": 3, "mobile": true}),
                )
                .await
            }
            None => {
                self.cdp("Emulation.clearDeviceMetricsOverride", json!({}))
                    .await
            }
        };
    }

    /// axe-core (from npm, `make deps-npm`) on the page as it is now: the violations,
    /// each as `rule: target…` lines, empty when there are none.
    pub async fn axe(&mut self) -> Vec<String> {
        let src = std::fs::read_to_string(npm_file("axe-core/axe.min.js"))
            .expect("axe-core: make deps-npm installs it into target/npm");
        self.eval(&format!("{src}\n;return true;")).await;
        let v = self
            .eval_async(
                "const done = arguments[arguments.length - 1];\
                 axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations.map(v => \
                 v.id + ': ' + v.help + ' — ' + v.nodes.map(n => n.target.join(' ') + ' (' + \
                 (n.failureSummary || '').replace(/\\s+/g, ' ') + ')').join('; ')))).catch(e => done(['axe failed: ' + e]));",
            )
            .await;
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|x| x.as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_else(|| vec![format!("axe returned {v}")])
    }

    /// Saves a screenshot for the reviewer as `target/screenshots/NAME.png`.
    pub async fn shot(&mut self, name: &str) {
        let dir = workspace_target().join("screenshots");
        std::fs::create_dir_all(&dir).expect("target/screenshots");
        self.screenshot(&dir.join(format!("{name}.png"))).await;
    }

    pub async fn screenshot(&mut self, path: &std::path::Path) {
        use base64::Engine as _;
        let v = self.cmd("GET", "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .expect("PNG in base64");
        std::fs::write(path, png).expect("write screenshot");
    }

    /// Prints the page as Chromium would to paper (WebDriver "Print Page"); the PDF.
    pub async fn print_pdf(&mut self, path: &std::path::Path) -> Vec<u8> {
        use base64::Engine as _;
        let v = self.cmd("POST", "/print", Some(json!({}))).await;
        let pdf = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .expect("PDF in base64");
        std::fs::write(path, &pdf).expect("write PDF");
        pdf
    }

    /// Waits (up to 10 s) for a finished download named `name`; its bytes.
    pub async fn downloaded(&mut self, name: &str) -> Vec<u8> {
        let path = self.downloads.path().join(name);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(b) = std::fs::read(&path) {
                return b;
            }
            assert!(
                Instant::now() < deadline,
                "no download {name} in {:?}",
                self.downloads.path()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn quit(mut self) {
        let p = format!("/session/{}", self.session);
        let _ = self.client.send("DELETE", &p, &[], None).await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver and the Chromium it started share a process group.
        if let Ok(pid) = i32::try_from(self.driver.id()) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = self.driver.wait();
    }
}
