//! Ctrl-Hub: `PATCH /v3/user-invitations/{id}` with an `X-Session-Token`
//! header and a JSON:API document.
//!
//! The vendor's example body has only `type` and `attributes`, but JSON:API
//! requires an update to carry the resource's `type` and `id`, so both are
//! sent. Only the recipient may update an invitation, and only to accept or
//! reject it: `pending` is refused here rather than by the vendor.

use bytes::Bytes;
use http::Method;
use url::Url;
use serde::{Deserialize, Serialize};

use crate::change::{Change, Invalid, Planned};
use crate::config::{ConfigError, VendorConfig, VendorSettings};
use crate::input::Fields;
use crate::secret::Secret;
use crate::text::{one_line, shown};
use crate::vendors::adapter::{Adapter, Reply};
use crate::vendors::answer::{common_error_text, fallback_error, id_text};
use crate::vendors::http::{path_segment, request_with_body, url};

/// The statuses the vendor lets an update set.
pub const STATUSES: [&str; 2] = ["accepted", "rejected"];

const RESOURCE_TYPE: &str = "user-invitations";
const MEDIA_TYPE: &str = "application/vnd.api+json";

pub struct CtrlHub {
    base: Url,
    session_token: Secret,
}

impl CtrlHub {
    pub fn new(config: &VendorConfig, mut settings: VendorSettings) -> Result<Self, ConfigError> {
        let session_token = settings.secret("session_token")?;
        settings.finish()?;
        Ok(CtrlHub {
            base: config.base_url.clone(),
            session_token,
        })
    }
}

#[derive(Serialize)]
struct Document<'a> {
    data: Resource<'a>,
}

/// Fields in JSON:API's usual order: type, id, attributes.
#[derive(Serialize)]
struct Resource<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    attributes: Attributes<'a>,
}

#[derive(Serialize)]
struct Attributes<'a> {
    status: &'a str,
}

#[derive(Deserialize)]
struct Reading {
    data: Option<ReadResource>,
}

#[derive(Deserialize)]
struct ReadResource {
    id: Option<serde_json::Value>,
    meta: Option<Times>,
    attributes: Option<Times>,
}

/// The document gives only `created_at` and `expires_at`; a last-modified time
/// is taken if the vendor ever adds one, never guessed from those.
#[derive(Deserialize)]
struct Times {
    updated_at: Option<String>,
}

#[derive(Deserialize)]
struct ErrorDocument {
    errors: Vec<ErrorObject>,
}

#[derive(Deserialize)]
struct ErrorObject {
    code: Option<String>,
    title: Option<String>,
    detail: Option<String>,
}

impl ErrorObject {
    /// `title: detail`, either alone, or the code if neither is given.
    fn text(&self) -> Option<String> {
        let title = self
            .title
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let detail = self
            .detail
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty());
        match (title, detail) {
            (Some(t), Some(d)) if t == d => Some(t.to_string()),
            (Some(t), Some(d)) => Some(format!("{t}: {d}")),
            (Some(t), None) => Some(t.to_string()),
            (None, Some(d)) => Some(d.to_string()),
            (None, None) => self.code.clone().filter(|c| !c.is_empty()),
        }
    }
}

/// The adapter of one `[vendors.NAME]` table of this kind.
pub(crate) fn build(
    config: &VendorConfig,
    settings: VendorSettings,
) -> Result<Box<dyn Adapter>, ConfigError> {
    Ok(Box::new(CtrlHub::new(config, settings)?))
}

impl Adapter for CtrlHub {
    fn plan(&self, row: &Fields<'_>) -> Result<Planned, Invalid> {
        let id = path_segment("invite_id", row.invite_id)?;
        if row.status.is_empty() {
            return Err(Invalid::new("status", "required: accepted or rejected"));
        }
        if !STATUSES.contains(&row.status) {
            return Err(Invalid::new(
                "status",
                format!(
                    "{} is not accepted or rejected (Ctrl-Hub lets an invitation only be accepted or rejected)",
                    shown(row.status)
                ),
            ));
        }
        let doc = Document {
            data: Resource {
                kind: RESOURCE_TYPE,
                id: row.invite_id,
                attributes: Attributes { status: row.status },
            },
        };
        let body = serde_json::to_vec(&doc).map_err(|e| Invalid::new("status", e.to_string()))?;
        Ok(Planned {
            key: id.clone(),
            method: Method::PATCH,
            path: format!("/v3/user-invitations/{id}"),
            body: Bytes::from(body),
        })
    }

    fn request(&self, change: &Change) -> http::Request<Bytes> {
        request_with_body(
            &change.method,
            url(&self.base, &change.path),
            MEDIA_TYPE,
            &[("x-session-token", self.session_token.expose())],
            change.body.clone(),
        )
    }

    fn read(&self, status: u16, body: &[u8]) -> Reply {
        if (200..300).contains(&status) {
            let Ok(Reading { data: Some(data) }) = serde_json::from_slice::<Reading>(body) else {
                return Reply::default();
            };
            let updated = [data.meta, data.attributes]
                .into_iter()
                .flatten()
                .find_map(|t| t.updated_at.filter(|s| !s.is_empty()));
            return Reply {
                remote_id: data.id.as_ref().and_then(id_text),
                remote_updated_at: updated,
                error: None,
            };
        }
        let documented = serde_json::from_slice::<ErrorDocument>(body)
            .ok()
            .and_then(|doc| {
                let parts: Vec<String> = doc.errors.iter().filter_map(ErrorObject::text).collect();
                if parts.is_empty() {
                    None
                } else {
                    Some(one_line(&parts.join("; ")))
                }
            });
        let error = match documented.or_else(|| common_error_text(body)) {
            Some(text) => format!("HTTP {status}: {text}"),
            None => fallback_error(status, body),
        };
        Reply {
            error: Some(error),
            ..Reply::default()
        }
    }

    fn credential_keys(&self) -> &'static str {
        "session_token"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3c90c3cc-0d44-4b50-8888-8dd25736052a";

    fn adapter() -> CtrlHub {
        CtrlHub {
            base: Url::parse("https://api.ctrl-hub.com").unwrap(),
            session_token: Secret::new("s3ss"),
        }
    }

    fn row<'a>(id: &'a str, status: &'a str) -> Fields<'a> {
        Fields {
            vendor: "hub",
            invite_id: id,
            status,
            ..Fields::default()
        }
    }

    #[test]
    fn builds_the_documented_request() {
        let a = adapter();
        let change = Change::new(0, "hub", a.plan(&row(ID, "accepted")).unwrap());
        let req = a.request(&change);
        assert_eq!(req.method(), "PATCH");
        assert_eq!(
            req.uri().to_string(),
            format!("https://api.ctrl-hub.com/v3/user-invitations/{ID}")
        );
        assert_eq!(req.headers()["content-type"], "application/vnd.api+json");
        assert_eq!(req.headers()["accept"], "application/vnd.api+json");
        assert_eq!(req.headers()["x-session-token"], "s3ss");
        assert_eq!(req.headers().len(), 3);
        assert_eq!(
            req.body().as_ref(),
            format!(r#"{{"data":{{"type":"user-invitations","id":"{ID}","attributes":{{"status":"accepted"}}}}}}"#)
                .as_bytes()
        );
        assert_eq!(change.key.text, format!("hub/{ID}"));
    }

    #[test]
    fn checks_status_and_id() {
        let a = adapter();
        let field = |r: Fields<'_>| a.plan(&r).unwrap_err().field;
        for bad in ["", "pending", "Accepted", "sent", "accepted "] {
            assert_eq!(field(row(ID, bad)), "status", "{bad:?}");
        }
        for bad in ["", "..", ".", "a\u{1b}b"] {
            assert_eq!(field(row(bad, "rejected")), "invite_id", "{bad:?}");
        }
        let p = a.plan(&row("../admin?x=1#\"}", "rejected")).unwrap();
        assert_eq!(p.path, "/v3/user-invitations/..%2Fadmin%3Fx%3D1%23%22%7D");
        assert_eq!(
            p.body.as_ref(),
            br#"{"data":{"type":"user-invitations","id":"../admin?x=1#\"}","attributes":{"status":"rejected"}}}"#
        );
    }

    #[test]
    fn reads_the_documented_document_and_errors() {
        let a = adapter();
        let doc = format!(
            r#"{{"data":{{"id":"{ID}","type":"<string>","attributes":{{"email":"jsmith@example.com","status":"pending"}},
            "meta":{{"created_at":"2023-11-07T05:31:56Z","expires_at":"2023-11-07T05:31:56Z"}},
            "relationships":{{"organisation":{{"data":{{"id":"{ID}","type":"<string>"}}}}}}}},"jsonapi":{{"version":"<string>"}}}}"#
        );
        let r = a.read(200, doc.as_bytes());
        assert_eq!(r.remote_id.as_deref(), Some(ID));
        assert_eq!(r.remote_updated_at, None);
        let r = a.read(
            200,
            br#"{"data":{"id":"x","meta":{"updated_at":"2024-01-01T00:00:00Z"}}}"#,
        );
        assert_eq!(r.remote_updated_at.as_deref(), Some("2024-01-01T00:00:00Z"));
        assert_eq!(a.read(200, b""), Reply::default());
        assert_eq!(a.read(200, br#"{"data":null}"#), Reply::default());

        let e = |status, body: &[u8]| a.read(status, body).error.unwrap();
        assert_eq!(
            e(
                422,
                br#"{"errors":[{"status":"422","title":"Invalid Attribute","detail":"status must be accepted or rejected"},{"status":"422","title":"Invalid Attribute"}]}"#
            ),
            "HTTP 422: Invalid Attribute: status must be accepted or rejected; Invalid Attribute"
        );
        assert_eq!(
            e(
                404,
                br#"{"errors":[{"status":"404","detail":"Not found"}]}"#
            ),
            "HTTP 404: Not found"
        );
        assert_eq!(
            e(403, br#"{"errors":[{"code":"forbidden"}]}"#),
            "HTTP 403: forbidden"
        );
        assert_eq!(
            e(401, br#"{"message":"Unauthenticated"}"#),
            "HTTP 401: Unauthenticated"
        );
        assert_eq!(e(500, b"oops"), "HTTP 500: oops");
    }
}
