//! Reading the parsed TOML table into [`super::file`]'s structs by hand: a getter per
//! value type, each key's default given where it is read, every key read remembered so
//! that the ones nobody read are reported as unknown — all of them at once, with their
//! paths (`server.colour`, `directory.radius[1].port`). A value of the wrong type is a
//! problem naming its key and line. (serde's derive did this with ~100 KB of visitor
//! code per build target; this is a few.)

use std::cell::RefCell;
use std::path::PathBuf;

use toml::{Table, Value};

use super::Problem;

/// One table of the file being read.
pub struct Reader<'a> {
    table: Option<&'a Table>,
    /// `""` for the file, `server`, `directory.radius[1]`.
    path: String,
    /// Where the table is in the text: its name and, in an array of tables, which one.
    at: (String, Option<usize>),
    text: &'a str,
    seen: RefCell<Vec<&'a str>>,
    problems: &'a RefCell<Vec<Problem>>,
}

fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("string {s:?}"),
        Value::Integer(i) => format!("integer {i}"),
        Value::Float(f) => format!("floating point {f}"),
        Value::Boolean(b) => format!("boolean {b}"),
        Value::Datetime(d) => format!("date {d}"),
        Value::Array(_) => "an array".into(),
        Value::Table(_) => "a table".into(),
    }
}

impl<'a> Reader<'a> {
    pub fn new(table: &'a Table, text: &'a str, problems: &'a RefCell<Vec<Problem>>) -> Self {
        Reader {
            table: Some(table),
            path: String::new(),
            at: (String::new(), None),
            text,
            seen: RefCell::new(Vec::new()),
            problems,
        }
    }

    fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The value of `key`, remembered as read.
    fn get(&self, key: &'static str) -> Option<&'a Value> {
        self.seen.borrow_mut().push(key);
        self.table.and_then(|t| t.get(key))
    }

    /// The line `key = ...` is on in this table, if it is written so.
    fn line(&self, key: &str) -> Option<usize> {
        let (name, index) = &self.at;
        let mut current = String::new();
        let mut count = std::collections::HashMap::<String, usize>::new();
        for (n, line) in self.text.lines().enumerate() {
            let t = line.trim();
            if let Some(h) = t.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
                current = h.trim().to_string();
                *count.entry(current.clone()).or_default() += 1;
            } else if let Some(h) = t.strip_prefix('[').and_then(|r| r.split(']').next()) {
                current = h.trim().to_string();
            } else if let Some((k, _)) = t.split_once('=') {
                let which = count.get(&current).map(|c| c - 1);
                if current == *name
                    && (index.is_none() || which == *index)
                    && k.trim().trim_matches('"') == key
                {
                    return Some(n + 1);
                }
            }
        }
        None
    }

    fn bad(&self, key: &str, v: &Value, expected: &str) {
        let at = match self.line(key) {
            Some(l) => format!("{} (line {l})", self.key_path(key)),
            None => self.key_path(key),
        };
        self.problems.borrow_mut().push(Problem {
            key: at,
            message: format!("invalid type: {}, expected {expected}", describe(v)),
        });
    }

    pub fn string(&self, key: &'static str, default: String) -> String {
        self.opt_string(key).unwrap_or(default)
    }

    pub fn opt_string(&self, key: &'static str) -> Option<String> {
        match self.get(key)? {
            Value::String(s) => Some(s.clone()),
            v => {
                self.bad(key, v, "a string");
                None
            }
        }
    }

    pub fn path(&self, key: &'static str, default: PathBuf) -> PathBuf {
        self.opt_path(key).unwrap_or(default)
    }

    pub fn opt_path(&self, key: &'static str) -> Option<PathBuf> {
        self.opt_string(key).map(PathBuf::from)
    }

    pub fn u64(&self, key: &'static str, default: u64) -> u64 {
        match self.get(key) {
            None => default,
            Some(Value::Integer(i)) if *i >= 0 => *i as u64,
            Some(v) => {
                self.bad(key, v, "a whole number, 0 or more");
                default
            }
        }
    }

    pub fn bool(&self, key: &'static str, default: bool) -> bool {
        match self.get(key) {
            None => default,
            Some(Value::Boolean(b)) => *b,
            Some(v) => {
                self.bad(key, v, "true or false");
                default
            }
        }
    }

    pub fn strings(&self, key: &'static str, default: Vec<String>) -> Vec<String> {
        self.opt_strings(key).unwrap_or(default)
    }

    pub fn opt_strings(&self, key: &'static str) -> Option<Vec<String>> {
        match self.get(key)? {
            Value::Array(items) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) => out.push(s.clone()),
                        v => self.bad(&format!("{key}[{i}]"), v, "a string"),
                    }
                }
                Some(out)
            }
            v => {
                self.bad(key, v, "a list of strings");
                None
            }
        }
    }

    pub fn paths(&self, key: &'static str) -> Vec<PathBuf> {
        self.strings(key, Vec::new())
            .into_iter()
            .map(PathBuf::from)
            .collect()
    }

    fn sub(&self, key: &str, table: Option<&'a Table>, index: Option<usize>) -> Reader<'a> {
        let name = self.key_path(key);
        Reader {
            table,
            path: match index {
                Some(i) => format!("{name}[{i}]"),
                None => name.clone(),
            },
            at: (name, index),
            text: self.text,
            seen: RefCell::new(Vec::new()),
            problems: self.problems,
        }
    }

    /// The table `key` read by `read` (absent: read from nothing, every default).
    pub fn section<T>(&self, key: &'static str, read: impl FnOnce(&Reader<'a>) -> T) -> T {
        let table = match self.get(key) {
            Some(Value::Table(t)) => Some(t),
            Some(v) => {
                self.bad(key, v, "a table");
                None
            }
            None => None,
        };
        self.sub(key, table, None).read_all(read)
    }

    /// The table `key` if the file has it.
    pub fn opt_section<T>(
        &self,
        key: &'static str,
        read: impl FnOnce(&Reader<'a>) -> T,
    ) -> Option<T> {
        match self.get(key)? {
            Value::Table(t) => Some(self.sub(key, Some(t), None).read_all(read)),
            v => {
                self.bad(key, v, "a table");
                None
            }
        }
    }

    /// Each table of the array of tables `key` (`[[key]]`).
    pub fn sections<T>(&self, key: &'static str, read: impl Fn(&Reader<'a>) -> T) -> Vec<T> {
        match self.get(key) {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| match item {
                    Value::Table(t) => Some(self.sub(key, Some(t), Some(i)).read_all(&read)),
                    v => {
                        self.bad(&format!("{key}[{i}]"), v, "a table");
                        None
                    }
                })
                .collect(),
            Some(v) => {
                self.bad(key, v, "tables ([[...]])");
                Vec::new()
            }
        }
    }

    /// `read`, then every key of this table it did not read reported as unknown.
    pub fn read_all<T>(self, read: impl FnOnce(&Reader<'a>) -> T) -> T {
        let out = read(&self);
        if let Some(t) = self.table {
            let seen = self.seen.borrow();
            for k in t.keys() {
                if !seen.contains(&k.as_str()) {
                    self.problems.borrow_mut().push(Problem {
                        key: self.key_path(k),
                        message: "unknown key".into(),
                    });
                }
            }
        }
        out
    }
}
