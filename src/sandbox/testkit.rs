//! Helpers for the sandbox's in-process tests.

use super::{Sandbox, SandboxOptions};

pub(crate) struct Kit {
    pub(crate) sandbox: Sandbox,
    pub(crate) client: reqwest::Client,
}

pub(crate) fn client() -> reqwest::Client {
    // reqwest wants a TLS provider even for plain http.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .unwrap()
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

    pub(crate) async fn seeded(csv: &str) -> Kit {
        Kit {
            sandbox: Sandbox::start_with_seed(&SandboxOptions::ephemeral(), csv)
                .await
                .unwrap(),
            client: client(),
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sandbox.base_url())
    }

    pub(crate) async fn stop(self) {
        self.sandbox.shutdown().await;
    }
}

/// reqwest's `json` needs a feature the crate does not enable.
pub(crate) trait BodyJson {
    async fn body_json<T: serde::de::DeserializeOwned>(self) -> Result<T, String>;
}

impl BodyJson for reqwest::Response {
    async fn body_json<T: serde::de::DeserializeOwned>(self) -> Result<T, String> {
        let bytes = self.bytes().await.map_err(|e| e.to_string())?;
        serde_json::from_slice(&bytes)
            .map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&bytes)))
    }
}
