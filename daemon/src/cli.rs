//! The command line (spec §2), parsed by hand: six commands with a few options each do
//! not need an argument-parsing library, and this saves ~150 KiB of the 3 MiB budget.
//! Options take `--name VALUE` or `--name=VALUE`; every command has `--help`.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

pub const DEFAULT_CONFIG: &str = crate::config::DEFAULT_PATH;
pub use crate::config::DEFAULT_SOCKET;

pub const HELP: &str = "\
Web login and password recovery daemon of the PBX

Usage: pbx-authd [--config PATH]
       pbx-authd --dev [--state-dir DIR] [--http ADDR] [--https ADDR] [--config PATH]
       pbx-authd <COMMAND> [OPTIONS]

Commands:
  check-config  Validate a config file and print every problem with its key; exit 0 or 1
  provision     Factory step: write the board DB and print a new initial password once
  bench-hash    Time one argon2id hash with the configured parameters on this machine
  ctl           Talk to the running daemon over its control socket (JSON out)

Options:
  --config PATH     Config file [default: /etc/pbx-authd/pbx-authd.toml]; with --dev,
                    keys laid over the embedded dev config
  --dev             Run on a simulated board with an embedded config
  --state-dir DIR   State directory of the simulated board [default: ./.pbx-dev]
  --http ADDR       HTTP listen address in --dev mode [default: 127.0.0.1:8080]
  --https ADDR      HTTPS listen address in --dev mode [default: 127.0.0.1:8443]
  -h, --help        Print help
  -V, --version     Print version
";

pub const CHECK_CONFIG_HELP: &str = "\
Validate a config file and print every problem with its key; exit 0 or 1

Usage: pbx-authd check-config [--config PATH]

Options:
  --config PATH  Config file [default: /etc/pbx-authd/pbx-authd.toml]
  -h, --help     Print help
";

pub const PROVISION_HELP: &str = "\
Factory step: write the board DB with a new random initial password and print it once
(only its argon2id hash is stored)

Usage: pbx-authd provision --board-db PATH --model M --serial S --mac MAC [--profile FILE]

Options:
  --board-db PATH  Board DB to create (must not be provisioned yet)
  --model M        Model name, e.g. S50
  --serial S       Serial number
  --mac MAC        MAC address, e.g. 02:00:00:00:00:01
  --profile FILE   Board profile (TOML); the simulated board's profile when omitted
  -h, --help       Print help
";

pub const BENCH_HASH_HELP: &str = "\
Time one argon2id hash with the configured parameters (policy.argon2_m_kib, argon2_t) on
this machine; prints JSON with ms_per_hash (the median) and whether it is over 1 s

Usage: pbx-authd bench-hash [--config PATH] [--rounds N]

Options:
  --config PATH  Config file [default: /etc/pbx-authd/pbx-authd.toml; the defaults if absent]
  --rounds N     Hashes to time, 1-100 [default: 5]
  -h, --help     Print help
";

pub const CTL_HELP: &str = "\
Talk to the running daemon over its control socket; prints JSON, exit 0 on success

Usage: pbx-authd ctl [--socket PATH] <COMMAND>

Commands:
  status                 State (ok or degraded, with the reason), model, recovery readiness
  factory-reset --yes    Erase all user data and reboot (the reset button held 10-30 s)
  button --held-ms N     Report a reset-button press of N milliseconds (rc.button handlers)
  recovery-mail          Mail a password-reset link to the admin's bound address now
  selftest               Check the stores, factory data, hash memory, TLS key and config
                         (an updater's mark-good hook: exit 0 when all pass)

Options:
  --socket PATH  Control socket [default: /run/pbx-authd.sock; DIR/ctl.sock with --dev]
  -h, --help     Print help
";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevOpts {
    pub state_dir: PathBuf,
    pub http: SocketAddr,
    pub https: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CtlCommand {
    Status,
    FactoryReset { yes: bool },
    Button { held_ms: u64 },
    RecoveryMail,
    Selftest,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Run {
        config: Option<PathBuf>,
        dev: Option<DevOpts>,
    },
    CheckConfig {
        config: PathBuf,
    },
    BenchHash {
        config: PathBuf,
        rounds: usize,
    },
    Provision {
        board_db: PathBuf,
        model: String,
        serial: String,
        mac: String,
        profile: Option<PathBuf>,
    },
    Ctl {
        socket: PathBuf,
        command: CtlCommand,
    },
    /// Print this text and exit 0.
    Help(&'static str),
    Version,
}

/// The arguments after the program name, as (name, value) options and plain words.
struct Args {
    items: Vec<String>,
    pos: usize,
}

impl Args {
    fn new(args: impl IntoIterator<Item = OsString>) -> Result<Args, String> {
        let items = args
            .into_iter()
            .map(|a| {
                a.into_string()
                    .map_err(|a| format!("argument {a:?} is not valid UTF-8"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Args { items, pos: 0 })
    }

    fn next(&mut self) -> Option<String> {
        let a = self.items.get(self.pos).cloned();
        self.pos += 1;
        a
    }

    /// The value of option `name` given as `--name VALUE` or `--name=VALUE`.
    fn value(&mut self, arg: &str, name: &str) -> Result<String, String> {
        if let Some(v) = arg.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
            return Ok(v.to_string());
        }
        match self.next() {
            Some(v) if !v.starts_with("--") => Ok(v),
            _ => Err(format!("{name} needs a value")),
        }
    }
}

fn is(arg: &str, name: &str) -> bool {
    arg == name || arg.starts_with(&format!("{name}="))
}

fn addr(v: &str, name: &str) -> Result<SocketAddr, String> {
    v.parse()
        .map_err(|_| format!("{name} {v:?} is not ADDRESS:PORT, e.g. 127.0.0.1:8080"))
}

fn unknown(arg: &str, help: &str) -> String {
    format!(
        "unexpected argument {arg:?}\n\n{}",
        help.lines().find(|l| l.starts_with("Usage:")).unwrap_or("")
    )
}

/// Parses the arguments after the program name. `Err` is a usage error for stderr.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, String> {
    let mut a = Args::new(args)?;
    let Some(first) = a.items.first().cloned() else {
        return Ok(Command::Run {
            config: None,
            dev: None,
        });
    };
    match first.as_str() {
        "check-config" => {
            a.next();
            check_config(&mut a)
        }
        "provision" => {
            a.next();
            provision(&mut a)
        }
        "bench-hash" => {
            a.next();
            bench_hash(&mut a)
        }
        "ctl" => {
            a.next();
            ctl(&mut a)
        }
        _ => run(&mut a),
    }
}

fn run(a: &mut Args) -> Result<Command, String> {
    let mut config = None;
    let mut dev = false;
    let (mut state_dir, mut http, mut https) = (None, None, None);
    while let Some(arg) = a.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help(HELP)),
            "-V" | "--version" => return Ok(Command::Version),
            "--dev" => dev = true,
            s if is(s, "--config") => config = Some(PathBuf::from(a.value(s, "--config")?)),
            s if is(s, "--state-dir") => {
                state_dir = Some(PathBuf::from(a.value(s, "--state-dir")?))
            }
            s if is(s, "--http") => http = Some(addr(&a.value(s, "--http")?, "--http")?),
            s if is(s, "--https") => https = Some(addr(&a.value(s, "--https")?, "--https")?),
            other => return Err(unknown(other, HELP)),
        }
    }
    if !dev && (state_dir.is_some() || http.is_some() || https.is_some()) {
        return Err("--state-dir, --http and --https go with --dev".into());
    }
    let dev = dev.then(|| DevOpts {
        state_dir: state_dir.unwrap_or_else(|| PathBuf::from("./.pbx-dev")),
        http: http.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
        https: https.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8443))),
    });
    Ok(Command::Run { config, dev })
}

fn check_config(a: &mut Args) -> Result<Command, String> {
    let mut config = PathBuf::from(DEFAULT_CONFIG);
    while let Some(arg) = a.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help(CHECK_CONFIG_HELP)),
            s if is(s, "--config") => config = PathBuf::from(a.value(s, "--config")?),
            other => return Err(unknown(other, CHECK_CONFIG_HELP)),
        }
    }
    Ok(Command::CheckConfig { config })
}

fn bench_hash(a: &mut Args) -> Result<Command, String> {
    let mut config = PathBuf::from(DEFAULT_CONFIG);
    let mut rounds = 5;
    while let Some(arg) = a.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help(BENCH_HASH_HELP)),
            s if is(s, "--config") => config = PathBuf::from(a.value(s, "--config")?),
            s if is(s, "--rounds") => {
                let v = a.value(s, "--rounds")?;
                rounds = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=100).contains(n))
                    .ok_or_else(|| format!("--rounds {v:?} is not a number from 1 to 100"))?;
            }
            other => return Err(unknown(other, BENCH_HASH_HELP)),
        }
    }
    Ok(Command::BenchHash { config, rounds })
}

fn provision(a: &mut Args) -> Result<Command, String> {
    let (mut board_db, mut model, mut serial, mut mac, mut profile) =
        (None, None, None, None, None);
    while let Some(arg) = a.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help(PROVISION_HELP)),
            s if is(s, "--board-db") => board_db = Some(PathBuf::from(a.value(s, "--board-db")?)),
            s if is(s, "--model") => model = Some(a.value(s, "--model")?),
            s if is(s, "--serial") => serial = Some(a.value(s, "--serial")?),
            s if is(s, "--mac") => mac = Some(a.value(s, "--mac")?),
            s if is(s, "--profile") => profile = Some(PathBuf::from(a.value(s, "--profile")?)),
            other => return Err(unknown(other, PROVISION_HELP)),
        }
    }
    let need = |v: Option<String>, name: &str| v.ok_or_else(|| format!("provision needs {name}"));
    Ok(Command::Provision {
        board_db: board_db.ok_or("provision needs --board-db PATH")?,
        model: need(model, "--model M")?,
        serial: need(serial, "--serial S")?,
        mac: need(mac, "--mac MAC")?,
        profile,
    })
}

fn ctl(a: &mut Args) -> Result<Command, String> {
    let mut socket = PathBuf::from(DEFAULT_SOCKET);
    let mut command = None;
    let (mut yes, mut held_ms) = (false, None);
    while let Some(arg) = a.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help(CTL_HELP)),
            s if is(s, "--socket") => socket = PathBuf::from(a.value(s, "--socket")?),
            "--yes" => yes = true,
            s if is(s, "--held-ms") => {
                let v = a.value(s, "--held-ms")?;
                held_ms = Some(
                    v.parse::<u64>()
                        .map_err(|_| format!("--held-ms {v:?} is not a number of milliseconds"))?,
                );
            }
            "status" | "factory-reset" | "button" | "recovery-mail" | "selftest"
                if command.is_none() =>
            {
                command = Some(arg)
            }
            other => return Err(unknown(other, CTL_HELP)),
        }
    }
    let command = match command.as_deref() {
        Some("status") => CtlCommand::Status,
        Some("factory-reset") => CtlCommand::FactoryReset { yes },
        Some("button") => CtlCommand::Button {
            held_ms: held_ms.ok_or("ctl button needs --held-ms N")?,
        },
        Some("recovery-mail") => CtlCommand::RecoveryMail,
        Some("selftest") => CtlCommand::Selftest,
        _ => return Err(format!("ctl needs a command\n\n{CTL_HELP}")),
    };
    if yes && command != (CtlCommand::FactoryReset { yes: true }) {
        return Err("--yes goes with factory-reset".into());
    }
    if held_ms.is_some() && !matches!(command, CtlCommand::Button { .. }) {
        return Err("--held-ms goes with button".into());
    }
    Ok(Command::Ctl { socket, command })
}

#[cfg(test)]
mod tests;
