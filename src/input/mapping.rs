//! How an input is laid out: the byte between its fields, which of its
//! columns holds each column invitesync reads (another system's export
//! names them its own way), and a vendor fixed for every row of a file that
//! has no vendor column. Given by `[input]` in the config and by
//! `--delimiter`, `--column` and `--vendor`, the command line winning.
//!
//! A run records its layout with its options: the layout decides which
//! records are rows (a quoted line break in a column invitesync reads
//! breaks a row), so a resume and `export` read the input the same way.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Compression, Header, KNOWN_COLUMNS, shown};

/// `[input]` in the config, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInputConfig {
    delimiter: Option<String>,
    vendor: Option<String>,
    #[serde(default)]
    columns: BTreeMap<String, String>,
}

/// `[input]`, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InputConfig {
    pub delimiter: Option<u8>,
    pub vendor: Option<String>,
    /// (index in [`KNOWN_COLUMNS`], the file's header name).
    pub columns: Vec<(usize, String)>,
}

impl RawInputConfig {
    /// Checks the table; errors name the key (`input.columns.emial: ...`).
    pub fn check(self) -> Result<InputConfig, String> {
        let delimiter = self
            .delimiter
            .as_deref()
            .map(parse_delimiter)
            .transpose()
            .map_err(|e| format!("input.delimiter: {e}"))?;
        let vendor = match self.vendor {
            Some(v) if v.trim().is_empty() => {
                return Err("input.vendor: must name a vendor of [vendors.NAME]".into());
            }
            v => v.map(|v| v.trim().to_string()),
        };
        let mut columns = Vec::new();
        for (name, header) in self.columns {
            let (k, header) = column(&name, &header)
                .map_err(|e| format!("input.columns.{}: {e}", shown(&name)))?;
            columns.push((k, header));
        }
        Ok(InputConfig {
            delimiter,
            vendor,
            columns,
        })
    }
}

/// What the command line says about the input's layout.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InputFlags {
    pub delimiter: Option<u8>,
    /// `--column NAME=HEADER`, in order.
    pub columns: Vec<(usize, String)>,
    pub vendor: Option<String>,
}

/// Where a setting of the layout came from, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Given {
    Flag,
    Config,
}

/// The layout an input is read with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub delimiter: u8,
    /// For each of [`KNOWN_COLUMNS`], the file's header name holding it,
    /// when it is not the column's own name.
    pub columns: [Option<(String, Given)>; 9],
    /// The vendor of every row, when the file has no vendor column.
    pub vendor: Option<(String, Given)>,
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            delimiter: b',',
            columns: Default::default(),
            vendor: None,
        }
    }
}

/// `;`, `|`, `tab` or `\t`: one byte, never a quote or a line end.
pub fn parse_delimiter(text: &str) -> Result<u8, String> {
    let byte = match text {
        "tab" | "\\t" | "\t" => b'\t',
        t if t.len() == 1 => t.as_bytes()[0],
        _ => {
            return Err(format!(
                "`{}` is not one byte; write e.g. `;`, `|`, `tab` (or `\\t`)",
                shown(text)
            ));
        }
    };
    if matches!(byte, b'"' | b'\r' | b'\n') {
        return Err("a quote or a line end cannot separate fields".into());
    }
    Ok(byte)
}

/// `NAME=HEADER` as `--column` takes it.
pub fn parse_column_flag(text: &str) -> Result<(usize, String), String> {
    let (name, header) = text.split_once('=').ok_or_else(|| {
        format!(
            "`{}`: write NAME=HEADER, e.g. email=\"Email Address\"",
            shown(text)
        )
    })?;
    column(name, header)
}

/// One mapping: a column invitesync reads, and a header name.
fn column(name: &str, header: &str) -> Result<(usize, String), String> {
    let key = name.trim().to_ascii_lowercase();
    let k = KNOWN_COLUMNS
        .iter()
        .position(|c| *c == key)
        .ok_or_else(|| {
            format!(
                "`{}` is not a column invitesync reads; one of {}",
                shown(name),
                KNOWN_COLUMNS.join(", ")
            )
        })?;
    let header = header.trim();
    if header.is_empty() {
        return Err(format!("`{key}` needs the file's column name after `=`"));
    }
    Ok((k, header.to_string()))
}

/// How a delimiter is written on the command line.
pub fn delimiter_flag(d: u8) -> String {
    match d {
        b'\t' => "tab".to_string(),
        d => format!("'{}'", char::from(d).escape_default()),
    }
}

impl Layout {
    /// The config's `[input]` with the command line's flags over it; a fixed
    /// vendor must be one of `vendors` (the config's names).
    pub fn resolve(
        config: &InputConfig,
        flags: &InputFlags,
        vendors: &[&str],
    ) -> Result<Layout, String> {
        let mut layout = Layout::default();
        if let Some(d) = flags.delimiter.or(config.delimiter) {
            layout.delimiter = d;
        }
        for (k, header) in &config.columns {
            layout.columns[*k] = Some((header.clone(), Given::Config));
        }
        for (k, header) in &flags.columns {
            layout.columns[*k] = Some((header.clone(), Given::Flag));
        }
        let vendor = match (&flags.vendor, &config.vendor) {
            (Some(v), _) => Some((v.clone(), Given::Flag)),
            (None, Some(v)) => Some((v.clone(), Given::Config)),
            (None, None) => None,
        };
        if let Some((v, from)) = vendor {
            let found: Vec<&&str> = vendors
                .iter()
                .filter(|n| n.eq_ignore_ascii_case(&v))
                .collect();
            let name = match found[..] {
                [one] => one.to_string(),
                _ => vendors
                    .iter()
                    .find(|n| **n == v)
                    .map(|n| n.to_string())
                    .ok_or_else(|| {
                        format!(
                            "{}: no vendor `{}` in the config; it has: {}",
                            from.vendor_key(),
                            shown(&v),
                            vendors.join(", ")
                        )
                    })?,
            };
            layout.vendor = Some((name, from));
        }
        Ok(layout)
    }

    /// The layout as a run records it: `None` for the default one, so that
    /// runs of plain files record what they always did.
    pub fn to_json(&self) -> Option<serde_json::Value> {
        if *self == Layout::default() {
            return None;
        }
        let mut doc = serde_json::Map::new();
        if self.delimiter != b',' {
            doc.insert(
                "delimiter".into(),
                char::from(self.delimiter).to_string().into(),
            );
        }
        let columns: serde_json::Map<String, serde_json::Value> = self
            .columns
            .iter()
            .enumerate()
            .filter_map(|(k, c)| {
                c.as_ref()
                    .map(|(h, _)| (KNOWN_COLUMNS[k].to_string(), h.clone().into()))
            })
            .collect();
        if !columns.is_empty() {
            doc.insert("columns".into(), columns.into());
        }
        if let Some((v, _)) = &self.vendor {
            doc.insert("vendor".into(), v.clone().into());
        }
        Some(doc.into())
    }

    /// The layout a run recorded with [`Layout::to_json`] (`None`: the default).
    pub fn from_json(doc: Option<&serde_json::Value>) -> Layout {
        let mut layout = Layout::default();
        let Some(doc) = doc else {
            return layout;
        };
        if let Some(d) = doc.get("delimiter").and_then(|d| d.as_str()) {
            layout.delimiter = d.bytes().next().unwrap_or(b',');
        }
        if let Some(cols) = doc.get("columns").and_then(|c| c.as_object()) {
            for (name, header) in cols {
                if let (Some(k), Some(h)) = (
                    KNOWN_COLUMNS.iter().position(|c| c == name),
                    header.as_str(),
                ) {
                    layout.columns[k] = Some((h.to_string(), Given::Flag));
                }
            }
        }
        if let Some(v) = doc.get("vendor").and_then(|v| v.as_str()) {
            layout.vendor = Some((v.to_string(), Given::Flag));
        }
        layout
    }

    /// The flags that give a recorded layout: `--delimiter ';' --column
    /// email='Email Address' --vendor gate`.
    pub fn flags_of(doc: &serde_json::Value) -> Vec<String> {
        let layout = Layout::from_json(Some(doc));
        let mut flags = Vec::new();
        if layout.delimiter != b',' {
            flags.push(format!("--delimiter {}", delimiter_flag(layout.delimiter)));
        }
        for (k, c) in layout.columns.iter().enumerate() {
            if let Some((h, _)) = c {
                flags.push(format!("--column {}='{h}'", KNOWN_COLUMNS[k]));
            }
        }
        if let Some((v, _)) = &layout.vendor {
            flags.push(format!("--vendor {v}"));
        }
        flags
    }
}

/// Which of the file's columns holds each column invitesync reads, for
/// `validate` to show before the rows:
///
/// ```text
/// reading export.csv.gz (gzip), fields separated by `;`:
///   vendor     gate for every row (--vendor)
///   invite_id  column 1, `Invitation ID` (--column)
///   email      column 3, `email`
///   not in the file: first_name, last_name, sender_id, roles
///   copied to the results only: Owner
/// ```
pub fn describe(name: &str, header: &Header, layout: &Layout, compression: Compression) -> String {
    use std::fmt::Write as _;
    let packed = match compression {
        Compression::None => String::new(),
        c => format!(" ({})", c.name()),
    };
    let d = match layout.delimiter {
        b'\t' => "tabs".to_string(),
        d => format!("`{}`", shown(&char::from(d).to_string())),
    };
    let mut s = format!("reading {name}{packed}, fields separated by {d}:\n");
    let cell = |i: usize| shown(&String::from_utf8_lossy(&header.record[i])).into_owned();
    let mut absent = Vec::new();
    for (k, col) in KNOWN_COLUMNS.iter().enumerate() {
        let how = |given: Given| match given {
            Given::Flag if k == 0 => " (--vendor)",
            Given::Config if k == 0 => " ([input] vendor)",
            Given::Flag => " (--column)",
            Given::Config => " ([input.columns])",
        };
        let line = match (k, &layout.vendor, header.known[k]) {
            (0, Some((v, given)), at) => {
                let also = at
                    .map(|i| {
                        format!(
                            "; column {}, `{}`, must be empty or the same",
                            i + 1,
                            cell(i)
                        )
                    })
                    .unwrap_or_default();
                format!("{} for every row{}{also}", shown(v), how(*given))
            }
            (_, _, Some(i)) => {
                let from = layout.columns[k].as_ref().map_or("", |(_, g)| how(*g));
                format!("column {}, `{}`{from}", i + 1, cell(i))
            }
            (_, _, None) => {
                let keys: Vec<Vec<u8>> =
                    header.record.iter().map(super::header::name_key).collect();
                match super::header::taken_by_mapping(&keys, &header.known, layout, col) {
                    // Its own column was given to another: not "not in the file".
                    Some(taken) => format!(
                        "not read: column {}, `{}`, is {taken}",
                        taken.at + 1,
                        cell(taken.at)
                    ),
                    None => {
                        absent.push(*col);
                        continue;
                    }
                }
            }
        };
        let _ = writeln!(s, "  {col:<10} {line}");
    }
    if !absent.is_empty() {
        let _ = writeln!(s, "  not in the file: {}", absent.join(", "));
    }
    let carried: Vec<String> = (0..header.record.len())
        .filter(|i| !header.known.contains(&Some(*i)))
        .map(cell)
        .collect();
    if !carried.is_empty() {
        let _ = writeln!(s, "  copied to the results only: {}", carried.join(", "));
    }
    s.push('\n');
    s
}

impl Given {
    fn vendor_key(self) -> &'static str {
        match self {
            Given::Flag => "--vendor",
            Given::Config => "[input] vendor",
        }
    }

    /// The mapping of `column` to `header` as it was given, for messages:
    /// `--column email=Mail`, `[input.columns] email = "Mail"`.
    pub fn mapping(self, column: &str, header: &str) -> String {
        match self {
            Given::Flag => format!("--column {column}={}", shown(header)),
            Given::Config => format!("[input.columns] {column} = \"{}\"", shown(header)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiters_are_one_byte() {
        assert_eq!(parse_delimiter(";"), Ok(b';'));
        assert_eq!(parse_delimiter("tab"), Ok(b'\t'));
        assert_eq!(parse_delimiter("\\t"), Ok(b'\t'));
        assert_eq!(parse_delimiter("|"), Ok(b'|'));
        assert!(parse_delimiter(";;").is_err());
        assert!(parse_delimiter("\"").is_err());
        assert!(parse_delimiter("§").is_err());
    }

    #[test]
    fn the_command_line_wins_and_the_layout_round_trips() {
        let config = RawInputConfig {
            delimiter: Some("tab".into()),
            vendor: Some("gate".into()),
            columns: [
                ("email".to_string(), "Mail".to_string()),
                ("Scope".to_string(), "Event".to_string()),
            ]
            .into(),
        }
        .check()
        .unwrap();
        let flags = InputFlags {
            delimiter: Some(b';'),
            columns: vec![parse_column_flag("email = Email Address").unwrap()],
            vendor: None,
        };
        let l = Layout::resolve(&config, &flags, &["gate", "hub"]).unwrap();
        assert_eq!(l.delimiter, b';');
        assert_eq!(l.columns[3], Some(("Email Address".into(), Given::Flag)));
        assert_eq!(l.columns[1], Some(("Event".into(), Given::Config)));
        assert_eq!(l.vendor, Some(("gate".into(), Given::Config)));
        let back = Layout::from_json(l.to_json().as_ref());
        assert_eq!(back.to_json(), l.to_json());
        assert_eq!(
            Layout::flags_of(&l.to_json().unwrap()),
            [
                "--delimiter ';'",
                "--column scope='Event'",
                "--column email='Email Address'",
                "--vendor gate"
            ]
        );
        assert_eq!(Layout::default().to_json(), None);
        let e = Layout::resolve(
            &InputConfig::default(),
            &InputFlags {
                vendor: Some("gaet".into()),
                ..InputFlags::default()
            },
            &["gate"],
        )
        .unwrap_err();
        assert!(e.starts_with("--vendor: no vendor `gaet`"), "{e}");
        let e = RawInputConfig {
            columns: [("emial".to_string(), "x".to_string())].into(),
            ..RawInputConfig::default()
        }
        .check()
        .unwrap_err();
        assert!(
            e.starts_with("input.columns.emial: `emial` is not a column"),
            "{e}"
        );
    }

    #[test]
    fn a_column_given_to_another_is_shown_as_not_read() {
        let flags = InputFlags {
            columns: vec![parse_column_flag("scope=email").unwrap()],
            ..InputFlags::default()
        };
        let l = Layout::resolve(&InputConfig::default(), &flags, &["gate"]).unwrap();
        let record = csv::ByteRecord::from(vec!["vendor", "email", "status"]);
        let h = Header::parse(std::path::Path::new("a.csv"), 1, record, &l).unwrap();
        let d = describe("a.csv", &h, &l, Compression::None);
        assert!(
            d.contains(
                "  email      not read: column 2, `email`, is mapped to scope (--column scope=email)\n"
            ),
            "{d}"
        );
        assert!(d.contains("not in the file: invite_id,"), "{d}");
        assert!(!d.contains("email,") && !d.ends_with("email\n"), "{d}");
    }
}
