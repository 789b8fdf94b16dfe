//! Small file-system helpers for flash: atomic replacement of whole files, and a private
//! copy of a directory tree.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

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
            fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
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
        let _ = fs::remove_dir_all(&d);
    }
}
