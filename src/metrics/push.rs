//! `--pushgateway URL`: the metrics pushed to a Prometheus Pushgateway, in the
//! group `job=<--metrics-job>, shard=<K-of-N or all>`
//! (`{URL}/metrics/job/{job}/shard/{shard}`), so that the shards of one job
//! and the jobs of one gateway keep apart.
//!
//! The gateway's methods decide what a push leaves behind: `PUT` replaces
//! the whole group, `POST` only the families it carries. A run that
//! succeeded `PUT`s everything, the last-success time included (and drops
//! what an older version or configuration left there); a run still going or
//! one that did not succeed `POST`s everything but the last-success time,
//! so a failed night never hides when the last good one ended.

use std::time::Duration;

use url::Url;

/// How long a push may take: a gateway that hangs must not hold up the end of
/// a run by more than this.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Where to push and with what.
#[derive(Clone)]
pub struct Gateway {
    http: reqwest::Client,
    group: Url,
    /// The group's URL for messages: no user or password.
    shown: String,
}

impl Gateway {
    pub fn new(base: &Url, job: &str, shard: &str) -> Result<Gateway, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT.min(Duration::from_secs(5)))
            .user_agent(crate::net::transport::USER_AGENT_VALUE)
            .no_proxy()
            .build()
            .map_err(|e| format!("cannot set up the HTTP client for the Pushgateway: {e}"))?;
        let group = group_url(base, job, shard);
        let mut shown = group.clone();
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        Ok(Gateway {
            http,
            group,
            shown: shown.to_string(),
        })
    }

    pub fn url(&self) -> &str {
        &self.shown
    }

    /// Pushes `text`: `replace` with `PUT` (the whole group), else `POST`.
    pub async fn push(&self, text: String, replace: bool) -> Result<(), String> {
        let method = if replace {
            reqwest::Method::PUT
        } else {
            reqwest::Method::POST
        };
        let answer = self
            .http
            .request(method.clone(), self.group.clone())
            .header(
                http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )
            .body(text)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "cannot push the metrics to the Pushgateway ({method} {}): {}",
                    self.shown,
                    one_line(&error_chain(&e))
                )
            })?;
        let status = answer.status();
        if status.is_success() {
            return Ok(());
        }
        let body = answer.text().await.unwrap_or_default();
        let said: String = one_line(&body).chars().take(300).collect();
        Err(format!(
            "the Pushgateway refused the metrics ({method} {}): HTTP {}{}",
            self.shown,
            status.as_u16(),
            if said.is_empty() {
                String::new()
            } else {
                format!(": {said}")
            }
        ))
    }
}

/// reqwest's error and its causes, which say what actually went wrong
/// (refused, timed out, no such host).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let said = c.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = c.source();
    }
    text
}

/// Text on one line, runs of white space made one space.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `{base}/metrics/job/{job}/shard/{shard}`, each value written plainly when
/// it is safe in a path, else as `NAME@base64/VALUE` (URL-safe base64), the
/// form the Pushgateway reads for values with a `/` or other characters.
pub fn group_url(base: &Url, job: &str, shard: &str) -> Url {
    let mut path = base.path().trim_end_matches('/').to_string();
    path.push_str("/metrics");
    for (name, value) in [("job", job), ("shard", shard)] {
        path.push('/');
        path.push_str(&segment(name, value));
    }
    let mut url = base.clone();
    url.set_path(&path);
    url.set_query(None);
    url.set_fragment(None);
    url
}

fn segment(name: &str, value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if plain {
        format!("{name}/{value}")
    } else {
        format!("{name}@base64/{}", base64_url(value.as_bytes()))
    }
}

/// RFC 4648 §5 base64 (URL and filename safe), without padding; `=` for an
/// empty value, which the Pushgateway needs to see a segment at all.
fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    if bytes.is_empty() {
        return "=".into();
    }
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// Reads `--pushgateway`: an http or https URL of the gateway itself (a path
/// prefix is kept, for a gateway behind a route prefix).
pub fn parse_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text.trim()).map_err(|e| {
        format!("--pushgateway `{text}` is not a URL ({e}); write e.g. http://pushgateway:9091")
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!(
            "--pushgateway `{text}`: give the gateway's http:// or https:// address, e.g. http://pushgateway:9091"
        ));
    }
    if url.path().trim_end_matches('/').ends_with("/metrics") || url.path().contains("/metrics/") {
        return Err(format!(
            "--pushgateway `{text}`: give the gateway's address only; invitesync adds /metrics/job/... itself"
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(s: &str) -> Url {
        parse_url(s).unwrap()
    }

    #[test]
    fn the_group_is_job_and_shard() {
        let u = group_url(&base("http://pg:9091"), "invitesync", "all");
        assert_eq!(
            u.as_str(),
            "http://pg:9091/metrics/job/invitesync/shard/all"
        );
        let u = group_url(&base("https://pg.example/prefix/"), "nightly", "2-of-3");
        assert_eq!(
            u.as_str(),
            "https://pg.example/prefix/metrics/job/nightly/shard/2-of-3"
        );
    }

    #[test]
    fn values_that_are_not_plain_go_as_base64() {
        // The Pushgateway's own example: `/var/tmp` is `L3Zhci90bXA`.
        assert_eq!(segment("path", "/var/tmp"), "path@base64/L3Zhci90bXA");
        assert_eq!(segment("job", "nightly/eu"), "job@base64/bmlnaHRseS9ldQ");
        assert_eq!(segment("job", ""), "job@base64/=");
        assert_eq!(segment("job", "a b"), "job@base64/YSBi");
        // URL-safe alphabet: `-` and `_`, not `+` and `/`.
        assert_eq!(base64_url(&[0xfb, 0xff]), "-_8");
        for (text, want) in [
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
        ] {
            assert_eq!(base64_url(text.as_bytes()), want);
        }
    }

    #[test]
    fn only_a_gateway_address_is_accepted() {
        assert!(parse_url("http://127.0.0.1:9091").is_ok());
        assert!(parse_url("pushgateway:9091").is_err());
        assert!(parse_url("ftp://pg:21").is_err());
        assert!(parse_url("not a url").is_err());
        let e = parse_url("http://pg:9091/metrics/job/x").unwrap_err();
        assert!(e.contains("adds /metrics/job"), "{e}");
    }

    #[test]
    fn messages_do_not_show_a_password() {
        let g = Gateway::new(&base("https://user:s3cret@pg:9091"), "j", "all").unwrap();
        assert!(!g.url().contains("s3cret"), "{}", g.url());
        assert!(g.url().ends_with("/metrics/job/j/shard/all"));
    }
}
