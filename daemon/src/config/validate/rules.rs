//! The rules sections: `[policy]` (limits, passwords, sessions, hashing) and
//! `[recovery]` (the button's recovery press, the recovery-check drill).

use std::time::Duration;

use super::{PolicyFile, RecoveryFile, Report};
use crate::config::{HashCost, Policy, RecoveryConfig};
use crate::model::ButtonMode;

pub(in crate::config) fn policy(f: &PolicyFile, r: &mut Report) -> Policy {
    let mut num =
        |key: &str, v: u64, lo: u64, hi: u64| r.range(&format!("policy.{key}"), v, lo, hi);
    let secs = Duration::from_secs;
    let ms = Duration::from_millis;
    // The clamps keep every value far below u32/usize limits.
    let small = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    let size = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
    let policy = Policy {
        lockout_failures: small(num("lockout_failures", f.lockout_failures, 1, 100)),
        lockout_window: secs(num("lockout_window_s", f.lockout_window_s, 10, 86_400)),
        lockout_block: secs(num("lockout_block_s", f.lockout_block_s, 10, 86_400)),
        account_slowdown_after: small(num(
            "account_slowdown_after",
            f.account_slowdown_after,
            1,
            10_000,
        )),
        account_slowdown_step: ms(num(
            "account_slowdown_step_ms",
            f.account_slowdown_step_ms,
            0,
            60_000,
        )),
        account_slowdown_max: ms(num(
            "account_slowdown_max_ms",
            f.account_slowdown_max_ms,
            0,
            60_000,
        )),
        password_min_len: size(num("password_min_len", f.password_min_len, 8, 128)),
        password_max_len: size(num("password_max_len", f.password_max_len, 16, 1024)),
        session_idle: secs(num("session_idle_s", f.session_idle_s, 60, 86_400)),
        session_absolute: secs(num(
            "session_absolute_s",
            f.session_absolute_s,
            60,
            7 * 86_400,
        )),
        hash_concurrency: size(num("hash_concurrency", f.hash_concurrency, 0, 64)),
        hash_queue: size(num("hash_queue", f.hash_queue, 0, 1024)),
        // 256 MiB: the most a stored hash may ask for at verification, too.
        hash_cost: HashCost {
            m_kib: small(num("argon2_m_kib", f.argon2_m_kib, 7_168, 262_144)),
            t: small(num("argon2_t", f.argon2_t, 1, 16)),
        },
        reset_token_ttl: secs(60 * num("reset_token_ttl_min", f.reset_token_ttl_min, 5, 1440)),
        forgot_per_address: small(num("forgot_per_address", f.forgot_per_address, 1, 1000)),
        forgot_address_window: secs(num(
            "forgot_address_window_s",
            f.forgot_address_window_s,
            10,
            86_400,
        )),
        forgot_mails_per_account: small(num(
            "forgot_mails_per_account",
            f.forgot_mails_per_account,
            1,
            100,
        )),
        forgot_account_window: secs(num(
            "forgot_account_window_s",
            f.forgot_account_window_s,
            60,
            86_400,
        )),
        require_2fa_for_admin: f.require_2fa_for_admin,
    };
    if policy.password_min_len > policy.password_max_len {
        r.bad(
            "policy.password_min_len",
            "must not exceed policy.password_max_len".into(),
        );
    }
    if policy.session_idle > policy.session_absolute {
        r.bad(
            "policy.session_idle_s",
            "must not exceed policy.session_absolute_s".into(),
        );
    }
    let asked = HashCost {
        m_kib: small(f.argon2_m_kib),
        t: small(f.argon2_t),
    };
    if !asked.meets_owasp() {
        r.bad(
            "policy.argon2_m_kib",
            format!(
                "{} KiB with argon2_t = {} is below OWASP's argon2id minimums \
                 (m=47104 t=1, m=19456 t=2, m=12288 t=3, m=9216 t=4, m=7168 t=5): \
                 raise argon2_m_kib or argon2_t",
                f.argon2_m_kib, f.argon2_t
            ),
        );
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Policy {
        hash_concurrency: if policy.hash_concurrency == 0 {
            cores
        } else {
            policy.hash_concurrency
        },
        ..policy
    }
}

pub(in crate::config) fn recovery(f: &RecoveryFile, r: &mut Report) -> RecoveryConfig {
    let button = f.button.parse().unwrap_or_else(|()| {
        r.bad(
            "recovery.button",
            format!(
                "{:?}: expected \"credentials\", \"mail\" or \"off\"",
                f.button
            ),
        );
        ButtonMode::Credentials
    });
    let days = r.range("recovery.drill_days", f.drill_days, 0, 365);
    RecoveryConfig {
        button,
        drill: (days > 0).then(|| Duration::from_secs(days * 86_400)),
        drill_retry: r.secs("recovery.drill_retry_s", f.drill_retry_s, 1, 86_400),
    }
}
