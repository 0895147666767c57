//! One call: SIP dialog events + media session + bot, in one task.
//!
//! The task negotiates SDP, binds the RTP/RTCP pair and connects the call's bot (its own
//! `BotConfig`: the global `[bot]` or a route's) before it answers, so an unreachable bot can
//! still be refused with 503. Then it waits for the ACK and runs the media loop: RTP in, a
//! tick at each absolute 20 ms deadline (one caller frame to the VAD and the bot, one
//! outbound packet), VAD results in, dialog events in. The bot's commands are applied to the
//! media session; media events go to the bot; a failed bot gets `bot.on_failure`
//! (`bot_side.rs`).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use media::session::{MediaEvent, MediaSession, SessionConfig};
use media::vad::{Delivery, VadPool, VadResult, VadSink};
use sip::sdp::{self, LocalMedia, NegotiatedMedia};
use sip::ua::CallHandle;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::bot::connect::{self, ConnectContext};
use crate::bot::demo::DemoAudio;
use crate::bot::link::{BotLink, CallerAudio};
use crate::bot::{BotCommand, BotEvent, CallInfo, Truncation};
use crate::config::{BotConfig, Config};
use crate::ports::{PortPool, RtpSockets};
use crate::signalling::{CallSignal, SipCommand};

mod bot_side;
use bot_side::BotSide;

/// Everything a call task shares with the others.
pub struct CallContext {
    pub cfg: Arc<Config>,
    pub vad: Arc<VadPool>,
    pub audio: DemoAudio,
    pub ports: PortPool,
    pub advertised_ip: IpAddr,
    pub sip: mpsc::Sender<SipCommand>,
}

/// VAD results reach the call through a bounded channel; the worker never blocks on it.
struct ChannelSink(mpsc::Sender<VadResult>);

impl VadSink for ChannelSink {
    fn deliver(&self, result: VadResult) -> Delivery {
        match self.0.try_send(result) {
            Ok(()) => Delivery::Delivered,
            Err(mpsc::error::TrySendError::Full(_)) => Delivery::Full,
            Err(mpsc::error::TrySendError::Closed(_)) => Delivery::Closed,
        }
    }
}

/// Runs one call with `bot` (the global `[bot]`, or a route's).
pub async fn run(
    ctx: Arc<CallContext>,
    call: CallHandle,
    info: CallInfo,
    offer: Option<String>,
    mut signals: mpsc::Receiver<CallSignal>,
    bot: Arc<BotConfig>,
) {
    let outcome = run_inner(&ctx, call, info, offer, &mut signals, &bot).await;
    match outcome {
        Ok(reason) => info!(reason, "call ended"),
        Err(reason) => warn!(reason, "call failed"),
    }
    let _ = ctx.sip.send(SipCommand::Finished { call }).await;
}

async fn run_inner(
    ctx: &CallContext,
    call: CallHandle,
    info: CallInfo,
    offer: Option<String>,
    signals: &mut mpsc::Receiver<CallSignal>,
    bot_cfg: &BotConfig,
) -> Result<String, String> {
    let Some(sockets) = ctx.ports.bind(ctx.advertised_ip).await else {
        reject(ctx, call, 503, "No RTP port available").await;
        return Err("no RTP port available".into());
    };
    let mut local = LocalMedia {
        ip: ctx.advertised_ip,
        port: sockets.port,
        codecs: ctx.cfg.sdp_codecs(),
        ptime_ms: 20,
        dtmf: true,
        session_id: rand::random::<u32>() as u64,
        session_version: 1,
    };
    // Offer in the INVITE → answer in the 200; no offer → our offer in the 200, answer in the ACK.
    let (body, early) = match &offer {
        Some(offer) => match sdp::answer_offer(offer, &local) {
            Ok((answer, negotiated)) => (answer, Some(negotiated)),
            Err(e) => {
                reject(ctx, call, 488, "Not Acceptable Here").await;
                return Err(format!("offer rejected: {e}"));
            }
        },
        None => (sdp::create_offer(&local, sdp::Direction::SendRecv), None),
    };
    // The bot first: a call we cannot serve is refused before it is answered.
    let bot = match connect_bot(ctx, &info, bot_cfg, signals).await {
        Connecting::Connected(link) => Some(link),
        Connecting::Failed(e) if bot_cfg.on_failure == "fallback" => {
            warn!(error = %e, "bot unreachable: answering with the fallback prompt");
            None
        }
        Connecting::Failed(e) => {
            warn!(error = %e, "bot unreachable: 503");
            reject(ctx, call, 503, "Service Unavailable").await;
            return Err(format!("bot unreachable: {e}"));
        }
        Connecting::CallerGone(reason) => return Ok(reason),
    };
    send(ctx, SipCommand::Answer { call, sdp: body }).await;
    // Wait for the ACK.
    let negotiated = loop {
        match signals.recv().await {
            Some(CallSignal::Confirmed { answer }) => match (early, answer) {
                (Some(n), _) => break n,
                (None, Some(answer)) => match sdp::accept_answer(&answer, &local.codecs, &local) {
                    Ok(n) => break n,
                    Err(e) => {
                        send(ctx, SipCommand::Hangup { call }).await;
                        return Err(format!("answer in ACK unusable: {e}"));
                    }
                },
                (None, None) => {
                    send(ctx, SipCommand::Hangup { call }).await;
                    return Err("delayed offer but the ACK carried no answer".into());
                }
            },
            Some(CallSignal::Cancelled) => return Ok("cancelled".into()),
            Some(CallSignal::Ended { reason }) => return Ok(reason),
            Some(CallSignal::ReInvite { .. }) => {
                send(
                    ctx,
                    respond_reinvite(call, Err((491, "Request Pending".into()))),
                )
                .await;
            }
            // No transfer can be under way before the ACK.
            Some(CallSignal::TransferProgress { .. }) => {}
            None => return Err("signalling gone".into()),
        }
    };
    info!(
        codec = ?negotiated.codec,
        remote = %negotiated.remote_rtp,
        rtp_port = sockets.port,
        "call confirmed"
    );
    let setup = MediaSetup {
        info,
        sockets,
        negotiated,
        bot,
        bot_cfg,
    };
    run_media(ctx, call, setup, &mut local, signals).await
}

enum Connecting {
    Connected(BotLink),
    Failed(String),
    /// CANCEL (or the dialog ended) while the bot was being reached.
    CallerGone(String),
}

/// Reaches the bot while still watching the dialog: a caller who cancels does not wait for
/// the bot's connect timeout.
async fn connect_bot(
    ctx: &CallContext,
    info: &CallInfo,
    bot_cfg: &BotConfig,
    signals: &mut mpsc::Receiver<CallSignal>,
) -> Connecting {
    let connect_ctx = ConnectContext {
        demo_audio: &ctx.audio,
        bargein_mode: &ctx.cfg.bargein.mode,
    };
    let started = Instant::now();
    let connecting = connect::connect(bot_cfg, info, &connect_ctx);
    tokio::pin!(connecting);
    loop {
        tokio::select! {
            result = &mut connecting => {
                return match result {
                    Ok(link) => {
                        info!(
                            kind = %bot_cfg.kind,
                            connect_ms = started.elapsed().as_millis() as u64,
                            "bot connected"
                        );
                        Connecting::Connected(link)
                    }
                    Err(e) => Connecting::Failed(e),
                };
            }
            signal = signals.recv() => match signal {
                Some(CallSignal::Cancelled) => return Connecting::CallerGone("cancelled".into()),
                Some(CallSignal::Ended { reason }) => return Connecting::CallerGone(reason),
                None => return Connecting::CallerGone("signalling gone".into()),
                // Nothing else can happen before our 2xx.
                Some(_) => {}
            },
        }
    }
}

fn respond_reinvite(call: CallHandle, result: Result<String, (u16, String)>) -> SipCommand {
    SipCommand::RespondReinvite { call, result }
}

async fn send(ctx: &CallContext, cmd: SipCommand) {
    let _ = ctx.sip.send(cmd).await;
}

async fn reject(ctx: &CallContext, call: CallHandle, code: u16, reason: &str) {
    send(
        ctx,
        SipCommand::Reject {
            call,
            code,
            reason: reason.into(),
        },
    )
    .await;
}

fn session_config(ctx: &CallContext, n: &NegotiatedMedia, bot_cfg: &BotConfig) -> SessionConfig {
    let cfg = &ctx.cfg;
    SessionConfig {
        codec: crate::config::media_codec(n.codec),
        payload_type: n.payload_type,
        dtmf_payload_type: n.dtmf_payload_type,
        remote_rtp: n.remote_rtp,
        jitter: media::jitter::JitterConfig {
            min_delay_ms: cfg.media.jitter_min_ms,
            max_delay_ms: cfg.media.jitter_max_ms,
            ..Default::default()
        },
        // Validated at start: a failure here cannot happen, but is still not a panic.
        bargein: cfg.bargein_config().unwrap_or_default(),
        max_queued_ms: bot_cfg.max_buffered_s.saturating_mul(1000),
        rtcp_interval: Duration::from_secs(cfg.media.rtcp_interval_s),
        cname: format!("bargein@{}", ctx.advertised_ip),
        ssrc: rand::random(),
        seq_base: rand::random(),
        ts_base: rand::random(),
    }
}

/// What the media phase starts with.
struct MediaSetup<'a> {
    info: CallInfo,
    sockets: RtpSockets,
    negotiated: NegotiatedMedia,
    /// None: the bot could not be reached (fallback policy).
    bot: Option<BotLink>,
    bot_cfg: &'a BotConfig,
}

async fn run_media(
    ctx: &CallContext,
    call: CallHandle,
    setup: MediaSetup<'_>,
    local: &mut LocalMedia,
    signals: &mut mpsc::Receiver<CallSignal>,
) -> Result<String, String> {
    let MediaSetup {
        info,
        sockets,
        negotiated,
        bot,
        bot_cfg,
    } = setup;
    let now = Instant::now();
    let session_cfg = session_config(ctx, &negotiated, bot_cfg);
    let policy = session_cfg.bargein.clone();
    let mut session = match MediaSession::new(session_cfg, now) {
        Ok(s) => s,
        Err(e) => {
            send(ctx, SipCommand::Hangup { call }).await;
            return Err(format!("media session: {e}"));
        }
    };
    session.set_sending(negotiated.local_direction.sends());
    let (vad_tx, mut vad_rx) = mpsc::channel::<VadResult>(64);
    let Some(mut vad) = ctx.vad.open_stream(
        Box::new(ChannelSink(vad_tx)),
        &ctx.cfg.pipeline_config(bot_cfg),
    ) else {
        send(ctx, SipCommand::Hangup { call }).await;
        return Err("VAD pool overloaded".into());
    };
    // Dropped (and written) whichever way this function returns.
    let mut recorder =
        crate::recording::CallRecorder::new(&ctx.cfg.calls.record_dir, &info.call_id);
    let mut bot = BotSide::new(bot_cfg, bot, policy);
    bot.send_event(BotEvent::CallStarted(info));
    let mut caller_samples: u64 = 0;
    let processed_audio = bot_cfg.wants_processed_audio();
    let max_duration = match ctx.cfg.calls.max_duration_s {
        0 => None,
        s => Some(now + Duration::from_secs(s)),
    };
    let mut rtp_buf = vec![0u8; 2048];
    let mut rtcp_buf = vec![0u8; 1500];
    let mut send_errors = 0u64;
    let mut fallback_finished = false;
    loop {
        bot.apply(ctx, call, &mut session, fallback_finished).await;
        fallback_finished = false;
        let deadline = session.next_deadline();
        let hung_up = bot.hung_up();
        let connected = bot.connected();
        let transfer_deadline = bot.transfer_deadline();
        tokio::select! {
            biased;
            signal = signals.recv() => match signal {
                Some(CallSignal::Ended { reason }) => {
                    bot.call_ended(&reason);
                    log_media_stats(&session, send_errors);
                    return Ok(reason);
                }
                Some(CallSignal::Cancelled) | None => return Ok("signalling gone".into()),
                Some(CallSignal::Confirmed { .. }) => {}
                Some(CallSignal::ReInvite { offer }) => {
                    let reply = reinvite(local, offer.as_deref(), &mut session);
                    send(ctx, respond_reinvite(call, reply)).await;
                }
                Some(CallSignal::TransferProgress { status, from_notify }) => {
                    bot.on_transfer_progress(ctx, call, status, from_notify).await;
                }
            },
            _ = tokio::time::sleep_until(deadline.into()) => {
                let now = Instant::now();
                let destination = session.destination();
                while let Some(tick) = session.poll_tick(now) {
                    crate::pacing::OUTBOUND_LATENESS.record(tick.lateness);
                    if let Some(packet) = tick.packet {
                        // UDP send on loopback/LAN does not block; if the socket buffer is
                        // full the packet is dropped (counted) rather than delaying the clock.
                        if sockets.rtp.try_send_to(packet, destination).is_err() {
                            send_errors += 1;
                        }
                    }
                    vad.push_frame(
                        tick.agent_audio,
                        tick.caller_audio,
                        tick.caller_samples_before,
                        tick.caller_shift,
                    );
                    if let Some(rec) = recorder.as_mut() {
                        rec.push(tick.caller_audio, tick.agent_audio, tick.caller_shift);
                    }
                    if !processed_audio && bot.wants_audio() {
                        bot.send_audio(CallerAudio {
                            at_sample: caller_samples,
                            samples: std::sync::Arc::from(tick.caller_audio),
                        });
                    }
                    caller_samples += tick.caller_audio.len() as u64;
                }
            }
            cmd = bot.recv(), if connected => match cmd {
                Some(cmd) => bot.push(cmd),
                None => bot.gone(),
            },
            r = sockets.rtp.recv_from(&mut rtp_buf) => {
                if let Ok((len, source)) = r {
                    if let Some(data) = rtp_buf.get(..len) {
                        session.on_rtp(Instant::now(), source, data);
                    }
                }
            }
            r = sockets.rtcp.recv_from(&mut rtcp_buf) => {
                if let Ok((len, _)) = r {
                    if let Some(data) = rtcp_buf.get(..len) {
                        session.on_rtcp(Instant::now(), std::time::SystemTime::now(), data);
                    }
                }
            }
            Some(mut result) = vad_rx.recv() => {
                // The bot asked for what the VAD heard: each chunk comes back with its result.
                if let Some(pcm) = result.processed_audio.take() {
                    bot.send_audio(CallerAudio {
                        at_sample: result.tag.saturating_sub(pcm.len() as u64),
                        samples: std::sync::Arc::from(&pcm[..]),
                    });
                }
                session.on_vad(Instant::now(), result)
            }
            _ = sleep_until_opt(transfer_deadline), if transfer_deadline.is_some() => {
                bot.on_transfer_timeout(ctx, call).await;
            }
            _ = sleep_until_opt(max_duration), if !hung_up => {
                info!("max_duration_s reached: hanging up");
                bot.push(BotCommand::Hangup);
            }
        }
        // RTCP goes to the RTP destination's port + 1 (no a=rtcp support needed for G.711 trunks).
        let rtp_dest = session.destination();
        let rtcp_dest = SocketAddr::new(rtp_dest.ip(), rtp_dest.port().wrapping_add(1));
        if let Some(report) = session.poll_rtcp(Instant::now(), std::time::SystemTime::now()) {
            let _ = sockets.rtcp.try_send_to(report, rtcp_dest);
        }
        while let Some(ev) = session.poll_event() {
            log_media_event(&ev);
            fallback_finished |= bot.on_media_event(&ev);
            if let Some((timing, bot_event)) = to_bot_event(ev) {
                if let Some(timing) = timing {
                    bot.send_event(timing);
                }
                bot.send_event(bot_event);
            }
        }
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

/// Answers a re-INVITE: hold/unhold (direction) and codec/address changes on the same port.
fn reinvite(
    local: &mut LocalMedia,
    offer: Option<&str>,
    session: &mut MediaSession,
) -> Result<String, (u16, String)> {
    let Some(offer) = offer else {
        // A re-INVITE without SDP asks us to offer; keep it simple and refuse.
        return Err((488, "Re-INVITE without SDP not supported".into()));
    };
    local.session_version += 1;
    match sdp::answer_offer(offer, local) {
        Ok((answer, n)) => {
            session.update_remote(
                crate::config::media_codec(n.codec),
                n.payload_type,
                n.dtmf_payload_type,
                n.remote_rtp,
            );
            session.set_sending(n.local_direction.sends());
            info!(direction = ?n.local_direction, codec = ?n.codec, "re-INVITE applied");
            Ok(answer)
        }
        Err(e) => {
            local.session_version -= 1;
            warn!(error = %e, "re-INVITE offer rejected");
            Err((488, "Not Acceptable Here".into()))
        }
    }
}

/// The bot's view of a media event, preceded for barge-ins by their timing.
fn to_bot_event(ev: MediaEvent) -> Option<(Option<BotEvent>, BotEvent)> {
    let timing = |onset, dtmf| Some(BotEvent::BargeInTiming { onset, dtmf });
    let (timing, event) = match ev {
        MediaEvent::BargeIn {
            truncated,
            onset,
            dtmf,
            ..
        } => (
            timing(onset, dtmf),
            BotEvent::BargeIn {
                truncated: truncated
                    .into_iter()
                    .map(|t| Truncation {
                        playback_id: t.playback_id,
                        played_ms: t.played_ms,
                        total_ms: t.total_ms,
                    })
                    .collect(),
            },
        ),
        MediaEvent::TentativeBargeIn { onset, .. } => {
            (timing(onset, false), BotEvent::BargeInTentative)
        }
        MediaEvent::DecisionRequested { onset, .. } => {
            (timing(onset, false), BotEvent::BargeInDecisionRequested)
        }
        other => (None, plain_bot_event(other)?),
    };
    Some((timing, event))
}

fn plain_bot_event(ev: MediaEvent) -> Option<BotEvent> {
    Some(match ev {
        MediaEvent::Dtmf { digit } => BotEvent::Dtmf { digit },
        MediaEvent::SpeechStarted { .. } => BotEvent::SpeechStarted,
        MediaEvent::TurnEnded { .. } => BotEvent::TurnEnded,
        MediaEvent::BargeInCancelled { .. } => BotEvent::BargeInCancelled,
        MediaEvent::PlaybackFinished { playback_id, .. } => {
            BotEvent::PlaybackFinished { playback_id }
        }
        MediaEvent::MarkReached { playback_id, mark } => {
            BotEvent::MarkReached { playback_id, mark }
        }
        MediaEvent::Cleared { truncated } => BotEvent::Cleared {
            truncated: truncated
                .into_iter()
                .map(|t| Truncation {
                    playback_id: t.playback_id,
                    played_ms: t.played_ms,
                    total_ms: t.total_ms,
                })
                .collect(),
        },
        // With their timing, in `to_bot_event`.
        MediaEvent::BargeIn { .. }
        | MediaEvent::TentativeBargeIn { .. }
        | MediaEvent::DecisionRequested { .. }
        | MediaEvent::PlaybackStarted { .. }
        | MediaEvent::SpeechDuringNonInterruptible { .. }
        | MediaEvent::FalseBargeIn { .. }
        | MediaEvent::PrematureCutoff { .. } => return None,
    })
}

/// Decisions are logged with a `decision` field (the evaluation harness reads them) and the
/// times relative to speech onset.
fn log_media_event(ev: &MediaEvent) {
    let ms = |a: Instant, b: Instant| a.saturating_duration_since(b).as_millis() as u64;
    match ev {
        MediaEvent::BargeIn {
            onset,
            confirmed_at,
            dtmf,
            truncated,
        } => info!(
            decision = "barge_in",
            confirm_ms = ms(*confirmed_at, *onset),
            dtmf,
            ?truncated,
            "barge-in"
        ),
        MediaEvent::TentativeBargeIn { onset, at } => info!(
            decision = "tentative",
            after_ms = ms(*at, *onset),
            "tentative barge-in: bot paused"
        ),
        MediaEvent::BargeInCancelled { .. } => {
            info!(decision = "resumed", "barge-in not confirmed: bot resumed")
        }
        MediaEvent::DecisionRequested { .. } => {
            info!(
                decision = "decision_requested",
                "barge-in decision asked of the bot"
            )
        }
        MediaEvent::FalseBargeIn { .. } => info!(
            decision = "false_barge_in",
            "false barge-in: no caller speech within 2 s of the truncation"
        ),
        MediaEvent::PrematureCutoff { .. } => info!(
            decision = "premature_cutoff",
            "premature cut-off: bot audio started while the caller was speaking"
        ),
        MediaEvent::SpeechDuringNonInterruptible { .. } => info!(
            decision = "speech_during_non_interruptible",
            "caller spoke over a non-interruptible segment"
        ),
        MediaEvent::TurnEnded { .. } => info!(decision = "turn_ended", "caller turn ended"),
        MediaEvent::SpeechStarted { .. } => {
            info!(decision = "speech_started", "caller speech started")
        }
        MediaEvent::Dtmf { digit } => info!(%digit, "DTMF"),
        other => debug!(event = ?other, "media event"),
    }
}

fn log_media_stats(session: &MediaSession, send_errors: u64) {
    let s = session.stats();
    let rx = session.receiver().stats();
    let jb = session.jitter().stats();
    let all = &crate::pacing::OUTBOUND_LATENESS;
    info!(
        ticks = s.ticks,
        max_lateness_ms = s.max_lateness.as_secs_f64() * 1000.0,
        vad_results = s.vad_results,
        send_errors,
        rtp_received = rx.received,
        rtp_lost = rx.lost,
        rtp_strict_drops = rx.wrong_source,
        jitter_ms = rx.jitter_ms,
        jb_delay_ms = jb.current_delay_ms,
        jb_concealed = jb.frames_concealed,
        rtt_ms = s.round_trip.map(|d| d.as_secs_f64() * 1000.0),
        "media stats"
    );
    let c = session.policy_counters();
    info!(
        barge_ins = c.barge_ins,
        tentative_pauses = c.tentative_pauses,
        false_barge_ins = c.false_barge_ins,
        premature_cutoffs = c.premature_cutoffs,
        dtmf_barge_ins = c.dtmf_barge_ins,
        "barge-in counters"
    );
    // Process-wide pacing figure (all calls so far), for the load benchmark.
    info!(
        ticks = all.count(),
        p50_ms = all.quantile_ms(0.50),
        p99_ms = all.quantile_ms(0.99),
        "outbound pacing lateness"
    );
}
