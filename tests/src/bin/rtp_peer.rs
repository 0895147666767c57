//! Independent RTP endpoint used as the caller's media in the end-to-end tests.
//!
//! Sends one G.711 packet every 20 ms from an absolute clock for the whole duration (digital
//! silence, or the caller's WAV from `--send-at`), records everything received placed by kernel
//! arrival time, and writes a JSON `PeerReport`.
//!
//! ```text
//! rtp_peer --bind 127.0.0.1:40000 --remote 127.0.0.1:20000 --duration 10
//!          [--send caller.wav --send-at 3] [--pt 0|8] [--record rx.wav] [--report r.json]
//! ```

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use bargein_e2e::analysis::wav_voiced_intervals;
use bargein_e2e::audio::{read_wav, write_wav, SAMPLE_RATE};
use bargein_e2e::report::{RxLog, RxPacket, TxSummary};
use bargein_e2e::rtp::{
    decode_g711, encode_g711, parse_packet, silence_byte, write_packet, RtpHeader, PT_PCMA,
    PT_PCMU, SAMPLES_PER_FRAME,
};
use bargein_e2e::{analysis, rxstamp};

const USAGE: &str = "usage: rtp_peer --bind IP:PORT --remote IP:PORT --duration SECONDS \
[--send WAV --send-at SECONDS] [--pt 0|8] [--record WAV] [--report JSON]";
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
    };
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
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    args.bind = bind.ok_or_else(|| format!("--bind is required\n{USAGE}"))?;
    args.remote = remote.ok_or_else(|| format!("--remote is required\n{USAGE}"))?;
    args.duration = duration.ok_or_else(|| format!("--duration is required\n{USAGE}"))?;
    Ok(args)
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

/// Sends for the whole duration; returns what the report needs to know about it.
fn send_loop(socket: &UdpSocket, args: &Args, speech: &[i16], start: Instant) -> TxSummary {
    let mut summary = TxSummary::default();
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
        let body: &[u8] = match frame {
            Some(samples) => {
                if summary.speech_onset_ms.is_none() {
                    marker = true; // start of a talkspurt (RFC 3551 §4.1)
                    summary.speech_onset_ms = Some(ms(start.elapsed()));
                }
                encode_g711(args.payload_type, samples, &mut payload);
                payload.resize(SAMPLES_PER_FRAME, silence_byte(args.payload_type));
                &payload
            }
            None => &silence,
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
    summary
}

/// Receives until the duration is over; fills `log` and the recording.
fn receive_loop(
    socket: &UdpSocket,
    args: &Args,
    start: Instant,
    start_wall: SystemTime,
    log: &mut RxLog,
    recording: &mut [i16],
) {
    let mut buf = vec![0u8; 2048];
    let mut pcm = Vec::with_capacity(SAMPLES_PER_FRAME * 2);
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
            let at = (arrival.as_secs_f64() * f64::from(SAMPLE_RATE)) as usize;
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
    let tx = thread::Builder::new()
        .name("rtp-send".into())
        .spawn(move || send_loop(&sender, &tx_args, &tx_speech, start))
        .map_err(|e| format!("spawn sender: {e}"))?;

    let mut log = RxLog::new();
    let mut recording = vec![0i16; (args.duration.as_secs_f64() * f64::from(SAMPLE_RATE)) as usize];
    receive_loop(&socket, &args, start, start_wall, &mut log, &mut recording);
    let mut summary = tx
        .join()
        .map_err(|_| "sender thread panicked".to_string())?;
    summary.speech_voiced_end_ms = if summary.speech_onset_ms.is_some() {
        speech_voiced_end_ms
    } else {
        None
    };

    let report = log.report(
        &args.bind.to_string(),
        &args.remote.to_string(),
        ms(args.duration),
        &summary,
    );
    if let Some(path) = &args.record {
        write_wav(path, &recording)?;
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
    match parse_args(std::env::args().skip(1)).and_then(run) {
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
