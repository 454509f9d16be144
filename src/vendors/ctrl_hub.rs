//! Placeholder until the adapter lands.

use bytes::Bytes;

use super::{Adapter, Reply};
use crate::change::{Change, Invalid, Planned};
use crate::config::{ConfigError, VendorConfig, VendorSettings};
use crate::input::Fields;

pub struct CtrlHub;

impl CtrlHub {
    pub fn new(_config: &VendorConfig, _settings: VendorSettings) -> Result<Self, ConfigError> {
        Err(ConfigError("not yet".into()))
    }
}

impl Adapter for CtrlHub {
    fn plan(&self, _row: &Fields<'_>) -> Result<Planned, Invalid> {
        Err(Invalid::new("vendor", "not yet"))
    }
    fn request(&self, change: &Change) -> http::Request<Bytes> {
        http::Request::new(change.body.clone())
    }
    fn read(&self, _status: u16, _body: &[u8]) -> Reply {
        Reply::default()
    }
    fn credential_keys(&self) -> &'static str {
        ""
    }
}
