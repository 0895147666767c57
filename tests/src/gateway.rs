//! Runs the real gateway binary for one test.

use std::fs::File;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::run::{gateway_bin, repo_root, TestRun};
use crate::sipprobe::SipProbe;

/// How long the gateway may take to answer its first OPTIONS.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A running gateway; killed (SIGTERM, then SIGKILL) when dropped.
#[derive(Debug)]
pub struct Gateway {
    child: Option<Child>,
    sip_addr: SocketAddr,
    rtp_range: (u16, u16),
    stdout_path: PathBuf,
    stderr_path: PathBuf,
}

/// Maps `calls.max_duration_s` to `GW__CALLS__MAX_DURATION_S`; `GW__…` names pass unchanged.
pub fn env_name(key: &str) -> String {
    if key.starts_with("GW__") {
        key.to_string()
    } else {
        format!("GW__{}", key.replace('.', "__").to_ascii_uppercase())
    }
}

impl Gateway {
    /// Starts the gateway with the test's ports, debug logging and `overrides` (config keys as
    /// `section.key` or `GW__SECTION__KEY`, later entries win), and waits until it answers an
    /// OPTIONS with 200. Panics with the gateway's log on failure.
    pub fn start(run: &TestRun, overrides: &[(&str, &str)]) -> Gateway {
        Gateway::try_start(run, overrides).unwrap_or_else(|e| panic!("gateway did not start: {e}"))
    }

    pub fn try_start(run: &TestRun, overrides: &[(&str, &str)]) -> Result<Gateway, String> {
        Gateway::try_start_bin(run, &gateway_bin(), overrides)
    }

    /// Like `try_start` with an explicit binary (the harness self-check runs a stand-in).
    pub fn try_start_bin(
        run: &TestRun,
        bin: &std::path::Path,
        overrides: &[(&str, &str)],
    ) -> Result<Gateway, String> {
        Gateway::try_start_with(
            run,
            bin,
            std::path::Path::new("deploy/gateway.toml"),
            overrides,
        )
    }

    /// Like `start` with another config file (absolute, or relative to the repository root),
    /// e.g. one with `[[routes]]`, which environment overrides cannot express.
    pub fn start_with_config(
        run: &TestRun,
        config: &std::path::Path,
        overrides: &[(&str, &str)],
    ) -> Gateway {
        Gateway::try_start_with(run, &gateway_bin(), config, overrides)
            .unwrap_or_else(|e| panic!("gateway did not start: {e}"))
    }

    fn try_start_with(
        run: &TestRun,
        bin: &std::path::Path,
        config: &std::path::Path,
        overrides: &[(&str, &str)],
    ) -> Result<Gateway, String> {
        if !bin.is_file() {
            return Err(format!(
                "{} not found: build it with `cargo build --release -p bargein-gateway` \
                 (or set BARGEIN_GATEWAY_BIN)",
                bin.display()
            ));
        }
        let sip_addr = SocketAddr::from(([127, 0, 0, 1], run.ports().gateway_sip()));
        let rtp_range = run.ports().gateway_rtp_range();
        let stdout_path = run.path("gateway.stdout.log");
        let stderr_path = run.path("gateway.stderr.log");
        let open = |p: &PathBuf| File::create(p).map_err(|e| format!("{}: {e}", p.display()));
        let mut cmd = Command::new(bin);
        cmd.current_dir(repo_root())
            .arg("--config")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(open(&stdout_path)?)
            .stderr(open(&stderr_path)?)
            .env("GW__SIP__LISTEN", sip_addr.to_string())
            .env("GW__MEDIA__RTP_PORT_MIN", rtp_range.0.to_string())
            .env("GW__MEDIA__RTP_PORT_MAX", rtp_range.1.to_string())
            .env("GW__LOG__LEVEL", "debug");
        for (key, value) in overrides {
            cmd.env(env_name(key), value);
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", bin.display()))?;
        let mut gw = Gateway {
            child: Some(child),
            sip_addr,
            rtp_range,
            stdout_path,
            stderr_path,
        };
        gw.wait_ready(READY_TIMEOUT)?;
        Ok(gw)
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let probe = SipProbe::new(self.sip_addr).map_err(|e| format!("probe socket: {e}"))?;
        let deadline = Instant::now() + timeout;
        let mut last = None;
        while Instant::now() < deadline {
            if let Some(status) = self.exit_status() {
                return Err(format!(
                    "gateway exited ({status}) before answering OPTIONS\n{}",
                    self.log_tail(40)
                ));
            }
            last = probe.options(Duration::from_millis(250));
            if last == Some(200) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "no 200 to OPTIONS on {} within {timeout:?} (last answer {last:?})\n{}",
            self.sip_addr,
            self.log_tail(40)
        ))
    }

    /// The gateway's SIP address (UDP and TCP).
    pub fn sip_addr(&self) -> SocketAddr {
        self.sip_addr
    }

    /// CPU time (user + system) the gateway process has used so far, from /proc.
    pub fn cpu_time(&self) -> Option<std::time::Duration> {
        let pid = self.child.as_ref()?.id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name (which may contain spaces) start after ") ".
        let rest = stat.rsplit_once(") ")?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        // SAFETY: sysconf has no preconditions.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        let ticks = u64::try_from(ticks).ok().filter(|t| *t > 0)?;
        Some(std::time::Duration::from_secs_f64(
            (utime + stime) as f64 / ticks as f64,
        ))
    }

    /// The gateway's RTP port range (inclusive).
    pub fn rtp_range(&self) -> (u16, u16) {
        self.rtp_range
    }

    pub fn stderr_path(&self) -> &PathBuf {
        &self.stderr_path
    }

    /// Exit status if the process has ended.
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Last `lines` lines of stderr and stdout, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let tail = |p: &PathBuf| {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        };
        format!(
            "--- gateway stderr ({}) ---\n{}\n--- gateway stdout ---\n{}",
            self.stderr_path.display(),
            tail(&self.stderr_path),
            tail(&self.stdout_path)
        )
    }

    /// Asserts the gateway is still running, still answers OPTIONS and has not logged a panic.
    pub fn assert_healthy(&mut self) {
        if let Some(status) = self.exit_status() {
            panic!("gateway died ({status})\n{}", self.log_tail(60));
        }
        let probe = SipProbe::new(self.sip_addr).unwrap_or_else(|e| panic!("probe socket: {e}"));
        let answer = probe.options(Duration::from_secs(2));
        assert_eq!(
            answer,
            Some(200),
            "gateway stopped answering OPTIONS\n{}",
            self.log_tail(60)
        );
        let logs = std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
            + &std::fs::read_to_string(&self.stdout_path).unwrap_or_default();
        assert!(
            !logs.contains("panicked at"),
            "gateway logged a panic\n{}",
            self.log_tail(60)
        );
    }

    /// Stops the gateway: SIGTERM, then SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(pid) = libc::pid_t::try_from(child.id()) {
            // SAFETY: signalling our own child process by its pid.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_names() {
        assert_eq!(
            env_name("calls.max_duration_s"),
            "GW__CALLS__MAX_DURATION_S"
        );
        assert_eq!(
            env_name("bot.demo.hangup_after_reply"),
            "GW__BOT__DEMO__HANGUP_AFTER_REPLY"
        );
        assert_eq!(env_name("GW__LOG__LEVEL"), "GW__LOG__LEVEL");
    }
}
