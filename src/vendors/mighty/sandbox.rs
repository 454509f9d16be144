//! Mighty Networks: `PATCH`/`PUT /admin/v1/networks/{network_id}/invites/{id}/`
//! (the trailing slash is part of the route), `Authorization: Bearer`, a JSON
//! body of the invite's fields. Fields the body leaves out keep their value.
//!
//! The vendor documents no error body; the sandbox answers
//! `{"error": "<code>", "message": "<text>"}`.

use std::borrow::Cow;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::patch;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::sim::conn::ConnHandle;
use crate::sim::gate::Gate;
use crate::sim::seed::SeedRow;
use crate::sim::simulation::{Context, Simulation};
use crate::sim::stats::{Field, Record};
use crate::sim::store::{self, Invites, Table};
use crate::sim::wire;
use crate::vendors::vendor::Credential;

/// What the sandbox expects, and the flag that changes it.
pub(super) const CREDENTIALS: &[Credential] = &[Credential {
    key: "token",
    flag: "mighty-token",
    value_name: "TOKEN",
    default: "sandbox-mighty-token",
    help: "Mighty Networks bearer token expected",
}];

/// The "owner of the API key", recorded as sender when a body names no user.
const OWNER_ID: u64 = 1;

/// The simulated Mighty Networks.
pub(crate) struct Mighty {
    gate: Gate,
    token: String,
    invites: Table<Invite>,
}

pub(super) fn start(ctx: &Context) -> Arc<dyn Simulation> {
    Arc::new(Mighty {
        gate: ctx.gate(),
        token: ctx.credential(CREDENTIALS[0].flag),
        invites: ctx.table(),
    })
}

impl Simulation for Mighty {
    fn routes(self: Arc<Self>) -> Router {
        Router::new()
            .route(
                "/admin/v1/networks/{network_id}/invites/{id}/",
                patch(update).put(update),
            )
            .with_state(self)
    }

    fn invites(&self) -> &dyn Invites {
        &self.invites
    }
}

pub(crate) struct Invite {
    email: Box<str>,
    first_name: Box<str>,
    last_name: Box<str>,
    sender_id: u64,
    created: u64,
    updated: u64,
}

impl store::Invite for Invite {
    fn fresh(key: &str, now: u64) -> Self {
        let id = key.rsplit('/').next().unwrap_or(key);
        Invite {
            email: format!("invitee-{id}@example.com").into(),
            first_name: "".into(),
            last_name: "".into(),
            sender_id: OWNER_ID,
            created: now,
            updated: now,
        }
    }

    fn seed(row: &SeedRow, now: u64) -> Result<(String, Self), String> {
        let net = network(&row.scope).ok_or_else(|| {
            format!(
                "mighty_networks scope `{}` is neither an integer nor a subdomain",
                row.scope
            )
        })?;
        let id = invite_id(&row.invite_id).ok_or_else(|| {
            format!(
                "mighty_networks invite_id `{}` is not an unsigned integer",
                row.invite_id
            )
        })?;
        let key = key(&net, id);
        let mut invite = Self::fresh(&key, now);
        if !row.email.is_empty() {
            invite.email = row.email.as_str().into();
        }
        invite.first_name = row.first_name.as_str().into();
        invite.last_name = row.last_name.as_str().into();
        Ok((key, invite))
    }
}

/// A network id as the key holds it: an integer without leading zeros, or a
/// subdomain (`^[a-z][a-z0-9-]+$`).
fn network(raw: &str) -> Option<Cow<'_, str>> {
    if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
        return raw.parse::<u64>().ok().map(|n| Cow::Owned(n.to_string()));
    }
    let mut bytes = raw.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_lowercase());
    let rest_ok =
        raw.len() >= 2 && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    (first_ok && rest_ok).then_some(Cow::Borrowed(raw))
}

fn invite_id(raw: &str) -> Option<u64> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse().ok()
}

fn key(network: &str, id: u64) -> String {
    format!("{network}/{id}")
}

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow, default)]
    recipient_email: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    recipient_first_name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    recipient_last_name: Option<Cow<'a, str>>,
    #[serde(default)]
    user_id: Option<u64>,
}

/// `InviteResponse`, with the deprecated `user_id` mirroring `sender_id`.
#[derive(Serialize)]
struct InviteResponse<'a> {
    recipient_email: &'a str,
    recipient_first_name: &'a str,
    recipient_last_name: &'a str,
    id: u64,
    created_at: String,
    updated_at: String,
    sender_id: u64,
    user_id: u64,
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    wire::json(
        status,
        wire::JSON,
        &json!({ "error": code, "message": message }),
        false,
    )
}

/// The fields the body set, as the statistics keep them.
fn record(email: &str, body: &Body<'_>) -> Record {
    let text = |v: &str| Field::Text(v.into());
    let mut fields = vec![("recipient_email", text(email))];
    if let Some(f) = &body.recipient_first_name {
        fields.push(("recipient_first_name", text(f)));
    }
    if let Some(l) = &body.recipient_last_name {
        fields.push(("recipient_last_name", text(l)));
    }
    if let Some(u) = body.user_id {
        fields.push(("user_id", Field::Number(u)));
    }
    Record::Fields(fields.into())
}

async fn update(
    State(app): State<Arc<Mighty>>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    Path((network_id, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    app.gate
        .serve(&conn, |reject_auth| {
            respond(&app, reject_auth, &network_id, &id, &headers, body)
        })
        .await
}

fn unauthorized(message: &str) -> Response {
    let mut r = error(StatusCode::UNAUTHORIZED, "unauthorized", message);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"Mighty Networks Admin API\""),
    );
    r
}

fn respond(
    app: &Mighty,
    reject_auth: bool,
    network_id: &str,
    id: &str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let token = wire::header_str(headers, "authorization").and_then(|v| {
        let (scheme, token) = v.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then_some(token.trim())
    });
    let Some(token) = token else {
        return unauthorized("Authorization: Bearer <token> is required");
    };
    if reject_auth || token != app.token {
        return unauthorized("The access token is invalid");
    }
    let Some(net) = network(network_id) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            "network_id must be an unsigned integer or a subdomain matching ^[a-z][a-z0-9-]+$",
        );
    };
    let Some(id) = invite_id(id) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            "id must be an unsigned 64-bit integer",
        );
    };
    let key = key(&net, id);
    let refuse = |r: Response| {
        app.invites.count(&key);
        r
    };
    if !wire::is_json(headers) {
        return refuse(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Content-Type must be application/json",
        ));
    }
    let bytes = match body {
        Ok(b) => b,
        Err(rejection) => return refuse(rejection.into_response()),
    };
    let body: Body = match serde_json::from_slice(&bytes) {
        Ok(b) => b,
        Err(e) if e.is_data() => {
            return refuse(error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_parameter",
                &e.to_string(),
            ));
        }
        Err(e) => {
            return refuse(error(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                &e.to_string(),
            ));
        }
    };
    let Some(email) = &body.recipient_email else {
        return refuse(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_parameter",
            "recipient_email is required",
        ));
    };
    if !wire::is_email(email) {
        return refuse(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_parameter",
            "recipient_email is not a valid email address",
        ));
    }
    let now = wire::now_secs();
    let recording = app.invites.recording();
    let reply = app.invites.update(&key, now, |inv| {
        inv.email = email.as_ref().into();
        if let Some(f) = &body.recipient_first_name {
            inv.first_name = f.as_ref().into();
        }
        if let Some(l) = &body.recipient_last_name {
            inv.last_name = l.as_ref().into();
        }
        if let Some(u) = body.user_id {
            inv.sender_id = u;
        }
        inv.updated = now;
        let response = InviteResponse {
            recipient_email: &inv.email,
            recipient_first_name: &inv.first_name,
            recipient_last_name: &inv.last_name,
            id,
            created_at: wire::timestamp(inv.created, "+00:00"),
            updated_at: wire::timestamp(inv.updated, "+00:00"),
            sender_id: inv.sender_id,
            user_id: inv.sender_id,
        };
        let record = recording.then(|| record(email, &body));
        (
            wire::json(StatusCode::OK, wire::JSON, &response, false),
            record,
        )
    });
    reply.unwrap_or_else(|| error(StatusCode::NOT_FOUND, "not_found", "Invite not found"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::stats::AppliedValue;
    use crate::sim::testkit::{BodyJson, Kit, Setup};
    use serde_json::Value;

    async fn kit(seed: &'static str) -> Kit {
        Kit::start(Setup {
            name: "mighty_networks",
            simulate: start,
            credentials: vec![(CREDENTIALS[0].flag, CREDENTIALS[0].default.into())],
            seed: Some(seed),
            nonce_max_uses: 0,
        })
        .await
    }

    const SEED: &str = "kind,scope,invite_id,email,first_name,last_name,status,roles\n\
                        mighty_networks,acme,1234,claude@example.com,Claude,Monet,,\n\
                        mighty_networks,42,7,a@example.com,A,B,,\n";

    fn req(t: &Kit, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        t.client
            .request(method, t.url(path))
            .bearer_auth("sandbox-mighty-token")
            .header("content-type", "application/json")
    }

    #[tokio::test]
    async fn patch_and_put_update_only_the_fields_sent() {
        let t = kit(SEED).await;
        let r = req(&t, reqwest::Method::PATCH, "/admin/v1/networks/acme/invites/1234/")
            .body(r#"{"recipient_email":"claude@example.org","recipient_last_name":"Debussy","user_id":123}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.body_json().await.unwrap();
        assert_eq!(v["recipient_email"], "claude@example.org");
        assert_eq!(v["recipient_first_name"], "Claude");
        assert_eq!(v["recipient_last_name"], "Debussy");
        assert_eq!(v["id"], 1234);
        assert_eq!(v["sender_id"], 123);
        assert!(v["created_at"].as_str().unwrap().ends_with("+00:00"));
        assert!(v["updated_at"].is_string());

        // Leading zeros name the same network and invite.
        let r = req(
            &t,
            reqwest::Method::PUT,
            "/admin/v1/networks/042/invites/0007/",
        )
        .body(r#"{"recipient_email":"a@example.com"}"#)
        .send()
        .await
        .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.body_json().await.unwrap();
        assert_eq!(
            (v["recipient_first_name"].as_str(), v["sender_id"].as_u64()),
            (Some("A"), Some(1))
        );

        let fields = json!({
            "recipient_email": "claude@example.org",
            "recipient_last_name": "Debussy",
            "user_id": 123,
        });
        assert_eq!(
            t.invite("mighty_networks/acme/1234").unwrap().applied[0].value,
            AppliedValue::Fields(fields.as_object().unwrap().clone())
        );
        assert_eq!(t.invite("mighty_networks/42/7").unwrap().updates, 1);
        t.stop().await;
    }

    #[tokio::test]
    async fn errors() {
        let t = kit(SEED).await;
        let ok = r#"{"recipient_email":"x@example.com"}"#;
        let cases: [(&str, &str, u16); 8] = [
            ("/admin/v1/networks/acme/invites/1234", ok, 404),
            ("/admin/v1/networks/acme/invites/99/", ok, 404),
            ("/admin/v1/networks/acme/invites/abc/", ok, 400),
            ("/admin/v1/networks/Acme/invites/1234/", ok, 400),
            (
                "/admin/v1/networks/acme/invites/1234/",
                r#"{"recipient_first_name":"X"}"#,
                422,
            ),
            (
                "/admin/v1/networks/acme/invites/1234/",
                r#"{"recipient_email":"nope"}"#,
                422,
            ),
            (
                "/admin/v1/networks/acme/invites/1234/",
                r#"{"recipient_email":"x@example.com","user_id":-1}"#,
                422,
            ),
            ("/admin/v1/networks/acme/invites/1234/", "{", 400),
        ];
        for (path, body, status) in cases {
            let r = req(&t, reqwest::Method::PATCH, path)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), status, "{path} {body}");
        }
        let path = "/admin/v1/networks/acme/invites/1234/";
        let r = t
            .client
            .patch(t.url(path))
            .bearer_auth("wrong")
            .body(ok)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert!(r.headers().contains_key("www-authenticate"));
        assert_eq!(
            r.body_json::<Value>().await.unwrap()["error"],
            "unauthorized"
        );
        let r = t.client.patch(t.url(path)).body(ok).send().await.unwrap();
        assert_eq!(r.status(), 401);
        let r = t
            .client
            .patch(t.url(path))
            .bearer_auth("sandbox-mighty-token")
            .header("content-type", "application/xml")
            .body(ok)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 415);
        let inv = t.invite("mighty_networks/acme/1234").unwrap();
        assert_eq!((inv.requests, inv.updates), (5, 0));
        t.stop().await;
    }

    #[test]
    fn network_ids() {
        assert_eq!(network("acme-2").as_deref(), Some("acme-2"));
        assert_eq!(network("0042").as_deref(), Some("42"));
        for bad in [
            "",
            "a",
            "Acme",
            "2acme",
            "acme_x",
            "acme/x",
            "99999999999999999999",
        ] {
            assert!(network(bad).is_none(), "{bad}");
        }
        assert_eq!(invite_id("18446744073709551615"), Some(u64::MAX));
        assert_eq!(invite_id("18446744073709551616"), None);
        assert_eq!(invite_id("+1"), None);
    }
}
