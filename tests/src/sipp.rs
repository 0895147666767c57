//! Runs SIPp scenarios from `tests/scenarios/` against the gateway.
//!
//! Every run gets its own directory (`<run dir>/sipp-<n>/`) used as SIPp's working directory,
//! so the RTP peers SIPp starts with `<exec command>` drop their reports there. The scenarios
//! reference three custom keywords: `[peer]` (the peer binary), `[peer_args]` (extra peer
//! arguments) and `[field0]` (the call's peer RTP port, from `ports.csv`).

use std::collections::HashMap;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::report::PeerReport;
use crate::run::{scenarios_dir, TestRun};

/// Builder for one SIPp client run.
#[derive(Debug, Clone)]
pub struct Sipp {
    dir: PathBuf,
    scenario: String,
    target: SocketAddr,
    local_port: u16,
    media_port: u16,
    tcp: bool,
    calls: u32,
    concurrent: u32,
    rate_per_s: u32,
    hold_ms: u64,
    peer_bin: PathBuf,
    peer_args: String,
    peer_ports: Vec<u16>,
    extra: Vec<String>,
    timeout: Duration,
}

impl Sipp {
    /// One call of `scenario` (a file name in `tests/scenarios/`) toward `target`.
    pub fn new(run: &TestRun, scenario: &str, target: SocketAddr) -> Sipp {
        Sipp {
            dir: run.subdir(&format!("sipp-{}", scenario.trim_end_matches(".xml"))),
            scenario: scenario.to_string(),
            target,
            local_port: run.ports().client_sip(),
            media_port: run.ports().client_media(),
            tcp: false,
            calls: 1,
            concurrent: 1,
            rate_per_s: 10,
            hold_ms: 2000,
            peer_bin: run.peer_bin().to_path_buf(),
            peer_args: "--duration 4".to_string(),
            peer_ports: run.ports().peer_ports(1),
            extra: Vec::new(),
            timeout: Duration::from_secs(30),
        }
    }

    /// `total` calls, at most `concurrent` at once, started at `rate_per_s` per second. Takes
    /// one fresh peer port per call from the run's block.
    pub fn calls(mut self, run: &TestRun, total: u32, concurrent: u32, rate_per_s: u32) -> Sipp {
        self.calls = total;
        self.concurrent = concurrent;
        self.rate_per_s = rate_per_s;
        self.peer_ports = run.ports().peer_ports(total as usize);
        self
    }

    /// How long `<pause/>` lasts (SIPp `-d`): the time between ACK and BYE.
    pub fn hold_ms(mut self, ms: u64) -> Sipp {
        self.hold_ms = ms;
        self
    }

    /// Extra arguments for the RTP peer (`[peer_args]`), e.g. `--duration 8 --send x.wav --send-at 3`.
    pub fn peer_args(mut self, args: &str) -> Sipp {
        self.peer_args = args.to_string();
        self
    }

    /// Use SIP over TCP (`-t t1`).
    pub fn tcp(mut self) -> Sipp {
        self.tcp = true;
        self
    }

    /// Kill SIPp if it has not finished after this long (it is also told `-timeout`).
    pub fn timeout(mut self, timeout: Duration) -> Sipp {
        self.timeout = timeout;
        self
    }

    /// Any other SIPp argument.
    pub fn arg(mut self, arg: &str) -> Sipp {
        self.extra.push(arg.to_string());
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn command(&self) -> Result<Command, String> {
        let src = scenarios_dir().join(&self.scenario);
        let dst = self.dir.join(&self.scenario);
        std::fs::copy(&src, &dst).map_err(|e| format!("copy {}: {e}", src.display()))?;
        let mut csv = String::from("SEQUENTIAL\n");
        for port in &self.peer_ports {
            csv.push_str(&format!("{port}\n"));
        }
        std::fs::write(self.dir.join("ports.csv"), csv).map_err(|e| format!("ports.csv: {e}"))?;
        let out =
            File::create(self.dir.join("sipp.stdout.log")).map_err(|e| format!("sipp log: {e}"))?;
        let err =
            File::create(self.dir.join("sipp.stderr.log")).map_err(|e| format!("sipp log: {e}"))?;
        let mut cmd = Command::new("sipp");
        cmd.current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        cmd.arg(self.target.to_string())
            .args(["-sf", &self.scenario, "-s", "bot"])
            .args(["-i", "127.0.0.1", "-mi", "127.0.0.1"])
            .args([
                "-p",
                &self.local_port.to_string(),
                "-mp",
                &self.media_port.to_string(),
            ])
            .args([
                "-m",
                &self.calls.to_string(),
                "-l",
                &self.concurrent.to_string(),
            ])
            .args(["-r", &self.rate_per_s.to_string(), "-rp", "1000"])
            .args(["-d", &self.hold_ms.to_string()])
            .args(["-inf", "ports.csv"])
            .arg("-key")
            .arg("peer")
            .arg(&self.peer_bin)
            .args(["-key", "peer_args", &self.peer_args])
            .args(["-trace_msg", "-message_file", "messages.log"])
            .args(["-trace_err", "-error_file", "errors.log"])
            .args(["-trace_stat", "-stf", "stat.csv", "-fd", "1"])
            .args([
                "-timeout",
                &format!("{}s", self.timeout.as_secs().max(1)),
                "-timeout_error",
            ])
            .arg("-nostdin");
        if self.tcp {
            cmd.args(["-t", "t1"]);
        }
        cmd.args(&self.extra);
        Ok(cmd)
    }

    /// Starts SIPp without waiting.
    pub fn spawn(self) -> Result<SippChild, String> {
        let mut cmd = self.command()?;
        let child = cmd
            .spawn()
            .map_err(|e| format!("spawn sipp: {e} (run scripts/install-test-deps.sh)"))?;
        Ok(SippChild {
            child,
            started: Instant::now(),
            sipp: self,
        })
    }

    /// Runs SIPp to completion (or until the timeout, then kills it).
    pub fn run(self) -> SippRun {
        match self.spawn() {
            Ok(child) => child.wait(),
            Err(e) => panic!("{e}"),
        }
    }
}

/// A SIPp process started with `Sipp::spawn`.
#[derive(Debug)]
pub struct SippChild {
    child: std::process::Child,
    started: Instant,
    sipp: Sipp,
}

impl SippChild {
    /// Waits for SIPp to end, killing it `timeout + 5 s` after start (SIPp's own `-timeout`
    /// should fire first).
    pub fn wait(mut self) -> SippRun {
        let deadline = self.started + self.sipp.timeout + Duration::from_secs(5);
        let mut timed_out = false;
        let status: Option<ExitStatus> = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() >= deadline => {
                    timed_out = true;
                    let _ = self.child.kill();
                    break self.child.wait().ok();
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(_) => break None,
            }
        };
        SippRun {
            dir: self.sipp.dir.clone(),
            exit_code: status.and_then(|s| s.code()),
            timed_out,
            elapsed: self.started.elapsed(),
            calls: self.sipp.calls,
            peer_ports: self.sipp.peer_ports.clone(),
        }
    }
}

/// The outcome of a SIPp run.
#[derive(Debug, Clone)]
pub struct SippRun {
    pub dir: PathBuf,
    /// 0 all calls OK, 1 some failed, 97 killed by -timeout, 254/255 setup errors.
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub elapsed: Duration,
    pub calls: u32,
    pub peer_ports: Vec<u16>,
}

fn read_or_empty(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn tail(text: &str, max_chars: usize) -> &str {
    let start = text.len().saturating_sub(max_chars);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    &text[start..]
}

impl SippRun {
    pub fn messages_log(&self) -> PathBuf {
        self.dir.join("messages.log")
    }

    pub fn errors_log(&self) -> PathBuf {
        self.dir.join("errors.log")
    }

    pub fn stat_csv(&self) -> PathBuf {
        self.dir.join("stat.csv")
    }

    /// Everything SIPp sent and received.
    pub fn messages(&self) -> String {
        read_or_empty(&self.messages_log())
    }

    /// A summary for failure messages: exit code, SIPp errors and the message trace tail.
    pub fn diagnostics(&self) -> String {
        format!(
            "sipp in {} exit {:?} timed_out {} after {:?}\n--- errors.log ---\n{}\n--- stderr ---\n{}\n--- messages.log (tail) ---\n{}",
            self.dir.display(),
            self.exit_code,
            self.timed_out,
            self.elapsed,
            tail(&read_or_empty(&self.errors_log()), 3000),
            tail(&read_or_empty(&self.dir.join("sipp.stderr.log")), 2000),
            tail(&self.messages(), 6000)
        )
    }

    /// Panics with diagnostics (and `context`, e.g. the gateway log) unless every call passed.
    pub fn assert_success(&self, context: &str) {
        assert!(
            self.exit_code == Some(0) && !self.timed_out,
            "SIPp failed\n{}\n{context}",
            self.diagnostics()
        );
    }

    /// The last row of the `-trace_stat` CSV as column → value (e.g. `SuccessfulCall(C)`).
    pub fn stats(&self) -> Result<HashMap<String, String>, String> {
        parse_trace_stat(&read_or_empty(&self.stat_csv()))
    }

    /// Path of call `n`'s peer report (SIPp numbers calls from 1).
    pub fn peer_report_path(&self, call_number: u32) -> PathBuf {
        self.dir.join(format!("peer_{call_number}.json"))
    }

    /// Path of call `n`'s recording of what the peer received.
    pub fn peer_recording_path(&self, call_number: u32) -> PathBuf {
        self.dir.join(format!("rx_{call_number}.wav"))
    }

    /// Waits (up to `timeout`) for every call's peer report and loads them, in call order.
    pub fn peer_reports(&self, timeout: Duration) -> Result<Vec<PeerReport>, String> {
        let deadline = Instant::now() + timeout;
        let paths: Vec<PathBuf> = (1..=self.calls).map(|n| self.peer_report_path(n)).collect();
        while Instant::now() < deadline && !paths.iter().all(|p| p.exists()) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let missing: Vec<String> = (1..=self.calls)
            .filter(|&n| !self.peer_report_path(n).exists())
            .map(|n| {
                let err = read_or_empty(&self.dir.join(format!("peer_{n}.err")));
                format!("call {n}: no report (peer stderr: {})", err.trim())
            })
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "{} of {} peer reports missing in {}:\n{}",
                missing.len(),
                self.calls,
                self.dir.display(),
                missing.join("\n")
            ));
        }
        paths.iter().map(|p| PeerReport::load(p)).collect()
    }

    /// Like `peer_reports` for a single-call run.
    pub fn peer_report(&self, timeout: Duration) -> Result<PeerReport, String> {
        self.peer_reports(timeout)?
            .into_iter()
            .next()
            .ok_or_else(|| "SIPp run had no calls".to_string())
    }
}

/// Parses SIPp's `-trace_stat` file (semicolon separated, header row first).
pub fn parse_trace_stat(text: &str) -> Result<HashMap<String, String>, String> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let header = lines.first().ok_or("empty trace_stat file")?;
    let last = lines
        .get(1..)
        .and_then(<[&str]>::last)
        .ok_or("trace_stat file has no data row")?;
    Ok(header
        .split(';')
        .zip(last.split(';'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_stat_last_row_wins() {
        let text = "StartTime;SuccessfulCall(C);FailedCall(C);\n1;0;0;\n2;49;1;\n";
        let stats = parse_trace_stat(text).unwrap();
        assert_eq!(stats["SuccessfulCall(C)"], "49");
        assert_eq!(stats["FailedCall(C)"], "1");
        assert!(parse_trace_stat("").is_err());
        assert!(parse_trace_stat("A;B;\n").is_err());
    }

    #[test]
    fn tail_respects_char_boundaries() {
        assert_eq!(tail("héllo", 3), "llo");
        assert_eq!(tail("hé", 1), "");
        assert_eq!(tail("abc", 10), "abc");
    }
}
