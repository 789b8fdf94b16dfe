//! The physical limit for login throughput: raw argon2id hashes per second with the
//! daemon's parameters (m=19456 KiB, t=2, p=1), THREADS threads in a tight loop for
//! SECONDS. Usage: argon2-raw THREADS SECONDS  →  prints "<hashes> <seconds>".

use argon2::{Algorithm, Argon2, Params, Version};
use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let threads: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2);
    let seconds: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5.0);
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            std::thread::spawn(move || {
                let params = Params::new(19_456, 2, 1, Some(32)).expect("valid params");
                let a = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
                let mut out = [0u8; 32];
                let mut n = 0u64;
                while Instant::now() < until {
                    a.hash_password_into(b"correct horse battery", b"saltsaltsaltsalt", &mut out)
                        .expect("hash");
                    n += 1;
                }
                n
            })
        })
        .collect();
    let total: u64 = handles.into_iter().map(|h| h.join().expect("thread")).sum();
    println!("{total} {:.3}", start.elapsed().as_secs_f64());
}
