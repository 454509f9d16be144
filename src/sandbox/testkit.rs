//! Helpers for the sandbox's in-process tests.

use digest_auth::{AuthContext, HttpMethod, WwwAuthenticateHeader};

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

/// A client that answers challenges the way curl --digest does, reusing
/// the nonce with a counting nc.
pub(crate) struct Signer {
    pub(crate) prompt: Option<WwwAuthenticateHeader>,
    password: &'static str,
}

impl Signer {
    pub(crate) fn new(password: &'static str) -> Self {
        Signer {
            prompt: None,
            password,
        }
    }

    pub(crate) fn learn(&mut self, r: &reqwest::Response) -> WwwAuthenticateHeader {
        let www = r.headers()["www-authenticate"].to_str().unwrap();
        let p = digest_auth::parse(www).unwrap();
        self.prompt = Some(p.clone());
        p
    }

    pub(crate) fn sign(&mut self, uri: &str) -> String {
        let ctx = AuthContext::new_with_method(
            "sandbox-om-public",
            self.password,
            uri,
            Option::<&[u8]>::None,
            HttpMethod::from("PATCH"),
        );
        self.prompt
            .as_mut()
            .unwrap()
            .respond(&ctx)
            .unwrap()
            .to_string()
    }
}
