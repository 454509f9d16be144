//! A client certificate refused in an HTTP answer instead of in the TLS
//! handshake. nginx with `ssl_verify_client on` completes the handshake and
//! answers `400` with "No required SSL certificate was sent" (its code 496)
//! or "The SSL certificate error" (495). Read as an answer about the row,
//! every row would end `rejected` and be listed to fix, when nothing is
//! wrong with the rows; so the vendor stops instead, its rows pending, as
//! it does when the same refusal comes in the handshake.

use super::classify::{Context, Problem, check_client_cert, set_client_cert};

/// How much of an answer's body is searched for the server's words.
pub(crate) const LOOK_AT: usize = 4096;

/// The titles of nginx's pages for the two refusals, lower case. The whole
/// title, not the words alone: a vendor's own 400 may quote a row's cells,
/// and a cell must not be able to stop the vendor.
const NONE_SENT: &str = "<title>400 no required ssl certificate was sent</title>";
const CERT_ERROR: &str = "<title>400 the ssl certificate error</title>";

/// What `status` and `body` say, if they are a server refusing the client
/// certificate (or its absence) for the vendor of `ctx`.
pub fn refused_client_certificate(status: u16, body: &[u8], ctx: &Context) -> Option<Problem> {
    let said = match status {
        496 => "No required SSL certificate was sent",
        495 => "The SSL certificate error",
        400 => {
            let text = String::from_utf8_lossy(&body[..body.len().min(LOOK_AT)]).to_lowercase();
            if text.contains(NONE_SENT) {
                "No required SSL certificate was sent"
            } else if text.contains(CERT_ERROR) {
                "The SSL certificate error"
            } else {
                return None;
            }
        }
        _ => return None,
    };
    let answered = format!("it answered HTTP {status}: {said}");
    Some(match &ctx.client_cert {
        None => ctx.say(
            &format!("the server requires a client certificate ({answered})"),
            &set_client_cert(&ctx.table),
        ),
        Some(cert) => ctx.say(
            &format!(
                "the server refused our client certificate ({}): {answered}",
                cert.display()
            ),
            &check_client_cert(&ctx.table),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::proxy::Route;

    fn context(client_cert: Option<&str>) -> Context {
        Context {
            table: "vendors.om".into(),
            host: "om.example:443".into(),
            route: Route::Direct {
                why: "no proxy is set".into(),
            },
            ca_cert: None,
            client_cert: client_cert.map(Into::into),
            trust: "the system's certificate store".into(),
        }
    }

    /// nginx's page for a missing client certificate, as it sends it.
    const NGINX_496: &str = "<html>\r\n<head><title>400 No required SSL certificate was sent</title></head>\r\n\
        <body>\r\n<center><h1>400 Bad Request</h1></center>\r\n\
        <center>No required SSL certificate was sent</center>\r\n<hr><center>nginx/1.22.1</center>\r\n</body>\r\n</html>\r\n";

    const NGINX_495: &str = "<html>\r\n<head><title>400 The SSL certificate error</title></head>\r\n\
        <body>\r\n<center><h1>400 Bad Request</h1></center>\r\n\
        <center>The SSL certificate error</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

    #[test]
    fn nginx_asking_for_a_client_certificate_stops_the_vendor() {
        let p = refused_client_certificate(400, NGINX_496.as_bytes(), &context(None))
            .expect("a refusal");
        let m = p.to_string();
        assert!(m.starts_with("[vendors.om] om.example:443: "), "{m}");
        assert!(m.contains("requires a client certificate"), "{m}");
        assert!(m.contains("No required SSL certificate was sent"), "{m}");
        assert!(m.contains("client_cert = \"PATH\""), "{m}");
        assert!(refused_client_certificate(496, b"", &context(None)).is_some());
    }

    #[test]
    fn nginx_refusing_ours_names_it() {
        let ctx = context(Some("/etc/invitesync/om-client.pem"));
        let m = refused_client_certificate(400, NGINX_495.as_bytes(), &ctx)
            .expect("a refusal")
            .to_string();
        assert!(
            m.contains("refused our client certificate (/etc/invitesync/om-client.pem)"),
            "{m}"
        );
        assert!(m.contains("The SSL certificate error"), "{m}");
        assert!(refused_client_certificate(495, b"", &ctx).is_some());
    }

    #[test]
    fn other_answers_are_the_rows_own() {
        let ctx = context(None);
        let validation = br#"{"detail":[{"loc":["body","status"],"msg":"bad certificate"}]}"#;
        // A vendor quoting a row that holds nginx's words is the row's answer.
        let quoted = br#"{"detail":[{"loc":["body","note"],"msg":"`No required SSL certificate was sent` is too long"}]}"#;
        for (status, body) in [
            (400, &validation[..]),
            (400, &quoted[..]),
            (400, b"".as_slice()),
            (200, NGINX_496.as_bytes()),
            (403, NGINX_496.as_bytes()),
            (500, NGINX_495.as_bytes()),
        ] {
            assert!(
                refused_client_certificate(status, body, &ctx).is_none(),
                "{status}"
            );
        }
    }
}
