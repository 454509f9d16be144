//! Securegate.ai: `PUT /events/{event_id}/invites/{invite_id}`, header
//! `x-api-key`, body `{"status": ...}`. A FastAPI service, so validation
//! errors are 422 `HTTPValidationError` documents and other errors
//! `{"detail": "..."}`.

use std::borrow::Cow;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::sim::conn::ConnHandle;
use crate::sim::gate::Gate;
use crate::sim::seed::SeedRow;
use crate::sim::simulation::{Context, Simulation};
use crate::sim::stats::Record;
use crate::sim::store::{self, Invites, Table};
use crate::sim::wire;
use crate::vendors::vendor::Credential;

/// What the sandbox expects, and the flag that changes it.
pub(super) const CREDENTIALS: &[Credential] = &[Credential {
    key: "api_key",
    flag: "securegate-api-key",
    value_name: "KEY",
    default: "sandbox-securegate-key",
    help: "Securegate `x-api-key` expected",
}];

const STATUSES: [&str; 4] = ["pending", "sent", "accepted", "rejected"];
const EXPECTED: &str = "'pending', 'sent', 'accepted' or 'rejected'";

/// The simulated Securegate.
pub(crate) struct Securegate {
    gate: Gate,
    api_key: String,
    invites: Table<Invite>,
}

pub(super) fn start(ctx: &Context) -> Arc<dyn Simulation> {
    Arc::new(Securegate {
        gate: ctx.gate(),
        api_key: ctx.credential(CREDENTIALS[0].flag),
        invites: ctx.table(),
    })
}

impl Simulation for Securegate {
    fn routes(self: Arc<Self>) -> Router {
        Router::new()
            .route("/events/{event_id}/invites/{invite_id}", put(update))
            .with_state(self)
    }

    fn invites(&self) -> &dyn Invites {
        &self.invites
    }
}

pub(crate) struct Invite {
    first_name: Box<str>,
    last_name: Box<str>,
    email: Box<str>,
    status: &'static str,
    created: u64,
    updated: u64,
}

impl store::Invite for Invite {
    fn fresh(key: &str, now: u64) -> Self {
        let id = key.rsplit('/').next().unwrap_or(key);
        Invite {
            first_name: "Invitee".into(),
            last_name: id.into(),
            email: format!("invitee-{id}@example.com").into(),
            status: "pending",
            created: now,
            updated: now,
        }
    }

    fn seed(row: &SeedRow, now: u64) -> Result<(String, Self), String> {
        if row.scope.is_empty() || row.invite_id.is_empty() {
            return Err("securegate needs scope (event_id) and invite_id".into());
        }
        let status = match row.status.as_str() {
            "" => "pending",
            s => status(s).ok_or_else(|| format!("status `{s}` is not one of {EXPECTED}"))?,
        };
        let mut invite = Self::fresh(&row.invite_id, now);
        invite.status = status;
        if !row.email.is_empty() {
            invite.email = row.email.as_str().into();
        }
        if !row.first_name.is_empty() {
            invite.first_name = row.first_name.as_str().into();
        }
        if !row.last_name.is_empty() {
            invite.last_name = row.last_name.as_str().into();
        }
        Ok((key(&row.scope, &row.invite_id), invite))
    }
}

fn key(event_id: &str, invite_id: &str) -> String {
    format!("{}/{}", wire::key_part(event_id), wire::key_part(invite_id))
}

fn status(text: &str) -> Option<&'static str> {
    STATUSES.iter().copied().find(|s| *s == text)
}

/// The `Invite` schema, all required fields and the nullable ones.
#[derive(Serialize)]
struct InviteBody<'a> {
    id: &'a str,
    first_name: &'a str,
    last_name: &'a str,
    email: &'a str,
    country_code: &'a str,
    mobile_number: &'a str,
    authentication_method: &'a str,
    event_id: &'a str,
    session_code: &'a str,
    session_id: &'a str,
    image: Option<&'a str>,
    status: &'a str,
    created_at: String,
    updated_at: String,
    last_seen: Option<&'a str>,
    onyxplus_id: Option<&'a str>,
    ticket_id: Option<&'a str>,
}

fn detail(status: StatusCode, text: &str) -> Response {
    wire::json(status, wire::JSON, &json!({ "detail": text }), false)
}

fn validation(item: Value) -> Response {
    wire::json(
        StatusCode::UNPROCESSABLE_ENTITY,
        wire::JSON,
        &json!({ "detail": [item] }),
        false,
    )
}

/// The status asked for, or FastAPI's account of what is wrong with the body
/// (one `ValidationError` item).
fn parse(body: &[u8]) -> Result<&'static str, Value> {
    #[derive(Deserialize)]
    struct Fast<'a> {
        #[serde(borrow)]
        status: Cow<'a, str>,
    }
    if let Ok(f) = serde_json::from_slice::<Fast>(body)
        && let Some(s) = status(&f.status)
    {
        return Ok(s);
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(
            json!({"type": "missing", "loc": ["body"], "msg": "Field required", "input": null}),
        );
    }
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return Err(json!({
                "type": "json_invalid",
                "loc": ["body", e.column().saturating_sub(1)],
                "msg": "JSON decode error",
                "input": {},
                "ctx": {"error": e.to_string()},
            }));
        }
    };
    let Value::Object(map) = &value else {
        return Err(json!({
            "type": "model_attributes_type",
            "loc": ["body"],
            "msg": "Input should be a valid dictionary or object to extract fields from",
            "input": value,
        }));
    };
    match map.get("status") {
        None => Err(
            json!({"type": "missing", "loc": ["body", "status"], "msg": "Field required", "input": value}),
        ),
        Some(v) => v.as_str().and_then(status).ok_or_else(|| {
            json!({
                "type": "enum",
                "loc": ["body", "status"],
                "msg": format!("Input should be {EXPECTED}"),
                "input": v,
                "ctx": {"expected": EXPECTED},
            })
        }),
    }
}

async fn update(
    State(app): State<Arc<Securegate>>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    Path((event_id, invite_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    app.gate
        .serve(&conn, |reject_auth| {
            respond(&app, reject_auth, &event_id, &invite_id, &headers, body)
        })
        .await
}

fn respond(
    app: &Securegate,
    reject_auth: bool,
    event_id: &str,
    invite_id: &str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let key = key(event_id, invite_id);
    let refuse = |r: Response| {
        app.invites.count(&key);
        r
    };
    match wire::header_str(headers, "x-api-key") {
        None => return refuse(detail(StatusCode::UNAUTHORIZED, "Not authenticated")),
        Some(k) if reject_auth || k != app.api_key => {
            return refuse(detail(StatusCode::UNAUTHORIZED, "Invalid API key"));
        }
        Some(_) => {}
    }
    if !wire::is_json(headers) {
        return refuse(detail(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Media Type: send the body as application/json",
        ));
    }
    let body = match body {
        Ok(b) => b,
        Err(rejection) => return refuse(rejection.into_response()),
    };
    let new_status = match parse(&body) {
        Ok(s) => s,
        Err(item) => return refuse(validation(item)),
    };
    let now = wire::now_secs();
    let recording = app.invites.recording();
    let reply = app.invites.update(&key, now, |inv| {
        inv.status = new_status;
        inv.updated = now;
        let session = wire::pseudo_hex(&key, 10);
        let body = InviteBody {
            id: invite_id,
            first_name: &inv.first_name,
            last_name: &inv.last_name,
            email: &inv.email,
            country_code: "1",
            mobile_number: "5550100000",
            authentication_method: "QR Code",
            event_id,
            session_code: &session[..6],
            session_id: &session,
            image: None,
            status: inv.status,
            created_at: wire::timestamp(inv.created, "Z"),
            updated_at: wire::timestamp(inv.updated, "Z"),
            last_seen: None,
            onyxplus_id: None,
            ticket_id: None,
        };
        let response = wire::json(StatusCode::OK, wire::JSON, &body, false);
        (response, recording.then_some(Record::Status(new_status)))
    });
    reply.unwrap_or_else(|| detail(StatusCode::NOT_FOUND, "Invite not found"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::stats::AppliedValue;
    use crate::sim::testkit::{BodyJson, Kit, Setup};
    use crate::sim::wire::MAX_BODY;

    async fn kit(seed: &'static str) -> Kit {
        Kit::start(Setup {
            name: "securegate",
            simulate: start,
            credentials: vec![(CREDENTIALS[0].flag, CREDENTIALS[0].default.into())],
            seed: Some(seed),
            nonce_max_uses: 0,
        })
        .await
    }

    const SEED: &str = "kind,scope,invite_id,email,first_name,last_name,status,roles\n\
                        securegate,event-456,invite-123,john.doe@example.com,John,Doe,sent,\n";

    fn put(t: &Kit, path: &str) -> reqwest::RequestBuilder {
        t.client
            .put(t.url(path))
            .header("x-api-key", "sandbox-securegate-key")
            .header("content-type", "application/json")
    }

    #[tokio::test]
    async fn happy_path_answers_the_invite_schema() {
        let t = kit(SEED).await;
        let r = put(&t, "/events/event-456/invites/invite-123")
            .body(r#"{"status":"accepted"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.body_json().await.unwrap();
        for field in [
            "first_name",
            "last_name",
            "email",
            "country_code",
            "mobile_number",
            "authentication_method",
            "id",
            "event_id",
            "session_code",
            "session_id",
            "created_at",
            "updated_at",
        ] {
            assert!(v[field].is_string(), "{field} in {v}");
        }
        assert_eq!(v["id"], "invite-123");
        assert_eq!(v["event_id"], "event-456");
        assert_eq!(v["status"], "accepted");
        assert_eq!(v["email"], "john.doe@example.com");
        assert!(v["last_seen"].is_null());
        let inv = t.invite("securegate/event-456/invite-123").unwrap();
        assert_eq!(inv.updates, 1);
        assert_eq!(
            inv.applied[0].value,
            AppliedValue::Status {
                status: "accepted".into()
            }
        );
        t.stop().await;
    }

    #[tokio::test]
    async fn documented_errors() {
        let t = kit(SEED).await;
        let path = "/events/event-456/invites/invite-123";

        let r = put(&t, path)
            .body(r#"{"status":"maybe"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422);
        let v: Value = r.body_json().await.unwrap();
        assert_eq!(v["detail"][0]["loc"], json!(["body", "status"]));
        assert_eq!(v["detail"][0]["type"], "enum");
        assert!(
            v["detail"][0]["msg"]
                .as_str()
                .unwrap()
                .starts_with("Input should be")
        );

        let r = put(&t, path).body("{}").send().await.unwrap();
        assert_eq!(r.status(), 422);
        let v: Value = r.body_json().await.unwrap();
        assert_eq!(v["detail"][0]["type"], "missing");

        let r = put(&t, path).body("{not json").send().await.unwrap();
        assert_eq!(r.status(), 422);
        let v: Value = r.body_json().await.unwrap();
        assert_eq!(v["detail"][0]["type"], "json_invalid");

        let r = put(&t, "/events/event-456/invites/nope")
            .body(r#"{"status":"sent"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        assert_eq!(
            r.body_json::<Value>().await.unwrap(),
            json!({"detail": "Invite not found"})
        );

        let r = t
            .client
            .put(t.url(path))
            .header("x-api-key", "wrong")
            .header("content-type", "application/json")
            .body(r#"{"status":"sent"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(
            r.body_json::<Value>().await.unwrap()["detail"],
            "Invalid API key"
        );

        let r = t
            .client
            .put(t.url(path))
            .header("x-api-key", "sandbox-securegate-key")
            .header("content-type", "text/plain")
            .body(r#"{"status":"sent"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 415);

        let r = put(&t, path)
            .body(vec![b' '; MAX_BODY + 1])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 413);

        assert_eq!(t.vendor().status(422), 3);
        let inv = t.invite("securegate/event-456/invite-123").unwrap();
        assert_eq!((inv.requests, inv.updates), (6, 0));
        t.stop().await;
    }
}
