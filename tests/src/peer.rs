//! Runs the `rtp_peer` binary directly (outside SIPp), e.g. for self-checks and measurements.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::eval::echo::EchoParams;
use crate::report::PeerReport;

/// What to run the peer with.
#[derive(Debug, Clone)]
pub struct PeerOptions {
    pub bind: SocketAddr,
    pub remote: SocketAddr,
    pub duration_s: f64,
    /// Caller WAV and the second at which to start sending it.
    pub send: Option<(PathBuf, f64)>,
    /// 0 = PCMU, 8 = PCMA.
    pub payload_type: u8,
    /// Write what was received to `<name>.rx.wav`.
    pub record: bool,
    /// Write what was sent (WAV + echo) to `<name>.tx.wav`.
    pub record_tx: bool,
    /// Closed-loop echo of what is received into what is sent.
    pub echo: Option<EchoParams>,
    /// Call-ID to put in the report.
    pub call_id: Option<String>,
}

impl PeerOptions {
    pub fn new(bind: SocketAddr, remote: SocketAddr, duration_s: f64) -> PeerOptions {
        PeerOptions {
            bind,
            remote,
            duration_s,
            send: None,
            payload_type: 0,
            record: true,
            record_tx: false,
            echo: None,
            call_id: None,
        }
    }

    /// The command-line arguments for `rtp_peer` (without `--report`/`--record`/`--record-tx`).
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            "--bind".to_string(),
            self.bind.to_string(),
            "--remote".to_string(),
            self.remote.to_string(),
            "--duration".to_string(),
            format!("{}", self.duration_s),
            "--pt".to_string(),
            self.payload_type.to_string(),
        ];
        if let Some((wav, at)) = &self.send {
            args.extend([
                "--send".to_string(),
                wav.display().to_string(),
                "--send-at".to_string(),
                format!("{at}"),
            ]);
        }
        if let Some(e) = &self.echo {
            args.extend([
                "--echo-erl-db".to_string(),
                e.erl_db.to_string(),
                "--echo-delay-ms".to_string(),
                e.delay_ms.to_string(),
                "--echo-dispersion-ms".to_string(),
                e.dispersion_ms.to_string(),
                "--echo-seed".to_string(),
                e.seed.to_string(),
            ]);
        }
        if let Some(id) = &self.call_id {
            args.extend(["--call-id".to_string(), id.clone()]);
        }
        args
    }
}

/// A running peer process.
#[derive(Debug)]
pub struct RtpPeer {
    child: Child,
    report_path: PathBuf,
    record_path: Option<PathBuf>,
    record_tx_path: Option<PathBuf>,
    stderr_path: PathBuf,
}

impl RtpPeer {
    /// Starts `peer_bin` with `options`; its files are `<dir>/<name>.json|.rx.wav|.err`.
    pub fn spawn(
        peer_bin: &Path,
        dir: &Path,
        name: &str,
        options: &PeerOptions,
    ) -> Result<RtpPeer, String> {
        let report_path = dir.join(format!("{name}.json"));
        let record_path = options.record.then(|| dir.join(format!("{name}.rx.wav")));
        let record_tx_path = options
            .record_tx
            .then(|| dir.join(format!("{name}.tx.wav")));
        let stderr_path = dir.join(format!("{name}.err"));
        let stderr =
            File::create(&stderr_path).map_err(|e| format!("{}: {e}", stderr_path.display()))?;
        let mut cmd = Command::new(peer_bin);
        cmd.args(options.args()).arg("--report").arg(&report_path);
        if let Some(rec) = &record_path {
            cmd.arg("--record").arg(rec);
        }
        if let Some(rec) = &record_tx_path {
            cmd.arg("--record-tx").arg(rec);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", peer_bin.display()))?;
        Ok(RtpPeer {
            child,
            report_path,
            record_path,
            record_tx_path,
            stderr_path,
        })
    }

    pub fn record_path(&self) -> Option<&Path> {
        self.record_path.as_deref()
    }

    /// Where what the peer sent is recorded (`record_tx`).
    pub fn record_tx_path(&self) -> Option<&Path> {
        self.record_tx_path.as_deref()
    }

    /// Waits for the peer to finish (killing it after `timeout`) and loads its report.
    pub fn wait(mut self, timeout: Duration) -> Result<PeerReport, String> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => break,
                Ok(Some(status)) => {
                    let err = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
                    return Err(format!("rtp_peer exited with {status}: {}", err.trim()));
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(None) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err(format!("rtp_peer still running after {timeout:?}, killed"));
                }
                Err(e) => return Err(format!("waiting for rtp_peer: {e}")),
            }
        }
        PeerReport::load(&self.report_path)
    }
}

impl Drop for RtpPeer {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_become_arguments() {
        let a: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let mut o = PeerOptions::new(a, b, 2.5);
        assert_eq!(
            o.args(),
            [
                "--bind",
                "127.0.0.1:4000",
                "--remote",
                "127.0.0.1:5000",
                "--duration",
                "2.5",
                "--pt",
                "0"
            ]
        );
        o.echo = Some(EchoParams {
            delay_ms: 40.0,
            erl_db: 12.5,
            dispersion_ms: 9.0,
            seed: 3,
        });
        o.call_id = Some("1-2@h".to_string());
        let args = o.args().join(" ");
        assert!(args.ends_with(
            "--echo-erl-db 12.5 --echo-delay-ms 40 --echo-dispersion-ms 9 --echo-seed 3 --call-id 1-2@h"
        ), "{args}");
    }
}
