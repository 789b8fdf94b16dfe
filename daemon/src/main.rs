//! The `pbx-authd` command: parse the command line, set up logging, load the config,
//! bind the listeners and run the daemon; or one of the one-shot commands
//! (`check-config`, `provision`, `bench-hash`). `anyhow` is used here only.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use pbx_authd::auth::password;
use pbx_authd::cli::{self, Command, CtlCommand, DevOpts};
use pbx_authd::clock::SystemClock;
use pbx_authd::config::{self, Config, HashCost};
use pbx_authd::store::BoardDb;
use pbx_authd::{provision, server, App, Listeners, Tls};
use pbx_board::{Board, BoardProfile, LinuxBoard, SimBoard};

fn ctl(socket: &Path, command: CtlCommand) -> ExitCode {
    let request = match command {
        CtlCommand::Status => serde_json::json!({"cmd": "status"}),
        CtlCommand::FactoryReset { yes } => serde_json::json!({"cmd": "factory-reset", "yes": yes}),
        CtlCommand::Button { held_ms } => serde_json::json!({"cmd": "button", "held_ms": held_ms}),
        CtlCommand::RecoveryMail => serde_json::json!({"cmd": "recovery-mail"}),
        CtlCommand::Selftest => serde_json::json!({"cmd": "selftest"}),
    };
    match pbx_authd::control::client(socket, &request) {
        Ok((answer, ok)) => {
            println!("{answer}");
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("pbx-authd ctl: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    // Every file and directory this process makes is its own alone: the data DB holds
    // the SMTP password and the password hashes, and Asterisk and every other process
    // on the box run as other users (0700 directories, 0600 files).
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let command = match cli::parse(std::env::args_os().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pbx-authd: {e}\n\nFor more information, try '--help'.");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Help(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!("pbx-authd {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Ctl { socket, command } => ctl(&socket, command),
        Command::CheckConfig { config } => check_config(&config),
        Command::BenchHash { config, rounds } => bench_hash(&config, rounds),
        Command::Provision {
            board_db,
            model,
            serial,
            mac,
            profile,
        } => report(provision_cmd(
            &board_db,
            &model,
            &serial,
            &mac,
            profile.as_deref(),
        )),
        Command::Run { config, dev } => report(daemon(config, dev)),
    }
}

fn report(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pbx-authd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(path: &Path) -> ExitCode {
    match Config::load(path) {
        Ok(_) => {
            println!("{}: ok", path.display());
            ExitCode::SUCCESS
        }
        Err(problems) => {
            for p in &problems.0 {
                println!("{}: {p}", path.display());
            }
            println!("{}: {} problem(s)", path.display(), problems.0.len());
            ExitCode::FAILURE
        }
    }
}

/// One argon2id hash at `cost` on this machine, in ms, as a JSON line.
fn hash_timing(cost: HashCost, rounds: usize) -> serde_json::Value {
    let ms = password::time_hash(cost, rounds);
    serde_json::json!({
        "algorithm": "argon2id",
        "m_kib": cost.m_kib,
        "t": cost.t,
        "p": password::P_COST,
        "rounds": rounds,
        "ms_per_hash": (ms * 10.0).round() / 10.0,
        "over_1s": ms > 1000.0,
    })
}

fn bench_hash(path: &Path, rounds: usize) -> ExitCode {
    let cost = if path.exists() {
        match Config::load(path) {
            Ok(c) => c.policy.hash_cost,
            Err(problems) => {
                for p in &problems.0 {
                    eprintln!("{}: {p}", path.display());
                }
                return ExitCode::FAILURE;
            }
        }
    } else {
        HashCost::default()
    };
    println!("{}", hash_timing(cost, rounds));
    ExitCode::SUCCESS
}

fn provision_cmd(
    board_db: &Path,
    model: &str,
    serial: &str,
    mac: &str,
    profile: Option<&Path>,
) -> anyhow::Result<()> {
    let hw = match profile {
        None => BoardProfile::sim(),
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            BoardProfile::from_toml(&text)
                .map_err(|e| anyhow::anyhow!("in {}: {e}", p.display()))?
        }
    };
    let db = BoardDb::open(board_db, config::MAX_CACHE_CAPACITY)?;
    let pw = provision::provision(&db, model, serial, mac, hw)?;
    println!("initial admin password: {}", pw.expose());
    // Sign-in on this box costs one such hash: say when it is slow (README: "The hash
    // on the box's own CPU" has settings that keep it under 1 s).
    let t = hash_timing(HashCost::default(), 1);
    eprintln!("argon2id hash on this machine: {t}");
    if t["over_1s"] == true {
        eprintln!(
            "warning: one argon2id hash takes over 1 s here; sign-in will be slow \
             (see policy.argon2_m_kib and policy.argon2_t)"
        );
    }
    Ok(())
}

fn init_logging(level: tracing::Level) {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(false)
        // Logs go to init/syslog; built without colour support at all.
        .with_ansi(false)
        .init();
}

fn daemon(config_file: Option<PathBuf>, dev: Option<DevOpts>) -> anyhow::Result<()> {
    let (config, board, config_path): (Config, Arc<dyn Board>, Option<PathBuf>) = if let Some(dev) =
        dev
    {
        std::fs::create_dir_all(&dev.state_dir)
            .with_context(|| format!("creating {}", dev.state_dir.display()))?;
        // Absolute from here on: paths derived from it (erase paths, the socket) must not
        // depend on the working directory, and the config requires absolute erase paths.
        let dir = &std::path::absolute(&dev.state_dir)
            .with_context(|| format!("resolving {}", dev.state_dir.display()))?;
        let overrides = match &config_file {
            Some(p) => Some(
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
            ),
            None => None,
        };
        let config = Config::dev(dir, dev.http, dev.https, overrides.as_deref())
            .map_err(|p| anyhow::anyhow!("invalid dev config:\n{p}"))?;
        (config, Arc::new(SimBoard::new(dir)), None)
    } else {
        let path = config_file.unwrap_or_else(|| config::DEFAULT_PATH.into());
        let config = Config::load(&path)
            .map_err(|p| anyhow::anyhow!("invalid config {}:\n{p}", path.display()))?;
        (config, Arc::new(LinuxBoard), Some(path))
    };
    init_logging(config.log_level);
    // Boxes upgraded from firmware that made these 0755/0644: private from now on.
    for p in [
        &config.storage.state_dir,
        &config.storage.data_db,
        &config.storage.board_db,
    ] {
        pbx_authd::fsutil::make_private(p);
    }
    // Startup lines for people and test harnesses; a closed stdout must not stop the
    // daemon (after a simulated reboot the reader may be gone).
    let mut out = std::io::stdout().lock();
    // Opened once (each sled open costs RAM that is never returned), read, and closed:
    // the board DB is read-only at run time.
    let board_db = BoardDb::open(&config.storage.board_db, config.storage.cache_capacity);
    if config.dev {
        let _ = writeln!(
            out,
            "pbx-authd --dev: simulated board, state in {}",
            config.storage.state_dir.display()
        );
        let db = board_db.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
        if !db.is_provisioned()? {
            let profile = BoardProfile::sim();
            let pw =
                provision::provision(db, "SIM", "SIM-0001", "02:00:00:00:00:01", profile.clone())?;
            // The simulated box leaves the factory with user data to erase.
            SimBoard::new(&config.storage.state_dir).prepare(&profile)?;
            for p in &config.reset.erase_paths {
                std::fs::create_dir_all(p)?;
                std::fs::write(p.join("greeting.txt"), "simulated voicemail greeting\n")?;
            }
            let _ = writeln!(out, "initial admin password: {}", pw.expose());
        }
    }
    let board_info = board_db.and_then(|db| db.read());
    let profile = board_info.as_ref().ok().map(|b| b.hw.clone());
    // An interrupted factory reset is finished before anything is opened or served.
    // If the user data cannot be erased, the daemon starts degraded with the reason
    // (an exit would only make init respawn it into the same fault, in a loop).
    let reset_failure = match pbx_authd::factory_reset::resume_if_pending(
        &config,
        board.as_ref(),
        profile.as_ref(),
    ) {
        Ok(true) => {
            let _ = writeln!(out, "factory reset completed");
            None
        }
        Ok(false) => None,
        Err(why) => Some(why),
    };
    if let Some(p) = &profile {
        for warning in board.missing_hardware(p) {
            tracing::warn!("{warning}");
        }
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        // Flash writes and the mailer; hashing has its own threads (auth::password).
        .max_blocking_threads(4)
        .build()
        .context("starting the async runtime")?;
    let _guard = rt.enter();
    let stop = StopSignals::install().context("installing the SIGTERM/SIGINT handlers")?;

    let bind_all = |list: &[SocketAddr]| -> anyhow::Result<Vec<tokio::net::TcpListener>> {
        list.iter()
            .map(|a| server::bind(*a).with_context(|| format!("cannot listen on {a}")))
            .collect()
    };
    let listeners = Listeners {
        http: bind_all(&config.server.http)?,
        https: bind_all(&config.server.https)?,
    };
    let tls = Arc::new(
        Tls::new(
            config.tls.clone(),
            &pbx_authd::certificate_names(&config, board.as_ref()),
        )
        .context("HTTPS certificate")?,
    );
    let (http, https) = listeners.local_addrs();
    let mut app = App::start(config, board_info, board, Arc::new(SystemClock::default()));
    app.set_listen_addrs(http.first().copied(), https.first().copied());
    app.set_config_path(config_path.clone());
    if let Some(why) = reset_failure {
        pbx_authd::factory_reset::report_failure(&app, why);
    }
    let app = Arc::new(app);
    // Bound before the daemon says it listens: whoever starts it may ask at once.
    let socket = app.config().control.socket.clone();
    let control = pbx_authd::control::bind(&socket)
        .inspect_err(
            |e| tracing::error!(socket = %socket.display(), "control socket unavailable: {e}"),
        )
        .ok();
    for a in &http {
        let _ = writeln!(out, "listening: http://{a}/");
        tracing::info!("listening on http://{a}/");
    }
    for a in &https {
        let _ = writeln!(out, "listening: https://{a}/");
        tracing::info!("listening on https://{a}/");
    }
    let _ = out.flush();
    drop(out);

    rt.block_on(async {
        tokio::spawn(reload_on_hup(
            Arc::clone(&app),
            Arc::clone(&tls),
            config_path,
        ));
        pbx_authd::run(app, tls, listeners, control, stop.wait()).await;
    });
    tracing::info!("stopped");
    Ok(())
}

/// SIGTERM/SIGINT handlers, installed before the stores are opened: a stop requested
/// while the data DB is being opened waits for the open to finish and then stops
/// gracefully, instead of killing the process in the middle of it.
struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> std::io::Result<StopSignals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(StopSignals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Resolves on SIGTERM or SIGINT (including one that arrived before this was polled).
    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => tracing::info!("SIGTERM"),
            _ = self.int.recv() => tracing::info!("SIGINT"),
        }
    }
}

/// SIGHUP: re-read the config file and the certificate. A bad file is reported and the
/// running config stays.
async fn reload_on_hup(app: Arc<App>, tls: Arc<Tls>, path: Option<PathBuf>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::error!("cannot install the SIGHUP handler; reload needs a restart");
        return;
    };
    while hup.recv().await.is_some() {
        let files = match &path {
            Some(p) => match Config::load(p) {
                Ok(c) => {
                    let files = c.tls.clone();
                    app.reload(c);
                    pbx_authd::flows::access::config_reloaded(&app).await;
                    pbx_authd::flows::directory_settings::config_reloaded(&app).await;
                    files
                }
                Err(problems) => {
                    tracing::error!("reload refused, keeping the running config: {problems}");
                    continue;
                }
            },
            None => tls.files().clone(),
        };
        match tls.reload(files) {
            Ok(()) => tracing::info!("configuration and certificate reloaded"),
            Err(e) => tracing::error!("certificate reload failed, keeping the old one: {e}"),
        }
    }
}
