//! What every vendor's adapter does: a pure translator between a row and the
//! vendor's API. It never touches the network; the I/O, retries and ordering
//! are the dispatcher's.

use bytes::Bytes;

use crate::change::{Change, Invalid, Planned};
use crate::input::Fields;
use crate::secret::Secret;

/// What a vendor's answer says beyond its status code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    /// The invite's id as the vendor reports it.
    pub remote_id: Option<String>,
    /// The invite's last-modified time as the vendor reports it.
    pub remote_updated_at: Option<String>,
    /// The vendor's own explanation of a refusal, in one line.
    pub error: Option<String>,
}

/// One vendor kind's rules and wire format.
pub trait Adapter: Send + Sync + 'static {
    /// Checks a row against the vendor's documented constraints and builds the
    /// request body. A broken rule is an [`Invalid`] naming the column.
    fn plan(&self, row: &Fields<'_>) -> Result<Planned, Invalid>;

    /// The complete request for a planned change: absolute URL, headers
    /// (content type, accept, credentials) and body. Digest credentials are
    /// the exception: the client adds them, since they depend on the server's
    /// nonce (see [`Adapter::digest_credentials`]).
    fn request(&self, change: &Change) -> http::Request<Bytes>;

    /// `(username, password)` when the vendor uses HTTP Digest.
    fn digest_credentials(&self) -> Option<(&Secret, &Secret)> {
        None
    }

    /// Reads a response of any status. Liberal: a 2xx whose optional fields
    /// cannot be read is still a success, with fewer details.
    fn read(&self, status: u16, body: &[u8]) -> Reply;

    /// The config keys holding this vendor's credentials, for "check
    /// vendors.NAME.KEY" after a 401.
    fn credential_keys(&self) -> &'static str;

    /// The kind-specific settings that change what is sent (Mighty's
    /// `method`), so a resume can tell the config changed under it.
    fn settings_fingerprint(&self) -> String {
        String::new()
    }
}
