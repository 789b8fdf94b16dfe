//! A QR code as SVG, drawn here (no JS library, no outside service): the two-factor
//! enrollment's `otpauth://` URI for the phone's camera.

use qrcodegen::{QrCode, QrCodeEcc};

/// Quiet zone around the symbol, in modules (the standard asks for 4).
const BORDER: i32 = 4;

/// `text` as a QR code (error correction M) in an SVG of `px` pixels; `None` if it is
/// too long for any QR version.
pub fn svg(text: &str, px: u32) -> Option<String> {
    let qr = QrCode::encode_text(text, QrCodeEcc::Medium).ok()?;
    let n = qr.size();
    let mut d = String::new();
    for y in 0..n {
        for x in 0..n {
            if qr.get_module(x, y) {
                d.push_str(&format!("M{},{}h1v1h-1z", x + BORDER, y + BORDER));
            }
        }
    }
    let side = n + 2 * BORDER;
    Some(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {side} {side}\" width=\"{px}\" \
         height=\"{px}\" role=\"img\" aria-label=\"QR code for the authenticator app\" \
         shape-rendering=\"crispEdges\"><rect width=\"{side}\" height=\"{side}\" fill=\"#fff\"/>\
         <path fill=\"#000\" d=\"{d}\"/></svg>"
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn draws_a_square_symbol_with_its_quiet_zone() {
        let s = super::svg("otpauth://totp/PBX:admin?secret=MZXW6YTBOI", 200).expect("fits");
        // This URI at level M: version 3, 29 modules, plus 4 of quiet zone each side.
        assert!(
            s.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 37 37\""),
            "{s}"
        );
        // The three finder patterns' top-left corners are dark, the quiet zone is not.
        for corner in ["M4,4h1", "M26,4h1", "M4,26h1"] {
            assert!(s.contains(corner), "{corner}");
        }
        assert!(!s.contains("M3,") && !s.contains(",3h"), "quiet zone");
        assert!(super::svg(&"x".repeat(5000), 200).is_none());
    }
}
