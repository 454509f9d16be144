//! Ctrl-Hub: `PATCH /v3/user-invitations/{id}`, header `X-Session-Token`,
//! JSON:API (`application/vnd.api+json` both ways). Only the recipient's
//! answer can be set: `accepted` or `rejected`. Errors are JSON:API error
//! documents, with `source.pointer` where a member of the body is at fault.

use std::borrow::Cow;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::patch;
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
    key: "session_token",
    flag: "ctrl-hub-token",
    value_name: "TOKEN",
    default: "sandbox-ctrlhub-token",
    help: "Ctrl-Hub `X-Session-Token` expected",
}];

const TYPE: &str = "user-invitations";
/// Invitations expire a week after they are sent.
const LIFETIME_SECS: u64 = 7 * 86_400;

/// The simulated Ctrl-Hub.
pub(crate) struct CtrlHub {
    gate: Gate,
    token: String,
    invites: Table<Invite>,
}

pub(super) fn start(ctx: &Context) -> Arc<dyn Simulation> {
    Arc::new(CtrlHub {
        gate: ctx.gate(),
        token: ctx.credential(CREDENTIALS[0].flag),
        invites: ctx.table(),
    })
}

impl Simulation for CtrlHub {
    fn routes(self: Arc<Self>) -> Router {
        Router::new()
            .route("/v3/user-invitations/{id}", patch(update))
            .with_state(self)
    }

    fn invites(&self) -> &dyn Invites {
        &self.invites
    }
}

pub(crate) struct Invite {
    email: Box<str>,
    status: &'static str,
    created: u64,
}

impl store::Invite for Invite {
    fn fresh(key: &str, now: u64) -> Self {
        Invite {
            email: format!("invitee-{key}@example.com").into(),
            status: "pending",
            created: now,
        }
    }

    fn seed(row: &SeedRow, now: u64) -> Result<(String, Self), String> {
        if row.invite_id.is_empty() {
            return Err("ctrl_hub needs invite_id".into());
        }
        let status = match row.status.as_str() {
            "" | "pending" => "pending",
            "accepted" => "accepted",
            "rejected" => "rejected",
            other => {
                return Err(format!(
                    "ctrl_hub status `{other}` is not pending, accepted or rejected"
                ));
            }
        };
        let key = wire::key_part(&row.invite_id).into_owned();
        let mut invite = Self::fresh(&key, now);
        invite.status = status;
        if !row.email.is_empty() {
            invite.email = row.email.as_str().into();
        }
        Ok((key, invite))
    }
}

#[derive(Deserialize)]
struct Document<'a> {
    #[serde(borrow, default)]
    data: Option<Resource<'a>>,
}

#[derive(Deserialize)]
struct Resource<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(default)]
    attributes: Option<Attributes>,
}

#[derive(Deserialize)]
struct Attributes {
    #[serde(default)]
    status: Option<Value>,
}

#[derive(Serialize)]
struct Reply<'a> {
    data: Data<'a>,
    jsonapi: JsonApi,
}

#[derive(Serialize)]
struct Data<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    attributes: ReplyAttributes<'a>,
    meta: Meta,
    relationships: Relationships,
}

#[derive(Serialize)]
struct ReplyAttributes<'a> {
    email: &'a str,
    status: &'a str,
}

#[derive(Serialize)]
struct Meta {
    created_at: String,
    expires_at: String,
}

#[derive(Serialize)]
struct Relationships {
    organisation: Related,
    invitor: Related,
    invitee: Related,
}

#[derive(Serialize)]
struct Related {
    data: Identifier,
}

#[derive(Serialize)]
struct Identifier {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct JsonApi {
    version: &'static str,
}

fn related(seed: &str, kind: &'static str) -> Related {
    Related {
        data: Identifier {
            id: wire::pseudo_uuid(seed),
            kind,
        },
    }
}

fn error(status: StatusCode, detail: &str, pointer: Option<&str>) -> Response {
    let mut e = json!({
        "status": status.as_str(),
        "title": status.canonical_reason().unwrap_or("Error"),
        "detail": detail,
    });
    if let Some(p) = pointer {
        e["source"] = json!({ "pointer": p });
    }
    wire::json(status, wire::JSON_API, &json!({ "errors": [e] }), false)
}

async fn update(
    State(app): State<Arc<CtrlHub>>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    app.gate
        .serve(&conn, |reject_auth| {
            respond(&app, reject_auth, &id, &headers, body)
        })
        .await
}

/// JSON:API allows only its `ext` and `profile` parameters on its media type.
fn is_json_api(headers: &HeaderMap) -> bool {
    match wire::media_type(headers) {
        Some((essence, params)) => {
            essence.eq_ignore_ascii_case(wire::JSON_API)
                && params
                    .split(';')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .all(|p| {
                        let name = p.split('=').next().unwrap_or("").trim();
                        name.eq_ignore_ascii_case("ext") || name.eq_ignore_ascii_case("profile")
                    })
        }
        None => false,
    }
}

fn respond(
    app: &CtrlHub,
    reject_auth: bool,
    id: &str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match wire::header_str(headers, "x-session-token") {
        None => {
            return error(
                StatusCode::UNAUTHORIZED,
                "X-Session-Token header is required",
                None,
            );
        }
        Some(t) if reject_auth || t != app.token => {
            return error(
                StatusCode::UNAUTHORIZED,
                "The session token is invalid or has expired",
                None,
            );
        }
        Some(_) => {}
    }
    let key = wire::key_part(id).into_owned();
    let refuse = |r: Response| {
        app.invites.count(&key);
        r
    };
    if !is_json_api(headers) {
        return refuse(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/vnd.api+json without media type parameters",
            None,
        ));
    }
    let bytes = match body {
        Ok(b) => b,
        Err(rejection) => return refuse(rejection.into_response()),
    };
    let doc: Document = match serde_json::from_slice(&bytes) {
        Ok(d) => d,
        Err(e) if e.is_data() => {
            return refuse(error(
                StatusCode::BAD_REQUEST,
                &e.to_string(),
                Some("/data"),
            ));
        }
        Err(e) => {
            return refuse(error(
                StatusCode::BAD_REQUEST,
                &format!("The body is not JSON: {e}"),
                None,
            ));
        }
    };
    let Some(data) = doc.data else {
        return refuse(error(
            StatusCode::BAD_REQUEST,
            "The document must have a `data` member",
            Some("/data"),
        ));
    };
    if data.kind.as_deref().is_some_and(|k| k != TYPE) {
        return refuse(error(
            StatusCode::CONFLICT,
            &format!("data.type must be `{TYPE}`"),
            Some("/data/type"),
        ));
    }
    if data.id.as_deref().is_some_and(|i| i != id) {
        return refuse(error(
            StatusCode::CONFLICT,
            "data.id does not match the invitation in the URL",
            Some("/data/id"),
        ));
    }
    let pointer = Some("/data/attributes/status");
    let new_status = match data.attributes.and_then(|a| a.status) {
        None => {
            return refuse(error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "status is required",
                pointer,
            ));
        }
        Some(Value::String(s)) if s == "accepted" => "accepted",
        Some(Value::String(s)) if s == "rejected" => "rejected",
        Some(other) => {
            return refuse(error(
                StatusCode::UNPROCESSABLE_ENTITY,
                &format!("status must be accepted or rejected, not {other}"),
                pointer,
            ));
        }
    };
    let recording = app.invites.recording();
    let reply = app.invites.update(&key, wire::now_secs(), |inv| {
            inv.status = new_status;
            let reply = Reply {
                data: Data {
                    id,
                    kind: TYPE,
                    attributes: ReplyAttributes {
                        email: &inv.email,
                        status: inv.status,
                    },
                    meta: Meta {
                        created_at: wire::timestamp(inv.created, "Z"),
                        expires_at: wire::timestamp(inv.created + LIFETIME_SECS, "Z"),
                    },
                    relationships: Relationships {
                        organisation: related(&format!("org:{key}"), "organisations"),
                        invitor: related(&format!("invitor:{key}"), "users"),
                        invitee: related(&format!("invitee:{key}"), "users"),
                    },
                },
                jsonapi: JsonApi { version: "1.0" },
            };
            let record = recording.then_some(Record::Status(new_status));
            (
                wire::json(StatusCode::OK, wire::JSON_API, &reply, false),
                record,
            )
        });
    reply.unwrap_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            &format!("No user invitation with id {id}"),
            None,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::testkit::{BodyJson, Kit, Setup};

    async fn kit(seed: &'static str) -> Kit {
        Kit::start(Setup {
            name: "ctrl_hub",
            simulate: start,
            credentials: vec![(CREDENTIALS[0].flag, CREDENTIALS[0].default.into())],
            seed: Some(seed),
            nonce_max_uses: 0,
        })
        .await
    }

    const ID: &str = "3c90c3cc-0d44-4b50-8888-8dd25736052a";
    const SEED: &str = "kind,scope,invite_id,email,first_name,last_name,status,roles\n\
                        ctrl_hub,,3c90c3cc-0d44-4b50-8888-8dd25736052a,jsmith@example.com,,,pending,\n";

    async fn send(t: &Kit, id: &str, content_type: &str, body: Value) -> reqwest::Response {
        t.client
            .patch(t.url(&format!("/v3/user-invitations/{id}")))
            .header("X-Session-Token", "sandbox-ctrlhub-token")
            .header("content-type", content_type)
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    fn doc(status: &str) -> Value {
        json!({"data": {"type": "user-invitations", "id": ID, "attributes": {"status": status}}})
    }

    #[tokio::test]
    async fn happy_path_is_a_json_api_document() {
        let t = kit(SEED).await;
        let r = send(&t, ID, wire::JSON_API, doc("accepted")).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], wire::JSON_API);
        let v: Value = r.body_json().await.unwrap();
        assert_eq!(v["data"]["id"], ID);
        assert_eq!(v["data"]["type"], TYPE);
        assert_eq!(
            v["data"]["attributes"],
            json!({"email": "jsmith@example.com", "status": "accepted"})
        );
        assert!(
            v["data"]["meta"]["created_at"]
                .as_str()
                .unwrap()
                .ends_with('Z')
        );
        assert!(v["data"]["meta"]["expires_at"].is_string());
        assert_eq!(
            v["data"]["relationships"]["invitee"]["data"]["type"],
            "users"
        );
        assert!(v["jsonapi"]["version"].is_string());
        // type and id may be left out.
        let r = send(
            &t,
            ID,
            wire::JSON_API,
            json!({"data": {"attributes": {"status": "rejected"}}}),
        )
        .await;
        assert_eq!(r.status(), 200);
        let inv = t.invite(&format!("ctrl_hub/{ID}")).unwrap();
        assert_eq!(inv.applied.len(), 2);
        assert!(inv.applied[0].seq < inv.applied[1].seq);
        t.stop().await;
    }

    #[tokio::test]
    async fn documented_errors() {
        let t = kit(SEED).await;
        let cases = [
            (ID, wire::JSON, doc("accepted"), 415),
            (
                ID,
                "application/vnd.api+json; charset=utf-8",
                doc("accepted"),
                415,
            ),
            (
                ID,
                "application/vnd.api+json; ext=\"x\"",
                doc("accepted"),
                200,
            ),
            (ID, wire::JSON_API, doc("pending"), 422),
            (ID, wire::JSON_API, json!({"data": {"attributes": {}}}), 422),
            (
                ID,
                wire::JSON_API,
                json!({"data": {"id": "other", "attributes": {"status": "accepted"}}}),
                409,
            ),
            (
                ID,
                wire::JSON_API,
                json!({"data": {"type": "users", "attributes": {"status": "accepted"}}}),
                409,
            ),
            (ID, wire::JSON_API, json!({"nodata": 1}), 400),
            (
                "unknown",
                wire::JSON_API,
                json!({"data": {"attributes": {"status": "accepted"}}}),
                404,
            ),
        ];
        for (id, ct, body, status) in cases {
            let r = send(&t, id, ct, body.clone()).await;
            assert_eq!(r.status().as_u16(), status, "{ct} {body}");
            if status != 200 {
                let v: Value = r.body_json().await.unwrap();
                assert_eq!(v["errors"][0]["status"], status.to_string(), "{body}");
            }
        }
        let r = send(&t, ID, wire::JSON_API, doc("maybe")).await;
        let v: Value = r.body_json().await.unwrap();
        assert_eq!(
            v["errors"][0]["source"]["pointer"],
            "/data/attributes/status"
        );
        let r = t
            .client
            .patch(t.url(&format!("/v3/user-invitations/{ID}")))
            .header("content-type", wire::JSON_API)
            .body(doc("accepted").to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()["content-type"], wire::JSON_API);
        t.stop().await;
    }
}
