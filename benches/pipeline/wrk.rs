//! The physical limit: `wrk` (C, epoll) sending the same Securegate PUTs at
//! the same concurrency to the same sandbox, next to the pipeline's rate.

use std::process::{Command, Stdio};
use std::sync::Arc;

use tokio::runtime::Runtime;

use crate::Res;
use crate::report::Report;
use crate::sandbox::SandboxProc;
use crate::settings::Settings;

/// Each request a new invite of one of 97 events, as the pipeline's input.
const SCRIPT: &str = r#"
local n = 0
wrk.method = "PUT"
wrk.headers["x-api-key"] = "sandbox-securegate-key"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
wrk.body = '{"status":"sent"}'
request = function()
  n = n + 1
  return wrk.format(nil, "/events/evt-" .. (n % 97) .. "/invites/inv-" .. n)
end
"#;

pub(crate) fn against_wrk(
    s: &Settings,
    rt: &Runtime,
    sandbox: &Arc<SandboxProc>,
    concurrency: usize,
    pipeline_rate: f64,
    report: &mut Report,
) -> Res<()> {
    const ROW: &str = "physical limit: pipeline / wrk (same PUTs, same concurrency)";
    let secs = if s.quick { 3 } else { 6 };
    println!("\n== wrk -t2 -c{concurrency} -d{secs}s: the same Securegate PUTs");
    if Command::new("wrk").arg("--version").output().is_err() {
        let why = "wrk is not installed (apt-get install wrk)";
        report.detail(format!("wrk: not measured: {why}"));
        report.row(ROW, format!("not measured: {why}"), ">= 0.60", None);
        return Ok(());
    }
    let script = s.work.join("wrk-put.lua");
    std::fs::write(&script, SCRIPT).map_err(|e| e.to_string())?;
    rt.block_on(sandbox.reset())?;
    let out = Command::new("wrk")
        .args(["-t2", &format!("-c{concurrency}"), &format!("-d{secs}s")])
        .arg("-s")
        .arg(&script)
        .arg(&sandbox.base)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("wrk: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    let Some(wrk_rate) = field("Requests/sec:") else {
        return Err(format!("wrk said nothing measurable: {text}"));
    };
    if let Some(bad) = field("Non-2xx or 3xx responses:") {
        return Err(format!("wrk had {bad} answers that were not 2xx: {text}"));
    }
    let ratio = pipeline_rate / wrk_rate;
    println!("  wrk {wrk_rate:.0} req/s; pipeline {pipeline_rate:.0} req/s");
    report.detail(format!(
        "wrk (-t2 -c{concurrency}, {secs} s, the same PUTs to the same sandbox): {wrk_rate:.0} req/s; pipeline {pipeline_rate:.0} req/s"
    ));
    report.row(
        ROW,
        format!("{ratio:.2} ({pipeline_rate:.0} vs {wrk_rate:.0} req/s)"),
        ">= 0.60",
        Some(ratio >= 0.60),
    );
    Ok(())
}
