//! Runs the real daemon binary (built once by cargo, reused by every test): `--dev` on
//! port 0, reads the bound addresses and the initial password from its stdout, polls
//! `/healthz`, and stops it with SIGTERM on drop.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The `pbx-authd` binary: `$PBX_AUTHD_BIN`, else the one cargo built next to this test.
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("PBX_AUTHD_BIN") {
        return p.into();
    }
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/e2e-<hash> → target/<profile>/pbx-authd
    let p = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps")
        .join("pbx-authd");
    assert!(
        p.exists(),
        "{} is missing: run `cargo build -p pbx-authd` first (make test does)",
        p.display()
    );
    p
}

pub struct Daemon {
    child: Option<Child>,
    pub state_dir: PathBuf,
    pub http: SocketAddr,
    pub https: SocketAddr,
    /// Printed only on the first start of a state dir.
    pub initial_password: Option<String>,
    pub log: PathBuf,
    lines: Arc<Mutex<Vec<String>>>,
    starts_seen: usize,
}

/// How to start the daemon beyond the defaults.
#[derive(Default, Clone)]
pub struct Opts {
    /// TOML laid over the embedded dev config (`--dev --config FILE`).
    pub config: Option<String>,
    /// Extra environment, e.g. `SSL_CERT_FILE` to trust the test SMTP server.
    pub env: Vec<(String, String)>,
}

impl Daemon {
    /// Starts `pbx-authd --dev` on 127.0.0.1 port 0 with `state_dir`.
    pub fn start(state_dir: &Path) -> Daemon {
        Daemon::start_opts(state_dir, &Opts::default())
    }

    pub fn start_opts(state_dir: &Path, opts: &Opts) -> Daemon {
        Daemon::spawn(state_dir, opts, "127.0.0.1:0", "127.0.0.1:0")
    }

    /// Starts it on fixed free ports, as a box listens: a simulated reboot comes back
    /// on the same addresses, so a page open in a browser reaches it again.
    pub fn start_on_fixed_ports(state_dir: &Path) -> Daemon {
        let free = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .to_string()
        };
        let (http, https) = (free(), free());
        Daemon::spawn(state_dir, &Opts::default(), &http, &https)
    }

    fn spawn(state_dir: &Path, opts: &Opts, http: &str, https: &str) -> Daemon {
        std::fs::create_dir_all(state_dir).expect("state dir");
        let log = state_dir.join(format!(
            "daemon-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        let mut cmd = Command::new(binary());
        cmd.args(["--dev", "--state-dir"])
            .arg(state_dir)
            .args(["--http", http, "--https", https]);
        if let Some(text) = &opts.config {
            let path = state_dir.with_extension("overrides.toml");
            std::fs::write(&path, text).expect("write overrides");
            cmd.arg("--config").arg(path);
        }
        cmd.envs(opts.env.iter().map(|(k, v)| (k, v)));
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("pbx-authd must start");
        let stdout = child.stdout.take().expect("piped stdout");
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink = Arc::clone(&lines);
        // Reads for the life of the process: a simulated reboot re-executes the daemon,
        // which prints its (new) listeners again on the same pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
        let mut d = Daemon {
            child: Some(child),
            state_dir: state_dir.to_path_buf(),
            http: "0.0.0.0:0".parse().expect("addr"),
            https: "0.0.0.0:0".parse().expect("addr"),
            initial_password: None,
            log,
            lines,
            starts_seen: 0,
        };
        d.wait_for_start();
        d
    }

    /// Waits until the daemon reports its listeners for the next (re)start and takes the
    /// addresses and the initial password from that start's lines.
    pub fn wait_for_start(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            {
                let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
                let starts: Vec<usize> = lines
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| l.starts_with("listening: https://"))
                    .map(|(i, _)| i)
                    .collect();
                if starts.len() > self.starts_seen {
                    let end = starts[self.starts_seen];
                    let begin = if self.starts_seen == 0 {
                        0
                    } else {
                        starts[self.starts_seen - 1] + 1
                    };
                    for l in &lines[begin..=end] {
                        if let Some(p) = l.strip_prefix("initial admin password: ") {
                            self.initial_password = Some(p.to_string());
                        } else if let Some(a) = l.strip_prefix("listening: http://") {
                            self.http = a.trim_end_matches('/').parse().expect("http addr");
                        } else if let Some(a) = l.strip_prefix("listening: https://") {
                            self.https = a.trim_end_matches('/').parse().expect("https addr");
                        }
                    }
                    self.starts_seen += 1;
                    return;
                }
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    panic!("daemon exited ({st}); log:\n{}", self.log_text());
                }
            }
            assert!(
                Instant::now() < deadline,
                "daemon did not report its listeners in time; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The mails in the dev outbox now (the `--dev` transport).
    pub fn outbox(&self) -> Vec<String> {
        let mut mails: Vec<(std::path::PathBuf, String)> =
            std::fs::read_dir(self.state_dir.join("outbox"))
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| Some((e.path(), std::fs::read_to_string(e.path()).ok()?)))
                .collect();
        mails.sort();
        mails.into_iter().map(|(_, m)| m).collect()
    }

    /// Waits (at most 10 s) for a mail in the dev outbox that `wanted` accepts.
    pub async fn outbox_mail(&self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        crate::poll_until(Duration::from_secs(10), what, || {
            self.outbox().into_iter().find(|m| wanted(m))
        })
        .await
    }

    /// Everything the daemon printed on stdout so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Socket of the control channel (`ctl`).
    pub fn ctl_socket(&self) -> PathBuf {
        self.state_dir.join("ctl.sock")
    }

    /// Runs `pbx-authd ctl --socket … ARGS`; returns (exit code, parsed JSON answer).
    pub fn ctl(&self, args: &[&str]) -> (i32, serde_json::Value) {
        let out = Command::new(binary())
            .arg("ctl")
            .arg("--socket")
            .arg(self.ctl_socket())
            .args(args)
            .output()
            .expect("run pbx-authd ctl");
        let text = String::from_utf8_lossy(&out.stdout);
        let v = serde_json::from_str(text.trim()).unwrap_or_else(
            |_| serde_json::json!({ "stderr": String::from_utf8_lossy(&out.stderr) }),
        );
        (out.status.code().unwrap_or(-1), v)
    }

    pub fn pid(&self) -> Pid {
        let c = self.child.as_ref().expect("daemon running");
        Pid::from_raw(i32::try_from(c.id()).expect("pid fits i32"))
    }

    pub fn client(&self) -> crate::Client {
        crate::Client::http(self.http)
    }

    pub fn client_from(&self, source: &str) -> crate::Client {
        crate::Client::http(self.http).from(source.parse().expect("source ip"))
    }

    pub fn tls_client(&self) -> crate::Client {
        crate::Client::https(self.https, &self.state_dir.join("tls/cert.pem"))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no drain, no flush, like a power cut for the process.
    pub fn kill9(mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait; returns the exit status code.
    pub fn stop(mut self) -> Option<i32> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        let pid = Pid::from_raw(i32::try_from(c.id()).ok()?);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(st)) = c.try_wait() {
                return st.code();
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop_inner();
    }
}
