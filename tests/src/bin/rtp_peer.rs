//! Independent RTP endpoint used as the caller's media in the end-to-end tests.
//!
//! Sends one G.711 packet every 20 ms from an absolute clock for the whole duration (digital
//! silence, or the caller's WAV from `--send-at`), records everything received placed by kernel
//! arrival time, and writes a JSON `PeerReport`.
//!
//! ```text
//! rtp_peer --bind 127.0.0.1:40000 --remote 127.0.0.1:20000 --duration 10
//!          [--send caller.wav --send-at 3] [--pt 0|8] [--record rx.wav] [--report r.json]
//!          [--echo-erl-db 12 --echo-delay-ms 40 --echo-dispersion-ms 12 --echo-seed 7]
//!          [--record-tx tx.wav] [--call-id ID] [--args-file more.args]
//! ```
//!
//! Closed-loop echo (`--echo-*`): what the peer receives, placed on its timeline by arrival
//! time, goes through an echo path (bulk delay + decaying FIR, `eval::echo::EchoPath`) and is
//! added to what it sends — the frame sent at tick k carries the 20 ms "captured" just before
//! it, so the echo is causal. `--args-file` reads more arguments (whitespace separated) from a
//! file: SIPp starts every call's peer with the same command, the file makes them per call.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use bargein_e2e::analysis::wav_voiced_intervals;
use std::sync::Mutex;

use bargein_e2e::audio::{read_wav, write_wav, SAMPLE_RATE};
use bargein_e2e::eval::echo::{EchoParams, EchoPath};
use bargein_e2e::report::{EchoReport, RxLog, RxPacket, TxSummary};
use bargein_e2e::rtp::{
    decode_g711, encode_g711, parse_packet, silence_byte, write_packet, RtpHeader, PT_PCMA,
    PT_PCMU, SAMPLES_PER_FRAME,
};
use bargein_e2e::{analysis, rxstamp};

const USAGE: &str = "usage: rtp_peer --bind IP:PORT --remote IP:PORT --duration SECONDS \
[--send WAV --send-at SECONDS] [--pt 0|8] [--record WAV] [--report JSON] \
[--echo-erl-db DB [--echo-delay-ms MS] [--echo-dispersion-ms MS] [--echo-seed N]] \
[--record-tx WAV] [--call-id ID] [--args-file FILE]";
/// Echo defaults when only `--echo-erl-db` is given.
const DEFAULT_ECHO_DISPERSION_MS: f64 = 12.0;
const FRAME: Duration = Duration::from_millis(20);

#[derive(Debug)]
struct Args {
    bind: SocketAddr,
    remote: SocketAddr,
    duration: Duration,
    send: Option<PathBuf>,
    send_at: Duration,
    payload_type: u8,
    record: Option<PathBuf>,
    report: Option<PathBuf>,
    /// What was sent (caller WAV + echo), placed at send time.
    record_tx: Option<PathBuf>,
    echo: Option<EchoParams>,
    call_id: Option<String>,
}

/// Replaces every `--args-file FILE` by the whitespace-separated arguments in FILE (one level:
/// a file naming another `--args-file` is an error).
fn expand_args_files(argv: Vec<String>) -> Result<Vec<String>, String> {
    let mut out = Vec::with_capacity(argv.len());
    let mut it = argv.into_iter();
    while let Some(arg) = it.next() {
        if arg != "--args-file" {
            out.push(arg);
            continue;
        }
        let path = it
            .next()
            .ok_or_else(|| format!("--args-file needs a value\n{USAGE}"))?;
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("--args-file {path}: {e}"))?;
        for token in text.split_whitespace() {
            if token == "--args-file" {
                return Err(format!("--args-file {path}: nested --args-file"));
            }
            out.push(token.to_string());
        }
    }
    Ok(out)
}

fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut bind, mut remote, mut duration) = (None, None, None);
    let mut args = Args {
        bind: "0.0.0.0:0".parse().map_err(|e| format!("{e}"))?,
        remote: "0.0.0.0:0".parse().map_err(|e| format!("{e}"))?,
        duration: Duration::ZERO,
        send: None,
        send_at: Duration::ZERO,
        payload_type: PT_PCMU,
        record: None,
        report: None,
        record_tx: None,
        echo: None,
        call_id: None,
    };
    let (mut echo_erl, mut echo_delay, mut echo_dispersion, mut echo_seed) =
        (None, None, None, None);
    while let Some(flag) = argv.next() {
        let mut value = || {
            argv.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--bind" => bind = Some(parse_addr(&value()?)?),
            "--remote" => remote = Some(parse_addr(&value()?)?),
            "--duration" => duration = Some(parse_seconds(&value()?)?),
            "--send" => args.send = Some(PathBuf::from(value()?)),
            "--send-at" => args.send_at = parse_seconds(&value()?)?,
            "--pt" => {
                args.payload_type = match value()?.as_str() {
                    "0" => PT_PCMU,
                    "8" => PT_PCMA,
                    other => return Err(format!("--pt must be 0 (PCMU) or 8 (PCMA), got {other}")),
                }
            }
            "--record" => args.record = Some(PathBuf::from(value()?)),
            "--report" => args.report = Some(PathBuf::from(value()?)),
            "--record-tx" => args.record_tx = Some(PathBuf::from(value()?)),
            "--call-id" => args.call_id = Some(value()?),
            "--echo-erl-db" => echo_erl = Some(parse_number(&flag, &value()?)?),
            "--echo-delay-ms" => echo_delay = Some(parse_number(&flag, &value()?)?),
            "--echo-dispersion-ms" => echo_dispersion = Some(parse_number(&flag, &value()?)?),
            "--echo-seed" => {
                let v = value()?;
                echo_seed = Some(
                    v.parse::<u64>()
                        .map_err(|e| format!("--echo-seed {v:?}: {e}"))?,
                );
            }
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    args.bind = bind.ok_or_else(|| format!("--bind is required\n{USAGE}"))?;
    args.remote = remote.ok_or_else(|| format!("--remote is required\n{USAGE}"))?;
    args.duration = duration.ok_or_else(|| format!("--duration is required\n{USAGE}"))?;
    match echo_erl {
        Some(erl_db) => {
            let params = EchoParams {
                delay_ms: echo_delay.unwrap_or(0.0),
                erl_db,
                dispersion_ms: echo_dispersion.unwrap_or(DEFAULT_ECHO_DISPERSION_MS),
                seed: echo_seed.unwrap_or(0),
            };
            EchoPath::new(params)?; // validate now, with the values in the message
            args.echo = Some(params);
        }
        None if echo_delay.is_some() || echo_dispersion.is_some() || echo_seed.is_some() => {
            return Err(format!("--echo-* options need --echo-erl-db\n{USAGE}"));
        }
        None => {}
    }
    Ok(args)
}

fn parse_number(flag: &str, s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("{flag} needs a number, got {s:?}"))
}

fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|e| format!("bad address {s:?}: {e}"))
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s.parse().map_err(|e| format!("bad seconds {s:?}: {e}"))?;
    Duration::try_from_secs_f64(secs).map_err(|e| format!("bad seconds {s:?}: {e}"))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Where received audio goes on the peer's timeline: like a phone's fixed jitter buffer,
/// clocked by the RTP timestamps from the first packet's arrival + [`PLAYOUT_DELAY_MS`]
/// (re-anchored on an SSRC change or a jump of more than a second). Placing each packet at
/// its own arrival time instead would make the echo path jitter by the network's (and this
/// busy machine's) jitter, which no real echo path does: the echo is made after the far
/// end's playout, sample-synchronous with the media clock.
#[derive(Default)]
struct Playout {
    anchor: Option<(u32, u32, i64)>, // (ssrc, timestamp, timeline sample)
}

const PLAYOUT_DELAY_MS: u32 = 40;

impl Playout {
    fn place(&mut self, header: &RtpHeader, arrival: Duration) -> usize {
        let arrived = (arrival.as_secs_f64() * f64::from(SAMPLE_RATE)) as i64;
        if let Some((ssrc, ts, at)) = self.anchor {
            let offset = i64::from(header.timestamp.wrapping_sub(ts) as i32);
            let placed = at + offset;
            if ssrc == header.ssrc && (placed - arrived).abs() <= i64::from(SAMPLE_RATE) {
                return placed.max(0) as usize;
            }
        }
        let at = arrived + i64::from(PLAYOUT_DELAY_MS * SAMPLE_RATE / 1000);
        self.anchor = Some((header.ssrc, header.timestamp, at));
        at as usize
    }
}

/// The closed echo loop on the sending side: the path, the shared far-end timeline (what was
/// received, by arrival time) and what was applied.
struct EchoLoop {
    path: EchoPath,
    far: Arc<Mutex<Vec<i16>>>,
    echo: Vec<f64>,
    far_energy: f64,
    echo_energy: f64,
    samples: u64,
}

impl EchoLoop {
    /// Renders the echo of timeline samples `start..start + 160` into `self.echo`.
    fn render(&mut self, start: usize) {
        let far = self.far.lock().unwrap_or_else(|e| e.into_inner());
        self.path.render(&far, start, &mut self.echo);
        let delay = self.path.delay_samples();
        for (i, e) in self.echo.iter().enumerate() {
            let far_sample = (start + i)
                .checked_sub(delay)
                .and_then(|p| far.get(p))
                .copied()
                .unwrap_or(0);
            self.far_energy += f64::from(far_sample) * f64::from(far_sample);
            self.echo_energy += e * e;
        }
        self.samples += self.echo.len() as u64;
    }

    fn report(&self) -> EchoReport {
        let p = self.path.params();
        EchoReport {
            delay_ms: p.delay_ms,
            erl_db: p.erl_db,
            dispersion_ms: p.dispersion_ms,
            seed: p.seed,
            taps: self.path.taps().len(),
            measured_erl_db: (self.far_energy > 0.0 && self.echo_energy > 0.0)
                .then(|| 10.0 * (self.far_energy / self.echo_energy).log10()),
            echo_rms: if self.samples == 0 {
                0.0
            } else {
                (self.echo_energy / self.samples as f64).sqrt()
            },
        }
    }
}

/// What the sender hands back when the call is over.
struct SendResult {
    summary: TxSummary,
    echo: Option<EchoLoop>,
    /// What was sent, frame k at sample 160·k (only with `--record-tx`).
    sent: Vec<i16>,
}

/// Sends for the whole duration; returns what the report needs to know about it.
fn send_loop(
    socket: &UdpSocket,
    args: &Args,
    speech: &[i16],
    start: Instant,
    mut echo: Option<EchoLoop>,
) -> SendResult {
    let mut summary = TxSummary::default();
    let mut sent = match args.record_tx {
        Some(_) => vec![0i16; (args.duration.as_secs_f64() * f64::from(SAMPLE_RATE)) as usize],
        None => Vec::new(),
    };
    let mut mixed: Vec<i16> = Vec::with_capacity(SAMPLES_PER_FRAME);
    let ssrc = std::process::id().rotate_left(16)
        ^ SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(7);
    let mut sequence = (ssrc >> 3) as u16;
    let mut timestamp = ssrc.rotate_left(7);
    let silence = vec![silence_byte(args.payload_type); SAMPLES_PER_FRAME];
    let (mut payload, mut packet) = (
        Vec::with_capacity(SAMPLES_PER_FRAME),
        Vec::with_capacity(200),
    );
    let mut speech_frames = speech.chunks(SAMPLES_PER_FRAME);
    let mut tick: u32 = 0;
    loop {
        let due = FRAME * tick;
        if due >= args.duration {
            break;
        }
        let deadline = start + due;
        let now = Instant::now();
        if deadline > now {
            thread::sleep(deadline - now);
        }
        summary.tx_max_late_ms = summary
            .tx_max_late_ms
            .max(ms(Instant::now().saturating_duration_since(deadline)));
        let mut marker = false;
        let frame = if due >= args.send_at {
            speech_frames.next()
        } else {
            None
        };
        if frame.is_some() && summary.speech_onset_ms.is_none() {
            marker = true; // start of a talkspurt (RFC 3551 §4.1)
            summary.speech_onset_ms = Some(ms(start.elapsed()));
        }
        mixed.clear();
        mixed.extend_from_slice(frame.unwrap_or(&[]));
        if let Some(echo) = echo.as_mut() {
            mixed.resize(SAMPLES_PER_FRAME, 0);
            // This packet carries the 20 ms captured before it was due: timeline samples
            // [160·(tick−1), 160·tick). The first packet has nothing captured yet.
            if let Some(prev) = (tick as usize).checked_sub(1) {
                echo.render(prev * SAMPLES_PER_FRAME);
                for (m, e) in mixed.iter_mut().zip(&echo.echo) {
                    *m = (f64::from(*m) + e).round().clamp(-32768.0, 32767.0) as i16;
                }
            }
        }
        if let Some(slot) = sent.get_mut(tick as usize * SAMPLES_PER_FRAME..) {
            for (dst, src) in slot.iter_mut().zip(&mixed) {
                *dst = *src;
            }
        }
        let body: &[u8] = if mixed.is_empty() {
            &silence
        } else {
            encode_g711(args.payload_type, &mixed, &mut payload);
            payload.resize(SAMPLES_PER_FRAME, silence_byte(args.payload_type));
            &payload
        };
        let header = RtpHeader {
            marker,
            payload_type: args.payload_type,
            sequence,
            timestamp,
            ssrc,
        };
        write_packet(&mut packet, &header, body);
        match socket.send_to(&packet, args.remote) {
            Ok(_) => summary.packets_tx += 1,
            Err(_) => summary.tx_errors += 1,
        }
        sequence = sequence.wrapping_add(1);
        timestamp = timestamp.wrapping_add(SAMPLES_PER_FRAME as u32);
        tick += 1;
    }
    SendResult {
        summary,
        echo,
        sent,
    }
}

/// Receives until the duration is over; fills `log` and the recording.
fn receive_loop(
    socket: &UdpSocket,
    args: &Args,
    start: Instant,
    start_wall: SystemTime,
    log: &mut RxLog,
    recording: &Mutex<Vec<i16>>,
) {
    let mut buf = vec![0u8; 2048];
    let mut pcm = Vec::with_capacity(SAMPLES_PER_FRAME * 2);
    let mut playout = Playout::default();
    while start.elapsed() < args.duration {
        let (len, source, stamp) = match rxstamp::recv_with_timestamp(socket, &mut buf) {
            Ok(received) => received,
            Err(_) => continue, // read timeout (re-check the clock) or ICMP error report
        };
        let arrival = stamp
            .and_then(|t| t.duration_since(start_wall).ok())
            .unwrap_or_else(|| start.elapsed());
        let Some(datagram) = buf.get(..len) else {
            continue;
        };
        let Ok((header, payload)) = parse_packet(datagram) else {
            log.push_invalid();
            continue;
        };
        let rms = if decode_g711(header.payload_type, payload, &mut pcm) {
            let at = playout.place(&header, arrival);
            let mut recording = recording.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(slot) = recording.get_mut(at..) {
                for (dst, src) in slot.iter_mut().zip(&pcm) {
                    *dst = *src;
                }
            }
            Some(analysis::rms(&pcm))
        } else {
            None
        };
        let packet = RxPacket {
            arrival_ms: ms(arrival),
            ssrc: header.ssrc,
            payload_type: header.payload_type,
            sequence: header.sequence,
            marker: header.marker,
            rms,
        };
        log.push(packet, source);
    }
}

fn run(args: Args) -> Result<(), String> {
    let speech = match &args.send {
        Some(path) => read_wav(path)?,
        None => Vec::new(),
    };
    let speech_voiced_end_ms = wav_voiced_intervals(&speech).last().map(|iv| iv[1]);
    let socket = UdpSocket::bind(args.bind).map_err(|e| format!("bind {}: {e}", args.bind))?;
    rxstamp::enable_timestamps(&socket).map_err(|e| format!("SO_TIMESTAMPNS: {e}"))?;
    socket
        .set_read_timeout(Some(FRAME))
        .map_err(|e| format!("set_read_timeout: {e}"))?;
    let sender = socket
        .try_clone()
        .map_err(|e| format!("clone socket: {e}"))?;

    // Both clocks are taken together: kernel receive stamps are wall clock, the sender is monotonic.
    let start_wall = SystemTime::now();
    let start = Instant::now();
    let args = Arc::new(args);
    let speech = Arc::new(speech);
    let tx_args = Arc::clone(&args);
    let tx_speech = Arc::clone(&speech);
    // What was received, by arrival time: the recording, and the echo loop's far-end signal.
    let recording = Arc::new(Mutex::new(vec![
        0i16;
        (args.duration.as_secs_f64() * f64::from(SAMPLE_RATE))
            as usize
    ]));
    let echo = match args.echo {
        Some(params) => Some(EchoLoop {
            path: EchoPath::new(params)?,
            far: Arc::clone(&recording),
            echo: vec![0.0; SAMPLES_PER_FRAME],
            far_energy: 0.0,
            echo_energy: 0.0,
            samples: 0,
        }),
        None => None,
    };
    let tx = thread::Builder::new()
        .name("rtp-send".into())
        .spawn(move || send_loop(&sender, &tx_args, &tx_speech, start, echo))
        .map_err(|e| format!("spawn sender: {e}"))?;

    let mut log = RxLog::new();
    receive_loop(&socket, &args, start, start_wall, &mut log, &recording);
    let SendResult {
        mut summary,
        echo,
        sent,
    } = tx
        .join()
        .map_err(|_| "sender thread panicked".to_string())?;
    summary.speech_voiced_end_ms = if summary.speech_onset_ms.is_some() {
        speech_voiced_end_ms
    } else {
        None
    };

    let mut report = log.report(
        &args.bind.to_string(),
        &args.remote.to_string(),
        ms(args.duration),
        &summary,
    );
    report.start_unix_ms = start_wall
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs_f64() * 1000.0);
    report.call_id = args.call_id.clone();
    report.echo = echo.as_ref().map(EchoLoop::report);
    if let Some(path) = &args.record {
        let recording = recording.lock().unwrap_or_else(|e| e.into_inner());
        write_wav(path, &recording)?;
    }
    if let Some(path) = &args.record_tx {
        write_wav(path, &sent)?;
    }
    let json =
        serde_json::to_string_pretty(&report).map_err(|e| format!("serialise report: {e}"))?;
    match &args.report {
        Some(path) => {
            // Write then rename, so a test polling for the file never reads half a report.
            let tmp = path.with_extension("json.tmp");
            std::fs::write(&tmp, json).map_err(|e| format!("{}: {e}", tmp.display()))?;
            std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        None => println!("{json}"),
    }
    eprintln!(
        "rtp_peer {}: tx {} rx {} first_rx {:?} max_gap {:.1} ms voiced {:.0} ms stop_latency {:?} reply {:?}",
        args.bind,
        report.packets_tx,
        report.packets_rx,
        report.first_rx_ms,
        report.max_gap_ms,
        report.voiced_total_ms,
        report.stop_latency_ms,
        report.reply_interval_ms
    );
    Ok(())
}

/// SIPp starts the peer with fork + exec and its sockets lack FD_CLOEXEC, so without this the
/// peer would hold SIPp's SIP and media ports for its whole run: a later SIPp could not bind
/// them. Nothing of ours is open yet except stdio.
fn close_inherited_fds() {
    // SAFETY: closes descriptors this process never uses (≥ 3) before anything opens files.
    unsafe {
        libc::close_range(3, libc::c_uint::MAX, 0);
    }
}

fn main() -> ExitCode {
    close_inherited_fds();
    let argv = expand_args_files(std::env::args().skip(1).collect());
    match argv.and_then(|a| parse_args(a.into_iter())).and_then(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rtp_peer: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn full_command_line() {
        let a = parse(&[
            "--bind",
            "127.0.0.1:4000",
            "--remote",
            "127.0.0.1:5000",
            "--duration",
            "2.5",
            "--send",
            "x.wav",
            "--send-at",
            "1",
            "--pt",
            "8",
            "--record",
            "r.wav",
            "--report",
            "r.json",
        ])
        .unwrap();
        assert_eq!(a.bind, "127.0.0.1:4000".parse().unwrap());
        assert_eq!(a.duration, Duration::from_millis(2500));
        assert_eq!(a.send_at, Duration::from_secs(1));
        assert_eq!(a.payload_type, PT_PCMA);
        assert_eq!(a.send.as_deref(), Some(std::path::Path::new("x.wav")));
        assert!(a.record.is_some() && a.report.is_some());
    }

    #[test]
    fn echo_options() {
        let base = [
            "--bind",
            "127.0.0.1:4000",
            "--remote",
            "127.0.0.1:5000",
            "--duration",
            "1",
        ];
        let with = |extra: &[&str]| {
            let mut v: Vec<&str> = base.to_vec();
            v.extend_from_slice(extra);
            parse(&v)
        };
        assert_eq!(with(&[]).unwrap().echo, None);
        let a = with(&[
            "--echo-erl-db",
            "12.5",
            "--echo-delay-ms",
            "40",
            "--echo-dispersion-ms",
            "9",
            "--echo-seed",
            "77",
            "--call-id",
            "3-99@127.0.0.1",
            "--record-tx",
            "tx.wav",
        ])
        .unwrap();
        assert_eq!(
            a.echo,
            Some(EchoParams {
                delay_ms: 40.0,
                erl_db: 12.5,
                dispersion_ms: 9.0,
                seed: 77
            })
        );
        assert_eq!(a.call_id.as_deref(), Some("3-99@127.0.0.1"));
        assert!(a.record_tx.is_some());
        let d = with(&["--echo-erl-db", "6"]).unwrap().echo.unwrap();
        assert_eq!(
            (d.delay_ms, d.dispersion_ms, d.seed),
            (0.0, DEFAULT_ECHO_DISPERSION_MS, 0)
        );
        assert!(with(&["--echo-delay-ms", "40"])
            .unwrap_err()
            .contains("need --echo-erl-db"));
        assert!(with(&["--echo-erl-db", "x"])
            .unwrap_err()
            .contains("needs a number"));
        assert!(with(&["--echo-erl-db", "inf"]).is_err());
        assert!(with(&["--echo-erl-db", "10", "--echo-delay-ms", "900"])
            .unwrap_err()
            .contains("delay 900"));
        assert!(with(&["--echo-erl-db", "10", "--echo-seed", "-1"])
            .unwrap_err()
            .contains("--echo-seed"));
    }

    #[test]
    fn args_files_are_spliced_in_place() {
        let dir = std::env::temp_dir().join(format!("rtp-peer-args-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("call_1.args");
        std::fs::write(&file, "--send x.wav\n  --send-at 0\t--echo-erl-db 9\n").unwrap();
        let argv: Vec<String> = [
            "--bind",
            "1.2.3.4:5",
            "--args-file",
            file.to_str().unwrap(),
            "--pt",
            "8",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let got = expand_args_files(argv).unwrap();
        assert_eq!(
            got,
            [
                "--bind",
                "1.2.3.4:5",
                "--send",
                "x.wav",
                "--send-at",
                "0",
                "--echo-erl-db",
                "9",
                "--pt",
                "8"
            ]
        );
        std::fs::write(&file, "--args-file other").unwrap();
        let nested = vec!["--args-file".to_string(), file.display().to_string()];
        assert!(expand_args_files(nested).unwrap_err().contains("nested"));
        assert!(expand_args_files(vec!["--args-file".into()])
            .unwrap_err()
            .contains("needs a value"));
        assert!(expand_args_files(vec!["--args-file".into(), "/nonexistent/x".into()]).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_command_lines_are_explained() {
        let base = ["--bind", "127.0.0.1:4000", "--remote", "127.0.0.1:5000"];
        assert!(parse(&base).unwrap_err().contains("--duration is required"));
        assert!(parse(&["--remote", "127.0.0.1:1", "--duration", "1"])
            .unwrap_err()
            .contains("--bind is required"));
        assert!(parse(&["--bind", "nonsense"])
            .unwrap_err()
            .contains("bad address"));
        assert!(parse(&["--duration", "-1"])
            .unwrap_err()
            .contains("bad seconds"));
        assert!(parse(&["--pt", "18"])
            .unwrap_err()
            .contains("--pt must be 0"));
        assert!(parse(&["--bogus"])
            .unwrap_err()
            .contains("unknown argument"));
        assert!(parse(&["--bind"]).unwrap_err().contains("needs a value"));
    }
}
