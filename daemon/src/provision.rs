//! Factory provisioning: write the board DB once, with a fresh random initial password
//! of which only the argon2id hash is stored. The password is returned to be printed on
//! the label (and, in `--dev`, on the console) and exists nowhere else.

use pbx_board::BoardProfile;

use crate::auth::password;
use crate::auth::Secret;
use crate::model::BoardInfo;
use crate::store::{BoardDb, StoreError};

/// Letters and digits that cannot be confused on a printed label (no 0/o, 1/l/i).
const LABEL_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// A label password: three groups of four, e.g. `k7mq-x3vt-9pfa` (~59 bits).
pub fn generate_initial_password() -> Secret {
    let n = LABEL_ALPHABET.len();
    // Rejection sampling keeps every character equally likely.
    let limit = 256 - 256 % n;
    let mut out = String::with_capacity(14);
    while out.len() < 14 {
        for b in crate::auth::random_bytes::<32>() {
            if out.len() == 14 {
                break;
            }
            if usize::from(b) >= limit {
                continue;
            }
            if out.len() == 4 || out.len() == 9 {
                out.push('-');
            }
            out.push(char::from(LABEL_ALPHABET[usize::from(b) % n]));
        }
    }
    Secret::new(out)
}

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("--mac {0:?} is not a MAC address like 02:00:00:00:00:01")]
    BadMac(String),
    #[error("--{0} must not be empty")]
    Empty(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub fn valid_mac(mac: &str) -> bool {
    let parts: Vec<&str> = mac.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Writes the board DB and returns the initial password (to print once).
pub fn provision(
    db: &BoardDb,
    model: &str,
    serial: &str,
    mac: &str,
    hw: BoardProfile,
) -> Result<Secret, ProvisionError> {
    if model.trim().is_empty() {
        return Err(ProvisionError::Empty("model"));
    }
    if serial.trim().is_empty() {
        return Err(ProvisionError::Empty("serial"));
    }
    if !valid_mac(mac) {
        return Err(ProvisionError::BadMac(mac.into()));
    }
    if db.is_provisioned()? {
        return Err(StoreError::AlreadyProvisioned(db.path().to_path_buf()).into());
    }
    let password = generate_initial_password();
    let info = BoardInfo {
        model: model.into(),
        serial: serial.into(),
        mac: mac.to_ascii_lowercase(),
        initial_password_hash: password::hash_blocking(password.expose()),
        hw,
    };
    db.provision(&info)?;
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_password_shape_and_policy() {
        for _ in 0..50 {
            let p = generate_initial_password();
            let s = p.expose();
            assert_eq!(s.len(), 14, "{s}");
            assert_eq!(&s[4..5], "-");
            assert_eq!(&s[9..10], "-");
            assert!(s
                .bytes()
                .filter(|&b| b != b'-')
                .all(|b| LABEL_ALPHABET.contains(&b)));
            assert!(!crate::auth::policy::is_common(s), "{s}");
        }
    }

    #[test]
    fn mac_validation() {
        assert!(valid_mac("02:00:5E:10:00:01"));
        assert!(!valid_mac("02:00:5E:10:00"));
        assert!(!valid_mac("02-00-5E-10-00-01"));
        assert!(!valid_mac("zz:00:5E:10:00:01"));
    }

    #[test]
    fn provision_stores_only_the_hash() {
        let d = std::env::temp_dir().join(format!("pbx-prov-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let db = d.join("board.db");
        let board = BoardDb::open(&db, 1 << 20).expect("open");
        let pw = provision(
            &board,
            "S50",
            "S50-1",
            "02:00:00:00:00:01",
            BoardProfile::sim(),
        )
        .expect("provision");
        let info = board.read().expect("read");
        assert!(password::verify_blocking(
            pw.expose(),
            &info.initial_password_hash
        ));
        // The plain password appears in no file of the DB.
        for entry in std::fs::read_dir(&db).expect("ls").flatten() {
            if entry.path().is_file() {
                let bytes = std::fs::read(entry.path()).expect("read");
                assert!(!bytes.windows(14).any(|w| w == pw.expose().as_bytes()));
            }
        }
        assert!(matches!(
            provision(
                &board,
                "S50",
                "S50-1",
                "02:00:00:00:00:01",
                BoardProfile::sim()
            ),
            Err(ProvisionError::Store(StoreError::AlreadyProvisioned(_)))
        ));
        let _ = std::fs::remove_dir_all(&d);
    }
}
