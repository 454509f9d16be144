//! Turning an input row into a change, or into the reason it cannot be one.
//! Shared by `run`, `run --dry-run` and `validate`, so all three judge a row
//! the same way.

use std::collections::HashMap;

use crate::change::{Change, Invalid, VendorId};
use crate::config::Config;
use crate::input::{Fields, Header, InputRow};
use crate::vendors::Adapter;

/// The vendor accounts as the planner needs them: name → id and adapter.
pub struct Router<'a> {
    names: Vec<&'a str>,
    by_name: HashMap<&'a str, VendorId>,
    adapters: Vec<&'a dyn Adapter>,
}

/// Why a row is invalid, with the vendor when the row got as far as naming one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub vendor: Option<VendorId>,
    pub invalid: Invalid,
}

impl<'a> Router<'a> {
    /// The router of a config's vendor tables, each with the adapter built
    /// for it (`vendors::build::adapters`, in the config's order).
    pub fn of(config: &'a Config, adapters: &'a [Box<dyn Adapter>]) -> Self {
        Router::new(
            config
                .vendors
                .iter()
                .map(|(v, _)| v.name.as_str())
                .zip(adapters.iter().map(|a| &**a)),
        )
    }

    pub fn new(vendors: impl IntoIterator<Item = (&'a str, &'a dyn Adapter)>) -> Self {
        let mut names = Vec::new();
        let mut adapters = Vec::new();
        let mut by_name = HashMap::new();
        for (i, (name, adapter)) in vendors.into_iter().enumerate() {
            by_name.insert(name, i as VendorId);
            names.push(name);
            adapters.push(adapter);
        }
        Router {
            names,
            by_name,
            adapters,
        }
    }

    pub fn name(&self, id: VendorId) -> &str {
        self.names.get(usize::from(id)).copied().unwrap_or("?")
    }

    fn route(&self, name: &str) -> Result<VendorId, Invalid> {
        if let Some(id) = self.by_name.get(name) {
            return Ok(*id);
        }
        if name.is_empty() {
            return Err(Invalid::new(
                "vendor",
                format!("required: one of {}", self.names.join(", ")),
            ));
        }
        let folded: Vec<VendorId> = (0..self.names.len())
            .filter(|i| self.names[*i].eq_ignore_ascii_case(name))
            .map(|i| i as VendorId)
            .collect();
        if let [only] = folded[..] {
            return Ok(only);
        }
        Err(Invalid::new(
            "vendor",
            format!(
                "unknown vendor `{name}`; the config has: {}",
                self.names.join(", ")
            ),
        ))
    }

    /// Plans one row.
    pub fn plan(&self, header: &Header, row: &InputRow) -> Result<Change, Problem> {
        if let Some(reason) = &row.problem {
            return Err(Problem {
                vendor: None,
                invalid: Invalid::new("csv", reason.clone()),
            });
        }
        // A row whose vendor can be read counts under it, whatever else is
        // wrong with it (a cell that is not UTF-8).
        let fields = Fields::from_record(header, &row.record).map_err(|invalid| Problem {
            vendor: Fields::vendor_of(header, &row.record).and_then(|v| self.route(v).ok()),
            invalid,
        })?;
        let vendor = self.route(fields.vendor).map_err(|invalid| Problem {
            vendor: None,
            invalid,
        })?;
        let adapter = self.adapters[usize::from(vendor)];
        let planned = adapter.plan(&fields).map_err(|invalid| Problem {
            vendor: Some(vendor),
            invalid,
        })?;
        Ok(Change::new(vendor, self.name(vendor), planned))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{Layout, Reader};

    #[test]
    fn a_row_whose_vendor_can_be_read_counts_under_it_whatever_else_is_wrong() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/sandbox.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let config = Config::parse(&text, &path, true).unwrap();
        let adapters = crate::vendors::build::adapters(&config).unwrap();
        let router = Router::of(&config, &adapters);
        let gate = router.route("gate").unwrap();
        let csv = b"vendor,scope,invite_id,status\ngate,ev1,a,\xff\ng\xffate,ev1,b,sent\ngaet,ev1,c,\xc3\ngate,ev1,d,bogus\n";
        let reader = Reader::from_source(&path, &csv[..], &Layout::default()).unwrap();
        let header = reader.header().clone();
        let problems: Vec<Problem> = reader
            .map(|row| router.plan(&header, &row).unwrap_err())
            .collect();
        let seen: Vec<(Option<VendorId>, &str)> = problems
            .iter()
            .map(|p| (p.vendor, p.invalid.field.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                (Some(gate), "status"),
                (None, "vendor"),
                (None, "status"),
                (Some(gate), "status"),
            ],
            "as a row whose status is only wrong, not unreadable"
        );
        assert_eq!(
            problems[1].invalid.reason,
            "not valid UTF-8: column 1 holds the byte 0xFF (at byte 2 of the cell), which UTF-8 \
             text cannot; save the file as UTF-8 (in Excel: CSV UTF-8)"
        );
        assert!(
            problems[2]
                .invalid
                .reason
                .starts_with("not valid UTF-8: column 4 holds the byte 0xC3 (at byte 1 "),
            "{}",
            problems[2].invalid
        );
    }
}
