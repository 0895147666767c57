//! A scriptable gRPC bot for the bot API tests: a tonic server in the test process, on its
//! own runtime, speaking `bargein.v1.BotService` from the proto file (compiled by this
//! crate's build.rs; no code shared with the gateway).
//!
//! Per call it plays a prompt when the call starts (and a reply when the caller's turn
//! ends), may misbehave on purpose (malformed messages, flooding), and records every message
//! the gateway sent, with its arrival time, for the test to inspect. `kill()` stops the
//! server abruptly, like a crashed bot process.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};

#[allow(clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("bargein.v1");
}

use pb::bot_message::Msg as BotMsg;
use pb::gateway_message::Msg as GwMsg;

/// One prompt the bot plays: 8/16/24 kHz PCM16 with optional text and word timings.
#[derive(Clone, Debug, Default)]
pub struct Prompt {
    pub playback_id: String,
    pub samples: Vec<i16>,
    pub sample_rate: u32,
    pub text: String,
    pub words: Vec<(String, u32, u32)>,
}

impl Prompt {
    fn message(&self) -> pb::BotMessage {
        let audio = self.samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        play_message(
            &self.playback_id,
            audio,
            self.sample_rate,
            &self.text,
            &self.words,
        )
    }
}

fn play_message(
    id: &str,
    audio: Vec<u8>,
    rate: u32,
    text: &str,
    words: &[(String, u32, u32)],
) -> pb::BotMessage {
    pb::BotMessage {
        msg: Some(BotMsg::Play(pb::Play {
            playback_id: id.into(),
            audio,
            encoding: pb::AudioEncoding::Pcm16 as i32,
            sample_rate: rate,
            text: text.into(),
            words: words
                .iter()
                .map(|(w, s, e)| pb::WordTiming {
                    word: w.clone(),
                    start_ms: *s,
                    end_ms: *e,
                })
                .collect(),
            interruptible: true,
        })),
    }
}

/// What the bot does besides playing its prompt.
#[derive(Clone, Debug, Default)]
pub enum Misbehaviour {
    #[default]
    None,
    /// Before the prompt: one malformed message of each kind (see [`GARBAGE_MESSAGES`]).
    Garbage,
    /// After the prompt: `chunks` more chunks of `chunk_ms` each, at once.
    Flood { chunks: u32, chunk_ms: u32 },
    /// After CallStarted, stop reading (the stream stays open): a hung bot. The server then
    /// uses a 16 KiB HTTP/2 stream window so the gateway notices within seconds.
    Deaf,
}

/// How many malformed messages `Misbehaviour::Garbage` sends.
pub const GARBAGE_MESSAGES: usize = 5;

fn garbage() -> Vec<pb::BotMessage> {
    vec![
        play_message("odd", vec![0; 161], 8000, "", &[]),
        play_message("", vec![0; 320], 8000, "", &[]),
        play_message("rate", vec![0; 320], 11_025, "", &[]),
        pb::BotMessage { msg: None },
        pb::BotMessage {
            msg: Some(BotMsg::Transfer(pb::Transfer {
                target: "not a uri".into(),
            })),
        },
    ]
}

#[derive(Clone, Debug, Default)]
pub struct Script {
    pub prompt: Option<Prompt>,
    pub reply: Option<Prompt>,
    pub misbehaviour: Misbehaviour,
    /// Once the prompt has played, ask the gateway to transfer the caller here (`sip:` URI).
    pub transfer_to: Option<String>,
    /// At call start switch this call to `bot_decides` (UpdateBargeIn), then answer every
    /// decision request with ConfirmBargeIn (`true`) or RejectBargeIn (`false`).
    pub bot_decides: Option<bool>,
    /// Once the prompt has played, send these key presses (SendDtmf).
    pub dtmf: Option<String>,
    /// Refuse every call with this gRPC status (the bot is up but will not take calls).
    pub refuse: Option<tonic::Code>,
}

/// A message from the gateway and when it arrived (since the bot started).
#[derive(Clone, Debug)]
pub struct Received {
    pub at: Duration,
    /// The gateway's `call_time_ms` stamp on the message.
    pub call_time_ms: u64,
    pub msg: GwMsg,
}

#[derive(Default)]
struct Shared {
    /// Per call (in order of arrival), every message received.
    calls: Vec<Vec<Received>>,
    /// Request metadata of each call.
    metadata: Vec<Vec<(String, String)>>,
}

struct Service {
    script: Script,
    shared: Arc<Mutex<Shared>>,
    start: Instant,
}

type BotStream = Pin<Box<dyn Stream<Item = Result<pb::BotMessage, tonic::Status>> + Send>>;

#[tonic::async_trait]
impl pb::bot_service_server::BotService for Service {
    type CallStream = BotStream;

    async fn call(
        &self,
        request: tonic::Request<tonic::Streaming<pb::GatewayMessage>>,
    ) -> Result<tonic::Response<BotStream>, tonic::Status> {
        if let Some(code) = self.script.refuse {
            return Err(tonic::Status::new(code, "test bot refuses calls"));
        }
        let metadata = request
            .metadata()
            .iter()
            .filter_map(|kv| match kv {
                tonic::metadata::KeyAndValueRef::Ascii(k, v) => {
                    Some((k.to_string(), v.to_str().unwrap_or("").to_string()))
                }
                _ => None,
            })
            .collect();
        let index = {
            let mut shared = lock(&self.shared);
            shared.calls.push(Vec::new());
            shared.metadata.push(metadata);
            shared.calls.len() - 1
        };
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(256);
        let script = self.script.clone();
        let shared = self.shared.clone();
        let start = self.start;
        tokio::spawn(async move {
            let mut replied = false;
            while let Some(Ok(m)) = inbound.next().await {
                let call_time_ms = m.call_time_ms;
                let Some(msg) = m.msg else { continue };
                let deaf = matches!(msg, GwMsg::CallStarted(_))
                    && matches!(script.misbehaviour, Misbehaviour::Deaf);
                let out = react(&script, &msg, &mut replied);
                lock(&shared).calls[index].push(Received {
                    at: start.elapsed(),
                    call_time_ms,
                    msg,
                });
                for o in out {
                    if tx.send(Ok(o)).await.is_err() {
                        return;
                    }
                }
                if deaf {
                    // Hold both directions open without reading, like a hung process.
                    tokio::time::sleep(Duration::from_secs(120)).await;
                    drop((inbound, tx));
                    return;
                }
            }
        });
        Ok(tonic::Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

fn react(script: &Script, msg: &GwMsg, replied: &mut bool) -> Vec<pb::BotMessage> {
    let mut out = Vec::new();
    match msg {
        GwMsg::CallStarted(_) => {
            if let Misbehaviour::Garbage = script.misbehaviour {
                out.extend(garbage());
            }
            if script.bot_decides.is_some() {
                out.push(pb::BotMessage {
                    msg: Some(BotMsg::UpdateBargeIn(pb::UpdateBargeIn {
                        mode: Some("bot_decides".into()),
                        ..Default::default()
                    })),
                });
            }
            out.extend(script.prompt.as_ref().map(Prompt::message));
            if let Misbehaviour::Flood { chunks, chunk_ms } = script.misbehaviour {
                for i in 0..chunks {
                    let samples = tone(440.0, chunk_ms, 8000);
                    let audio = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
                    out.push(play_message(&format!("flood-{i}"), audio, 8000, "", &[]));
                }
            }
        }
        GwMsg::BargeIn(b) if b.decision_requested => {
            let msg = match script.bot_decides {
                Some(true) => BotMsg::ConfirmBargeIn(pb::ConfirmBargeIn {}),
                Some(false) => BotMsg::RejectBargeIn(pb::RejectBargeIn {}),
                None => return out,
            };
            out.push(pb::BotMessage { msg: Some(msg) });
        }
        // "Let me transfer you": once the prompt has played.
        GwMsg::PlaybackFinished(p) if p.playback_id == "prompt" => {
            if let Some(digits) = &script.dtmf {
                out.push(pb::BotMessage {
                    msg: Some(BotMsg::SendDtmf(pb::SendDtmf {
                        digits: digits.clone(),
                        duration_ms: 200,
                    })),
                });
            }
            if let Some(target) = &script.transfer_to {
                out.push(pb::BotMessage {
                    msg: Some(BotMsg::Transfer(pb::Transfer {
                        target: target.clone(),
                    })),
                });
            }
        }
        GwMsg::TurnEnded(_) if !*replied => {
            if let Some(reply) = &script.reply {
                *replied = true;
                out.push(reply.message());
            }
        }
        _ => {}
    }
    out
}

fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// A tone with two harmonics (clearly voiced for the peer's RMS detector), amplitude 8000.
pub fn tone(freq: f64, ms: u32, rate: u32) -> Vec<i16> {
    let n = (u64::from(rate) * u64::from(ms) / 1000) as usize;
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            let w = 2.0 * std::f64::consts::PI * freq * t;
            (5000.0 * w.sin() + 2000.0 * (2.0 * w).sin() + 1000.0 * (3.0 * w).sin()) as i16
        })
        .collect()
}

pub struct GrpcBot {
    scheme: &'static str,
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    /// Behind a mutex so another thread can `kill()` the bot in the middle of a call.
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
}

impl GrpcBot {
    /// Starts the bot on 127.0.0.1 (a free port), plaintext HTTP/2.
    pub fn start(script: Script) -> GrpcBot {
        GrpcBot::start_with(script, None)
    }

    /// Starts the bot with TLS: `identity` = (certificate chain PEM, private key PEM).
    pub fn start_tls(script: Script, cert_pem: &str, key_pem: &str) -> GrpcBot {
        GrpcBot::start_with(
            script,
            Some(tonic::transport::Identity::from_pem(cert_pem, key_pem)),
        )
    }

    fn start_with(script: Script, tls: Option<tonic::transport::Identity>) -> GrpcBot {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime for the test bot");
        let shared = Arc::new(Mutex::new(Shared::default()));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind the test bot");
        let addr = listener.local_addr().expect("bot address");
        let service = Service {
            script: script.clone(),
            shared: shared.clone(),
            start: Instant::now(),
        };
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let window = match script.misbehaviour {
            Misbehaviour::Deaf => Some(16 * 1024),
            _ => None,
        };
        let mut builder = tonic::transport::Server::builder()
            .initial_stream_window_size(window)
            .initial_connection_window_size(window);
        if let Some(identity) = tls {
            builder = builder
                .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
                .expect("test bot TLS config");
        }
        runtime.spawn(
            builder
                .add_service(pb::bot_service_server::BotServiceServer::new(service))
                .serve_with_incoming(incoming),
        );
        GrpcBot {
            scheme,
            addr,
            shared,
            runtime: Mutex::new(Some(runtime)),
        }
    }

    /// `http://127.0.0.1:PORT` (or `https://`), for `bot.grpc.endpoint`.
    pub fn endpoint(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Stops the server at once: every connection is dropped, like a crashed bot.
    pub fn kill(&self) {
        let runtime = self
            .runtime
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(rt) = runtime {
            rt.shutdown_background();
        }
    }

    /// Every message received on call `n` (0-based) so far.
    pub fn received(&self, n: usize) -> Vec<Received> {
        lock(&self.shared).calls.get(n).cloned().unwrap_or_default()
    }

    pub fn calls(&self) -> usize {
        lock(&self.shared).calls.len()
    }

    pub fn metadata(&self, n: usize) -> Vec<(String, String)> {
        lock(&self.shared)
            .metadata
            .get(n)
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until call `n` has received a message matching `pred` (or the timeout).
    pub fn wait_for(&self, n: usize, timeout: Duration, pred: impl Fn(&GwMsg) -> bool) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.received(n).iter().any(|r| pred(&r.msg)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for GrpcBot {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A free TCP port with nothing listening (for "bot down" tests).
pub fn closed_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}")
}

/// An example bot (`examples/grpc-*-bot`) running as a child process; its stdout (one JSON
/// object per line) goes to a file in the run directory. Killed on drop.
pub struct BotProcess {
    child: std::process::Child,
    stdout: std::path::PathBuf,
    pub endpoint: String,
}

impl BotProcess {
    /// Starts `program args… --listen 127.0.0.1:PORT` from the repository root and waits
    /// (≤ 20 s) for its `listening` line.
    pub fn start(
        run: &crate::TestRun,
        name: &str,
        program: &std::path::Path,
        args: &[&str],
    ) -> Result<BotProcess, String> {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
            l.local_addr().map_err(|e| e.to_string())?.port()
        };
        let listen = format!("127.0.0.1:{port}");
        let stdout = run.path(&format!("{name}.stdout.log"));
        let stderr = run.path(&format!("{name}.stderr.log"));
        let file = |p: &std::path::Path| {
            std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))
        };
        let child = std::process::Command::new(program)
            .args(args)
            .arg("--listen")
            .arg(&listen)
            .current_dir(crate::run::repo_root())
            .stdin(std::process::Stdio::null())
            .stdout(file(&stdout)?)
            .stderr(file(&stderr)?)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        let mut bot = BotProcess {
            child,
            stdout,
            endpoint: format!("http://{listen}"),
        };
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            if bot.events().iter().any(|e| e["event"] == "listening") {
                return Ok(bot);
            }
            if let Ok(Some(status)) = bot.child.try_wait() {
                let err = std::fs::read_to_string(&stderr).unwrap_or_default();
                return Err(format!("{name} exited ({status}): {err}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("{name} did not start listening within 20 s"))
    }

    /// Every JSON line printed so far.
    pub fn events(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.stdout)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for BotProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Gateway overrides for a gRPC bot at `endpoint`, plus `extra`.
pub fn grpc_overrides<'a>(
    endpoint: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut v = vec![("bot.kind", "grpc"), ("bot.grpc.endpoint", endpoint)];
    v.extend_from_slice(extra);
    v
}

/// A [`tone`] prompt without text.
pub fn tone_prompt(id: &str, freq: f64, ms: u32, rate: u32) -> Prompt {
    Prompt {
        playback_id: id.into(),
        samples: tone(freq, ms, rate),
        sample_rate: rate,
        ..Default::default()
    }
}

/// The gateway's whole log so far (tails can miss lines of a chatty debug log).
pub fn full_log(gw: &crate::Gateway) -> String {
    std::fs::read_to_string(gw.stderr_path()).unwrap_or_default()
}
