//! Per-call state and the application's commands on it.

use std::net::SocketAddr;
use std::time::Instant;

use rsip::{Header, Method, Request};

use super::outbound::SDP;
use super::session_timer::{self, Negotiation};
use super::{CallHandle, EndReason, UaError, UaEvent, UserAgent};
use crate::dialog::Dialog;
use crate::message::{headers, set_body, Transport};
use crate::transaction::TxKey;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Phase {
    /// INVITE received, no final response yet.
    Offered,
    /// 2xx sent (ACKed or not: see `awaiting_ack`).
    Established,
    /// Our BYE is out; `notify` says whether its completion still owes a `CallEnded`.
    Terminating { bye: TxKey, notify: bool },
}

/// A 2xx to an INVITE (initial or re-INVITE) waiting for its ACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct AwaitingAck {
    pub(super) cseq: u32,
    pub(super) key: TxKey,
    pub(super) initial: bool,
    /// The 2xx carried our offer (delayed offer): the ACK must bring the answer.
    pub(super) offer_in_2xx: bool,
}

/// A re-INVITE or UPDATE-with-offer from the peer, waiting for `respond_reinvite`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PendingOffer {
    pub(super) key: TxKey,
    pub(super) request: Request,
    pub(super) cseq: u32,
    pub(super) is_invite: bool,
    pub(super) session: Negotiation,
}

#[derive(Debug)]
pub(super) struct Call {
    pub(super) transport: Transport,
    /// Where the INVITE came from (TCP connection to reuse; fallback next hop).
    pub(super) peer: SocketAddr,
    pub(super) invite: Request,
    pub(super) invite_key: TxKey,
    pub(super) invite_cseq: u32,
    pub(super) offer_in_invite: bool,
    pub(super) origin: (String, String, u32),
    pub(super) dialog: Dialog,
    pub(super) phase: Phase,
    pub(super) awaiting_ack: Option<AwaitingAck>,
    pub(super) pending: Option<PendingOffer>,
    /// RFC 4028 interval agreed for the session, if supervised.
    pub(super) session: Negotiation,
    /// When the session expires (BYE time) while supervised.
    pub(super) session_deadline: Option<Instant>,
    /// `hangup()` came before the ACK of our 2xx; BYE goes out when it arrives (§15).
    pub(super) hangup_requested: bool,
    /// Our REFER (RFC 3515): its transaction until the final response, then whether the
    /// implicit subscription still expects a final NOTIFY.
    pub(super) refer: Option<Refer>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Refer {
    Sent(TxKey),
    Accepted,
}

impl Call {
    pub(super) fn local_tag(&self) -> &str {
        &self.dialog.id().local_tag
    }
}

impl UserAgent {
    pub(super) fn answer_call(
        &mut self,
        now: Instant,
        handle: CallHandle,
        sdp: Option<String>,
    ) -> Result<(), UaError> {
        let call = self.calls.get(&handle).ok_or(UaError::UnknownCall)?;
        if call.phase != Phase::Offered {
            return Err(UaError::InvalidState("call already answered or ending"));
        }
        let sdp = sdp.filter(|s| !s.is_empty()).ok_or(UaError::SdpRequired)?;
        let mut ok = self.reply_to(&call.invite, 200, None, Some(call.local_tag()));
        ok.headers.push(self.contact_header(call.transport));
        // §12.1.1: the Record-Route set is echoed in dialog-forming responses.
        for rr in call
            .invite
            .headers
            .iter()
            .filter(|h| matches!(h, Header::RecordRoute(_)))
        {
            ok.headers.push(rr.clone());
        }
        ok.headers.extend(self.capability_headers());
        if let Negotiation::PeerRefreshes { interval_secs } = call.session {
            ok.headers
                .extend(session_timer::response_headers(interval_secs));
        }
        set_body(&mut ok.headers, &mut ok.body, SDP, sdp.into_bytes());
        let key = call.invite_key.clone();
        self.layer.respond(now, &key, &ok)?;

        let call = self.calls.get_mut(&handle).ok_or(UaError::UnknownCall)?;
        call.phase = Phase::Established;
        call.dialog.confirm();
        call.awaiting_ack = Some(AwaitingAck {
            cseq: call.invite_cseq,
            key,
            initial: true,
            offer_in_2xx: !call.offer_in_invite,
        });
        let session = call.session;
        self.arm_session_timer(now, handle, session);
        Ok(())
    }

    pub(super) fn refer_call(
        &mut self,
        now: Instant,
        handle: CallHandle,
        target: &str,
    ) -> Result<(), UaError> {
        let call = self.calls.get(&handle).ok_or(UaError::UnknownCall)?;
        if call.phase != Phase::Established || call.awaiting_ack.is_some() {
            return Err(UaError::InvalidState("REFER needs a confirmed call"));
        }
        if call.refer.is_some() {
            return Err(UaError::InvalidState("a REFER is already pending"));
        }
        if target.contains(['<', '>', '\r', '\n']) {
            return Err(UaError::InvalidState("Refer-To target is not a bare URI"));
        }
        let extra = vec![
            Header::Other("Refer-To".into(), format!("<{target}>")),
            Header::Other("Referred-By".into(), self.contact_value(call.transport)),
            self.contact_header(call.transport),
        ];
        let key = self.send_in_dialog(now, handle, Method::Refer, extra, None)?;
        if let Some(call) = self.calls.get_mut(&handle) {
            call.refer = Some(Refer::Sent(key));
        }
        Ok(())
    }

    pub(super) fn info_call(
        &mut self,
        now: Instant,
        handle: CallHandle,
        content_type: &str,
        body: &str,
    ) -> Result<(), UaError> {
        let call = self.calls.get(&handle).ok_or(UaError::UnknownCall)?;
        if call.phase != Phase::Established || call.awaiting_ack.is_some() {
            return Err(UaError::InvalidState("INFO needs a confirmed call"));
        }
        let body = Some((content_type, body.as_bytes().to_vec()));
        self.send_in_dialog(now, handle, Method::Info, Vec::new(), body)?;
        Ok(())
    }

    /// A final response to our REFER (or its timeout, as 408).
    pub(super) fn on_refer_response(&mut self, handle: CallHandle, key: &TxKey, status: u16) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        if call.refer != Some(Refer::Sent(key.clone())) {
            return;
        }
        call.refer = (200..300).contains(&status).then_some(Refer::Accepted);
        self.events.push_back(UaEvent::TransferProgress {
            call: handle,
            status,
            from_notify: false,
        });
    }

    /// An in-dialog NOTIFY (already answered 200): a `refer` event's sipfrag reports the
    /// transfer's progress. Others are ignored.
    pub(super) fn on_notify(&mut self, handle: CallHandle, request: &Request) {
        let event = headers::find(&request.headers, "Event").unwrap_or_default();
        let is_refer = event
            .split(';')
            .next()
            .is_some_and(|e| e.trim().eq_ignore_ascii_case("refer"));
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        // A NOTIFY may overtake the REFER's 202 (RFC 3515 §2.4.4): count it as accepted.
        if !is_refer || call.refer.is_none() {
            return;
        }
        let Some(status) = sipfrag_status(&request.body) else {
            return;
        };
        let terminated = headers::find(&request.headers, "Subscription-State")
            .is_some_and(|s| s.trim().to_ascii_lowercase().starts_with("terminated"));
        call.refer = (status < 200 && !terminated).then_some(Refer::Accepted);
        self.events.push_back(UaEvent::TransferProgress {
            call: handle,
            status,
            from_notify: true,
        });
    }

    pub(super) fn provisional(
        &mut self,
        now: Instant,
        handle: CallHandle,
        code: u16,
    ) -> Result<(), UaError> {
        if !(101..=199).contains(&code) {
            return Err(UaError::InvalidStatus(code));
        }
        let call = self.calls.get(&handle).ok_or(UaError::UnknownCall)?;
        if call.phase != Phase::Offered {
            return Err(UaError::InvalidState("call already answered or ending"));
        }
        let mut response = self.reply_to(&call.invite, code, None, Some(call.local_tag()));
        response.headers.push(self.contact_header(call.transport));
        for rr in call
            .invite
            .headers
            .iter()
            .filter(|h| matches!(h, Header::RecordRoute(_)))
        {
            response.headers.push(rr.clone());
        }
        let key = call.invite_key.clone();
        self.layer.respond(now, &key, &response)?;
        Ok(())
    }

    pub(super) fn reject_call(
        &mut self,
        now: Instant,
        handle: CallHandle,
        code: u16,
        reason: &str,
    ) -> Result<(), UaError> {
        if !(300..=699).contains(&code) {
            return Err(UaError::InvalidStatus(code));
        }
        let call = self.calls.get(&handle).ok_or(UaError::UnknownCall)?;
        if call.phase != Phase::Offered {
            return Err(UaError::InvalidState("call already answered or ending"));
        }
        let reason = Some(reason).filter(|r| !r.trim().is_empty() && !r.contains(['\r', '\n']));
        let response = self.reply_to(&call.invite, code, reason, Some(call.local_tag()));
        let key = call.invite_key.clone();
        self.layer.respond(now, &key, &response)?;
        self.finish_call(handle);
        Ok(())
    }

    pub(super) fn hangup_call(&mut self, now: Instant, handle: CallHandle) -> Result<(), UaError> {
        let call = self.calls.get_mut(&handle).ok_or(UaError::UnknownCall)?;
        match call.phase {
            Phase::Offered => {
                self.reject_call(now, handle, 480, "Temporarily Unavailable")?;
                self.events.push_back(UaEvent::CallEnded {
                    call: handle,
                    reason: EndReason::LocalHangup,
                });
                Ok(())
            }
            Phase::Established if call.awaiting_ack.is_some() => {
                call.hangup_requested = true;
                Ok(())
            }
            Phase::Established => {
                self.start_bye(now, handle, true);
                Ok(())
            }
            Phase::Terminating { .. } => Err(UaError::InvalidState("hangup already in progress")),
        }
    }

    pub(super) fn respond_pending_offer(
        &mut self,
        now: Instant,
        handle: CallHandle,
        result: Result<String, (u16, String)>,
    ) -> Result<(), UaError> {
        if let Err((code, _)) = &result {
            if !(300..=699).contains(code) {
                return Err(UaError::InvalidStatus(*code));
            }
        }
        let call = self.calls.get_mut(&handle).ok_or(UaError::UnknownCall)?;
        let pending = call
            .pending
            .take()
            .ok_or(UaError::InvalidState("no re-INVITE or UPDATE pending"))?;
        let transport = call.transport;
        let local_tag = call.local_tag().to_string();
        match result {
            Ok(sdp) => {
                let mut ok = self.reply_to(&pending.request, 200, None, Some(&local_tag));
                ok.headers.push(self.contact_header(transport));
                ok.headers.push(Header::Supported("timer".into()));
                if let Negotiation::PeerRefreshes { interval_secs } = pending.session {
                    ok.headers
                        .extend(session_timer::response_headers(interval_secs));
                }
                if !sdp.is_empty() {
                    set_body(&mut ok.headers, &mut ok.body, SDP, sdp.into_bytes());
                }
                self.layer.respond(now, &pending.key, &ok)?;
                if let Some(call) = self.calls.get_mut(&handle) {
                    if pending.is_invite {
                        call.awaiting_ack = Some(AwaitingAck {
                            cseq: pending.cseq,
                            key: pending.key.clone(),
                            initial: false,
                            offer_in_2xx: pending.request.body.is_empty(),
                        });
                    }
                }
                // A successful re-INVITE/UPDATE is a session refresh (RFC 4028 §10).
                self.arm_session_timer(now, handle, pending.session);
            }
            Err((code, reason)) => {
                let reason = Some(reason.as_str())
                    .filter(|r| !r.trim().is_empty() && !r.contains(['\r', '\n']));
                let response = self.reply_to(&pending.request, code, reason, Some(&local_tag));
                self.layer.respond(now, &pending.key, &response)?;
            }
        }
        Ok(())
    }

    /// (Re)starts or stops RFC 4028 supervision after a 2xx we sent.
    pub(super) fn arm_session_timer(
        &mut self,
        now: Instant,
        handle: CallHandle,
        session: Negotiation,
    ) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        call.session = session;
        call.session_deadline = match session {
            // Supervision starts with the 2xx to the INVITE; an early UPDATE only records it.
            Negotiation::PeerRefreshes { .. } if call.phase != Phase::Established => None,
            Negotiation::PeerRefreshes { interval_secs } => {
                let at = session_timer::expiry_deadline(now, interval_secs);
                self.session_deadlines.schedule(at, handle);
                Some(at)
            }
            _ => None,
        };
    }

    /// Sends BYE for an established call. `notify`: whether `CallEnded` is still owed (false
    /// when it was already emitted, e.g. on ACK timeout or session expiry).
    pub(super) fn start_bye(&mut self, now: Instant, handle: CallHandle, notify: bool) {
        // Pending requests of the peer still get an answer (§15.1.2 recommends 487).
        if let Some(pending) = self.calls.get_mut(&handle).and_then(|c| c.pending.take()) {
            let response = self.reply_to(&pending.request, 487, None, None);
            let _ = self.layer.respond(now, &pending.key, &response);
        }
        match self.send_in_dialog(now, handle, Method::Bye, Vec::new(), None) {
            Ok(bye) => {
                if let Some(call) = self.calls.get_mut(&handle) {
                    call.phase = Phase::Terminating { bye, notify };
                    call.session_deadline = None;
                }
            }
            Err(err) => {
                tracing::warn!(call = handle.id(), error = %err, "could not send BYE");
                if notify {
                    self.events.push_back(UaEvent::CallEnded {
                        call: handle,
                        reason: EndReason::LocalHangup,
                    });
                }
                self.finish_call(handle);
            }
        }
    }

    /// Forgets a call. Its transactions run to completion on their own.
    pub(super) fn finish_call(&mut self, handle: CallHandle) {
        if let Some(call) = self.calls.remove(&handle) {
            self.dialogs.remove(call.dialog.id());
            if self.origins.get(&call.origin) == Some(&handle) {
                self.origins.remove(&call.origin);
            }
        }
    }

    /// Ends a call the peer or a timer ended: answers what is still open with 487, emits
    /// `CallEnded` unless it was already owed elsewhere, and forgets the call.
    pub(super) fn end_call(&mut self, now: Instant, handle: CallHandle, reason: EndReason) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let mut open = Vec::new();
        if call.phase == Phase::Offered {
            open.push((call.invite_key.clone(), call.invite.clone()));
        }
        if let Some(pending) = call.pending.take() {
            open.push((pending.key, pending.request));
        }
        let notify = !matches!(call.phase, Phase::Terminating { notify: false, .. });
        let tag = call.local_tag().to_string();
        for (key, request) in open {
            let response = self.reply_to(&request, 487, None, Some(&tag));
            let _ = self.layer.respond(now, &key, &response);
        }
        if notify {
            self.events.push_back(UaEvent::CallEnded {
                call: handle,
                reason,
            });
        }
        self.finish_call(handle);
    }
}

/// Whether a body's Content-Type is SDP (a missing Content-Type is tolerated as SDP).
/// The status code of a message/sipfrag body's first line (`SIP/2.0 200 OK`).
pub(super) fn sipfrag_status(body: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(body).ok()?;
    let line = text.lines().next()?.trim();
    let mut parts = line.split_whitespace();
    if !parts.next()?.eq_ignore_ascii_case("SIP/2.0") {
        return None;
    }
    parts
        .next()?
        .parse()
        .ok()
        .filter(|c| (100..700).contains(c))
}

pub(super) fn is_sdp_body(request: &Request) -> bool {
    request.body.is_empty()
        || headers::find(&request.headers, "Content-Type").is_none_or(|ct| {
            ct.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case(SDP)
        })
}
