//! Languages: the ten the pages, API messages and mails speak, which one a request
//! gets, the catalogues (checked and packed by `build/i18n.rs`, inflated once on first
//! use) and the pages rendered from their templates (once per page and language).
//!
//! Which language: the `pbx_lang` cookie (the picker on every page sets it; signing in
//! sets it to the account's choice), else the browser's `Accept-Language`, else the
//! box's `i18n.default`. Mails go in the account's own choice, else the box's default.
//! Error codes stay English; only the words around them change.

use std::sync::OnceLock;

include!(concat!(env!("OUT_DIR"), "/i18n_gen.rs"));

/// A text of the server's catalogue (`k::NAME`, generated from `i18n/en.txt`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key(pub usize);

/// A page template (`page::NAME`, generated from `src/web/NAME.html`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page(pub usize);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Lang {
    #[serde(rename = "en")]
    En,
    #[serde(rename = "de")]
    De,
    #[serde(rename = "fr")]
    Fr,
    #[serde(rename = "es")]
    Es,
    #[serde(rename = "it")]
    It,
    #[serde(rename = "pt-BR")]
    PtBr,
    #[serde(rename = "ru")]
    Ru,
    #[serde(rename = "tr")]
    Tr,
    #[serde(rename = "zh-CN")]
    ZhCn,
    #[serde(rename = "ar")]
    Ar,
}

impl Lang {
    /// In the order of the picker (and of `build/i18n.rs`'s `LANGS`).
    pub const ALL: [Lang; 10] = [
        Lang::En,
        Lang::De,
        Lang::Fr,
        Lang::Es,
        Lang::It,
        Lang::PtBr,
        Lang::Ru,
        Lang::Tr,
        Lang::ZhCn,
        Lang::Ar,
    ];

    fn index(self) -> usize {
        self as usize
    }

    /// The BCP 47 tag, as `<html lang>` and the API name it.
    pub fn code(self) -> &'static str {
        [
            "en", "de", "fr", "es", "it", "pt-BR", "ru", "tr", "zh-CN", "ar",
        ][self.index()]
    }

    /// The language's name in itself, for the picker.
    pub fn native(self) -> &'static str {
        [
            "English",
            "Deutsch",
            "Français",
            "Español",
            "Italiano",
            "Português (Brasil)",
            "Русский",
            "Türkçe",
            "简体中文",
            "العربية",
        ][self.index()]
    }

    pub fn dir(self) -> &'static str {
        if self == Lang::Ar {
            "rtl"
        } else {
            "ltr"
        }
    }

    /// Whether this firmware has the language's catalogue.
    pub fn shipped(self) -> bool {
        PRESENT[self.index()]
    }

    /// The languages this firmware speaks.
    pub fn shipped_all() -> impl Iterator<Item = Lang> {
        Lang::ALL.into_iter().filter(|l| l.shipped())
    }

    /// A tag as a browser or a config names it: `de`, `de-AT`, `pt`, `pt-BR`, `zh`,
    /// `zh-Hans-CN` (case-insensitive). Traditional Chinese (`zh-TW`, `zh-HK`,
    /// `zh-Hant`) is not Simplified Chinese: `None`.
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let tag = tag.trim().to_ascii_lowercase();
        let mut parts = tag.split(['-', '_']);
        let primary = parts.next()?;
        let rest: Vec<&str> = parts.collect();
        Some(match primary {
            "en" => Lang::En,
            "de" => Lang::De,
            "fr" => Lang::Fr,
            "es" => Lang::Es,
            "it" => Lang::It,
            "pt" => Lang::PtBr,
            "ru" => Lang::Ru,
            "tr" => Lang::Tr,
            "zh" if !rest
                .iter()
                .any(|p| matches!(*p, "tw" | "hk" | "mo" | "hant")) =>
            {
                Lang::ZhCn
            }
            "ar" => Lang::Ar,
            _ => return None,
        })
    }

    /// The best shipped language of an `Accept-Language` header (RFC 9110 §12.5.4:
    /// highest q first, the header's order among equals; q=0 means "not this").
    pub fn negotiate(accept: &str) -> Option<Lang> {
        let mut best: Option<(u32, Lang)> = None;
        for item in accept.split(',').take(32) {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or_default();
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .map_or(1000, |q| {
                    (q.trim().parse::<f32>().unwrap_or(0.0) * 1000.0) as u32
                });
            if q == 0 {
                continue;
            }
            if let Some(lang) = Lang::from_tag(tag).filter(|l| l.shipped()) {
                if best.is_none_or(|(bq, _)| q > bq) {
                    best = Some((q, lang));
                }
            }
        }
        best.map(|(_, l)| l)
    }
}

/// Inflates a blob packed by `build/i18n.rs` (raw deflate).
pub fn inflate(packed: &[u8]) -> Vec<u8> {
    // Packed at build time from our own files: a failure is a broken build.
    miniz_oxide::inflate::decompress_to_vec(packed).unwrap_or_default()
}

/// One language's server texts, split once.
struct Table {
    texts: Vec<&'static str>,
}

static TABLE_CELLS: [OnceLock<Table>; 10] = [const { OnceLock::new() }; 10];

fn table(lang: Lang) -> &'static Table {
    let lang = if lang.shipped() { lang } else { Lang::En };
    TABLE_CELLS[lang.index()].get_or_init(|| {
        let bytes = inflate(TABLES[lang.index()]);
        // Kept for the life of the process: one per language in use.
        let text: &'static str = String::from_utf8(bytes).unwrap_or_default().leak();
        let texts: Vec<&'static str> = text.split('\0').collect();
        Table { texts }
    })
}

/// The text of `key` in `lang`.
pub fn t(lang: Lang, key: Key) -> &'static str {
    table(lang).texts.get(key.0).copied().unwrap_or_default()
}

/// The text of `key` in `lang` with its `{name}` placeholders filled in.
pub fn fill(lang: Lang, key: Key, args: &[(&str, &str)]) -> String {
    // One pass: a value that happens to hold `{name}` is never filled in again.
    let text = t(lang, key);
    let mut out = String::with_capacity(text.len() + 64);
    let mut rest = text;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let value = rest[1..].find('}').and_then(|j| {
            args.iter()
                .find(|(n, _)| *n == &rest[1..=j])
                .map(|(_, v)| (j, *v))
        });
        match value {
            Some((j, v)) => {
                out.push_str(v);
                rest = &rest[j + 2..];
            }
            None => {
                out.push('{');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A sentence for a person: a catalogue text and its placeholders' values, said in the
/// language of whoever reads it (an API answer's `message`, a mail); in English where
/// it is logged (`Display`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    pub key: Key,
    pub args: Vec<(&'static str, String)>,
}

impl Msg {
    pub fn new(key: Key) -> Msg {
        Msg {
            key,
            args: Vec::new(),
        }
    }

    /// The value of the placeholder `{name}`.
    pub fn arg(mut self, name: &'static str, value: impl ToString) -> Msg {
        self.args.push((name, value.to_string()));
        self
    }

    pub fn text(&self, lang: Lang) -> String {
        let args: Vec<(&str, &str)> = self.args.iter().map(|(n, v)| (*n, v.as_str())).collect();
        fill(lang, self.key, &args)
    }
}

impl std::fmt::Display for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text(Lang::En))
    }
}

/// The page script's texts of `lang`: the versioned path and the gzipped script.
pub fn l10n_script(lang: Lang) -> (&'static str, &'static [u8]) {
    let lang = if lang.shipped() { lang } else { Lang::En };
    L10N[lang.index()]
}

/// The language whose script lives at `path` (`/static/l10n.<version>.<lang>.js`).
pub fn l10n_at(path: &str) -> Option<Lang> {
    Lang::shipped_all().find(|l| L10N[l.index()].0 == path)
}

static PAGES_TEXT: OnceLock<String> = OnceLock::new();

fn template(page: Page) -> &'static str {
    let all = PAGES_TEXT.get_or_init(|| String::from_utf8(inflate(PAGES_BLOB)).unwrap_or_default());
    let (start, end) = PAGE_SPANS[page.0];
    all.get(start..end).unwrap_or_default()
}

/// The language picker: a `<select>` of the shipped languages, `lang` chosen.
fn picker(lang: Lang) -> String {
    let mut out = String::new();
    for l in Lang::shipped_all() {
        let selected = if l == lang { " selected" } else { "" };
        out.push_str(&format!(
            "<option value=\"{}\" lang=\"{}\"{selected}>{}</option>",
            l.code(),
            l.code(),
            l.native()
        ));
    }
    out
}

fn render(page: Page, lang: Lang) -> String {
    let text = template(page);
    let mut out = String::with_capacity(text.len() * 2);
    let mut rest = text;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        rest = &rest[i + 2..];
        let Some(j) = rest.find("}}") else { break };
        let inner = &rest[..j];
        rest = &rest[j + 2..];
        if let Some(n) = inner.strip_prefix('#') {
            out.push_str(t(lang, Key(n.parse().unwrap_or(usize::MAX))));
        } else {
            match inner.strip_prefix('$').unwrap_or_default() {
                "lang" => out.push_str(lang.code()),
                "dir" => out.push_str(lang.dir()),
                "style" => out.push_str(STYLE_CSS_PATH),
                "app" => out.push_str(APP_JS_PATH),
                "l10n" => out.push_str(l10n_script(lang).0),
                "picker" => out.push_str(&picker(lang)),
                // Filled in per request (e.g. the allowed subnets).
                other => {
                    out.push_str("{{$");
                    out.push_str(other);
                    out.push_str("}}");
                }
            }
        }
    }
    out.push_str(rest);
    out
}

static RENDERED: [[OnceLock<&'static str>; 10]; PAGES] =
    [const { [const { OnceLock::new() }; 10] }; PAGES];

/// `page` in `lang`, rendered once and kept (at most every page in every language in
/// use: ~20 pages × a few KiB each).
pub fn page(page: Page, lang: Lang) -> &'static str {
    let lang = if lang.shipped() { lang } else { Lang::En };
    RENDERED[page.0][lang.index()].get_or_init(|| render(page, lang).leak())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_best_shipped_language() {
        assert_eq!(Lang::negotiate("en-US,en;q=0.9"), Some(Lang::En));
        assert_eq!(Lang::negotiate("xx, en;q=0.1"), Some(Lang::En));
        assert_eq!(Lang::negotiate("xx"), None);
        assert_eq!(Lang::negotiate("en;q=0"), None);
        assert_eq!(Lang::from_tag("pt"), Some(Lang::PtBr));
        assert_eq!(Lang::from_tag("pt-PT"), Some(Lang::PtBr));
        assert_eq!(Lang::from_tag("zh-Hans-CN"), Some(Lang::ZhCn));
        assert_eq!(Lang::from_tag("zh-TW"), None);
        assert_eq!(Lang::from_tag("de_AT"), Some(Lang::De));
        assert_eq!(Lang::from_tag("AR-eg"), Some(Lang::Ar));
    }

    #[test]
    fn every_page_renders_with_no_placeholder_left() {
        for p in 0..PAGES {
            for lang in Lang::shipped_all() {
                let html = page(Page(p), lang);
                assert!(html.starts_with("<!doctype html>"), "page {p}");
                assert!(
                    html.contains(&format!(
                        "<html lang=\"{}\" dir=\"{}\">",
                        lang.code(),
                        lang.dir()
                    )),
                    "page {p}: {html}"
                );
                let left = html.replace("{{$subnets}}", "");
                assert!(!left.contains("{{"), "page {p} {lang:?}: {left}");
            }
        }
    }

    /// The runs of a text a reader sees: markup and placeholders taken out.
    fn runs(text: &str) -> Vec<String> {
        let mut plain = String::new();
        let mut depth = 0u32;
        for c in text.chars() {
            match c {
                '<' | '{' => {
                    depth += 1;
                    plain.push('\n');
                }
                '>' | '}' => depth = depth.saturating_sub(1),
                c if depth == 0 => plain.push(c),
                _ => {}
            }
        }
        plain
            .split('\n')
            .map(|r| r.trim().trim_end_matches(['.', ':', ';', ',']).to_string())
            .filter(|r| {
                r.split_whitespace()
                    .filter(|w| w.chars().any(char::is_alphabetic))
                    .count()
                    >= 3
            })
            .collect()
    }

    /// Every page (the degraded ones and the not-local page too) in every shipped
    /// language: no English sentence of the catalogue in it. (The pages' script texts
    /// are checked in Chromium: e2e `ui::every_page_in_every_language_has_no_english_left`.)
    #[test]
    fn every_page_in_every_language_has_no_english_sentence() {
        let english: Vec<String> = table(Lang::En).texts.iter().flat_map(|t| runs(t)).collect();
        assert!(english.len() > 150, "{}", english.len());
        let mut left = Vec::new();
        for p in 0..PAGES {
            for lang in Lang::shipped_all().filter(|l| *l != Lang::En) {
                let html = page(Page(p), lang);
                for e in &english {
                    if html.contains(e.as_str()) {
                        left.push(format!("page {p} {lang:?}: {e:?}"));
                    }
                }
            }
        }
        assert!(left.is_empty(), "{left:#?}");
    }

    #[test]
    fn placeholders_are_filled_once() {
        let m = Msg::new(k::MSG_ACCOUNT_EXISTS).arg("user", "{user}");
        assert_eq!(m.to_string(), "The account \"{user}\" already exists.");
    }

    #[test]
    fn packed_blobs_inflate() {
        for lang in Lang::shipped_all() {
            assert_eq!(table(lang).texts.len(), KEYS, "{lang:?}");
            let gz = l10n_script(lang).1;
            assert_eq!(&gz[..2], &[0x1f, 0x8b]);
        }
        assert_eq!(&APP_JS_GZ[..2], &[0x1f, 0x8b]);
    }
}
