//! Runs baresip (a real softphone, headless) as a caller: one process per call, each with its
//! own config directory and HOME under the run directory.
//!
//! The microphone is `aufile` (a WAV; baresip hangs up when it ends, so pad it to the wanted
//! call length), the speaker is `aubridge,null`, and `sndfile` records what was sent
//! (`dump-…-enc.wav`) and received (`dump-…-dec.wav`). Dialling and call events go through
//! `ctrl_tcp` (netstring-framed JSON), so no event is missed before we connect.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::run::TestRun;

/// Splits complete netstrings (`<len>:<payload>,`) off the front of `buf`.
/// Returns the payloads; incomplete data stays in `buf`. Errors on a malformed frame.
pub fn drain_netstrings(buf: &mut Vec<u8>) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    loop {
        let Some(colon) = buf.iter().position(|&b| b == b':') else {
            if buf.len() > 10 || !buf.iter().all(u8::is_ascii_digit) {
                return Err(format!(
                    "bad netstring prefix {:?}",
                    String::from_utf8_lossy(buf)
                ));
            }
            return Ok(out);
        };
        let len: usize = std::str::from_utf8(&buf[..colon])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                format!(
                    "bad netstring length {:?}",
                    String::from_utf8_lossy(&buf[..colon])
                )
            })?;
        let end = colon + 1 + len;
        match buf.get(end) {
            None => return Ok(out), // incomplete
            Some(b',') => {}
            Some(other) => return Err(format!("netstring not terminated by ',' but {other:#x}")),
        }
        out.push(String::from_utf8_lossy(&buf[colon + 1..end]).into_owned());
        buf.drain(..=end);
    }
}

/// Encodes one netstring.
pub fn netstring(payload: &str) -> String {
    format!("{}:{payload},", payload.len())
}

/// A running baresip.
#[derive(Debug)]
pub struct Baresip {
    child: Child,
    dir: PathBuf,
    ctrl: TcpStream,
    events: Arc<Mutex<Vec<serde_json::Value>>>,
}

/// What one baresip call produced.
#[derive(Debug, Clone)]
pub struct BaresipCall {
    /// Event types seen, in order (e.g. CALL_ESTABLISHED, CALL_CLOSED).
    pub events: Vec<String>,
    /// What baresip received and decoded (the gateway's audio).
    pub received_wav: Option<PathBuf>,
    /// What baresip sent.
    pub sent_wav: Option<PathBuf>,
    pub log: PathBuf,
}

impl Baresip {
    /// Starts baresip with `source_wav` as microphone and connects to its control socket.
    pub fn start(run: &TestRun, source_wav: &Path) -> Result<Baresip, String> {
        let dir = run.subdir("baresip");
        let rec = dir.join("rec");
        std::fs::create_dir_all(&rec).map_err(|e| format!("{}: {e}", rec.display()))?;
        let sip_port = run.ports().client_sip();
        let rtp = run.ports().client_media();
        let ctrl_port = run.ports().client_media();
        let config = format!(
            "poll_method\t\tepoll\n\
             sip_listen\t\t127.0.0.1:{sip_port}\n\
             net_interface\t\t127.0.0.1\n\
             call_max_calls\t\t1\n\
             audio_player\t\taubridge,null\n\
             audio_alert\t\taubridge,null\n\
             audio_source\t\taufile,{src}\n\
             audio_buffer\t\t20-160\n\
             rtp_ports\t\t{rtp}-{rtp_end}\n\
             jitter_buffer_delay\t1-10\n\
             module_path\t\t/usr/lib/baresip/modules\n\
             module\t\t\tg711.so\n\
             module\t\t\taufile.so\n\
             module\t\t\taubridge.so\n\
             module\t\t\tsndfile.so\n\
             module\t\t\tctrl_tcp.so\n\
             module_tmp\t\taccount.so\n\
             module_app\t\tmenu.so\n\
             snd_path\t\t{rec}\n\
             ctrl_tcp_listen\t\t127.0.0.1:{ctrl_port}\n",
            src = source_wav.display(),
            rtp_end = rtp + 3,
            rec = rec.display(),
        );
        let write = |name: &str, text: &str| {
            std::fs::write(dir.join(name), text)
                .map_err(|e| format!("{}: {e}", dir.join(name).display()))
        };
        write("config", &config)?;
        write(
            "accounts",
            "<sip:caller@127.0.0.1>;regint=0;audio_codecs=PCMU,PCMA\n",
        )?;
        let log = std::fs::File::create(dir.join("baresip.log"))
            .map_err(|e| format!("baresip.log: {e}"))?;
        let log_err = log.try_clone().map_err(|e| format!("baresip.log: {e}"))?;
        let mut child = Command::new("baresip")
            .arg("-f")
            .arg(&dir)
            .env("HOME", &dir)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("spawn baresip: {e} (run scripts/install-test-deps.sh)"))?;
        let ctrl_addr = SocketAddr::from(([127, 0, 0, 1], ctrl_port));
        let deadline = Instant::now() + Duration::from_secs(5);
        let ctrl = loop {
            match TcpStream::connect_timeout(&ctrl_addr, Duration::from_millis(200)) {
                Ok(stream) => break stream,
                Err(e) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "baresip ctrl_tcp {ctrl_addr} not reachable: {e}; see {}",
                        dir.join("baresip.log").display()
                    ));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        let events = Arc::new(Mutex::new(Vec::new()));
        let mut reader = ctrl.try_clone().map_err(|e| format!("ctrl clone: {e}"))?;
        let sink = Arc::clone(&events);
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while let Ok(n) = reader.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let Ok(frames) = drain_netstrings(&mut buf) else {
                    break;
                };
                let mut events = sink.lock().unwrap_or_else(|p| p.into_inner());
                events.extend(frames.iter().filter_map(|f| serde_json::from_str(f).ok()));
            }
        });
        Ok(Baresip {
            child,
            dir,
            ctrl,
            events,
        })
    }

    fn command(&mut self, command: &str, params: &str) -> Result<(), String> {
        let json = serde_json::json!({ "command": command, "params": params, "token": command })
            .to_string();
        self.ctrl
            .write_all(netstring(&json).as_bytes())
            .map_err(|e| format!("ctrl_tcp write: {e}"))
    }

    /// Dials `uri`, e.g. `sip:bot@127.0.0.1:5060`.
    pub fn dial(&mut self, uri: &str) -> Result<(), String> {
        self.command("dial", uri)
    }

    /// Event types received so far.
    pub fn event_types(&self) -> Vec<String> {
        let events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        events
            .iter()
            .filter_map(|e| e.get("type").and_then(|t| t.as_str()).map(str::to_string))
            .collect()
    }

    /// Waits until an event of type `kind` has been seen.
    pub fn wait_event(&self, kind: &str, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.event_types().iter().any(|t| t == kind) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "no {kind} event within {timeout:?}; events: {:?}; log {}",
            self.event_types(),
            self.dir.join("baresip.log").display()
        ))
    }

    fn find_dump(&self, suffix: &str) -> Option<PathBuf> {
        std::fs::read_dir(self.dir.join("rec"))
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.to_string_lossy().ends_with(suffix))
    }

    /// Asks baresip to quit, kills it if it does not, and reports the call.
    pub fn finish(mut self) -> BaresipCall {
        let _ = self.command("quit", "");
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        BaresipCall {
            events: self.event_types(),
            received_wav: self.find_dump("-dec.wav"),
            sent_wav: self.find_dump("-enc.wav"),
            log: self.dir.join("baresip.log"),
        }
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One complete call: start baresip with `source_wav`, dial `target`, wait until the call is
/// established and closed again (the source WAV's end hangs up), quit.
pub fn call(
    run: &TestRun,
    target: SocketAddr,
    source_wav: &Path,
    timeout: Duration,
) -> Result<BaresipCall, String> {
    let mut phone = Baresip::start(run, source_wav)?;
    phone.dial(&format!("sip:bot@{target}"))?;
    let started = Instant::now();
    phone.wait_event("CALL_ESTABLISHED", timeout)?;
    phone.wait_event("CALL_CLOSED", timeout.saturating_sub(started.elapsed()))?;
    Ok(phone.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netstrings_split_and_keep_partial_frames() {
        let mut buf = b"5:hello,3:abc,7:par".to_vec();
        assert_eq!(drain_netstrings(&mut buf).unwrap(), vec!["hello", "abc"]);
        assert_eq!(buf, b"7:par");
        buf.extend_from_slice(b"tial,");
        assert_eq!(drain_netstrings(&mut buf).unwrap(), vec!["partial"]);
        assert!(buf.is_empty());
        assert_eq!(
            drain_netstrings(&mut b"12".to_vec()).unwrap(),
            Vec::<String>::new()
        );
        assert!(drain_netstrings(&mut b"x:abc,".to_vec()).is_err());
        assert!(drain_netstrings(&mut b"3:abcd".to_vec()).is_err());
        assert!(drain_netstrings(&mut b"hello".to_vec()).is_err());
        assert_eq!(netstring("abc"), "3:abc,");
    }
}
