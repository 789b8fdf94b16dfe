//! Small file-system helpers for flash: atomic replacement of whole files, a private
//! copy of a directory tree, and the resolution and checking of erase targets (what a
//! factory reset may remove, symlinks followed).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` so that a power cut leaves either the old file or the new one:
/// temp file → fsync → rename → fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Removes the file at `path` so that a power cut after the call cannot bring it back:
/// unlink → fsync the directory (ext4 and UBIFS keep an unlink in their journal until
/// the next commit, seconds later). `Ok` if it was not there.
pub fn remove_durably(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        other => other?,
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// Copies the directory tree `from` to a new directory `to` (mode 0700: the copies
/// may hold password hashes). Regular files and directories only.
pub fn copy_dir(from: &Path, to: &Path) -> io::Result<()> {
    fs::DirBuilder::new().mode(0o700).create(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else if kind.is_file() {
            // Created 0600 whatever the source's mode: these are password hashes.
            let mut out = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&target)?;
            io::copy(&mut File::open(entry.path())?, &mut out)?;
        }
    }
    Ok(())
}

/// Best effort: directories under (and including) `path` to 0700, files to 0600.
/// Symlinks are not followed; what cannot be changed (read-only factory flash) stays.
/// Bytes of the files under `path` (a file, or a directory walked without following
/// symlinks); `None` if it cannot be read.
pub fn tree_size(path: &Path) -> Option<u64> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.is_dir() {
        return Some(meta.len());
    }
    let mut total = 0;
    for e in std::fs::read_dir(path).ok()?.flatten() {
        total += tree_size(&e.path()).unwrap_or(0);
    }
    Some(total)
}

pub fn make_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = fs::symlink_metadata(path) else {
        return;
    };
    let want = if meta.is_dir() {
        0o700
    } else if meta.is_file() {
        0o600
    } else {
        return;
    };
    if meta.permissions().mode() & 0o777 != want {
        let _ = fs::set_permissions(path, fs::Permissions::from_mode(want));
    }
    if meta.is_dir() {
        for entry in fs::read_dir(path).into_iter().flatten().flatten() {
            make_private(&entry.path());
        }
    }
}

/// `path` with every symlink and `..` resolved, also when its tail does not exist yet:
/// the longest existing ancestor is canonicalised and the rest appended (a `..` in that
/// rest is refused: it could point anywhere once created).
/// A relative `path` is taken from the current directory.
pub fn resolve(path: &Path) -> io::Result<PathBuf> {
    let absolute;
    let path = if path.is_absolute() {
        path
    } else {
        absolute = std::env::current_dir()?.join(path);
        &absolute
    };
    let mut existing = path;
    let mut tail = Vec::new();
    loop {
        match fs::canonicalize(existing) {
            Ok(real) => {
                let mut out = real;
                for part in tail.iter().rev() {
                    out.push(part);
                }
                return Ok(out);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let name = existing.file_name().ok_or(e)?;
                if name == ".." {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "'..' in a part that does not exist yet",
                    ));
                }
                tail.push(name.to_os_string());
                existing = existing.parent().unwrap_or(Path::new("/"));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Why a resolved erase target must not be erased, if it must not: it is the root or
/// lies in `/etc`, `/proc`, `/sys`, `/dev`; or it overlaps (contains or lies inside) one
/// of `keep` (the board DB, the binary's directory).
pub fn forbidden_target(target: &Path, keep: &[(&str, PathBuf)]) -> Option<String> {
    if target == Path::new("/") {
        return Some("it is the root directory".into());
    }
    for system in ["/etc", "/proc", "/sys", "/dev"] {
        if target.starts_with(system) {
            return Some(format!("it lies in {system}"));
        }
    }
    for (what, kept) in keep {
        if target.starts_with(kept) || kept.starts_with(target) {
            return Some(format!("it overlaps {what} ({})", kept.display()));
        }
    }
    None
}

/// What an erase must never touch besides the system directories: the board DB and
/// the directory of the running binary (resolved).
pub fn kept_paths(board_db: &Path) -> Vec<(&'static str, PathBuf)> {
    let mut keep = Vec::new();
    if let Ok(b) = resolve(board_db) {
        keep.push(("the board DB (factory data survives a reset)", b));
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
        .and_then(|d| fs::canonicalize(d).ok())
    {
        keep.push(("the directory of the pbx-authd binary", dir));
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn replaces_content_and_sets_mode() {
        let d = std::env::temp_dir().join(format!("pbx-fsutil-{}", std::process::id()));
        fs::create_dir_all(&d).expect("mkdir");
        let p = d.join("key.pem");
        write_atomic(&p, b"one", 0o600).expect("write");
        write_atomic(&p, b"two", 0o600).expect("rewrite");
        assert_eq!(fs::read(&p).expect("read"), b"two");
        let mode = fs::metadata(&p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(!d.join(".key.pem.tmp").exists());
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn removes_for_good_and_missing_is_fine() {
        let d = std::env::temp_dir().join(format!("pbx-fsutil-rm-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(d.join("sub")).expect("mkdir");
        fs::write(d.join("guard"), b"1\n").expect("write");
        remove_durably(&d.join("guard")).expect("remove");
        assert!(!d.join("guard").exists());
        remove_durably(&d.join("guard")).expect("already gone is not an error");
        let e = remove_durably(&d.join("sub")).expect_err("a directory is not a file");
        assert_ne!(e.kind(), io::ErrorKind::NotFound);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn copies_a_tree_privately() {
        let d = std::env::temp_dir().join(format!("pbx-fsutil-copy-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(d.join("a/sub")).expect("mkdir");
        fs::write(d.join("a/db"), b"records").expect("write");
        fs::write(d.join("a/sub/snap"), b"snapshot").expect("write");
        copy_dir(&d.join("a"), &d.join("b")).expect("copy");
        assert_eq!(fs::read(d.join("b/db")).expect("read"), b"records");
        assert_eq!(fs::read(d.join("b/sub/snap")).expect("read"), b"snapshot");
        let mode = fs::metadata(d.join("b"))
            .expect("stat")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o700);
        assert!(
            copy_dir(&d.join("a"), &d.join("b")).is_err(),
            "never into an existing dir"
        );
        let mode = |p: &str| fs::metadata(d.join(p)).expect("stat").permissions().mode() & 0o777;
        fs::set_permissions(d.join("a/db"), fs::Permissions::from_mode(0o644)).expect("chmod");
        copy_dir(&d.join("a"), &d.join("c")).expect("copy");
        assert_eq!(
            mode("c/db"),
            0o600,
            "copies are private whatever the source"
        );
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn resolve_follows_symlinks_and_refuses_dotdot_in_new_parts() {
        let d = std::env::temp_dir().join(format!("pbx-fsutil-resolve-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(d.join("real/sub")).expect("mkdir");
        std::os::unix::fs::symlink(d.join("real"), d.join("link")).expect("symlink");
        let real = fs::canonicalize(d.join("real")).expect("canon");
        assert_eq!(resolve(&d.join("link/sub")).expect("r"), real.join("sub"));
        assert_eq!(
            resolve(&d.join("link/new/deeper")).expect("r"),
            real.join("new/deeper"),
            "a tail that does not exist yet"
        );
        assert_eq!(resolve(&d.join("real/sub/..")).expect("r"), real);
        assert!(resolve(&d.join("link/new/../../x")).is_err());
        assert!(resolve(Path::new("relative/path"))
            .expect("from the current dir")
            .is_absolute());
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn system_dirs_the_board_db_and_overlaps_are_forbidden() {
        let keep = vec![("the board DB", PathBuf::from("/factory/board.db"))];
        for bad in [
            "/",
            "/etc",
            "/etc/pbx",
            "/proc/1",
            "/sys",
            "/dev/mtd3",
            "/factory",
            "/factory/board.db/x",
        ] {
            assert!(forbidden_target(Path::new(bad), &keep).is_some(), "{bad}");
        }
        for ok in [
            "/var/lib/pbx-authd/data.db",
            "/data/voicemail",
            "/factory2",
            "/etcetera",
        ] {
            assert!(forbidden_target(Path::new(ok), &keep).is_none(), "{ok}");
        }
    }
}
