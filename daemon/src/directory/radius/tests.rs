use super::*;

const SECRET: &[u8] = b"s3cret for tests";

/// A server's reply to request `id` / `ra`: Message-Authenticator first (unless
/// `with_mac` is false), then the Response Authenticator, as RFC 2865 and 3579 say.
fn reply(code: u8, id: u8, ra: &[u8; 16], attrs: &[(u8, &[u8])], with_mac: bool) -> Vec<u8> {
    let mut p = vec![code, id, 0, 0];
    p.extend_from_slice(ra);
    if with_mac {
        put(&mut p, attr::MESSAGE_AUTHENTICATOR, &[0; 16], "mac").expect("mac");
    }
    for (t, v) in attrs {
        put(&mut p, *t, v, "attr").expect("attr");
    }
    let len = u16::try_from(p.len()).expect("len");
    p[2..4].copy_from_slice(&len.to_be_bytes());
    if with_mac {
        let mac = hmac_md5(SECRET, &p);
        p[22..38].copy_from_slice(&mac);
    }
    let auth = Md5::new()
        .chain_update(&p[..4])
        .chain_update(ra)
        .chain_update(&p[20..])
        .chain_update(SECRET)
        .finalize();
    p[4..20].copy_from_slice(&auth);
    p
}

fn unhide(hidden: &[u8], secret: &[u8], ra: &[u8; 16]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut prev = *ra;
    for block in hidden.chunks(16) {
        let key = Md5::new()
            .chain_update(secret)
            .chain_update(prev)
            .finalize();
        out.extend(block.iter().zip(key.iter()).map(|(b, k)| b ^ k));
        prev.copy_from_slice(block);
    }
    while out.last() == Some(&0) {
        out.pop();
    }
    out
}

fn request<'a>(password: &'a [u8], state: Option<&'a [u8]>) -> AccessRequest<'a> {
    AccessRequest {
        id: 7,
        authenticator: [0x42; 16],
        user: "tech1",
        password,
        nas_identifier: "SIM-0001",
        nas_ip: Some("192.0.2.10".parse().expect("ip")),
        state,
    }
}

#[test]
fn a_request_is_signed_with_the_message_authenticator_first() {
    let p = request(b"admin pass 1", Some(b"st"))
        .encode(SECRET)
        .expect("encoded");
    assert_eq!((p[0], p[1]), (code::ACCESS_REQUEST, 7));
    assert_eq!(usize::from(u16::from_be_bytes([p[2], p[3]])), p.len());
    assert_eq!(
        (p[20], p[21]),
        (attr::MESSAGE_AUTHENTICATOR, 18),
        "first attribute"
    );
    let mut zeroed = p.clone();
    zeroed[22..38].fill(0);
    assert_eq!(
        hmac_md5(SECRET, &zeroed),
        p[22..38],
        "HMAC-MD5 over the packet"
    );
    // The attributes after it: name, hidden password, NAS-IP, NAS-Identifier, State.
    let mut i = 38;
    let mut seen = Vec::new();
    while i < p.len() {
        seen.push((p[i], p[i + 2..i + usize::from(p[i + 1])].to_vec()));
        i += usize::from(p[i + 1]);
    }
    let types: Vec<u8> = seen.iter().map(|(t, _)| *t).collect();
    assert_eq!(types, [1, 2, 4, 32, 24]);
    assert_eq!(seen[0].1, b"tech1");
    assert_eq!(seen[1].1.len(), 16, "padded to a block");
    assert_eq!(unhide(&seen[1].1, SECRET, &[0x42; 16]), b"admin pass 1");
    assert_eq!(seen[2].1, [192, 0, 2, 10]);
}

#[test]
fn passwords_hide_in_chained_blocks_and_their_length_is_bounded() {
    let ra = [9; 16];
    for len in [1, 15, 16, 17, 40, 128] {
        let pw = vec![b'x'; len];
        let hidden = hide_password(&pw, SECRET, &ra).expect("hidden");
        assert_eq!(hidden.len(), len.div_ceil(16) * 16, "{len}");
        assert_eq!(unhide(&hidden, SECRET, &ra), pw, "{len}");
    }
    assert_eq!(
        hide_password(&[b'x'; 129], SECRET, &ra),
        Err(RadiusError::TooLong("the password"))
    );
    let mut r = request(b"", None);
    r.user = "";
    assert_eq!(r.encode(SECRET), Err(RadiusError::Empty("the username")));
}

#[test]
fn a_signed_reply_is_read_and_every_forgery_refused() {
    let ra = [0x42; 16];
    let good = reply(
        code::ACCESS_ACCEPT,
        7,
        &ra,
        &[
            (attr::CLASS, b"pbx-admin"),
            (attr::REPLY_MESSAGE, b"Welcome"),
        ],
        true,
    );
    let r = decode_reply(&good, 7, &ra, SECRET).expect("accepted");
    assert_eq!(r.code, code::ACCESS_ACCEPT);
    assert_eq!(
        r.values(attr::CLASS).collect::<Vec<_>>(),
        [b"pbx-admin".as_slice()]
    );
    assert_eq!(r.message().as_deref(), Some("Welcome"));

    // BlastRADIUS: an Accept without a Message-Authenticator, however right its MD5.
    let bare = reply(
        code::ACCESS_ACCEPT,
        7,
        &ra,
        &[(attr::CLASS, b"pbx-admin")],
        false,
    );
    assert_eq!(
        decode_reply(&bare, 7, &ra, SECRET),
        Err(RadiusError::MissingMessageAuthenticator)
    );
    // A forged Message-Authenticator.
    let mut forged = good.clone();
    forged[25] ^= 1;
    assert_eq!(
        decode_reply(&forged, 7, &ra, SECRET),
        Err(RadiusError::BadMessageAuthenticator)
    );
    // Another secret.
    assert_eq!(
        decode_reply(&good, 7, &ra, b"another secret"),
        Err(RadiusError::BadMessageAuthenticator)
    );
    // A changed attribute breaks the HMAC; a changed authenticator the MD5.
    let mut changed = good.clone();
    let last = changed.len() - 1;
    changed[last] ^= 1;
    assert_eq!(
        decode_reply(&changed, 7, &ra, SECRET),
        Err(RadiusError::BadMessageAuthenticator)
    );
    let mut wrong_auth = good.clone();
    wrong_auth[4] ^= 1;
    assert_eq!(
        decode_reply(&wrong_auth, 7, &ra, SECRET),
        Err(RadiusError::BadResponseAuthenticator)
    );
    assert_eq!(
        decode_reply(&good, 8, &ra, SECRET),
        Err(RadiusError::WrongId)
    );
    assert_eq!(
        decode_reply(&good[..19], 7, &ra, SECRET),
        Err(RadiusError::Malformed("shorter than a header"))
    );
    assert_eq!(
        decode_reply(&good[..30], 7, &ra, SECRET),
        Err(RadiusError::Malformed("its length field"))
    );
    let two_macs = reply(
        code::ACCESS_REJECT,
        7,
        &ra,
        &[(attr::MESSAGE_AUTHENTICATOR, &[0; 16])],
        true,
    );
    assert_eq!(
        decode_reply(&two_macs, 7, &ra, SECRET),
        Err(RadiusError::BadMessageAuthenticator)
    );
    let request_back = reply(code::ACCESS_REQUEST, 7, &ra, &[], true);
    assert_eq!(
        decode_reply(&request_back, 7, &ra, SECRET),
        Err(RadiusError::UnexpectedCode(1))
    );
}

/// Against Debian's FreeRADIUS of the test's own (tests/scripts/freeradius.sh, on
/// loopback, Message-Authenticator required): an Accept with `Class = "pbx-admin"` and
/// its Reply-Message, an Accept with `Filter-Id`, a Reject for a wrong password — each
/// reply signed and checked — and no answer at all to a request whose
/// Message-Authenticator is wrong.
#[test]
fn a_real_freeradius_accepts_rejects_and_ignores_an_unsigned_request() {
    use std::net::UdpSocket;
    use std::time::Duration;
    let dir = std::env::temp_dir().join(format!("pbx-radius-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    // Four ports in a row (auth, acct, and their IPv6 twins), free now.
    let base = (20000..40000)
        .step_by(7)
        .map(|p| p + (std::process::id() % 7) as u16)
        .find(|&p| (0..4).all(|n| UdpSocket::bind(("127.0.0.1", p + n)).is_ok()))
        .expect("free ports");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/scripts/freeradius.sh"
    );
    let server = std::process::Command::new("bash")
        .arg(script)
        .arg(&dir)
        .arg(base.to_string())
        .arg(std::str::from_utf8(SECRET).expect("text"))
        .spawn()
        .expect("bash runs the FreeRADIUS script (make deps installs freeradius)");
    let log = dir.join("radiusd.log");
    let ready = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("Ready to process requests"))
    });
    let stop = |mut s: std::process::Child| {
        let _ = std::process::Command::new("pkill")
            .args([
                "-f",
                &format!(
                    "freeradius -f -xx -l stdout -d {}",
                    dir.join("raddb").display()
                ),
            ])
            .status();
        let _ = s.wait();
    };
    if !ready {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        stop(server);
        panic!("FreeRADIUS did not start:\n{text}");
    }
    let sock = UdpSocket::bind("127.0.0.1:0").expect("socket");
    sock.set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    let mut id = 0u8;
    let mut ask = |user: &str, password: &[u8], tamper: bool| {
        id += 1;
        let authenticator: [u8; 16] = crate::auth::random_bytes::<16>();
        let req = AccessRequest {
            id,
            authenticator,
            user,
            password,
            nas_identifier: "SIM-0001",
            nas_ip: Some("127.0.0.1".parse().expect("ip")),
            state: None,
        };
        let mut p = req.encode(SECRET).expect("encoded");
        if tamper {
            p[22] ^= 1;
        }
        sock.send_to(&p, ("127.0.0.1", base)).expect("sent");
        let mut buf = [0u8; 4096];
        match sock.recv(&mut buf) {
            Ok(n) => Some(decode_reply(&buf[..n], id, &authenticator, SECRET)),
            Err(_) => None,
        }
    };
    let admin = ask("tech1", b"admin pass 1", false);
    let user = ask("tech2", b"user pass 2", false);
    let wrong = ask("tech1", b"not the password", false);
    let unsigned = ask("tech1", b"admin pass 1", true);
    stop(server);
    let admin = admin.expect("an answer").expect("a signed Accept");
    assert_eq!(admin.code, code::ACCESS_ACCEPT);
    assert_eq!(
        admin.values(attr::CLASS).collect::<Vec<_>>(),
        [b"pbx-admin".as_slice()]
    );
    assert_eq!(admin.message().as_deref(), Some("Welcome, tech1"));
    let user = user.expect("an answer").expect("a signed Accept");
    assert_eq!(
        user.values(attr::FILTER_ID).collect::<Vec<_>>(),
        [b"pbx-user".as_slice()]
    );
    assert_eq!(
        wrong.expect("an answer").expect("a signed Reject").code,
        code::ACCESS_REJECT
    );
    assert!(
        unsigned.is_none(),
        "a wrong Message-Authenticator is dropped by the server"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A responder on loopback that answers every request with what `answer` makes of it
/// (None: silence).
async fn responder(
    answer: impl Fn(u8, [u8; 16]) -> Option<Vec<u8>> + Send + 'static,
) -> std::net::SocketAddr {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = sock.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
            if n < 20 {
                continue;
            }
            let mut ra = [0u8; 16];
            ra.copy_from_slice(&buf[4..20]);
            if let Some(r) = answer(buf[1], ra) {
                let _ = sock.send_to(&r, from).await;
            }
        }
    });
    addr
}

fn asking<'a>(servers: &'a [std::net::SocketAddr]) -> Ask<'a> {
    Ask {
        servers,
        secret: SECRET,
        timeout: std::time::Duration::from_millis(300),
        retries: 1,
    }
}

/// A rogue responder (BlastRADIUS) answers Access-Accept with a right Response
/// Authenticator but no Message-Authenticator, or a forged one: refused, never an Accept.
#[tokio::test]
async fn a_rogue_accept_without_or_with_a_forged_message_authenticator_is_refused() {
    let bare = responder(|id, ra| {
        Some(reply(
            code::ACCESS_ACCEPT,
            id,
            &ra,
            &[(attr::CLASS, b"pbx-admin")],
            false,
        ))
    })
    .await;
    let r = ask(&asking(&[bare]), &mut request(b"x", None)).await;
    assert!(
        matches!(
            r,
            Err(AskError::Refused(RadiusError::MissingMessageAuthenticator))
        ),
        "{r:?}"
    );
    let forged = responder(|id, ra| {
        let mut p = reply(
            code::ACCESS_ACCEPT,
            id,
            &ra,
            &[(attr::CLASS, b"pbx-admin")],
            true,
        );
        p[30] ^= 0x55;
        Some(p)
    })
    .await;
    let r = ask(&asking(&[forged]), &mut request(b"x", None)).await;
    assert!(
        matches!(
            r,
            Err(AskError::Refused(RadiusError::BadMessageAuthenticator))
        ),
        "{r:?}"
    );
}

/// A silent first server: each try waits its timeout, then the second server answers.
/// None answering: `Unreachable` naming both.
#[tokio::test]
async fn a_silent_server_fails_over_to_the_next_and_none_is_unreachable() {
    let silent = responder(|_, _| None).await;
    let honest = responder(|id, ra| {
        Some(reply(
            code::ACCESS_ACCEPT,
            id,
            &ra,
            &[(attr::CLASS, b"pbx-admin")],
            true,
        ))
    })
    .await;
    let started = std::time::Instant::now();
    let r = ask(&asking(&[silent, honest]), &mut request(b"x", None))
        .await
        .expect("the second server's Accept");
    assert_eq!(r.code, code::ACCESS_ACCEPT);
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(600),
        "two tries at the first"
    );
    let silent2 = responder(|_, _| None).await;
    match ask(&asking(&[silent, silent2]), &mut request(b"x", None)).await {
        Err(AskError::Unreachable { tried }) => assert_eq!(tried, [silent, silent2]),
        other => panic!("{other:?}"),
    }
}
