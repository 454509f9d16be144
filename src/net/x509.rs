//! Just enough of X.509 to tell an operator which certificate a server
//! showed: its subject, issuer, validity and the names it covers.
//!
//! A small DER reader instead of a full X.509 crate: these fields are all
//! `invitesync check` and the failure messages print, and nothing here
//! decides trust (rustls and webpki do that).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What a certificate says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// `CN=api.example.com, O=Example` (attributes in the certificate's order).
    pub subject: String,
    pub issuer: String,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// The DNS names and IP addresses of its subjectAltName extension.
    pub names: Vec<String>,
}

impl Summary {
    /// Reads a DER certificate; `None` if it is not one.
    pub fn parse(der: &[u8]) -> Option<Summary> {
        let (cert, _) = tlv(der, SEQUENCE)?;
        let (tbs, _) = tlv(cert, SEQUENCE)?;
        let mut rest = tbs;
        if rest.first() == Some(&0xA0) {
            rest = tlv(rest, 0xA0)?.1; // version
        }
        rest = tlv(rest, INTEGER)?.1; // serial number
        rest = tlv(rest, SEQUENCE)?.1; // signature algorithm
        let (issuer, r) = tlv(rest, SEQUENCE)?;
        let (validity, r) = tlv(r, SEQUENCE)?;
        let (subject, r) = tlv(r, SEQUENCE)?;
        let (_spki, mut r) = tlv(r, SEQUENCE)?;
        let (not_before, v) = time(validity)?;
        let (not_after, _) = time(v)?;
        let mut names = Vec::new();
        while let Some((&tag, _)) = r.split_first() {
            let (body, next) = tlv(r, tag)?;
            if tag == 0xA3 {
                names = alt_names(body).unwrap_or_default();
            }
            r = next;
        }
        Some(Summary {
            subject: name(subject)?,
            issuer: name(issuer)?,
            not_before,
            not_after,
            names,
        })
    }

    /// `2027-01-02 03:04:05 UTC`.
    pub fn expires(&self) -> String {
        date(self.not_after)
    }

    /// Whole days from `now` until it expires (negative once expired).
    pub fn days_left(&self, now: SystemTime) -> i64 {
        let now = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        (self.not_after - now).div_euclid(86_400)
    }
}

/// Unix seconds as `2027-01-02 03:04:05 UTC`.
pub fn date(unix: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(unix.max(0) as u64);
    let text = humantime::format_rfc3339_seconds(t).to_string();
    format!("{} UTC", text.trim_end_matches('Z').replacen('T', " ", 1))
}

const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;

/// One DER element with tag `tag`: its contents and what follows it.
fn tlv(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = input.split_first()?;
    if t != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7F) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some(rest.split_at(len))
}

/// Any one element: its tag, contents and what follows.
fn any(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *input.first()?;
    let (body, rest) = tlv(input, tag)?;
    Some((tag, body, rest))
}

/// A Name as `CN=..., O=...`.
fn name(mut rdns: &[u8]) -> Option<String> {
    let mut parts = Vec::new();
    while !rdns.is_empty() {
        let (set, rest) = tlv(rdns, SET)?;
        rdns = rest;
        let mut atvs = set;
        while !atvs.is_empty() {
            let (atv, rest) = tlv(atvs, SEQUENCE)?;
            atvs = rest;
            let (oid, value) = tlv(atv, OID)?;
            let label = match oid {
                [0x55, 0x04, 0x03] => "CN",
                [0x55, 0x04, 0x0A] => "O",
                [0x55, 0x04, 0x0B] => "OU",
                [0x55, 0x04, 0x06] => "C",
                [0x55, 0x04, 0x07] => "L",
                [0x55, 0x04, 0x08] => "ST",
                _ => continue,
            };
            let (tag, body, _) = any(value)?;
            parts.push(format!("{label}={}", string(tag, body)));
        }
    }
    Some(if parts.is_empty() {
        "(no name)".to_string()
    } else {
        parts.join(", ")
    })
}

/// A directory string as text a terminal can show safely: control
/// characters (a hostile certificate could carry escape sequences) become `?`.
fn string(tag: u8, body: &[u8]) -> String {
    let text: String = match tag {
        // BMPString: UTF-16 big-endian.
        0x1E => char::decode_utf16(
            body.chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]])),
        )
        .map(|c| c.unwrap_or('?'))
        .collect(),
        // TeletexString: treated as Latin-1, as most software does.
        0x14 => body.iter().map(|b| *b as char).collect(),
        _ => String::from_utf8_lossy(body).into_owned(),
    };
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// UTCTime or GeneralizedTime as Unix seconds, and what follows.
fn time(input: &[u8]) -> Option<(i64, &[u8])> {
    let (tag, body, rest) = any(input)?;
    let text = std::str::from_utf8(body).ok()?.strip_suffix('Z')?;
    let (year, text) = match tag {
        0x17 => {
            let yy: i64 = text.get(..2)?.parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &text[2..])
        }
        0x18 => (text.get(..4)?.parse().ok()?, &text[4..]),
        _ => return None,
    };
    let field = |i: usize| -> Option<i64> { text.get(i..i + 2)?.parse().ok() };
    let (month, day, hour, minute) = (field(0)?, field(2)?, field(4)?, field(6)?);
    let second = field(8).unwrap_or(0);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some((days * 86_400 + hour * 3600 + minute * 60 + second, rest))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The subjectAltName DNS names and IP addresses of an extensions block.
fn alt_names(extensions: &[u8]) -> Option<Vec<String>> {
    let (mut exts, _) = tlv(extensions, SEQUENCE)?;
    while !exts.is_empty() {
        let (ext, rest) = tlv(exts, SEQUENCE)?;
        exts = rest;
        let (oid, mut body) = tlv(ext, OID)?;
        if oid != [0x55, 0x1D, 0x11] {
            continue;
        }
        if body.first() == Some(&0x01) {
            body = tlv(body, 0x01)?.1; // critical
        }
        let (value, _) = tlv(body, OCTET_STRING)?;
        let (mut general, _) = tlv(value, SEQUENCE)?;
        let mut names = Vec::new();
        while !general.is_empty() {
            let (tag, body, rest) = any(general)?;
            general = rest;
            match (tag, body.len()) {
                (0x82, _) => names.push(string(0x16, body)),
                (0x87, 4) => names
                    .push(std::net::Ipv4Addr::new(body[0], body[1], body[2], body[3]).to_string()),
                (0x87, 16) => {
                    let mut b = [0u8; 16];
                    b.copy_from_slice(body);
                    names.push(std::net::Ipv6Addr::from(b).to_string());
                }
                _ => {}
            }
        }
        return Some(names);
    }
    Some(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_rcgen_wrote() {
        let mut params =
            rcgen::CertificateParams::new(vec!["api.example.com".to_string()]).unwrap();
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "api.example.com");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Example\u{1b}[31m");
        params.not_before = rcgen::date_time_ymd(2024, 2, 29);
        params.not_after = rcgen::date_time_ymd(2051, 1, 2);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let s = Summary::parse(cert.der()).expect("parses");
        assert_eq!(s.subject, "CN=api.example.com, O=Example?[31m");
        assert_eq!(s.issuer, s.subject);
        assert_eq!(s.names, ["api.example.com", "127.0.0.1"]);
        assert_eq!(date(s.not_before), "2024-02-29 00:00:00 UTC");
        assert_eq!(s.expires(), "2051-01-02 00:00:00 UTC");
        let then = UNIX_EPOCH + Duration::from_secs(s.not_after as u64 - 86_400 * 3);
        assert_eq!(s.days_left(then), 3);
    }

    #[test]
    fn junk_is_not_a_certificate() {
        assert!(Summary::parse(b"").is_none());
        assert!(Summary::parse(b"\x30\x84\xff\xff\xff\xff").is_none());
        assert!(Summary::parse(&[0x30, 0x03, 0x30, 0x01, 0x02]).is_none());
    }
}
