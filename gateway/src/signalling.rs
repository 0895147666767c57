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
    /// The call task has finished; forget its channel.
    Finished {
        call: CallHandle,
    },
}

/// Dialog events for one call task.
#[derive(Debug)]
pub enum CallSignal {
    Confirmed { answer: Option<String> },
    Cancelled,
    ReInvite { offer: Option<String> },
    Ended { reason: String },
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
            dispatch(&mut ua, &ctx, &mut calls, ev);
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
    ctx: &Arc<CallContext>,
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
            if calls.len() >= ctx.cfg.calls.max_concurrent {
                warn!(%call_id, "at max_concurrent calls: 503");
                let _ = ua.reject(now, call, 503, "Service Unavailable");
                return;
            }
            let (tx, rx) = mpsc::channel(16);
            calls.insert(call, tx);
            let span = tracing::info_span!("call", call_id = %call_id);
            let info = CallInfo {
                p_asserted_identity: headers.get("P-Asserted-Identity").map(str::to_owned),
                diversion: headers.get_all("Diversion").map(str::to_owned).collect(),
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
            tokio::spawn(call::run(ctx.clone(), call, info, offer, rx).instrument(span));
            return;
        }
        UaEvent::CallConfirmed { call, answer } => (call, CallSignal::Confirmed { answer }),
        UaEvent::CallCancelled { call } => (call, CallSignal::Cancelled),
        UaEvent::ReInvite { call, offer } => (call, CallSignal::ReInvite { offer }),
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
