//! Placeholder API until the digest session lands.

use crate::secret::Secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeKind {
    Fresh,
    Stale,
}

pub struct DigestSession;

impl DigestSession {
    pub fn new(_user: Secret, _password: Secret) -> Self {
        DigestSession
    }
    pub fn authorization(&self, _method: &str, _uri: &str) -> Option<String> {
        None
    }
    pub fn on_challenge<'a>(
        &self,
        _values: impl Iterator<Item = &'a str>,
    ) -> Result<ChallengeKind, String> {
        Err("not yet".into())
    }
}
