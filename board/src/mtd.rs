//! Erasing flash partitions through the kernel's MTD and UBI character devices. The ioctl
//! calls are, with `sched`'s two system calls, the only `unsafe` code in the workspace;
//! each has its `// SAFETY:`.
//! Struct layouts and request numbers are checked against the kernel headers' values
//! (`include/uapi/mtd/mtd-abi.h`, `include/uapi/mtd/ubi-user.h`) in the tests below.
#![allow(unsafe_code)]

use std::fs::OpenOptions;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// `struct mtd_info_user`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct MtdInfoUser {
    pub kind: u8,
    pub flags: u32,
    pub size: u32,
    pub erasesize: u32,
    pub writesize: u32,
    pub oobsize: u32,
    pub padding: u64,
}

/// `struct erase_info_user64`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct EraseInfoUser64 {
    pub start: u64,
    pub length: u64,
}

/// `struct erase_info_user`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct EraseInfoUser {
    pub start: u32,
    pub length: u32,
}

nix::ioctl_read!(mem_get_info, b'M', 1, MtdInfoUser);
nix::ioctl_write_ptr!(mem_erase, b'M', 2, EraseInfoUser);
nix::ioctl_write_ptr!(mem_erase64, b'M', 20, EraseInfoUser64);
nix::ioctl_write_ptr!(ubi_volume_update, b'O', 0, i64);

/// The `/dev/mtdN` of a partition named `name` in `/proc/mtd` text.
pub fn find_mtd(proc_mtd: &str, name: &str) -> Option<PathBuf> {
    // mtd3: 00800000 00020000 "userdata"
    proc_mtd.lines().find_map(|l| {
        let (dev, rest) = l.split_once(':')?;
        let quoted = rest.split('"').nth(1)?;
        (quoted == name && dev.starts_with("mtd")).then(|| PathBuf::from(format!("/dev/{dev}")))
    })
}

/// Erases every eraseblock of an MTD character device. Bad blocks (EIO) are skipped
/// and counted; any other error stops the erase.
pub fn erase_mtd(dev: &Path) -> io::Result<EraseReport> {
    let f = OpenOptions::new().read(true).write(true).open(dev)?;
    let fd = f.as_raw_fd();
    let mut info = MtdInfoUser::default();
    // SAFETY: `fd` is an open MTD device for the lifetime of `f`, and `info` is a
    // properly aligned `mtd_info_user` that the kernel fills in.
    unsafe { mem_get_info(fd, &mut info) }.map_err(io::Error::from)?;
    if info.erasesize == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "MTD reports erase size 0",
        ));
    }
    let mut report = EraseReport::default();
    let mut start = 0u64;
    while start < u64::from(info.size) {
        let req = EraseInfoUser64 {
            start,
            length: u64::from(info.erasesize),
        };
        // SAFETY: `req` is a valid `erase_info_user64` living across the call; the
        // kernel only reads it.
        match unsafe { mem_erase64(fd, &req) } {
            Ok(_) => report.erased += 1,
            Err(nix::errno::Errno::EIO) => report.bad += 1,
            Err(nix::errno::Errno::ENOTTY | nix::errno::Errno::EINVAL)
                if start <= u64::from(u32::MAX) =>
            {
                // Old kernels without MEMERASE64.
                let req32 = EraseInfoUser {
                    start: u32::try_from(start).unwrap_or(u32::MAX),
                    length: info.erasesize,
                };
                // SAFETY: as above, for the 32-bit request.
                unsafe { mem_erase(fd, &req32) }.map_err(io::Error::from)?;
                report.erased += 1;
            }
            Err(e) => return Err(e.into()),
        }
        start += u64::from(info.erasesize);
    }
    Ok(report)
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EraseReport {
    pub erased: u64,
    pub bad: u64,
}

/// The `/dev/ubiX_Y` of a UBI volume named `name`, from `/sys/class/ubi`.
pub fn find_ubi_volume(sys_class_ubi: &Path, name: &str) -> Option<PathBuf> {
    std::fs::read_dir(sys_class_ubi)
        .ok()?
        .flatten()
        .find_map(|e| {
            let vol = e.file_name().to_str()?.to_string();
            let n = std::fs::read_to_string(e.path().join("name")).ok()?;
            (vol.contains('_') && n.trim() == name).then(|| PathBuf::from(format!("/dev/{vol}")))
        })
}

/// Where a UBI volume is mounted, from `/proc/self/mounts` text. UBIFS keeps the source
/// as it was given to mount: `ubi0_1`, `/dev/ubi0_1`, `ubi0:data` or `ubi:data`.
pub fn ubi_mount_point(mounts: &str, dev: &Path, name: &str) -> Option<PathBuf> {
    let vol = dev.file_name()?.to_str()?; // ubi0_1
    let num = vol.strip_prefix("ubi")?.split('_').next()?; // 0
    let sources = [
        vol.to_string(),
        format!("/dev/{vol}"),
        format!("ubi{num}:{name}"),
        format!("ubi:{name}"),
    ];
    mounts.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        let (source, target, fstype) = (f.next()?, f.next()?, f.next()?);
        (fstype == "ubifs" && sources.iter().any(|s| s == source))
            .then(|| PathBuf::from(unescape_mount_field(target)))
    })
}

/// `/proc/mounts` writes space, tab, newline and backslash as octal escapes.
fn unescape_mount_field(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push(d.iter().fold(0u8, |n, c| n.wrapping_mul(8) + (c - b'0')));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Unmounts `target`. A filesystem whose last files were closed a moment ago can still
/// be busy (the kernel, or the background threads of a database just closed): EBUSY is
/// retried for up to 2 s; after that the error names what keeps it.
fn unmount(target: &Path) -> io::Result<()> {
    let started = std::time::Instant::now();
    loop {
        match nix::mount::umount2(target, nix::mount::MntFlags::empty()) {
            Ok(()) => return Ok(()),
            Err(nix::errno::Errno::EBUSY)
                if started.elapsed() < std::time::Duration::from_secs(2) =>
            {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => {
                return Err(io::Error::new(
                    io::Error::from(e).kind(),
                    format!(
                        "mounted at {} and cannot be unmounted: {e} (a process still uses it)",
                        target.display()
                    ),
                ))
            }
        }
    }
}

/// Empties a UBI volume: a volume update of zero bytes leaves it empty. UBI refuses to
/// update a volume that is open, and a mounted UBIFS keeps its volume open: a mounted
/// volume is unmounted first (what the box mounts again at the next boot — an empty
/// volume, which UBIFS formats at that mount).
pub fn empty_ubi_volume(dev: &Path, name: &str) -> io::Result<()> {
    let mounts = std::fs::read_to_string("/proc/self/mounts")?;
    if let Some(target) = ubi_mount_point(&mounts, dev, name) {
        unmount(&target)?;
    }
    let f = OpenOptions::new().read(true).write(true).open(dev)?;
    let bytes: i64 = 0;
    // SAFETY: `f` is an open UBI volume device; the kernel reads the i64 length.
    unsafe { ubi_volume_update(f.as_raw_fd(), &bytes) }.map_err(io::Error::from)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::size_of;

    #[test]
    fn a_ubi_volume_is_found_mounted_by_any_of_its_names() {
        let dev = Path::new("/dev/ubi0_1");
        let mounts = "ubi0:factory /factory ubifs rw,relatime 0 0\n\
                      ubi0:data /var/lib/pbx\\040authd ubifs rw,relatime 0 0\n";
        assert_eq!(
            ubi_mount_point(mounts, dev, "data"),
            Some(PathBuf::from("/var/lib/pbx authd"))
        );
        for source in ["ubi0_1", "/dev/ubi0_1", "ubi:data"] {
            let m = format!("{source} /mnt/data ubifs rw 0 0\n");
            assert_eq!(
                ubi_mount_point(&m, dev, "data"),
                Some(PathBuf::from("/mnt/data")),
                "{source}"
            );
        }
        assert_eq!(
            ubi_mount_point("ubi0_1 /x ext4 rw 0 0\n", dev, "data"),
            None,
            "not ubifs"
        );
        assert_eq!(
            ubi_mount_point(
                "ubi1_1 /x ubifs rw 0 0\nubi0:factory /f ubifs rw 0 0\n",
                dev,
                "data"
            ),
            None
        );
    }

    #[test]
    fn struct_layouts_match_the_kernel_abi() {
        assert_eq!(size_of::<MtdInfoUser>(), 32);
        assert_eq!(size_of::<EraseInfoUser>(), 8);
        assert_eq!(size_of::<EraseInfoUser64>(), 16);
        assert_eq!(std::mem::offset_of!(MtdInfoUser, flags), 4);
        assert_eq!(std::mem::offset_of!(MtdInfoUser, erasesize), 12);
        assert_eq!(std::mem::offset_of!(MtdInfoUser, padding), 24);
    }

    #[test]
    fn ioctl_numbers_match_the_kernel_headers() {
        // Values of MEMGETINFO, MEMERASE, MEMERASE64 and UBI_IOCVOLUP on Linux.
        assert_eq!(
            nix::request_code_read!(b'M', 1, size_of::<MtdInfoUser>()) as u64,
            0x8020_4d01
        );
        assert_eq!(
            nix::request_code_write!(b'M', 2, size_of::<EraseInfoUser>()) as u64,
            0x4008_4d02
        );
        assert_eq!(
            nix::request_code_write!(b'M', 20, size_of::<EraseInfoUser64>()) as u64,
            0x4010_4d14
        );
        assert_eq!(
            nix::request_code_write!(b'O', 0, size_of::<i64>()) as u64,
            0x4008_4f00
        );
    }

    #[test]
    fn finds_partitions_by_name() {
        let proc_mtd = "dev:    size   erasesize  name\n\
                        mtd0: 00040000 00010000 \"u-boot\"\n\
                        mtd3: 00800000 00020000 \"userdata\"\n";
        assert_eq!(
            find_mtd(proc_mtd, "userdata"),
            Some(PathBuf::from("/dev/mtd3"))
        );
        assert_eq!(find_mtd(proc_mtd, "user"), None);
        assert_eq!(find_mtd(proc_mtd, "factory"), None);
    }

    #[test]
    fn finds_ubi_volumes_by_name() {
        let d = std::env::temp_dir().join(format!("pbx-ubi-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        for (vol, name) in [("ubi0", ""), ("ubi0_0", "rootfs"), ("ubi0_1", "user_data")] {
            std::fs::create_dir_all(d.join(vol)).expect("mkdir");
            if !name.is_empty() {
                std::fs::write(d.join(vol).join("name"), format!("{name}\n")).expect("write");
            }
        }
        assert_eq!(
            find_ubi_volume(&d, "user_data"),
            Some(PathBuf::from("/dev/ubi0_1"))
        );
        assert_eq!(find_ubi_volume(&d, "voicemail"), None);
        let _ = std::fs::remove_dir_all(&d);
    }
}
