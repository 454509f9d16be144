//! The fault knobs of a whole sandbox: global ones, and per vendor kind ones
//! that override them (see `sim/faults.rs` for what each knob does).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::sim::faults::{Effective, Faults};
use crate::vendors::Kind;

/// All knobs: `POST /_sandbox/faults` takes this and replaces the previous
/// settings entirely, e.g. `{"global":{"latency_ms":5},"vendors":{"securegate":{"rate_limit":200}}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultSettings {
    pub global: Faults,
    pub vendors: BTreeMap<Kind, Faults>,
}

impl FaultSettings {
    /// Applies `--fault [KIND.]KEY=VALUE`; without `KIND.` the knob is global.
    pub fn apply(&mut self, spec: &str) -> Result<(), String> {
        let (lhs, value) = spec.split_once('=').ok_or_else(|| {
            format!("`{spec}`: write a fault as [KIND.]KEY=VALUE, e.g. securegate.rate_limit=200")
        })?;
        let lhs = lhs.trim();
        match lhs.split_once('.') {
            Some((kind, key)) => {
                let kind = Kind::parse(kind).ok_or_else(|| {
                    format!(
                        "`{spec}`: unknown vendor kind `{kind}`; one of {}",
                        Kind::list()
                    )
                })?;
                self.vendors.entry(kind).or_default().set(key, value)
            }
            None => self.global.set(lhs, value),
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        self.global.check("global")?;
        for (kind, f) in &self.vendors {
            f.check(kind.as_str())?;
        }
        for kind in Kind::ALL {
            let sum = self.effective(kind).failure_share();
            if sum > 1.0 + 1e-9 {
                return Err(format!(
                    "{}: error_rate + reset_rate + hang_rate is {sum}, more than 1",
                    kind.as_str()
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn effective(&self, kind: Kind) -> Effective {
        Effective::resolve(&self.global, self.vendors.get(&kind))
    }

    /// Every kind's knobs, in the list's order.
    pub(crate) fn effective_all(&self) -> Vec<Effective> {
        Kind::ALL.into_iter().map(|k| self.effective(k)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_knobs_override_global_ones() {
        let mut s = FaultSettings::default();
        s.apply("latency_ms=5").unwrap();
        s.apply("securegate.latency_ms=0").unwrap();
        s.apply("ctrl_hub.rate_limit=200").unwrap();
        s.apply("ops_manager.reject_auth=true").unwrap();
        assert_eq!(s.effective(Kind::MightyNetworks).latency_ms, 5);
        assert_eq!(s.effective(Kind::Securegate).latency_ms, 0);
        assert!(!s.effective(Kind::Securegate).active);
        assert_eq!(s.effective(Kind::CtrlHub).burst, 200.0);
        assert!(s.effective(Kind::OpsManager).reject_auth);
        assert!(s.apply("nope=1").is_err());
        assert!(s.apply("zoom.latency_ms=1").is_err());
        assert!(s.apply("latency_ms").is_err());
        s.apply("error_rate=0.7").unwrap();
        s.apply("reset_rate=0.7").unwrap();
        assert!(s.validate().is_err());
        let json: FaultSettings = serde_json::from_str(
            r#"{"global":{"error_rate":0.1},"vendors":{"securegate":{"knee":8}}}"#,
        )
        .unwrap();
        assert_eq!(json.vendors[&Kind::Securegate].knee, Some(8));
        assert!(serde_json::from_str::<FaultSettings>(r#"{"global":{"latncy_ms":1}}"#).is_err());
    }

    /// Every kind in the list can be given knobs of its own, by name.
    #[test]
    fn every_kind_takes_knobs() {
        for kind in Kind::ALL {
            let mut s = FaultSettings::default();
            s.apply(&format!("{kind}.latency_ms=7")).unwrap();
            assert_eq!(s.effective_all()[kind.index()].latency_ms, 7);
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(serde_json::from_str::<FaultSettings>(&json).unwrap(), s);
        }
    }
}
