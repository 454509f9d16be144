//! MongoDB Ops Manager: `PATCH /api/public/v1.0/orgs/{org_id}/invites` with
//! HTTP Digest and `{"roles": [...], "username": email}`.
//!
//! The invitation is named by organisation and email, not by an id. The key
//! lower-cases the email so that `Ann@x.io` and `ann@x.io` are never in flight
//! together, but the body carries the email exactly as written: Ops Manager
//! matches the username it sent the invitation to, and changing its case is
//! not ours to decide. The org id is an ObjectId, whose canonical text is
//! lower-case hex, so it is lower-cased in both path and key.
//!
//! The roles in the request replace the invitation's roles, so a row must list
//! all of them.

use bytes::Bytes;
use http::Method;
use url::Url;
use serde::{Deserialize, Serialize};

use crate::change::{Change, Invalid, Planned};
use crate::config::{ConfigError, VendorConfig, VendorSettings};
use crate::input::Fields;
use crate::text::{one_line, shown};
use crate::vendors::adapter::{Adapter, Reply};
use crate::vendors::answer::{common_error_text, fallback_error, id_text};
use crate::vendors::fields::looks_like_email;
use crate::vendors::http::{request_with_body, url};
use crate::secret::Secret;

pub struct OpsManager {
    base: Url,
    public_key: Secret,
    private_key: Secret,
}

impl OpsManager {
    pub fn new(config: &VendorConfig, mut settings: VendorSettings) -> Result<Self, ConfigError> {
        let public_key = settings.secret("public_key")?;
        let private_key = settings.secret("private_key")?;
        settings.finish()?;
        Ok(OpsManager {
            base: config.base_url.clone(),
            public_key,
            private_key,
        })
    }
}

#[derive(Serialize)]
struct Body<'a> {
    roles: Vec<&'a str>,
    username: &'a str,
}

/// The invitation. It has no last-modified time (`createdAt` and `expiresAt`
/// only), so `remote_updated_at` stays empty rather than claiming either.
#[derive(Deserialize)]
struct Invitation {
    id: Option<serde_json::Value>,
}

/// Ops Manager's error document.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody {
    detail: Option<String>,
    error_code: Option<String>,
    reason: Option<String>,
}

fn org_id(value: &str) -> Result<String, Invalid> {
    if value.is_empty() {
        return Err(Invalid::new(
            "scope",
            "required: the organization id (24 hexadecimal digits)",
        ));
    }
    if value.len() != 24 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Invalid::new(
            "scope",
            format!(
                "{} is not an organization id (24 hexadecimal digits)",
                shown(value)
            ),
        ));
    }
    Ok(value.to_ascii_lowercase())
}

/// A role name as Ops Manager spells them (`ORG_OWNER`, `GROUP_READ_ONLY`).
fn is_role_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_uppercase())
        && bytes.all(|b| b.is_ascii_uppercase() || b == b'_')
}

/// The `roles` column: names separated by `;`, blanks dropped, duplicates
/// removed keeping the first, in the order written.
fn roles(value: &str) -> Result<Vec<&str>, Invalid> {
    let mut out: Vec<&str> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for role in value.split(';').map(str::trim).filter(|r| !r.is_empty()) {
        if !is_role_name(role) {
            return Err(Invalid::new(
                "roles",
                format!("{} is not a role name like ORG_MEMBER", shown(role)),
            ));
        }
        if seen.insert(role) {
            out.push(role);
        }
    }
    if out.is_empty() {
        return Err(Invalid::new(
            "roles",
            "required: the invitation's roles separated by `;` (they replace its current roles), e.g. ORG_MEMBER",
        ));
    }
    Ok(out)
}

/// The adapter of one `[vendors.NAME]` table of this kind.
pub(crate) fn build(
    config: &VendorConfig,
    settings: VendorSettings,
) -> Result<Box<dyn Adapter>, ConfigError> {
    Ok(Box::new(OpsManager::new(config, settings)?))
}

impl Adapter for OpsManager {
    fn plan(&self, row: &Fields<'_>) -> Result<Planned, Invalid> {
        let org = org_id(row.scope)?;
        if row.email.is_empty() {
            return Err(Invalid::new(
                "email",
                "required: the invited user's email (their username)",
            ));
        }
        if !looks_like_email(row.email) {
            return Err(Invalid::new(
                "email",
                format!("{} is not an email address", shown(row.email)),
            ));
        }
        let body = Body {
            roles: roles(row.roles)?,
            username: row.email,
        };
        let body = serde_json::to_vec(&body).map_err(|e| Invalid::new("roles", e.to_string()))?;
        Ok(Planned {
            key: format!("{org}/{}", row.email.to_lowercase()),
            method: Method::PATCH,
            path: format!("/api/public/v1.0/orgs/{org}/invites"),
            body: Bytes::from(body),
        })
    }

    fn request(&self, change: &Change) -> http::Request<Bytes> {
        request_with_body(
            &change.method,
            url(&self.base, &change.path),
            "application/json",
            &[],
            change.body.clone(),
        )
    }

    fn digest_credentials(&self) -> Option<(&Secret, &Secret)> {
        Some((&self.public_key, &self.private_key))
    }

    fn read(&self, status: u16, body: &[u8]) -> Reply {
        if (200..300).contains(&status) {
            return match serde_json::from_slice::<Invitation>(body) {
                Ok(inv) => Reply {
                    remote_id: inv.id.as_ref().and_then(id_text),
                    ..Reply::default()
                },
                Err(_) => Reply::default(),
            };
        }
        let documented = serde_json::from_slice::<ErrorBody>(body)
            .ok()
            .and_then(|e| {
                let text = e.detail.or(e.reason).filter(|t| !t.trim().is_empty());
                match (e.error_code.filter(|c| !c.is_empty()), text) {
                    (Some(code), Some(text)) => Some(format!(
                        "HTTP {status} {}: {}",
                        one_line(&code),
                        one_line(&text)
                    )),
                    (Some(code), None) => Some(format!("HTTP {status} {}", one_line(&code))),
                    (None, Some(text)) => Some(format!("HTTP {status}: {}", one_line(&text))),
                    (None, None) => None,
                }
            });
        let error = documented
            .or_else(|| common_error_text(body).map(|t| format!("HTTP {status}: {t}")))
            .unwrap_or_else(|| fallback_error(status, body));
        Reply {
            error: Some(error),
            ..Reply::default()
        }
    }

    fn credential_keys(&self) -> &'static str {
        "public_key/private_key"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORG: &str = "5f1a2b3c4d5e6f7a8b9c0d1e";

    fn adapter() -> OpsManager {
        OpsManager {
            base: Url::parse("https://opsmanager.example.com").unwrap(),
            public_key: Secret::new("pub"),
            private_key: Secret::new("priv"),
        }
    }

    fn row<'a>(scope: &'a str, email: &'a str, roles: &'a str) -> Fields<'a> {
        Fields {
            vendor: "om",
            scope,
            email,
            roles,
            ..Fields::default()
        }
    }

    #[test]
    fn builds_the_documented_request() {
        let a = adapter();
        let change = Change::new(
            0,
            "om",
            a.plan(&row(ORG, "wyatt.smith@example.com", "ORG_OWNER"))
                .unwrap(),
        );
        let req = a.request(&change);
        assert_eq!(req.method(), "PATCH");
        assert_eq!(
            req.uri().to_string(),
            format!("https://opsmanager.example.com/api/public/v1.0/orgs/{ORG}/invites")
        );
        assert_eq!(req.headers()["content-type"], "application/json");
        assert_eq!(req.headers()["accept"], "application/json");
        assert_eq!(req.headers().len(), 2, "digest auth is added by the client");
        assert_eq!(
            req.body().as_ref(),
            br#"{"roles":["ORG_OWNER"],"username":"wyatt.smith@example.com"}"#
        );
        assert_eq!(change.key.text, format!("om/{ORG}/wyatt.smith@example.com"));
        let (user, pass) = a.digest_credentials().unwrap();
        assert_eq!((user.expose(), pass.expose()), ("pub", "priv"));
    }

    #[test]
    fn keys_ignore_case_but_the_body_keeps_the_email() {
        let a = adapter();
        let upper = ORG.to_ascii_uppercase();
        let p = a
            .plan(&row(
                &upper,
                "Wyatt.Smith@Example.com",
                " ORG_MEMBER ; ;ORG_OWNER;ORG_MEMBER;",
            ))
            .unwrap();
        assert_eq!(p.key, format!("{ORG}/wyatt.smith@example.com"));
        assert_eq!(p.path, format!("/api/public/v1.0/orgs/{ORG}/invites"));
        assert_eq!(
            p.body.as_ref(),
            br#"{"roles":["ORG_MEMBER","ORG_OWNER"],"username":"Wyatt.Smith@Example.com"}"#
        );
    }

    #[test]
    fn checks_every_documented_constraint() {
        let a = adapter();
        let field = |r: Fields<'_>| a.plan(&r).unwrap_err().field;
        let short = &ORG[..23];
        let long = format!("{ORG}0");
        let nonhex = format!("{}g", &ORG[..23]);
        let dots = format!("../{}", &ORG[..21]);
        for bad in ["", short, long.as_str(), nonhex.as_str(), dots.as_str()] {
            assert_eq!(field(row(bad, "a@b.co", "ORG_OWNER")), "scope", "{bad:?}");
        }
        assert_eq!(field(row(ORG, "", "ORG_OWNER")), "email");
        assert_eq!(field(row(ORG, "wyatt", "ORG_OWNER")), "email");
        for bad in [
            "",
            ";",
            " ; ",
            "org_owner",
            "ORG-OWNER",
            "ORG_OWNER;1X",
            "_ORG",
            "ORG OWNER",
            "\"]",
        ] {
            assert_eq!(field(row(ORG, "a@b.co", bad)), "roles", "{bad:?}");
        }
    }

    #[test]
    fn reads_the_invitation_and_its_errors() {
        let a = adapter();
        let doc = br#"{
   "createdAt": "2021-02-18T21:05:40Z",
   "expiresAt": "2021-03-20T21:05:40Z",
   "id": "{INVITATION-ID}",
   "inviterUsername": "admin@example.com",
   "orgId": "{ORG-ID}",
   "orgName": "{ORG-NAME}",
   "roles": [
     "ORG_OWNER"
   ],
   "teamIds": [],
   "username": "wyatt.smith@example.com"
}"#;
        let r = a.read(200, doc);
        assert_eq!(r.remote_id.as_deref(), Some("{INVITATION-ID}"));
        assert_eq!(r.remote_updated_at, None);
        assert_eq!(a.read(200, b"{"), Reply::default());
        let e = |status, body: &[u8]| a.read(status, body).error.unwrap();
        assert_eq!(
            e(
                404,
                br#"{"detail":"Invitation for wyatt.smith@example.com not found.","error":404,"errorCode":"INVITATION_NOT_FOUND","parameters":["wyatt.smith@example.com"],"reason":"Not Found"}"#
            ),
            "HTTP 404 INVITATION_NOT_FOUND: Invitation for wyatt.smith@example.com not found."
        );
        assert_eq!(
            e(
                400,
                br#"{"error":400,"errorCode":"INVALID_ROLE","reason":"Bad Request"}"#
            ),
            "HTTP 400 INVALID_ROLE: Bad Request"
        );
        assert_eq!(
            e(401, br#"{"errorCode":"NOT_ORG_USER"}"#),
            "HTTP 401 NOT_ORG_USER"
        );
        assert_eq!(e(409, br#"{"message":"conflict"}"#), "HTTP 409: conflict");
        assert_eq!(
            e(502, b"<html>Bad Gateway</html>"),
            "HTTP 502: Bad Gateway"
        );
    }
}
