//! The web UI and its catalogues, checked and packed (`build/i18n.rs`); and the
//! firmware's build name for the Device page: `git describe` of the source tree
//! (e.g. `3600aa9-dirty`), or `unknown` outside a git checkout; and its build time.

#[path = "build/i18n.rs"]
mod i18n;

fn main() {
    let out = std::env::var("OUT_DIR").expect("OUT_DIR");
    i18n::build(std::path::Path::new(&out));
    let describe = std::process::Command::new("git")
        .args(["describe", "--always", "--dirty", "--tags"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=PBX_GIT_DESCRIBE={describe}");
    // The build's time, for the clock floor: the commit's (a build of the same commit is
    // the same bytes), else SOURCE_DATE_EPOCH, else 0.
    let built = std::process::Command::new("git")
        .args(["log", "-1", "--format=%ct"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| s.parse::<u64>().is_ok())
        .or_else(|| std::env::var("SOURCE_DATE_EPOCH").ok())
        .unwrap_or_else(|| "0".into());
    println!("cargo:rustc-env=PBX_BUILD_UNIX={built}");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    // A new commit or checkout changes the name.
    for f in ["../.git/HEAD", "../.git/index"] {
        if std::path::Path::new(f).exists() {
            println!("cargo:rerun-if-changed={f}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
