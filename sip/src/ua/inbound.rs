//! Everything that arrives: parsing, validation, transaction matching, and the UAS rules for
//! each method in and out of dialogs (RFC 3261 §8.2, §12.2.2, §9.2, §14.2, §15).

use std::net::SocketAddr;
use std::time::Instant;

use rsip::{Header, Method, Request, Response};

use super::call::{is_sdp_body, Call, PendingOffer, Phase};
use super::outbound::SDP;
use super::session_timer::{self, Negotiation};
use super::{CallHandle, CallHeaders, EndReason, UaEvent, UserAgent};
use crate::dialog::{Dialog, DialogId};
use crate::message::headers::{find, find_all, split_list, split_name_addr, uri_user};
use crate::message::{
    body_text, content_length_ok, is_keepalive, parse, stamp_top_via, validate_request,
    validate_request_as, BadRequest, Inbound, RequestSummary, Transport,
};
use crate::transaction::{InviteServerState, ServerMatch, TxEvent, TxKey};

/// Option tags we understand in `Require` (RFC 3261 §8.2.2.3).
const SUPPORTED_EXTENSIONS: [&str; 1] = ["timer"];

/// A validated request and where it came from.
struct Ctx {
    key: TxKey,
    transport: Transport,
    source: SocketAddr,
    destination: SocketAddr,
    summary: RequestSummary,
}

impl UserAgent {
    pub(super) fn on_input(
        &mut self,
        now: Instant,
        transport: Transport,
        source: SocketAddr,
        data: &[u8],
    ) {
        if is_keepalive(data) {
            self.stats.keepalives += 1;
            return;
        }
        match parse(data, self.cfg.max_message_bytes) {
            Err(err) => {
                self.stats.parse_errors += 1;
                tracing::debug!(%source, error = %err, "dropping unparseable SIP message");
            }
            Ok(Inbound::Response(response)) => self.on_response(now, response),
            Ok(Inbound::Request(request)) => self.on_request(now, transport, source, request),
            Ok(Inbound::ExtensionMethod { method, request }) => {
                // Not a method we could implement: 501 (§8.2.1), statelessly.
                let tag = self.random_token();
                let response = match validate_request_as(&request, &method) {
                    Ok(_) => self.reply_to(&request, 501, None, Some(&tag)),
                    Err(bad) => {
                        self.stats.bad_requests += 1;
                        self.reply_to(&request, bad.code, Some(&bad.reason), Some(&tag))
                    }
                };
                self.send_stateless(transport, source, &request, &response);
            }
        }
    }

    fn on_request(
        &mut self,
        now: Instant,
        transport: Transport,
        source: SocketAddr,
        mut request: Request,
    ) {
        let summary = match validate_request(&request) {
            Ok(summary) => summary,
            Err(bad) => return self.refuse_invalid(transport, source, &request, bad),
        };
        let Ok(via) = stamp_top_via(&mut request, source) else {
            return; // validated above; cannot fail
        };
        let destination = via.response_destination(transport, source);
        let summary = RequestSummary { via, ..summary };
        let key = TxKey::server(&request.method, &summary);
        match self.layer.match_request(now, &request.method, &key) {
            ServerMatch::Retransmission | ServerMatch::AckAbsorbed => return,
            ServerMatch::PassUp => {}
        }
        let ctx = Ctx {
            key,
            transport,
            source,
            destination,
            summary,
        };
        match request.method {
            Method::Ack => self.on_ack(now, &ctx, &request),
            Method::Cancel => self.on_cancel(now, &ctx, &request),
            _ => {
                if let Some(code) = self.precheck(now, &ctx, &request) {
                    tracing::debug!(code, method = %request.method, "request refused");
                } else if ctx.summary.to_tag.is_some() {
                    self.on_in_dialog(now, &ctx, request);
                } else {
                    self.on_out_of_dialog(now, &ctx, request);
                }
            }
        }
    }

    /// Requests that parse but break §8.1.1 get the reason they failed. ACKs cannot be
    /// answered and are dropped.
    fn refuse_invalid(
        &mut self,
        transport: Transport,
        source: SocketAddr,
        request: &Request,
        bad: BadRequest,
    ) {
        if request.method == Method::Ack {
            self.stats.stray_messages += 1;
            return;
        }
        self.stats.bad_requests += 1;
        tracing::debug!(%source, code = bad.code, reason = %bad.reason, "invalid request");
        let tag = self.random_token();
        let response = self.reply_to(request, bad.code, Some(&bad.reason), Some(&tag));
        self.send_stateless(transport, source, request, &response);
    }

    /// Opens the server transaction for `request` (sending 100 Trying for INVITE).
    fn open_server(&mut self, ctx: &Ctx, request: &Request) -> bool {
        let opened = if request.method == Method::Invite {
            let trying = self.reply_to(request, 100, None, None);
            self.layer.create_invite_server(
                ctx.key.clone(),
                ctx.transport,
                ctx.destination,
                &trying,
            )
        } else {
            self.layer
                .create_server(ctx.key.clone(), ctx.transport, ctx.destination)
        };
        opened.is_ok()
    }

    /// Opens the transaction and sends a final response decorated by `extra`.
    fn respond_new(
        &mut self,
        now: Instant,
        ctx: &Ctx,
        request: &Request,
        code: u16,
        reason: Option<&str>,
        extra: Vec<Header>,
    ) {
        if !self.open_server(ctx, request) {
            return;
        }
        self.respond_open(now, ctx, request, code, reason, extra);
    }

    /// Sends a final response in the already open transaction of `ctx`.
    fn respond_open(
        &mut self,
        now: Instant,
        ctx: &Ctx,
        request: &Request,
        code: u16,
        reason: Option<&str>,
        extra: Vec<Header>,
    ) {
        let tag = match ctx.summary.to_tag {
            Some(_) => None,
            None => Some(self.random_token()),
        };
        let mut response = self.reply_to(request, code, reason, tag.as_deref());
        response.headers.extend(extra);
        if let Err(err) = self.layer.respond(now, &ctx.key, &response) {
            tracing::debug!(error = %err, "response not sent");
        }
    }

    /// §8.2.1-8.2.2.3 checks shared by every request but ACK/CANCEL. Returns the code sent.
    fn precheck(&mut self, now: Instant, ctx: &Ctx, request: &Request) -> Option<u16> {
        let method = &request.method;
        if !implements(method) || !self.cfg.allow_methods.contains(method) {
            let allow = self.capability_headers().into_iter().take(1).collect();
            self.respond_new(now, ctx, request, 405, None, allow);
            return Some(405);
        }
        let unsupported: Vec<&str> = find_all(&request.headers, "Require")
            .flat_map(split_list)
            .filter(|tag| {
                !SUPPORTED_EXTENSIONS
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(tag))
            })
            .collect();
        if !unsupported.is_empty() {
            let header = Header::Unsupported(unsupported.join(", ").into());
            self.respond_new(now, ctx, request, 420, None, vec![header]);
            return Some(420);
        }
        if !is_sdp_body(request) && matches!(method, Method::Invite | Method::Update) {
            let accept = Header::Accept(SDP.into());
            self.respond_new(now, ctx, request, 415, None, vec![accept]);
            return Some(415);
        }
        None
    }

    fn on_out_of_dialog(&mut self, now: Instant, ctx: &Ctx, request: Request) {
        match request.method {
            Method::Invite => self.on_new_invite(now, ctx, request),
            Method::Options => {
                let mut extra = self.capability_headers();
                extra.push(self.contact_header(ctx.transport));
                self.respond_new(now, ctx, &request, 200, None, extra);
            }
            // Requests that only exist inside a dialog.
            _ => self.respond_new(now, ctx, &request, 481, None, Vec::new()),
        }
    }

    fn on_new_invite(&mut self, now: Instant, ctx: &Ctx, request: Request) {
        if !self.open_server(ctx, &request) {
            return;
        }
        let s = &ctx.summary;
        let origin = (
            s.call_id.clone(),
            s.from_tag.clone().unwrap_or_default(),
            s.cseq,
        );
        // §8.2.2.2: the same request arriving again over another path is a merged request.
        if let Some(other) = self.origins.get(&origin).and_then(|h| self.calls.get(h)) {
            if other.invite_key != ctx.key {
                return self.respond_open(now, ctx, &request, 482, None, Vec::new());
            }
        }
        let session = session_timer::negotiate(&request.headers, self.cfg.min_session_expires);
        match session {
            Negotiation::TooSmall { min_se } => {
                let min = Header::Other("Min-SE".into(), min_se.to_string());
                return self.respond_open(now, ctx, &request, 422, None, vec![min]);
            }
            Negotiation::Malformed => {
                return self.respond_open(
                    now,
                    ctx,
                    &request,
                    400,
                    Some("Bad Session-Expires"),
                    Vec::new(),
                );
            }
            _ => {}
        }
        let local_tag = self.random_token();
        let initial_cseq = self.random_cseq();
        let dialog = match Dialog::uas(&request, &ctx.summary, &local_tag, initial_cseq) {
            Ok(dialog) => dialog,
            Err(err) => {
                self.stats.bad_requests += 1;
                let reason = err.to_string();
                return self.respond_open(now, ctx, &request, 400, Some(&reason), Vec::new());
            }
        };
        let handle = CallHandle(self.next_call);
        self.next_call += 1;
        self.stats.calls_offered += 1;
        let from = find(&request.headers, "From").unwrap_or("").to_string();
        let to = find(&request.headers, "To").unwrap_or("").to_string();
        let to_user = split_name_addr(&to)
            .and_then(|(uri, _)| uri_user(uri))
            .map(str::to_string);
        self.events.push_back(UaEvent::IncomingCall {
            call: handle,
            call_id: ctx.summary.call_id.clone(),
            from,
            to,
            to_user,
            request_uri: request.uri.to_string(),
            source: ctx.source,
            transport: ctx.transport,
            offer: body_text(&request.body),
            headers: CallHeaders::from_headers(&request.headers),
        });
        self.dialogs.insert(dialog.id().clone(), handle);
        self.tx_owner.insert(ctx.key.clone(), handle);
        self.origins.insert(origin.clone(), handle);
        self.calls.insert(
            handle,
            Call {
                transport: ctx.transport,
                peer: ctx.source,
                offer_in_invite: !request.body.is_empty(),
                invite: request,
                invite_key: ctx.key.clone(),
                invite_cseq: ctx.summary.cseq,
                origin,
                dialog,
                phase: Phase::Offered,
                awaiting_ack: None,
                pending: None,
                session,
                session_deadline: None,
                hangup_requested: false,
                refer: None,
            },
        );
    }

    fn dialog_of(&self, summary: &RequestSummary) -> Option<CallHandle> {
        let id = DialogId {
            call_id: summary.call_id.clone(),
            local_tag: summary.to_tag.clone()?,
            remote_tag: summary.from_tag.clone().unwrap_or_default(),
        };
        self.dialogs.get(&id).copied()
    }

    fn on_in_dialog(&mut self, now: Instant, ctx: &Ctx, request: Request) {
        let Some(handle) = self.dialog_of(&ctx.summary) else {
            return self.respond_new(now, ctx, &request, 481, None, Vec::new());
        };
        if !self.open_server(ctx, &request) {
            return;
        }
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        if let Err(err) = call.dialog.check_remote_cseq(ctx.summary.cseq) {
            tracing::debug!(error = %err, "out-of-order in-dialog request");
            return self.respond_open(
                now,
                ctx,
                &request,
                500,
                Some("CSeq Out Of Order"),
                Vec::new(),
            );
        }
        match request.method {
            Method::Bye => {
                self.respond_open(now, ctx, &request, 200, None, Vec::new());
                self.end_call(now, handle, EndReason::RemoteHangup);
            }
            Method::Invite | Method::Update => self.on_offer_or_refresh(now, ctx, handle, request),
            Method::Info => {
                self.respond_open(now, ctx, &request, 200, None, Vec::new());
                self.events.push_back(UaEvent::Info {
                    call: handle,
                    content_type: find(&request.headers, "Content-Type").map(str::to_string),
                    body: String::from_utf8_lossy(&request.body).into_owned(),
                });
            }
            Method::Options => {
                let extra = self.capability_headers();
                self.respond_open(now, ctx, &request, 200, None, extra);
            }
            Method::Notify => {
                self.respond_open(now, ctx, &request, 200, None, Vec::new());
                self.on_notify(handle, &request);
            }
            // PRACK (we never send reliable provisionals, but a dialog exists): 200.
            _ => self.respond_open(now, ctx, &request, 200, None, Vec::new()),
        }
    }

    /// re-INVITE, or UPDATE: with SDP it is an offer for the application; an UPDATE without
    /// SDP is a refresh answered here. Glare rules: RFC 3261 §14.2, RFC 3311 §5.2.
    fn on_offer_or_refresh(
        &mut self,
        now: Instant,
        ctx: &Ctx,
        handle: CallHandle,
        request: Request,
    ) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let is_invite = request.method == Method::Invite;
        let refusal = match &call.phase {
            Phase::Terminating { .. } => Some((481, None)),
            // A second INVITE before the first got its final response: 500 + Retry-After.
            Phase::Offered if is_invite => Some((500, Some("Request Pending"))),
            _ if call.pending.is_some() => Some((500, Some("Request Pending"))),
            // Our offer (delayed-offer 2xx) awaits its answer in the ACK: glare.
            _ if call.awaiting_ack.as_ref().is_some_and(|a| a.offer_in_2xx) => Some((491, None)),
            _ if is_invite && call.awaiting_ack.is_some() => Some((491, None)),
            _ => None,
        };
        if let Some((code, reason)) = refusal {
            let retry = (code == 500).then(|| Header::RetryAfter("2".into()));
            return self.respond_open(
                now,
                ctx,
                &request,
                code,
                reason,
                retry.into_iter().collect(),
            );
        }
        let session = session_timer::negotiate(&request.headers, self.cfg.min_session_expires);
        match session {
            Negotiation::TooSmall { min_se } => {
                let min = Header::Other("Min-SE".into(), min_se.to_string());
                return self.respond_open(now, ctx, &request, 422, None, vec![min]);
            }
            Negotiation::Malformed => {
                return self.respond_open(
                    now,
                    ctx,
                    &request,
                    400,
                    Some("Bad Session-Expires"),
                    Vec::new(),
                );
            }
            _ => {}
        }
        if call.dialog.refresh_target(&request.headers).is_err() {
            self.stats.bad_requests += 1;
            return self.respond_open(now, ctx, &request, 400, Some("Bad Contact"), Vec::new());
        }
        if is_invite || !request.body.is_empty() {
            let offer = body_text(&request.body);
            call.pending = Some(PendingOffer {
                key: ctx.key.clone(),
                cseq: ctx.summary.cseq,
                is_invite,
                session,
                request,
            });
            if is_invite {
                self.tx_owner.insert(ctx.key.clone(), handle);
            }
            self.events.push_back(UaEvent::ReInvite {
                call: handle,
                offer,
            });
            return;
        }
        let mut extra = vec![
            self.contact_header(ctx.transport),
            Header::Supported("timer".into()),
        ];
        if let Negotiation::PeerRefreshes { interval_secs } = session {
            extra.extend(session_timer::response_headers(interval_secs));
        }
        self.respond_open(now, ctx, &request, 200, None, extra);
        self.arm_session_timer(now, handle, session);
    }

    /// ACK for a 2xx (ACKs for non-2xx were absorbed by their transaction).
    fn on_ack(&mut self, now: Instant, ctx: &Ctx, request: &Request) {
        let Some(handle) = self.dialog_of(&ctx.summary) else {
            self.stats.stray_messages += 1;
            return;
        };
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let Some(awaiting) = call.awaiting_ack.take_if(|a| a.cseq == ctx.summary.cseq) else {
            return; // ACK retransmission (one per 2xx retransmission) or stale
        };
        self.layer.ack_2xx(&awaiting.key);
        let answer = body_text(&request.body);
        if awaiting.initial || answer.is_some() {
            self.events.push_back(UaEvent::CallConfirmed {
                call: handle,
                answer,
            });
        }
        if call.hangup_requested && call.phase == Phase::Established {
            // The application hung up before this ACK; §15 made the BYE wait for it.
            call.hangup_requested = false;
            self.start_bye(now, handle, true);
        }
    }

    /// §9.2: CANCEL matches the INVITE with the same branch; if that has no final response
    /// yet it gets 487 and the call is gone.
    fn on_cancel(&mut self, now: Instant, ctx: &Ctx, request: &Request) {
        if !self.open_server(ctx, request) {
            return;
        }
        let invite_key = ctx.key.with_method(&Method::Invite);
        let state = self.layer.invite_server_state(&invite_key);
        let handle = self.tx_owner.get(&invite_key).copied();
        let call = handle.and_then(|h| self.calls.get(&h).map(|c| (h, c)));
        match (state, call) {
            (None, _) => self.respond_open(now, ctx, request, 481, None, Vec::new()),
            (Some(InviteServerState::Proceeding), Some((handle, call)))
                if call.phase == Phase::Offered =>
            {
                let tag = call.local_tag().to_string();
                let ok = self.reply_to(request, 200, None, Some(&tag));
                let _ = self.layer.respond(now, &ctx.key, &ok);
                let terminated = self.reply_to(&call.invite, 487, None, Some(&tag));
                let _ = self.layer.respond(now, &invite_key, &terminated);
                self.events
                    .push_back(UaEvent::CallCancelled { call: handle });
                self.finish_call(handle);
            }
            // Already answered: the CANCEL has no effect (but is itself answered).
            _ => self.respond_open(now, ctx, request, 200, None, Vec::new()),
        }
    }

    fn on_response(&mut self, now: Instant, response: Response) {
        if !content_length_ok(&response.headers, response.body.len()) {
            self.stats.parse_errors += 1;
            return;
        }
        let key = match self.layer.receive_response(now, &response) {
            crate::transaction::ResponseMatch::PassUp(key) => key,
            crate::transaction::ResponseMatch::Absorbed => return,
            crate::transaction::ResponseMatch::Unmatched => {
                self.stats.stray_messages += 1;
                return;
            }
        };
        if response.status_code.code() < 200 {
            return;
        }
        let Some(&handle) = self.tx_owner.get(&key) else {
            return;
        };
        let Some(call) = self.calls.get(&handle) else {
            return;
        };
        if call.refer == Some(super::call::Refer::Sent(key.clone())) {
            let status = response.status_code.code();
            return self.on_refer_response(handle, &key, status);
        }
        if let Phase::Terminating { bye, notify } = &call.phase {
            if *bye == key {
                let notify = *notify;
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

    pub(super) fn on_timeout(&mut self, now: Instant) {
        self.layer.handle_timeout(now);
        while let Some(event) = self.layer.poll_event() {
            match event {
                TxEvent::Terminated { key } => {
                    self.tx_owner.remove(&key);
                }
                TxEvent::NoResponse { key } => self.on_request_timeout(&key),
                TxEvent::No2xxAck { key } => self.on_missing_2xx_ack(now, &key),
                // The call was already refused; nothing is left to end.
                TxEvent::NoAck { .. } => {}
            }
        }
        while let Some((at, handle)) = self.session_deadlines.pop_due(now) {
            let due = self
                .calls
                .get(&handle)
                .is_some_and(|c| c.session_deadline == Some(at));
            if due {
                self.stats.session_timer_expiries += 1;
                self.events.push_back(UaEvent::CallEnded {
                    call: handle,
                    reason: EndReason::SessionTimerExpired,
                });
                self.start_bye(now, handle, false);
            }
        }
    }

    fn on_request_timeout(&mut self, key: &TxKey) {
        let Some(&handle) = self.tx_owner.get(key) else {
            return;
        };
        let Some(call) = self.calls.get(&handle) else {
            return;
        };
        if call.refer == Some(super::call::Refer::Sent(key.clone())) {
            return self.on_refer_response(handle, key, 408);
        }
        if let Phase::Terminating { bye, notify } = &call.phase {
            if bye == key {
                if *notify {
                    self.events.push_back(UaEvent::CallEnded {
                        call: handle,
                        reason: EndReason::ByeTimeout,
                    });
                }
                self.finish_call(handle);
            }
        }
    }

    /// Timer L: §13.3.1.4 says the session SHOULD then be ended with a BYE.
    fn on_missing_2xx_ack(&mut self, now: Instant, key: &TxKey) {
        let Some(&handle) = self.tx_owner.get(key) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        if call.awaiting_ack.take_if(|a| a.key == *key).is_none() {
            return;
        }
        self.events.push_back(UaEvent::CallEnded {
            call: handle,
            reason: EndReason::AckTimeout,
        });
        self.start_bye(now, handle, false);
    }
}

/// Methods the UA implements, whatever the configuration allows.
fn implements(method: &Method) -> bool {
    super::UaConfig::SUPPORTED_METHODS.contains(method)
}
