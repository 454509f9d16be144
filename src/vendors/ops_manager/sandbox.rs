//! MongoDB Ops Manager: `PATCH /api/public/v1.0/orgs/{org_id}/invites`
//! (optionally `?pretty=true`), HTTP Digest, body
//! `{"roles": [...], "username": "email"}`. The roles replace the invitation's
//! roles. Errors use Ops Manager's document:
//! `{"detail", "error", "errorCode", "parameters", "reason"}`.

use std::borrow::Cow;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::patch;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::digest::{Digest, Refusal};
use crate::sim::conn::ConnHandle;
use crate::sim::gate::Gate;
use crate::sim::seed::SeedRow;
use crate::sim::simulation::{Context, Simulation};
use crate::sim::stats::Record;
use crate::sim::store::{self, Invites, Table};
use crate::sim::wire;
use crate::vendors::vendor::Credential;

/// What the sandbox expects, and the flags that change it: the public key is
/// the digest username, the private key its password.
pub(super) const CREDENTIALS: &[Credential] = &[
    Credential {
        key: "public_key",
        flag: "om-public-key",
        value_name: "KEY",
        default: "sandbox-om-public",
        help: "Ops Manager public key (the digest username) expected",
    },
    Credential {
        key: "private_key",
        flag: "om-private-key",
        value_name: "KEY",
        default: "sandbox-om-private",
        help: "Ops Manager private key (the digest password) expected",
    },
];

const ORG_ROLES: [&str; 5] = [
    "ORG_OWNER",
    "ORG_MEMBER",
    "ORG_GROUP_CREATOR",
    "ORG_READ_ONLY",
    "ORG_BILLING_ADMIN",
];
/// Invitations expire 30 days after they are sent.
const LIFETIME_SECS: u64 = 30 * 86_400;

/// The simulated Ops Manager.
pub(crate) struct OpsManager {
    gate: Gate,
    digest: Digest,
    invites: Table<Invite>,
}

pub(super) fn start(ctx: &Context) -> Arc<dyn Simulation> {
    Arc::new(OpsManager {
        gate: ctx.gate(),
        digest: Digest::new(
            &ctx.credential(CREDENTIALS[0].flag),
            &ctx.credential(CREDENTIALS[1].flag),
            ctx.nonce_max_uses,
            ctx.nonce_max_age,
        ),
        invites: ctx.table(),
    })
}

impl Simulation for OpsManager {
    fn routes(self: Arc<Self>) -> Router {
        Router::new()
            .route("/api/public/v1.0/orgs/{org_id}/invites", patch(update))
            .with_state(self)
    }

    fn invites(&self) -> &dyn Invites {
        &self.invites
    }
}

pub(crate) struct Invite {
    /// As first written; the key holds it lower-cased.
    username: Box<str>,
    roles: Box<[&'static str]>,
    created: u64,
}

impl store::Invite for Invite {
    fn fresh(key: &str, now: u64) -> Self {
        Invite {
            username: key.rsplit('/').next().unwrap_or(key).into(),
            roles: Box::new(["ORG_MEMBER"]),
            created: now,
        }
    }

    fn seed(row: &SeedRow, now: u64) -> Result<(String, Self), String> {
        let org = org_id(&row.scope).ok_or_else(|| {
            format!(
                "ops_manager scope `{}` is not 24 hexadecimal digits",
                row.scope
            )
        })?;
        if !wire::is_email(&row.email) {
            return Err(format!(
                "ops_manager email `{}` is not an email address",
                row.email
            ));
        }
        let mut roles = Vec::new();
        for name in row
            .roles
            .split(';')
            .map(str::trim)
            .filter(|r| !r.is_empty())
        {
            roles.push(role(name).ok_or_else(|| format!("`{name}` is not an organization role"))?);
        }
        if roles.is_empty() {
            roles.push("ORG_MEMBER");
        }
        let invite = Invite {
            username: row.email.as_str().into(),
            roles: roles.into(),
            created: now,
        };
        Ok((key(&org, &row.email), invite))
    }
}

fn org_id(raw: &str) -> Option<String> {
    (raw.len() == 24 && raw.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| raw.to_ascii_lowercase())
}

fn key(org: &str, username: &str) -> String {
    format!("{org}/{}", wire::key_part(&username.to_lowercase()))
}

fn role(name: &str) -> Option<&'static str> {
    ORG_ROLES.iter().copied().find(|r| *r == name)
}

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow, default)]
    roles: Option<Vec<Cow<'a, str>>>,
    #[serde(borrow, default)]
    username: Option<Cow<'a, str>>,
}

/// The organization invitation of the API's reference.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Invitation<'a> {
    created_at: String,
    expires_at: String,
    id: String,
    inviter_username: &'a str,
    org_id: &'a str,
    org_name: String,
    roles: &'a [&'static str],
    team_ids: [&'a str; 0],
    username: &'a str,
}

fn error(status: StatusCode, code: &str, detail: &str, pretty: bool) -> Response {
    let reason = status.canonical_reason().unwrap_or("Error");
    let body = json!({
        "detail": detail,
        "error": status.as_u16(),
        "errorCode": code,
        "parameters": [],
        "reason": reason,
    });
    wire::json(status, wire::JSON, &body, pretty)
}

async fn update(
    State(app): State<Arc<OpsManager>>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    Path(org): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    app.gate
        .serve(&conn, |reject_auth| {
            respond(&app, reject_auth, &org, &method, &uri, &headers, body)
        })
        .await
}

fn respond(
    app: &OpsManager,
    reject_auth: bool,
    org: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let pretty = uri
        .query()
        .is_some_and(|q| q.split('&').any(|p| p.eq_ignore_ascii_case("pretty=true")));
    let verdict = if reject_auth {
        Err(Refusal::Unauthorized)
    } else {
        app.digest
            .verify(method, uri, headers.get(header::AUTHORIZATION))
    };
    if let Err(refusal) = verdict {
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "You are not authorized for this resource.",
            pretty,
        );
        let challenge = app.digest.challenge(refusal == Refusal::Stale);
        r.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
        return r;
    }
    let bad = |code: &str, detail: &str| error(StatusCode::BAD_REQUEST, code, detail, pretty);
    if !wire::is_json(headers) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "The request body must be application/json.",
            pretty,
        );
    }
    let Some(org) = org_id(org) else {
        return bad(
            "INVALID_ORG_ID",
            &format!(
                "The specified organization ID {org} is invalid: expected 24 hexadecimal digits."
            ),
        );
    };
    let bytes = match body {
        Ok(b) => b,
        Err(rejection) => return rejection.into_response(),
    };
    let body: Body = match serde_json::from_slice(&bytes) {
        Ok(b) => b,
        Err(e) if e.is_data() => {
            return bad("INVALID_ATTRIBUTE", &format!("Invalid attribute: {e}."));
        }
        Err(_) => return bad("MALFORMED_JSON", "Received JSON is malformed."),
    };
    let Some(username) = body.username else {
        return bad(
            "MISSING_ATTRIBUTE",
            "The required attribute username was not specified.",
        );
    };
    let key = key(&org, &username);
    let refuse = |r: Response| {
        app.invites.count(&key);
        r
    };
    if !wire::is_email(&username) {
        return refuse(bad(
            "INVALID_ATTRIBUTE",
            &format!("Invalid attribute username specified: {username} is not an email address."),
        ));
    }
    let Some(names) = body.roles else {
        return refuse(bad(
            "MISSING_ATTRIBUTE",
            "The required attribute roles was not specified.",
        ));
    };
    if names.is_empty() {
        return refuse(bad(
            "INVALID_ATTRIBUTE",
            "Invalid attribute roles specified: at least one role is required.",
        ));
    }
    let mut roles = Vec::with_capacity(names.len());
    for name in &names {
        match role(name) {
            Some(r) => roles.push(r),
            None => {
                return refuse(bad(
                    "INVALID_ROLE",
                    &format!(
                        "Invalid role {name}: organization roles are {}.",
                        ORG_ROLES.join(", ")
                    ),
                ));
            }
        }
    }
    let roles: Box<[&'static str]> = roles.into();
    let recording = app.invites.recording();
    let reply = app.invites.update(&key, wire::now_secs(), |inv| {
            inv.roles = roles.clone();
            let body = Invitation {
                created_at: wire::timestamp(inv.created, "Z"),
                expires_at: wire::timestamp(inv.created + LIFETIME_SECS, "Z"),
                id: wire::pseudo_hex(&key, 24),
                inviter_username: "admin@example.com",
                org_id: &org,
                org_name: format!("Sandbox Org {}", &org[..6]),
                roles: &inv.roles,
                team_ids: [],
                username: &inv.username,
            };
            let record = recording.then(|| Record::Roles(roles.clone()));
            (
                wire::json(StatusCode::OK, wire::JSON, &body, pretty),
                record,
            )
        });
    reply.unwrap_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            "INVITATION_NOT_FOUND",
            &format!("No pending invitation for {username} in organization {org}."),
            pretty,
        )
    })
}

#[cfg(test)]
mod tests {
    use digest_auth::{AuthContext, HttpMethod, WwwAuthenticateHeader};
    use serde_json::Value;

    use super::*;
    use crate::sim::faults::Faults;
    use crate::sim::stats::AppliedValue;
    use crate::sim::testkit::{BodyJson, Kit, Setup};

    async fn kit(nonce_max_uses: u64) -> Kit {
        Kit::start(Setup {
            name: "ops_manager",
            simulate: start,
            credentials: CREDENTIALS
                .iter()
                .map(|c| (c.flag, c.default.to_string()))
                .collect(),
            seed: Some(SEED),
            nonce_max_uses,
        })
        .await
    }

    /// A client that answers challenges the way curl --digest does, reusing
    /// the nonce with a counting nc.
    struct Signer {
        prompt: Option<WwwAuthenticateHeader>,
        password: &'static str,
    }

    impl Signer {
        fn new(password: &'static str) -> Self {
            Signer {
                prompt: None,
                password,
            }
        }

        fn learn(&mut self, r: &reqwest::Response) -> WwwAuthenticateHeader {
            let www = r.headers()["www-authenticate"].to_str().unwrap();
            let p = digest_auth::parse(www).unwrap();
            self.prompt = Some(p.clone());
            p
        }

        fn sign(&mut self, uri: &str) -> String {
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

    const ORG: &str = "5f1a2b3c4d5e6f7a8b9c0d1e";
    const SEED: &str = "kind,scope,invite_id,email,first_name,last_name,status,roles\n\
                        ops_manager,5f1a2b3c4d5e6f7a8b9c0d1e,,Wyatt.Smith@example.com,,,,ORG_MEMBER\n";

    fn path() -> String {
        format!("/api/public/v1.0/orgs/{ORG}/invites?pretty=true")
    }

    async fn send(t: &Kit, auth: Option<&str>, body: &str) -> reqwest::Response {
        let mut req = t
            .client
            .patch(t.url(&path()))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        req.send().await.unwrap()
    }

    const BODY: &str =
        r#"{"roles":["ORG_OWNER","ORG_READ_ONLY"],"username":"wyatt.smith@example.com"}"#;

    #[tokio::test]
    async fn digest_challenge_then_update() {
        let t = kit(0).await;
        let r = send(&t, None, BODY).await;
        assert_eq!(r.status(), 401);
        let www = r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            www.starts_with("Digest realm=\"MMS Public API\", domain=\"\", nonce=\""),
            "{www}"
        );
        assert!(
            www.ends_with("algorithm=MD5, qop=\"auth\", stale=false"),
            "{www}"
        );
        let v: Value = r.body_json().await.unwrap();
        assert_eq!(
            (v["error"].as_u64(), v["reason"].as_str()),
            (Some(401), Some("Unauthorized"))
        );

        let mut signer = Signer::new("sandbox-om-private");
        let r = send(&t, None, BODY).await;
        signer.learn(&r);
        let auth = signer.sign(&path());
        let r = send(&t, Some(&auth), BODY).await;
        assert_eq!(r.status(), 200);
        let text = r.text().await.unwrap();
        assert!(text.contains("\n  \"createdAt\""), "pretty=true: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["roles"], json!(["ORG_OWNER", "ORG_READ_ONLY"]));
        assert_eq!(v["username"], "Wyatt.Smith@example.com");
        assert_eq!(v["orgId"], ORG);
        assert_eq!(v["teamIds"], json!([]));
        assert_eq!(v["id"].as_str().unwrap().len(), 24);
        for f in ["createdAt", "expiresAt", "inviterUsername", "orgName"] {
            assert!(v[f].is_string(), "{f}");
        }

        // The same nc again is a replay.
        let r = send(&t, Some(&auth), BODY).await;
        assert_eq!(r.status(), 401);
        assert!(
            r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .ends_with("stale=false")
        );

        // A wrong password is refused; the right one on the next nc is fine.
        let mut wrong = Signer::new("nope");
        wrong.prompt = signer.prompt.clone();
        let r = send(&t, Some(&wrong.sign(&path())), BODY).await;
        assert_eq!(r.status(), 401);
        let r = send(&t, Some(&signer.sign(&path())), BODY).await;
        assert_eq!(r.status(), 200);

        let key = format!("ops_manager/{ORG}/wyatt.smith@example.com");
        let inv = t.invite(&key).unwrap();
        assert_eq!(inv.updates, 2);
        assert_eq!(
            inv.applied[1].value,
            AppliedValue::Roles {
                roles: vec!["ORG_OWNER".into(), "ORG_READ_ONLY".into()]
            }
        );
        t.stop().await;
    }

    #[tokio::test]
    async fn nonces_go_stale_after_their_uses() {
        let t = kit(2).await;
        let mut signer = Signer::new("sandbox-om-private");
        signer.learn(&send(&t, None, BODY).await);
        // Out of order counts are fine.
        let first = signer.sign(&path());
        let second = signer.sign(&path());
        assert_eq!(send(&t, Some(&second), BODY).await.status(), 200);
        assert_eq!(send(&t, Some(&first), BODY).await.status(), 200);
        let r = send(&t, Some(&signer.sign(&path())), BODY).await;
        assert_eq!(r.status(), 401);
        let p = signer.learn(&r);
        assert!(p.stale);
        assert_eq!(
            send(&t, Some(&signer.sign(&path())), BODY).await.status(),
            200
        );
        t.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_nonce_serves_concurrent_requests_in_any_order() {
        let t = kit(0).await;
        let mut signer = Signer::new("sandbox-om-private");
        signer.learn(&send(&t, None, BODY).await);
        let mut headers: Vec<String> = (0..200).map(|_| signer.sign(&path())).collect();
        fastrand::shuffle(&mut headers);
        let sends = headers.iter().map(|h| send(&t, Some(h), BODY));
        for r in futures::future::join_all(sends).await {
            assert_eq!(r.status(), 200);
        }
        assert_eq!(t.vendor().status(200), 200);
        t.stop().await;
    }

    #[tokio::test]
    async fn documented_errors() {
        let t = kit(0).await;
        let mut signer = Signer::new("sandbox-om-private");
        signer.learn(&send(&t, None, BODY).await);
        let cases = [
            (
                r#"{"roles":[],"username":"wyatt.smith@example.com"}"#,
                400,
                "INVALID_ATTRIBUTE",
            ),
            (
                r#"{"roles":["ORG_GOD"],"username":"wyatt.smith@example.com"}"#,
                400,
                "INVALID_ROLE",
            ),
            (r#"{"roles":["ORG_OWNER"]}"#, 400, "MISSING_ATTRIBUTE"),
            (
                r#"{"roles":["ORG_OWNER"],"username":"not-an-email"}"#,
                400,
                "INVALID_ATTRIBUTE",
            ),
            (
                r#"{"roles":"ORG_OWNER","username":"w@example.com"}"#,
                400,
                "INVALID_ATTRIBUTE",
            ),
            ("{", 400, "MALFORMED_JSON"),
            (
                r#"{"roles":["ORG_OWNER"],"username":"someone@example.com"}"#,
                404,
                "INVITATION_NOT_FOUND",
            ),
        ];
        for (body, status, code) in cases {
            let r = send(&t, Some(&signer.sign(&path())), body).await;
            assert_eq!(r.status().as_u16(), status, "{body}");
            let v: Value = r.body_json().await.unwrap();
            assert_eq!(v["errorCode"], code, "{body}");
            assert_eq!(v["error"], status, "{body}");
            assert_eq!(v["parameters"], json!([]));
        }
        let bad_org = "/api/public/v1.0/orgs/not-hex/invites";
        let auth = signer.sign(bad_org);
        let r = t
            .client
            .patch(t.url(bad_org))
            .header("authorization", auth)
            .header("content-type", "application/json")
            .body(BODY)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(
            r.body_json::<Value>().await.unwrap()["errorCode"],
            "INVALID_ORG_ID"
        );

        t.set_faults(&Faults {
            reject_auth: Some(true),
            ..Faults::default()
        });
        let r = send(&t, Some(&signer.sign(&path())), BODY).await;
        assert_eq!(r.status(), 401);
        t.stop().await;
    }
}
