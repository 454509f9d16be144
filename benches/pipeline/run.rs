//! The pipeline: `invitesync run`, wrapped to learn its peak RSS.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::Res;
use crate::settings::Settings;

pub(crate) const PEAK_RSS_FLAG: &str = "--peak-rss-of";

/// `pipeline --peak-rss-of SECS PROGRAM ARGS...`: runs the program (killing it
/// after SECS), then prints `EXIT_CODE PEAK_RSS_KIB`. This process has no
/// other child, so RUSAGE_CHILDREN's maximum is the program's own.
pub(crate) fn peak_rss_wrapper(args: &[String]) -> i32 {
    let (Some(secs), Some(program)) = (args.first(), args.get(1)) else {
        eprintln!("usage: {PEAK_RSS_FLAG} SECS PROGRAM ARGS...");
        return 2;
    };
    let secs: u64 = secs.parse().unwrap_or(600);
    let mut child = match Command::new(program)
        .args(&args[2..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot start {program}: {e}");
            return 2;
        }
    };
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watchdog = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(secs);
            while !done.load(Ordering::Acquire) {
                if Instant::now() >= deadline {
                    eprintln!("bench: killed after {secs} s");
                    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let status = child.wait();
    done.store(true, Ordering::Release);
    let _ = watchdog.join();
    let code = match status {
        Ok(s) => exit_code(s),
        Err(_) => -1,
    };
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN);
    let (rss, cpu_us) = usage.map_or((0, 0), |u| {
        let us = |t: nix::sys::time::TimeVal| t.tv_sec() * 1_000_000 + t.tv_usec();
        (u.max_rss(), us(u.user_time()) + us(u.system_time()))
    });
    println!("{code} {rss} {cpu_us}");
    0
}

pub(crate) fn exit_code(s: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0))
}

pub(crate) struct PipelineRun {
    pub(crate) elapsed: Duration,
    pub(crate) code: i32,
    pub(crate) peak_rss_kib: u64,
    /// User and system CPU time of the invitesync process.
    pub(crate) cpu: Duration,
}

pub(crate) struct Job<'a> {
    pub(crate) input: &'a Path,
    pub(crate) config: &'a Path,
    pub(crate) state: &'a Path,
    pub(crate) results: &'a Path,
    pub(crate) args: &'a [&'a str],
    /// Start afresh: remove the state file first.
    pub(crate) fresh: bool,
}

pub(crate) fn run_pipeline(s: &Settings, job: &Job<'_>) -> Res<PipelineRun> {
    if job.fresh {
        for suffix in ["", "-wal", "-shm", ".lock"] {
            let mut p = job.state.as_os_str().to_owned();
            p.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(p));
        }
    }
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let log_path = s.work.join("run.log");
    let log = File::options()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| e.to_string())?;
    let start = Instant::now();
    let out = Command::new(me)
        .arg(PEAK_RSS_FLAG)
        .arg("900")
        .arg(&s.bin)
        .arg("run")
        .arg(job.input)
        .arg("--config")
        .arg(job.config)
        .arg("--state")
        .arg(job.state)
        .arg("--results")
        .arg(job.results)
        .arg("--quiet")
        .args(job.args)
        .stdin(Stdio::null())
        .stderr(log)
        .output()
        .map_err(|e| format!("cannot run the pipeline: {e}"))?;
    let elapsed = start.elapsed();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut words = text.split_whitespace();
    let code: i32 = words.next().and_then(|w| w.parse().ok()).unwrap_or(-1);
    let peak_rss_kib: u64 = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
    let cpu_us: u64 = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
    if code != 0 {
        return Err(format!(
            "invitesync run exited with {code} (see {})",
            log_path.display()
        ));
    }
    Ok(PipelineRun {
        elapsed,
        code,
        peak_rss_kib,
        cpu: Duration::from_micros(cpu_us),
    })
}
