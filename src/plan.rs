//! Turning an input row into a change, or into the reason it cannot be one.
//! Shared by `run`, `run --dry-run` and `validate`, so all three judge a row
//! the same way.

use std::collections::HashMap;

use crate::change::{Change, Invalid, VendorId};
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
        let fields = Fields::from_record(header, &row.record).map_err(|invalid| Problem {
            vendor: None,
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
