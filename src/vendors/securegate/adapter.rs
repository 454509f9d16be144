//! Securegate.ai: `PUT /events/{event_id}/invites/{invite_id}` with an
//! `x-api-key` header and `{"status": ...}`.

use bytes::Bytes;
use http::Method;
use url::Url;
use serde::{Deserialize, Serialize};

use crate::change::{Change, Invalid, Planned};
use crate::config::{ConfigError, VendorConfig, VendorSettings};
use crate::input::Fields;
use crate::secret::Secret;
use crate::text::one_line;
use crate::vendors::adapter::{Adapter, Reply};
use crate::vendors::answer::fallback_error;
use crate::vendors::http::{path_segment, request_with_body, url};

/// The `InviteStatus` enum of the vendor's OpenAPI document.
pub const STATUSES: [&str; 4] = ["pending", "sent", "accepted", "rejected"];

pub struct Securegate {
    base: Url,
    api_key: Secret,
}

impl Securegate {
    pub fn new(config: &VendorConfig, mut settings: VendorSettings) -> Result<Self, ConfigError> {
        let api_key = settings.secret("api_key")?;
        settings.finish()?;
        Ok(Securegate {
            base: config.base_url.clone(),
            api_key,
        })
    }
}

/// The body of the update: `{"status": "..."}`.
#[derive(Serialize)]
struct StatusBody<'a> {
    status: &'a str,
}

#[derive(Deserialize)]
struct Invite {
    id: Option<serde_json::Value>,
    updated_at: Option<String>,
}

#[derive(Deserialize)]
struct ValidationError {
    #[serde(default)]
    loc: Vec<serde_json::Value>,
    msg: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Detail {
    Many(Vec<ValidationError>),
    One(String),
}

#[derive(Deserialize)]
struct ErrorBody {
    detail: Detail,
}

fn scalar(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The adapter of one `[vendors.NAME]` table of this kind.
pub(crate) fn build(
    config: &VendorConfig,
    settings: VendorSettings,
) -> Result<Box<dyn Adapter>, ConfigError> {
    Ok(Box::new(Securegate::new(config, settings)?))
}

impl Adapter for Securegate {
    fn plan(&self, row: &Fields<'_>) -> Result<Planned, Invalid> {
        let event = path_segment("scope", row.scope)?;
        let invite = path_segment("invite_id", row.invite_id)?;
        if row.status.is_empty() {
            return Err(Invalid::new(
                "status",
                "required: one of pending, sent, accepted, rejected",
            ));
        }
        if !STATUSES.contains(&row.status) {
            return Err(Invalid::new(
                "status",
                format!(
                    "`{}` is not one of pending, sent, accepted, rejected",
                    row.status
                ),
            ));
        }
        let body = serde_json::to_vec(&StatusBody { status: row.status })
            .map_err(|e| Invalid::new("status", e.to_string()))?;
        Ok(Planned {
            key: format!("{event}/{invite}"),
            method: Method::PUT,
            path: format!("/events/{event}/invites/{invite}"),
            body: Bytes::from(body),
        })
    }

    fn request(&self, change: &Change) -> http::Request<Bytes> {
        request_with_body(
            &change.method,
            url(&self.base, &change.path),
            "application/json",
            &[("x-api-key", self.api_key.expose())],
            change.body.clone(),
        )
    }

    fn read(&self, status: u16, body: &[u8]) -> Reply {
        if (200..300).contains(&status) {
            return match serde_json::from_slice::<Invite>(body) {
                Ok(inv) => Reply {
                    remote_id: inv.id.as_ref().and_then(scalar),
                    remote_updated_at: inv.updated_at,
                    error: None,
                },
                Err(_) => Reply::default(),
            };
        }
        let error = match serde_json::from_slice::<ErrorBody>(body) {
            Ok(ErrorBody {
                detail: Detail::Many(list),
            }) if !list.is_empty() => {
                let parts: Vec<String> = list
                    .iter()
                    .map(|e| {
                        let loc: Vec<String> = e.loc.iter().filter_map(scalar).collect();
                        if loc.is_empty() {
                            e.msg.clone()
                        } else {
                            format!("{}: {}", loc.join("."), e.msg)
                        }
                    })
                    .collect();
                format!("HTTP {status}: {}", one_line(&parts.join("; ")))
            }
            Ok(ErrorBody {
                detail: Detail::One(s),
            }) => format!("HTTP {status}: {}", one_line(&s)),
            _ => fallback_error(status, body),
        };
        Reply {
            error: Some(error),
            ..Reply::default()
        }
    }

    fn credential_keys(&self) -> &'static str {
        "api_key"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RetryPolicy;
    use std::time::Duration;

    pub(crate) fn adapter() -> Securegate {
        Securegate {
            base: Url::parse("https://api.securegate.ai").unwrap(),
            api_key: Secret::new("k3y"),
        }
    }

    #[allow(dead_code)]
    fn config() -> VendorConfig {
        VendorConfig {
            name: "gate".into(),
            kind: "securegate".into(),
            base_url: Url::parse("https://api.securegate.ai").unwrap(),
            concurrency: None,
            rate_limit: None,
            retry: RetryPolicy {
                max_attempts: 1,
                backoff_base: Duration::ZERO,
                backoff_cap: Duration::ZERO,
                retry_after_cap: Duration::ZERO,
            },
        }
    }

    fn row<'a>(scope: &'a str, id: &'a str, status: &'a str) -> Fields<'a> {
        Fields {
            vendor: "gate",
            scope,
            invite_id: id,
            status,
            ..Fields::default()
        }
    }

    #[test]
    fn builds_the_documented_request() {
        let a = adapter();
        let planned = a.plan(&row("event-456", "invite-123", "accepted")).unwrap();
        let change = Change::new(0, "gate", planned);
        let req = a.request(&change);
        assert_eq!(req.method(), "PUT");
        assert_eq!(
            req.uri().to_string(),
            "https://api.securegate.ai/events/event-456/invites/invite-123"
        );
        assert_eq!(req.headers()["content-type"], "application/json");
        assert_eq!(req.headers()["x-api-key"], "k3y");
        assert_eq!(req.body().as_ref(), br#"{"status":"accepted"}"#);
        assert_eq!(change.key.text, "gate/event-456/invite-123");
    }

    #[test]
    fn checks_status_and_ids() {
        let a = adapter();
        assert_eq!(a.plan(&row("e", "i", "maybe")).unwrap_err().field, "status");
        assert_eq!(a.plan(&row("e", "i", "")).unwrap_err().field, "status");
        assert_eq!(a.plan(&row("", "i", "sent")).unwrap_err().field, "scope");
        assert_eq!(
            a.plan(&row("e", "", "sent")).unwrap_err().field,
            "invite_id"
        );
        assert_eq!(
            a.plan(&row("e", "..", "sent")).unwrap_err().field,
            "invite_id"
        );
    }

    #[test]
    fn reads_invites_and_validation_errors() {
        let a = adapter();
        let ok = a.read(
            200,
            br#"{"id":"invite-123","status":"accepted","updated_at":"2023-03-01T09:30:00Z"}"#,
        );
        assert_eq!(ok.remote_id.as_deref(), Some("invite-123"));
        assert_eq!(
            ok.remote_updated_at.as_deref(),
            Some("2023-03-01T09:30:00Z")
        );
        assert_eq!(a.read(200, b"not json"), Reply::default());
        let e = a.read(
            422,
            br#"{"detail":[{"loc":["body","status"],"msg":"Input should be 'pending', 'sent', 'accepted' or 'rejected'","type":"enum"}]}"#,
        );
        assert_eq!(
            e.error.as_deref(),
            Some(
                "HTTP 422: body.status: Input should be 'pending', 'sent', 'accepted' or 'rejected'"
            )
        );
        let e = a.read(404, br#"{"detail":"Invite not found"}"#);
        assert_eq!(e.error.as_deref(), Some("HTTP 404: Invite not found"));
    }
}
