//! Helpers for the adapters' unit tests.

use url::Url;

use crate::config::{RetryPolicy, VendorConfig};

/// A vendor account for adapter tests.
pub(crate) fn test_config(kind: &str, base: &str) -> VendorConfig {
    VendorConfig {
        name: "test".into(),
        kind: kind.into(),
        base_url: Url::parse(base).expect("test base URL"),
        concurrency: None,
        rate_limit: None,
        retry: RetryPolicy {
            max_attempts: 1,
            backoff_base: std::time::Duration::ZERO,
            backoff_cap: std::time::Duration::ZERO,
            retry_after_cap: std::time::Duration::ZERO,
        },
    }
}
