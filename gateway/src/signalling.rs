//! The tokio shell around the sans-IO SIP user agent: one task owns the UA, feeds it
//! datagrams, timeouts and the calls' commands, sends what it wants sent, and hands each
//! call's events to that call's task.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use sip::transport::SipTransport;
use sip::ua::{CallHandle, UaConfig, UaEvent, UserAgent};
use tokio::sync::mpsc;
use tracing::{debug, info, warn, Instrument};

use crate::bot::demo::DemoAudio;
use crate::bot::CallInfo;
use crate::call::{self, CallContext};
use crate::config::Config;
use crate::ports::PortPool;
use crate::routing::CallFacts;
use crate::routing_dest::Routing;

/// What a call task asks of the signalling task.
#[derive(Debug)]
pub enum SipCommand {
    Answer {
        call: CallHandle,
        sdp: String,
    },
    Reject {
        call: CallHandle,
        code: u16,
        reason: String,
    },
    Hangup {
        call: CallHandle,
    },
    RespondReinvite {
        call: CallHandle,
        result: Result<String, (u16, String)>,
    },
    /// Transfer the caller: in-dialog REFER with this Refer-To URI.
    Refer {
        call: CallHandle,
        target: String,
    },
    /// In-dialog INFO (the bot's DTMF).
    Info {
        call: CallHandle,
        content_type: String,
        body: String,
    },
    /// The call task has finished; forget its channel.
    Finished {
        call: CallHandle,
    },
}

/// Dialog events for one call task.
#[derive(Debug)]
pub enum CallSignal {
    Confirmed {
        answer: Option<String>,
    },
    Cancelled,
    ReInvite {
        offer: Option<String>,
    },
    /// Our REFER's final response (`from_notify` false) or a NOTIFY sipfrag status.
    TransferProgress {
        status: u16,
        from_notify: bool,
    },
    Ended {
        reason: String,
    },
}

pub async fn run(
    cfg: Arc<Config>,
    vad: Arc<media::vad::VadPool>,
    audio: DemoAudio,
) -> Result<(), String> {
    let advertised = cfg.advertised_ip().map_err(|e| e.to_string())?;
    let (transport, mut incoming) = SipTransport::bind(cfg.sip.listen, cfg.sip.max_message_bytes)
        .await
        .map_err(|e| format!("cannot bind SIP on {}: {e}", cfg.sip.listen))?;
    let local = transport.local_addr();
    let mut ua = UserAgent::new(UaConfig {
        timers: cfg.timers(),
        user_agent: cfg.sip.user_agent.clone(),
        max_message_bytes: cfg.sip.max_message_bytes,
        ..UaConfig::new(std::net::SocketAddr::new(advertised, local.port()))
    });
    info!(%local, "SIP listening (UDP+TCP)");
    let (cmd_tx, mut cmd_rx) = mpsc::channel::<SipCommand>(1024);
    let ctx = Arc::new(CallContext {
        cfg: cfg.clone(),
        vad,
        audio,
        ports: PortPool::new(cfg.media.rtp_port_min, cfg.media.rtp_port_max),
        advertised_ip: advertised,
        sip: cmd_tx,
    });
    let routing = Arc::new(Routing::new(ctx)?);
    let mut calls: HashMap<CallHandle, mpsc::Sender<CallSignal>> = HashMap::new();
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let deadline = ua.next_deadline();
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            msg = incoming.recv() => {
                let Some(msg) = msg else { return Err("SIP transport closed".into()) };
                ua.handle_input(Instant::now(), msg.transport, msg.source, &msg.data);
            }
            cmd = cmd_rx.recv() => {
                // The context holds a sender, so the channel never closes while we run.
                if let Some(cmd) = cmd {
                    apply_command(&mut ua, &mut calls, cmd);
                }
            }
            _ = sleep => ua.handle_timeout(Instant::now()),
            _ = &mut shutdown => {
                info!("shutting down");
                return Ok(());
            }
        }
        while let Some(t) = ua.poll_transmit() {
            if let Err(e) = transport.send(t.transport, t.destination, t.payload).await {
                warn!(destination = %t.destination, error = %e, "SIP send failed");
            }
        }
        while let Some(ev) = ua.poll_event() {
            dispatch(&mut ua, &routing, &mut calls, ev);
        }
    }
}

fn apply_command(
    ua: &mut UserAgent,
    calls: &mut HashMap<CallHandle, mpsc::Sender<CallSignal>>,
    cmd: SipCommand,
) {
    let now = Instant::now();
    let result = match cmd {
        SipCommand::Answer { call, sdp } => ua.answer(now, call, Some(sdp)),
        SipCommand::Reject { call, code, reason } => ua.reject(now, call, code, &reason),
        SipCommand::Hangup { call } => ua.hangup(now, call),
        SipCommand::RespondReinvite { call, result } => ua.respond_reinvite(now, call, result),
        SipCommand::Info {
            call,
            content_type,
            body,
        } => ua.send_info(now, call, &content_type, &body),
        SipCommand::Refer { call, target } => {
            let result = ua.refer(now, call, &target);
            if result.is_err() {
                // Tell the call, so a pending transfer does not wait forever.
                if let Some(tx) = calls.get(&call) {
                    let _ = tx.try_send(CallSignal::TransferProgress {
                        status: 500,
                        from_notify: false,
                    });
                }
            }
            result
        }
        SipCommand::Finished { call } => {
            calls.remove(&call);
            Ok(())
        }
    };
    if let Err(e) = result {
        debug!(error = ?e, "SIP command not applied");
    }
}

fn dispatch(
    ua: &mut UserAgent,
    routing: &Arc<Routing>,
    calls: &mut HashMap<CallHandle, mpsc::Sender<CallSignal>>,
    ev: UaEvent,
) {
    let (call, signal) = match ev {
        UaEvent::IncomingCall {
            call,
            call_id,
            from,
            to,
            to_user,
            offer,
            source,
            headers,
            ..
        } => {
            let now = Instant::now();
            if calls.len() >= routing.default.ctx.cfg.calls.max_concurrent {
                warn!(%call_id, "at max_concurrent calls: 503");
                let _ = ua.reject(now, call, 503, "Service Unavailable");
                return;
            }
            let span = tracing::info_span!("call", call_id = %call_id);
            let info = CallInfo {
                p_asserted_identity: headers.get("P-Asserted-Identity").map(str::to_owned),
                diversion: headers.get_all("Diversion").map(str::to_owned).collect(),
                headers: headers
                    .iter()
                    .filter(|(n, _)| {
                        !n.eq_ignore_ascii_case("P-Asserted-Identity")
                            && !n.eq_ignore_ascii_case("Diversion")
                    })
                    .map(|(n, v)| (n.to_owned(), v.to_owned()))
                    .collect(),
                call_id,
                from,
                to,
                to_user,
            };
            info!(
                parent: &span,
                from = %info.from,
                to = %info.to,
                pai = ?info.p_asserted_identity,
                diversion = ?info.diversion,
                %source,
                delayed_offer = offer.is_none(),
                "incoming call"
            );
            let decision = routing.router.select(&CallFacts {
                to_user: info.to_user.as_deref(),
                source: source.ip(),
                headers: &info.headers,
            });
            if routing.hook_url.is_empty() {
                // Static routing is decided here, before anything is spawned or answered.
                let dest = match routing.destination(&decision) {
                    Ok(d) => d,
                    Err((code, reason)) => {
                        info!(parent: &span, code, "no route: call rejected");
                        let _ = ua.reject(now, call, code, &reason);
                        return;
                    }
                };
                info!(parent: &span, route = %dest.name, "call routed");
                let (tx, rx) = mpsc::channel(16);
                calls.insert(call, tx);
                let run = call::run(dest.ctx, call, info, offer, rx, dest.bot);
                tokio::spawn(run.instrument(span));
            } else {
                // The hook is asked from the call's own task: the signalling loop never waits
                // for it (the caller already has 100 Trying; a CANCEL meanwhile is queued for
                // the call task).
                let (tx, rx) = mpsc::channel(16);
                calls.insert(call, tx);
                let routing = routing.clone();
                let mut rx = rx;
                let task = async move {
                    let answer = routing.ask_hook(&info, source, &decision).await;
                    // Cancelled (or ended) while the hook thought: nothing to connect.
                    if let Ok(CallSignal::Cancelled | CallSignal::Ended { .. }) = rx.try_recv() {
                        info!("call cancelled while routing");
                        let _ = routing
                            .default
                            .ctx
                            .sip
                            .send(SipCommand::Finished { call })
                            .await;
                        return;
                    }
                    match answer {
                        Ok(dest) => {
                            info!(route = %dest.name, "call routed");
                            call::run(dest.ctx, call, info, offer, rx, dest.bot).await;
                        }
                        Err((code, reason)) => {
                            info!(code, "call rejected by routing");
                            let sip = &routing.default.ctx.sip;
                            let _ = sip.send(SipCommand::Reject { call, code, reason }).await;
                            let _ = sip.send(SipCommand::Finished { call }).await;
                        }
                    }
                };
                tokio::spawn(task.instrument(span));
            }
            return;
        }
        UaEvent::CallConfirmed { call, answer } => (call, CallSignal::Confirmed { answer }),
        UaEvent::CallCancelled { call } => (call, CallSignal::Cancelled),
        UaEvent::ReInvite { call, offer } => (call, CallSignal::ReInvite { offer }),
        UaEvent::TransferProgress {
            call,
            status,
            from_notify,
        } => (
            call,
            CallSignal::TransferProgress {
                status,
                from_notify,
            },
        ),
        UaEvent::CallEnded { call, reason } => (
            call,
            CallSignal::Ended {
                reason: format!("{reason:?}"),
            },
        ),
        other => {
            debug!(event = ?other, "SIP event");
            return;
        }
    };
    if let Some(tx) = calls.get(&call) {
        // A call task that cannot keep up with its own dialog events is stuck; its
        // signal is dropped rather than stalling every other call's signalling.
        if tx.try_send(signal).is_err() {
            warn!(?call, "call task not accepting signals");
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
