//! A scripted Twilio Media Streams bot for the end-to-end tests: a WebSocket server (sync
//! tungstenite on a thread, no shared code with the gateway) that records every message the
//! gateway sends, with wall-clock arrival times, and plays a script: on `start` it queues
//! tone segments each followed by a mark, optionally sends junk, and optionally a `clear`.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

/// What the bot does.
#[derive(Clone, Debug, Default)]
pub struct TwilioScript {
    /// Queued at once on `start`: for each entry, this many ms of tone, then a mark named so.
    pub segments: Vec<(u32, String)>,
    /// Send `{"event":"clear"}` this long after `start` arrived.
    pub clear_after_ms: Option<u64>,
    /// Send malformed frames (not JSON, unknown event, bad base64, a binary frame) on `start`.
    pub junk: bool,
    /// Close the WebSocket this long after `start` (a bot dying mid-call).
    pub close_after_ms: Option<u64>,
}

/// One message from the gateway.
#[derive(Clone, Debug)]
pub struct Rx {
    /// Arrival, wall clock ms since the Unix epoch (to compare with the RTP peer's report).
    pub unix_ms: f64,
    pub msg: Value,
}

/// What the bot saw and did.
#[derive(Clone, Debug, Default)]
pub struct TwilioLog {
    pub received: Vec<Rx>,
    /// Malformed (non-JSON, binary) frames the gateway sent: must stay 0.
    pub not_json: u64,
    pub clear_sent_unix_ms: Option<f64>,
    pub closed: bool,
    pub error: Option<String>,
}

impl TwilioLog {
    pub fn events(&self, name: &str) -> Vec<&Rx> {
        self.received
            .iter()
            .filter(|r| r.msg["event"] == name)
            .collect()
    }

    /// Echoed marks in arrival order: (name, arrival unix ms).
    pub fn marks(&self) -> Vec<(String, f64)> {
        self.events("mark")
            .into_iter()
            .map(|r| {
                let name = r.msg["mark"]["name"].as_str().unwrap_or("").to_string();
                (name, r.unix_ms)
            })
            .collect()
    }

    pub fn start_unix_ms(&self) -> Option<f64> {
        self.events("start").first().map(|r| r.unix_ms)
    }

    /// Every event name, in order, with consecutive `media` collapsed (for messages).
    pub fn outline(&self) -> String {
        let mut out: Vec<String> = Vec::new();
        for r in &self.received {
            let e = r.msg["event"].as_str().unwrap_or("?").to_string();
            let e = if e == "mark" {
                format!("mark:{}", r.msg["mark"]["name"].as_str().unwrap_or(""))
            } else {
                e
            };
            if e == "media" && out.last().is_some_and(|l| l.starts_with("media")) {
                continue;
            }
            out.push(e);
        }
        out.join(" ")
    }
}

pub fn unix_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

/// A 400 Hz tone at about −12 dBFS, µ-law: loud enough for the RTP peer's voiced detector.
pub fn tone_ulaw(ms: u32) -> Vec<u8> {
    (0..ms as usize * 8)
        .map(|i| {
            let t = i as f64 / 8000.0;
            let s = (8000.0 * (2.0 * std::f64::consts::PI * 400.0 * t).sin()) as i16;
            audio_codec_algorithms::encode_ulaw(s)
        })
        .collect()
}

/// The running bot (one connection).
pub struct TwilioPeer {
    port: u16,
    tls: bool,
    log: Arc<Mutex<TwilioLog>>,
    thread: Option<JoinHandle<()>>,
}

/// Read timeout of the bot's socket: lets one thread both read and act on the script's clock.
const POLL: Duration = Duration::from_millis(5);

impl TwilioPeer {
    /// A `ws://` bot.
    pub fn start(script: TwilioScript) -> TwilioPeer {
        TwilioPeer::spawn(script, None)
    }

    /// A `wss://` bot presenting `cert` (PEM chain) with `key` (PEM PKCS#8).
    pub fn start_tls(script: TwilioScript, cert: &Path, key: &Path) -> TwilioPeer {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .and_then(|it| it.collect())
            .expect("test certificate");
        let key = PrivateKeyDer::from_pem_file(key).expect("test key");
        #[allow(deprecated)] // ring: the provider the gateway uses too
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
            .expect("TLS server config");
        TwilioPeer::spawn(script, Some(Arc::new(config)))
    }

    fn spawn(script: TwilioScript, tls: Option<Arc<rustls::ServerConfig>>) -> TwilioPeer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the test bot");
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let log = Arc::new(Mutex::new(TwilioLog::default()));
        let shared = log.clone();
        let is_tls = tls.is_some();
        let thread = std::thread::spawn(move || {
            let result =
                listener
                    .accept()
                    .map_err(|e| e.to_string())
                    .and_then(|(tcp, _)| match tls {
                        None => {
                            let ws = tungstenite::accept(tcp).map_err(|e| e.to_string())?;
                            ws.get_ref()
                                .set_read_timeout(Some(POLL))
                                .map_err(|e| e.to_string())?;
                            serve(ws, &script, &shared)
                        }
                        Some(config) => {
                            let conn =
                                rustls::ServerConnection::new(config).map_err(|e| e.to_string())?;
                            let stream = rustls::StreamOwned::new(conn, tcp);
                            let ws = tungstenite::accept(stream).map_err(|e| e.to_string())?;
                            ws.get_ref()
                                .sock
                                .set_read_timeout(Some(POLL))
                                .map_err(|e| e.to_string())?;
                            serve(ws, &script, &shared)
                        }
                    });
            let mut log = shared.lock().unwrap_or_else(|p| p.into_inner());
            log.closed = true;
            if let Err(e) = result {
                log.error = Some(e);
            }
        });
        TwilioPeer {
            port,
            tls: is_tls,
            log,
            thread: Some(thread),
        }
    }

    /// `ws://127.0.0.1:<port>/media` (`wss://localhost:…` for a TLS bot: the certificate
    /// names localhost).
    pub fn url(&self) -> String {
        match self.tls {
            false => format!("ws://127.0.0.1:{}/media", self.port),
            true => format!("wss://localhost:{}/media", self.port),
        }
    }

    /// Waits until the gateway closed the stream (or `timeout`), then returns the log.
    pub fn finish(mut self, timeout: Duration) -> TwilioLog {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline && !self.log_snapshot().closed {
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.log_snapshot().closed {
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
        self.log_snapshot()
    }

    pub fn log_snapshot(&self) -> TwilioLog {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

fn send<S: Read + Write>(ws: &mut WebSocket<S>, msg: Value) -> Result<(), String> {
    ws.send(Message::text(msg.to_string()))
        .map_err(|e| e.to_string())
}

fn serve<S: Read + Write>(
    mut ws: WebSocket<S>,
    script: &TwilioScript,
    log: &Mutex<TwilioLog>,
) -> Result<(), String> {
    let mut stream_sid = String::new();
    let mut started: Option<Instant> = None;
    let mut cleared = false;
    loop {
        if let (Some(t0), Some(after), false) = (started, script.clear_after_ms, cleared) {
            if t0.elapsed() >= Duration::from_millis(after) {
                cleared = true;
                send(&mut ws, json!({"event": "clear", "streamSid": stream_sid}))?;
                log.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clear_sent_unix_ms = Some(unix_ms());
            }
        }
        if let (Some(t0), Some(after)) = (started, script.close_after_ms) {
            if t0.elapsed() >= Duration::from_millis(after) {
                let _ = ws.close(None);
                let _ = ws.flush();
                return Ok(());
            }
        }
        let msg = match ws.read() {
            Ok(m) => m,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                return Ok(())
            }
            Err(e) => return Err(e.to_string()),
        };
        let at = unix_ms();
        let text = match msg {
            Message::Text(t) => t,
            Message::Close(_) => continue, // tungstenite answers; the next read ends
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            Message::Binary(_) => {
                log.lock().unwrap_or_else(|p| p.into_inner()).not_json += 1;
                continue;
            }
        };
        let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else {
            log.lock().unwrap_or_else(|p| p.into_inner()).not_json += 1;
            continue;
        };
        let is_start = v["event"] == "start";
        if is_start {
            stream_sid = v["streamSid"].as_str().unwrap_or("").to_string();
        }
        log.lock()
            .unwrap_or_else(|p| p.into_inner())
            .received
            .push(Rx {
                unix_ms: at,
                msg: v,
            });
        if is_start {
            started = Some(Instant::now());
            if script.junk {
                for junk in [
                    "this is not json".to_string(),
                    json!({"event": "dance", "streamSid": stream_sid}).to_string(),
                    json!({"event": "media", "media": {"payload": "***"}}).to_string(),
                    json!({"event": "mark", "mark": {}}).to_string(),
                ] {
                    ws.send(Message::text(junk)).map_err(|e| e.to_string())?;
                }
                ws.send(Message::binary(vec![1u8, 2, 3]))
                    .map_err(|e| e.to_string())?;
            }
            for (ms, mark) in &script.segments {
                // Any chunk size is allowed; 200 ms pieces, like a streaming TTS.
                for piece in tone_ulaw(*ms).chunks(1600) {
                    let payload = base64::engine::general_purpose::STANDARD.encode(piece);
                    send(
                        &mut ws,
                        json!({"event": "media", "streamSid": stream_sid, "media": {"payload": payload}}),
                    )?;
                }
                send(
                    &mut ws,
                    json!({"event": "mark", "streamSid": stream_sid, "mark": {"name": mark}}),
                )?;
            }
        }
    }
}

/// A throw-away CA and a certificate for `localhost`/127.0.0.1 signed by it (openssl CLI, EC
/// P-256), in `dir`: returns (CA PEM, certificate PEM, key PEM).
pub fn make_test_certs(dir: &Path) -> Result<(PathBuf, PathBuf, PathBuf), String> {
    let p = |f: &str| dir.join(f);
    let ext = p("server.ext");
    std::fs::write(
        &ext,
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .map_err(|e| e.to_string())?;
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let run = |args: &[&str]| -> Result<(), String> {
        let out = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .map_err(|e| format!("openssl: {e}"))?;
        match out.status.success() {
            true => Ok(()),
            false => Err(format!(
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            )),
        }
    };
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=bargein test CA",
    ]);
    run(&ca)?;
    let mut req = vec!["req"];
    req.extend(ec);
    req.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    run(&req)?;
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ])?;
    Ok((p("ca.pem"), p("server.pem"), p("server.key")))
}
