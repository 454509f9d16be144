//! Helpers for the sandbox's in-process tests: the whole sandbox, every
//! kind, on an ephemeral port.

use super::options::SandboxOptions;
use super::server::Sandbox;
pub(crate) use crate::sim::testkit::{BodyJson, client};

pub(crate) struct Kit {
    pub(crate) sandbox: Sandbox,
    pub(crate) client: reqwest::Client,
}

impl Kit {
    pub(crate) async fn with(options: SandboxOptions) -> Kit {
        Kit {
            sandbox: Sandbox::start(&options).await.unwrap(),
            client: client(),
        }
    }

    pub(crate) async fn open() -> Kit {
        Kit::with(SandboxOptions::ephemeral()).await
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sandbox.base_url())
    }

    pub(crate) async fn stop(self) {
        self.sandbox.shutdown().await;
    }
}
