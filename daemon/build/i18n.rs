//! The web UI and the catalogues, checked and packed at build time (included by
//! `build.rs`):
//! - `i18n/<lang>.txt`: `key = text` lines, one catalogue per language. English is the
//!   reference: a catalogue missing one of its keys, with a key it lacks, or whose text
//!   names other `{placeholders}` or other markup fails the build.
//! - `src/web/*.html`: templates. `{{key}}` is a catalogue text, `{{>name}}` includes
//!   `src/web/_name.html`, `{{$slot}}` is filled in at run time; a key no catalogue
//!   has fails the build.
//! - `src/web/app.js` reads its texts with `t("key")`; each language's table of them is
//!   a small script of its own, gzipped here, cacheable with a version in its name.
//! - `app.js` and `style.css` are gzipped here, versioned by a hash of their bytes.
//!
//! What the daemon reads at run time (the catalogues of the server side, the templates)
//! is deflated here and inflated once on first use: cold text, paid for in flash once.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

/// The languages, as `Lang::ALL` in `src/i18n.rs` lists them.
pub const LANGS: [&str; 10] = [
    "en", "de", "fr", "es", "it", "pt-BR", "ru", "tr", "zh-CN", "ar",
];

/// Slots a template may name (`{{$slot}}`), filled in by `src/i18n.rs`.
const SLOTS: [&str; 7] = ["lang", "dir", "style", "app", "l10n", "picker", "subnets"];

type Catalog = BTreeMap<String, String>;

fn fail(msg: String) -> ! {
    // cargo shows a build script's panic with its message: the file and the key.
    panic!("\n\n{msg}\n\n")
}

fn parse_catalog(path: &Path) -> Catalog {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| fail(format!("{}: {e}", path.display())));
    let mut out = Catalog::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once(" = ") else {
            fail(format!(
                "{}:{}: not `key = text`: {line}",
                path.display(),
                n + 1
            ))
        };
        let k = k.trim();
        if k.is_empty()
            || !k
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        {
            fail(format!(
                "{}:{}: a key is lower-case letters, digits, . _ -: {k}",
                path.display(),
                n + 1
            ));
        }
        let v = v.trim().replace("\\n", "\n");
        if out.insert(k.to_string(), v).is_some() {
            fail(format!("{}:{}: the key {k} twice", path.display(), n + 1));
        }
    }
    out
}

/// `{name}` placeholders of a text, sorted.
fn placeholders(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find('{') {
        rest = &rest[i + 1..];
        if let Some(j) = rest.find('}') {
            let name = &rest[..j];
            if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                out.insert(name.to_string());
            }
        }
    }
    out
}

/// The markup of a text: each tag's name and id, in order (translations may move it,
/// not drop or add it: the page's script finds elements by id).
fn markup(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        let Some(j) = rest.find('>') else { break };
        let tag = &rest[..j];
        let name: String = tag
            .chars()
            .take_while(|c| *c == '/' || c.is_ascii_alphanumeric())
            .collect();
        let id = tag
            .split("id=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or("");
        out.push(format!("{name}#{id}"));
    }
    out.sort();
    out
}

fn check(lang: &str, en: &Catalog, other: &Catalog) {
    let missing: Vec<&String> = en.keys().filter(|k| !other.contains_key(*k)).collect();
    let extra: Vec<&String> = other.keys().filter(|k| !en.contains_key(*k)).collect();
    if !missing.is_empty() || !extra.is_empty() {
        fail(format!(
            "i18n/{lang}.txt: missing keys {missing:?}; keys English does not have {extra:?}"
        ));
    }
    for (k, v) in en {
        let t = &other[k];
        if placeholders(v) != placeholders(t) {
            fail(format!(
                "i18n/{lang}.txt: {k} has the placeholders {:?}, English {:?}",
                placeholders(t),
                placeholders(v)
            ));
        }
        if markup(v) != markup(t) {
            fail(format!(
                "i18n/{lang}.txt: {k} has the markup {:?}, English {:?}",
                markup(t),
                markup(v)
            ));
        }
    }
}

fn deflate(bytes: &[u8]) -> Vec<u8> {
    miniz_oxide::deflate::compress_to_vec(bytes, 10)
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A gzip member (RFC 1952) of `bytes`: what a browser takes as `Content-Encoding: gzip`.
fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 255];
    out.extend(deflate(bytes));
    out.extend(crc32(bytes).to_le_bytes());
    out.extend((bytes.len() as u32).to_le_bytes());
    out
}

/// Eight hex digits of FNV-1a 64 of the bytes: the version in an asset's name.
fn version(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{:08x}", h >> 32)
}

fn js_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '<' => out.push_str("\\u003c"),
            c if (c as u32) < 0x20 => write!(out, "\\u{:04x}", c as u32).unwrap_or(()),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Expands `{{>name}}` includes and turns `{{key}}` into `{{#index}}` of the server
/// table; `{{$slot}}` stays for run time.
fn template(web: &Path, name: &str, text: &str, index: &BTreeMap<&str, usize>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        rest = &rest[i + 2..];
        let Some(j) = rest.find("}}") else {
            fail(format!("src/web/{name}: an unclosed {{{{"))
        };
        let inner = rest[..j].trim();
        rest = &rest[j + 2..];
        if let Some(part) = inner.strip_prefix('>') {
            let file = format!("_{part}.html");
            let sub = std::fs::read_to_string(web.join(&file))
                .unwrap_or_else(|e| fail(format!("src/web/{name}: {{{{>{part}}}}}: {e}")));
            out.push_str(&template(web, &file, &sub, index));
        } else if let Some(slot) = inner.strip_prefix('$') {
            if !SLOTS.contains(&slot) {
                fail(format!(
                    "src/web/{name}: no slot {{{{${slot}}}}} (there are {SLOTS:?})"
                ));
            }
            write!(out, "{{{{${slot}}}}}").unwrap_or(());
        } else {
            let Some(n) = index.get(inner) else {
                fail(format!(
                    "src/web/{name}: no catalogue text for {{{{{inner}}}}} in i18n/en.txt"
                ))
            };
            write!(out, "{{{{#{n}}}}}").unwrap_or(());
        }
    }
    out.push_str(rest);
    out
}

/// The keys `app.js` reads with `t("key")`.
fn js_keys(js: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in js.match_indices("t(\"") {
        // `t(` itself, not the end of another name (`createElement("a")`).
        let before = js[..i].chars().next_back().unwrap_or(' ');
        if before.is_ascii_alphanumeric() || "_$.".contains(before) {
            continue;
        }
        if let Some(k) = js[i + 3..].split('"').next().filter(|k| !k.is_empty()) {
            out.insert(k.to_string());
        }
    }
    out
}

fn const_name(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

pub fn build(out_dir: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let i18n = root.join("i18n");
    let web = root.join("src/web");
    println!("cargo:rerun-if-changed=i18n");
    println!("cargo:rerun-if-changed=src/web");

    let en = parse_catalog(&i18n.join("en.txt"));
    let mut catalogs: Vec<Option<Catalog>> = Vec::new();
    for lang in LANGS {
        let p = i18n.join(format!("{lang}.txt"));
        if !p.exists() {
            catalogs.push(None);
            continue;
        }
        let c = parse_catalog(&p);
        check(lang, &en, &c);
        catalogs.push(Some(c));
    }
    for e in std::fs::read_dir(&i18n).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if let Some(stem) = name.strip_suffix(".txt") {
            if !LANGS.contains(&stem) {
                fail(format!("i18n/{name}: not one of the languages {LANGS:?}"));
            }
        }
    }

    // The server's table: every key but those only the page script reads (`js.`).
    let server_keys: Vec<&str> = en
        .keys()
        .map(String::as_str)
        .filter(|k| !k.starts_with("js."))
        .collect();
    let index: BTreeMap<&str, usize> = server_keys
        .iter()
        .enumerate()
        .map(|(i, k)| (*k, i))
        .collect();

    let app_js = std::fs::read_to_string(web.join("app.js"))
        .unwrap_or_else(|e| fail(format!("app.js: {e}")));
    let jk = js_keys(&app_js);
    for k in &jk {
        if !en.contains_key(k) {
            fail(format!(
                "src/web/app.js: t(\"{k}\") has no text in i18n/en.txt"
            ));
        }
    }
    for k in en.keys().filter(|k| k.starts_with("js.")) {
        if !jk.contains(k) {
            fail(format!(
                "i18n/en.txt: {k} is not read by app.js (t(\"{k}\")): remove it"
            ));
        }
    }

    let mut gen = String::new();
    gen.push_str("// Generated by build.rs (build/i18n.rs) from i18n/*.txt and src/web/.\n");
    gen.push_str("/// The server's catalogue keys.\npub mod k {\n");
    for (i, k) in server_keys.iter().enumerate() {
        writeln!(
            gen,
            "    pub const {}: super::Key = super::Key({i});",
            const_name(k)
        )
        .unwrap_or(());
    }
    gen.push_str("}\n");
    writeln!(gen, "pub const KEYS: usize = {};", server_keys.len()).unwrap_or(());

    // Per language: the server table (deflated, texts joined by NUL) and the page
    // script's table (gzipped script).
    let mut present = Vec::new();
    let mut tables = Vec::new();
    let mut scripts = Vec::new();
    let mut raw_total = 0usize;
    let mut packed_total = 0usize;
    for (lang, cat) in LANGS.iter().zip(&catalogs) {
        let Some(cat) = cat else {
            present.push("false".to_string());
            tables.push("&[]".to_string());
            scripts.push("(\"\", &[])".to_string());
            continue;
        };
        present.push("true".to_string());
        let joined = server_keys
            .iter()
            .map(|k| cat[*k].as_str())
            .collect::<Vec<_>>()
            .join("\0");
        let packed = deflate(joined.as_bytes());
        raw_total += joined.len();
        packed_total += packed.len();
        let file = out_dir.join(format!("i18n-{lang}.bin"));
        std::fs::write(&file, &packed).unwrap_or_else(|e| fail(format!("{e}")));
        tables.push(format!("include_bytes!({:?})", file.display().to_string()));

        let mut js = String::from("\"use strict\";self.L={");
        for (n, k) in jk.iter().enumerate() {
            if n > 0 {
                js.push(',');
            }
            write!(js, "{}:{}", js_string(k), js_string(&cat[k])).unwrap_or(());
        }
        js.push_str("};\n");
        let gz = gzip(js.as_bytes());
        raw_total += js.len();
        packed_total += gz.len();
        let file = out_dir.join(format!("l10n-{lang}.js.gz"));
        std::fs::write(&file, &gz).unwrap_or_else(|e| fail(format!("{e}")));
        let path = format!("/static/l10n.{}.{lang}.js", version(js.as_bytes()));
        scripts.push(format!(
            "({path:?}, include_bytes!({:?}))",
            file.display().to_string()
        ));
    }
    writeln!(
        gen,
        "pub const PRESENT: [bool; 10] = [{}];",
        present.join(", ")
    )
    .unwrap_or(());
    writeln!(
        gen,
        "pub static TABLES: [&[u8]; 10] = [{}];",
        tables.join(", ")
    )
    .unwrap_or(());
    writeln!(
        gen,
        "pub static L10N: [(&str, &[u8]); 10] = [{}];",
        scripts.join(", ")
    )
    .unwrap_or(());

    // The pages: every `*.html` but the partials (`_*.html`), each after the shared
    // head, as one deflated blob with the offsets of each.
    let head = std::fs::read_to_string(web.join("head.html"))
        .unwrap_or_else(|e| fail(format!("head.html: {e}")));
    let mut names: Vec<String> = std::fs::read_dir(&web)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".html") && !n.starts_with('_') && n != "head.html")
        .collect();
    names.sort();
    let mut blob = String::new();
    gen.push_str("/// The pages, by file name.\npub mod page {\n");
    let mut spans = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let text =
            std::fs::read_to_string(web.join(n)).unwrap_or_else(|e| fail(format!("{n}: {e}")));
        let t = template(&web, n, &format!("{head}{text}"), &index);
        let start = blob.len();
        blob.push_str(&t);
        spans.push(format!("({start}, {})", blob.len()));
        let stem = n.trim_end_matches(".html");
        writeln!(
            gen,
            "    pub const {}: super::Page = super::Page({i});",
            const_name(stem)
        )
        .unwrap_or(());
    }
    gen.push_str("}\n");
    writeln!(gen, "pub const PAGES: usize = {};", names.len()).unwrap_or(());
    writeln!(
        gen,
        "pub static PAGE_SPANS: [(usize, usize); {}] = [{}];",
        names.len(),
        spans.join(", ")
    )
    .unwrap_or(());
    let packed = deflate(blob.as_bytes());
    raw_total += blob.len();
    packed_total += packed.len();
    let file = out_dir.join("pages.bin");
    std::fs::write(&file, &packed).unwrap_or_else(|e| fail(format!("{e}")));
    writeln!(
        gen,
        "pub static PAGES_BLOB: &[u8] = include_bytes!({:?});",
        file.display().to_string()
    )
    .unwrap_or(());

    // The static assets, gzipped and versioned.
    for (name, file, ext) in [
        ("APP_JS", "app.js", "js"),
        ("STYLE_CSS", "style.css", "css"),
    ] {
        let bytes = std::fs::read(web.join(file)).unwrap_or_else(|e| fail(format!("{file}: {e}")));
        let gz = gzip(&bytes);
        raw_total += bytes.len();
        packed_total += gz.len();
        let out = out_dir.join(format!("{file}.gz"));
        std::fs::write(&out, &gz).unwrap_or_else(|e| fail(format!("{e}")));
        let stem = file.trim_end_matches(&format!(".{ext}"));
        writeln!(
            gen,
            "pub const {name}_PATH: &str = \"/static/{stem}.{}.{ext}\";",
            version(&bytes)
        )
        .unwrap_or(());
        writeln!(
            gen,
            "pub static {name}_GZ: &[u8] = include_bytes!({:?});",
            out.display().to_string()
        )
        .unwrap_or(());
    }
    writeln!(gen, "/// Bytes of the UI and the catalogues before and after packing (build report).\npub const PACKED: (usize, usize) = ({raw_total}, {packed_total});").unwrap_or(());
    std::fs::write(out_dir.join("i18n_gen.rs"), gen).unwrap_or_else(|e| fail(format!("{e}")));
}
