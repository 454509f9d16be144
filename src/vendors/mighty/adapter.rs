//! Mighty Networks Admin API: `PATCH /admin/v1/networks/{network_id}/invites/{id}/`
//! with a bearer token and the recipient's fields.
//!
//! The trailing slash is part of the documented path. The OpenAPI document
//! says `PATCH` while the reference page shows `PUT` for the same call, so the
//! method is a setting. Ids are canonicalised (`007` is sent as `7`) so that
//! two spellings of one invite share a key and are never in flight together.

use bytes::Bytes;
use http::Method;
use url::Url;
use serde::{Deserialize, Serialize};

use crate::change::{Change, Invalid, Planned};
use crate::config::{ConfigError, VendorConfig, VendorSettings};
use crate::input::Fields;
use crate::text::shown;
use crate::vendors::adapter::{Adapter, Reply};
use crate::vendors::answer::{common_error_text, fallback_error, id_text};
use crate::vendors::fields::{looks_like_email, unsigned_id};
use crate::vendors::http::{request_with_body, url};
use crate::secret::Secret;

pub struct MightyNetworks {
    base: Url,
    /// `Bearer <token>`, built once rather than per request.
    authorization: Secret,
    method: Method,
}

impl MightyNetworks {
    pub fn new(config: &VendorConfig, mut settings: VendorSettings) -> Result<Self, ConfigError> {
        let token = settings.secret("token")?;
        let method = match settings.string("method")? {
            None => Method::PATCH,
            Some(m) if m.eq_ignore_ascii_case("PATCH") => Method::PATCH,
            Some(m) if m.eq_ignore_ascii_case("PUT") => Method::PUT,
            Some(m) => {
                return Err(ConfigError(format!(
                    "{}.method: `{m}` is not supported; use \"PATCH\" (the default) or \"PUT\"",
                    settings.table()
                )));
            }
        };
        settings.finish()?;
        Ok(Self::with(config.base_url.clone(), token, method))
    }

    fn with(base: Url, token: Secret, method: Method) -> Self {
        MightyNetworks {
            base,
            authorization: Secret::new(format!("Bearer {}", token.expose())),
            method,
        }
    }
}

/// The request body; fields in the documented order, absent ones not sent
/// (an empty name means "leave as is", not "clear it").
#[derive(Serialize)]
struct Body<'a> {
    recipient_email: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    recipient_first_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recipient_last_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<u64>,
}

/// The parts of `InviteResponse` we report. The documented example sends `id`
/// as a string although the schema says integer, so either is taken.
#[derive(Deserialize)]
struct InviteResponse {
    id: Option<serde_json::Value>,
    updated_at: Option<String>,
}

/// `network_id`: a numeric id, or a subdomain as the document's pattern
/// `^[a-z][a-z0-9-]+$` has it. A subdomain is a DNS label, so 63 characters
/// at most.
fn network_id(value: &str) -> Result<String, Invalid> {
    const FIELD: &str = "scope";
    if value.is_empty() {
        return Err(Invalid::new(
            FIELD,
            "required: the network's numeric id or subdomain",
        ));
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(unsigned_id(FIELD, value)?.to_string());
    }
    let bytes = value.as_bytes();
    let pattern = bytes.len() >= 2
        && bytes.first().is_some_and(u8::is_ascii_lowercase)
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
    if !pattern {
        let hint = if value.bytes().any(|b| b.is_ascii_uppercase()) {
            " (subdomains are lower-case)"
        } else {
            ""
        };
        return Err(Invalid::new(
            FIELD,
            format!(
                "{} is neither a numeric network id nor a subdomain like `my-network`{hint}",
                shown(value)
            ),
        ));
    }
    if value.len() > 63 {
        return Err(Invalid::new(FIELD, "a subdomain has at most 63 characters"));
    }
    Ok(value.to_string())
}

/// A name as the recipient will see it: empty means "not sent".
fn name<'a>(field: &str, value: &'a str) -> Result<Option<&'a str>, Invalid> {
    if value.is_empty() {
        return Ok(None);
    }
    if value.chars().any(char::is_control) {
        return Err(Invalid::new(field, "contains a control character"));
    }
    Ok(Some(value))
}

/// The adapter of one `[vendors.NAME]` table of this kind.
pub(crate) fn build(
    config: &VendorConfig,
    settings: VendorSettings,
) -> Result<Box<dyn Adapter>, ConfigError> {
    Ok(Box::new(MightyNetworks::new(config, settings)?))
}

impl Adapter for MightyNetworks {
    fn plan(&self, row: &Fields<'_>) -> Result<Planned, Invalid> {
        let network = network_id(row.scope)?;
        let id = unsigned_id("invite_id", row.invite_id)?;
        if row.email.is_empty() {
            return Err(Invalid::new(
                "email",
                "required: the recipient's email address",
            ));
        }
        if !looks_like_email(row.email) {
            return Err(Invalid::new(
                "email",
                format!("{} is not an email address", shown(row.email)),
            ));
        }
        let user_id = match row.sender_id {
            "" => None,
            s => Some(unsigned_id("sender_id", s)?),
        };
        let body = Body {
            recipient_email: row.email,
            recipient_first_name: name("first_name", row.first_name)?,
            recipient_last_name: name("last_name", row.last_name)?,
            user_id,
        };
        let body = serde_json::to_vec(&body).map_err(|e| Invalid::new("email", e.to_string()))?;
        Ok(Planned {
            key: format!("{network}/{id}"),
            method: self.method.clone(),
            path: format!("/admin/v1/networks/{network}/invites/{id}/"),
            body: Bytes::from(body),
        })
    }

    fn request(&self, change: &Change) -> http::Request<Bytes> {
        request_with_body(
            &change.method,
            url(&self.base, &change.path),
            "application/json",
            &[("authorization", self.authorization.expose())],
            change.body.clone(),
        )
    }

    fn read(&self, status: u16, body: &[u8]) -> Reply {
        if (200..300).contains(&status) {
            return match serde_json::from_slice::<InviteResponse>(body) {
                Ok(inv) => Reply {
                    remote_id: inv.id.as_ref().and_then(id_text),
                    remote_updated_at: inv.updated_at.filter(|s| !s.is_empty()),
                    error: None,
                },
                Err(_) => Reply::default(),
            };
        }
        let error = match common_error_text(body) {
            Some(text) => format!("HTTP {status}: {text}"),
            None => fallback_error(status, body),
        };
        Reply {
            error: Some(error),
            ..Reply::default()
        }
    }

    fn credential_keys(&self) -> &'static str {
        "token"
    }

    fn settings_fingerprint(&self) -> String {
        format!("method={}", self.method)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adapter() -> MightyNetworks {
        MightyNetworks::with(
            Url::parse("https://api.mn.co").unwrap(),
            Secret::new("t0ken"),
            Method::PATCH,
        )
    }

    fn row<'a>(scope: &'a str, id: &'a str, email: &'a str) -> Fields<'a> {
        Fields {
            vendor: "mighty",
            scope,
            invite_id: id,
            email,
            ..Fields::default()
        }
    }

    fn settings(pairs: &[(&str, toml::Value)]) -> VendorSettings {
        let mut t = toml::Table::new();
        for (k, v) in pairs {
            t.insert((*k).into(), v.clone());
        }
        VendorSettings::from_table("vendors.mighty", t)
    }

    fn file_secret(file: &tempfile::NamedTempFile) -> toml::Value {
        let mut t = toml::Table::new();
        let path = file.path().to_string_lossy().into_owned();
        t.insert("file".into(), toml::Value::String(path));
        toml::Value::Table(t)
    }

    #[test]
    fn builds_the_documented_request() {
        let a = adapter();
        let r = Fields {
            first_name: "Claude",
            last_name: "Monet",
            sender_id: "123",
            ..row("acme", "1234", "claude@example.com")
        };
        let change = Change::new(0, "mighty", a.plan(&r).unwrap());
        let req = a.request(&change);
        assert_eq!(req.method(), "PATCH");
        assert_eq!(
            req.uri().to_string(),
            "https://api.mn.co/admin/v1/networks/acme/invites/1234/"
        );
        assert_eq!(req.headers()["authorization"], "Bearer t0ken");
        assert_eq!(req.headers()["content-type"], "application/json");
        assert_eq!(req.headers()["accept"], "application/json");
        assert_eq!(req.headers().len(), 3);
        assert_eq!(
            req.body().as_ref(),
            br#"{"recipient_email":"claude@example.com","recipient_first_name":"Claude","recipient_last_name":"Monet","user_id":123}"#
        );
        assert_eq!(change.key.text, "mighty/acme/1234");
    }

    #[test]
    fn sends_only_present_fields_and_canonical_ids() {
        let a = adapter();
        let p = a.plan(&row("0042", "007", "a@b.co")).unwrap();
        assert_eq!(p.path, "/admin/v1/networks/42/invites/7/");
        assert_eq!(p.key, "42/7");
        assert_eq!(p.body.as_ref(), br#"{"recipient_email":"a@b.co"}"#);
        let max = u64::MAX.to_string();
        let p = a
            .plan(&Fields {
                sender_id: &max,
                last_name: "O\"Brien\"}, \"user_id\": 1",
                ..row(&max, &max, "a@b.co")
            })
            .unwrap();
        assert_eq!(
            p.body.as_ref(),
            br#"{"recipient_email":"a@b.co","recipient_last_name":"O\"Brien\"}, \"user_id\": 1","user_id":18446744073709551615}"#
        );
    }

    #[test]
    fn method_is_a_setting() {
        let token = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(token.path(), "t\n").unwrap();
        let cfg = crate::vendors::testing::test_config("mighty_networks", "https://api.mn.co");
        let a = MightyNetworks::new(
            &cfg,
            settings(&[
                ("token", file_secret(&token)),
                ("method", toml::Value::String("PUT".into())),
            ]),
        )
        .unwrap();
        let p = a.plan(&row("acme", "1", "a@b.co")).unwrap();
        assert_eq!(p.method, Method::PUT);
        assert_eq!(a.settings_fingerprint(), "method=PUT");
        assert_eq!(adapter().settings_fingerprint(), "method=PATCH");
        assert_eq!(
            a.request(&Change::new(0, "m", p)).headers()["authorization"],
            "Bearer t"
        );

        let e = MightyNetworks::new(
            &cfg,
            settings(&[
                ("token", file_secret(&token)),
                ("method", toml::Value::String("POST".into())),
            ]),
        )
        .err()
        .unwrap();
        assert!(e.0.starts_with("vendors.mighty.method: `POST`"), "{e}");
    }

    #[test]
    fn checks_every_documented_constraint() {
        let a = adapter();
        let field = |r: Fields<'_>| a.plan(&r).unwrap_err().field;
        for bad in [
            "", "Acme", "a", "-acme", "1acme", "ac_me", "../x", "acme/1", "+12", "-1", "1 2",
            "a\u{0}b",
        ] {
            assert_eq!(field(row(bad, "1", "a@b.co")), "scope", "{bad:?}");
        }
        assert_eq!(field(row(&"a".repeat(64), "1", "a@b.co")), "scope");
        assert!(a.plan(&row(&"a".repeat(63), "1", "a@b.co")).is_ok());
        assert!(a.plan(&row("my-network-2", "1", "a@b.co")).is_ok());
        for bad in [
            "",
            "+1",
            "-1",
            "1.0",
            "1e3",
            " 1",
            "18446744073709551616",
            "..",
            "1/2",
            "x",
        ] {
            assert_eq!(field(row("acme", bad, "a@b.co")), "invite_id", "{bad:?}");
        }
        assert_eq!(field(row("acme", "1", "")), "email");
        assert_eq!(field(row("acme", "1", "not-an-email")), "email");
        let r = row("acme", "1", "a@b.co");
        assert_eq!(
            field(Fields {
                sender_id: "-5",
                ..r
            }),
            "sender_id"
        );
        assert_eq!(
            field(Fields {
                sender_id: "99999999999999999999",
                ..r
            }),
            "sender_id"
        );
        assert_eq!(
            field(Fields {
                first_name: "a\u{7}",
                ..r
            }),
            "first_name"
        );
        assert_eq!(
            field(Fields {
                last_name: "a\nb",
                ..r
            }),
            "last_name"
        );
        let long = "9".repeat(100_000);
        let e = a.plan(&row("acme", &long, "a@b.co")).unwrap_err();
        assert!(e.reason.len() < 200, "{}", e.reason);
    }

    #[test]
    fn reads_the_documented_response() {
        let a = adapter();
        let doc = br#"{
  "recipient_email": "claude@example.com",
  "recipient_first_name": "Claude",
  "recipient_last_name": "Monet",
  "id": "1234",
  "created_at": "2025-11-07T23:17:21+00:00",
  "updated_at": "2025-11-07T23:17:21+00:00",
  "user_id": 123
}"#;
        let r = a.read(200, doc);
        assert_eq!(r.remote_id.as_deref(), Some("1234"));
        assert_eq!(
            r.remote_updated_at.as_deref(),
            Some("2025-11-07T23:17:21+00:00")
        );
        assert_eq!(r.error, None);
        let r = a.read(
            200,
            br#"{"id":1234,"updated_at":"2026-06-26T21:14:11+00:00","sender_id":5}"#,
        );
        assert_eq!(r.remote_id.as_deref(), Some("1234"));
        assert_eq!(a.read(200, b""), Reply::default());
        assert_eq!(a.read(204, b"<html>"), Reply::default());
        assert_eq!(
            a.read(200, br#"{"id":null,"updated_at":7}"#),
            Reply::default()
        );
    }

    #[test]
    fn reads_errors_in_common_shapes() {
        let a = adapter();
        let e = |status, body: &[u8]| a.read(status, body).error.unwrap();
        assert_eq!(e(404, br#"{"error":"Not Found"}"#), "HTTP 404: Not Found");
        assert_eq!(
            e(401, br#"{"message":"Invalid token"}"#),
            "HTTP 401: Invalid token"
        );
        assert_eq!(
            e(
                422,
                br#"{"errors":{"recipient_email":["is invalid","is taken"]}}"#
            ),
            "HTTP 422: recipient_email: is invalid; is taken"
        );
        assert_eq!(e(422, br#"{"errors":["a","b"]}"#), "HTTP 422: a; b");
        assert_eq!(
            e(422, br#"{"errors":[{"message":"bad user_id"}]}"#),
            "HTTP 422: bad user_id"
        );
        assert_eq!(
            e(
                400,
                br#"{"error":"invalid_request","message":"bad\nthing"}"#
            ),
            "HTTP 400: invalid_request: bad thing"
        );
        assert_eq!(e(403, br#"{"detail":"Forbidden"}"#), "HTTP 403: Forbidden");
        assert_eq!(
            e(500, b"Internal Server Error"),
            "HTTP 500: Internal Server Error"
        );
        assert_eq!(
            e(502, br#"{"unexpected":true}"#),
            r#"HTTP 502: {"unexpected":true}"#
        );
        assert_eq!(e(503, b""), "HTTP 503");
    }
}
