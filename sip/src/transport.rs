//! The tokio shell around SIP's UDP and TCP transports (RFC 3261 §18).
//!
//! This is the only IO in the crate: it turns sockets into [`Incoming`] messages for the
//! sans-IO core and sends what the core produces. It does no SIP parsing beyond what TCP
//! framing requires (finding the header end and `Content-Length`).
//!
//! Task layout: one UDP reader, one TCP acceptor, and per TCP connection a reader task plus a
//! writer task fed by a bounded queue, so no lock is ever held across an await. All tasks stop
//! when the [`SipTransport`] is dropped.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, watch};

use framing::TcpFramer;

mod framing;

/// Which transport a message came in on or must go out on (the UA core's enum, so the
/// shell passes it through unchanged).
pub use crate::message::Transport as TransportKind;

/// One SIP message (or UDP datagram) received from the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    pub transport: TransportKind,
    /// Peer address; for TCP, sending to it reuses the connection the message came on.
    pub source: SocketAddr,
    pub data: Bytes,
}

/// Counters since bind, for metrics and for tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransportStats {
    pub udp_datagrams_in: u64,
    pub udp_datagrams_out: u64,
    /// Datagrams longer than `max_message_bytes`, dropped.
    pub udp_oversize_drops: u64,
    /// CRLF-only datagrams (NAT keep-alives), dropped.
    pub udp_keepalives: u64,
    pub tcp_messages_in: u64,
    /// Messages fully written to a TCP socket.
    pub tcp_messages_out: u64,
    /// Connections closed because a message had no valid `Content-Length` or was too large.
    pub tcp_framing_errors: u64,
    pub tcp_connections_accepted: u64,
    /// Connections we opened to send a message.
    pub tcp_connections_opened: u64,
    /// Connections refused or not opened because the limit (4096 open connections) was reached.
    pub tcp_connections_refused: u64,
    /// Sends refused because the connection's write queue was full (peer not reading).
    pub tcp_write_queue_full: u64,
}

/// Messages waiting for the SIP core; beyond this, readers wait (TCP pushes back on the
/// peer, UDP lets the kernel buffer fill and drop).
const INCOMING_QUEUE: usize = 1024;
/// Messages waiting to be written to one TCP connection.
const WRITE_QUEUE: usize = 64;
/// Caps memory and file descriptors a connection flood can take.
const MAX_TCP_CONNECTIONS: usize = 4096;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A peer that does not drain its socket for this long is treated as dead.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed accept (e.g. out of file descriptors) so the acceptor does not spin.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);
/// Largest possible UDP payload; a receive buffer larger than this is wasted.
const MAX_UDP_PAYLOAD: usize = 65_535;
/// Retries when an ephemeral UDP port happens to be taken for TCP.
const BIND_ATTEMPTS: usize = 16;

#[derive(Default)]
struct Counters {
    udp_datagrams_in: AtomicU64,
    udp_datagrams_out: AtomicU64,
    udp_oversize_drops: AtomicU64,
    udp_keepalives: AtomicU64,
    tcp_messages_in: AtomicU64,
    tcp_messages_out: AtomicU64,
    tcp_framing_errors: AtomicU64,
    tcp_connections_accepted: AtomicU64,
    tcp_connections_opened: AtomicU64,
    tcp_connections_refused: AtomicU64,
    tcp_write_queue_full: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The write side of one TCP connection. `id` tells a connection apart from a later one to
/// the same peer address, so a closing task never unregisters its successor.
struct Connection {
    id: u64,
    writer: mpsc::Sender<Bytes>,
}

struct Shared {
    udp: UdpSocket,
    local_addr: SocketAddr,
    max_message_bytes: usize,
    connections: Mutex<HashMap<SocketAddr, Connection>>,
    next_connection_id: AtomicU64,
    counters: Counters,
    incoming: mpsc::Sender<Incoming>,
    /// Never written: it resolves (with an error) once `SipTransport` drops the sender.
    shutdown: watch::Receiver<()>,
}

/// UDP and TCP listening on the same address and port.
pub struct SipTransport {
    shared: Arc<Shared>,
    /// Dropping this stops every task.
    _shutdown: watch::Sender<()>,
}

impl SipTransport {
    /// Binds UDP and TCP on `listen` (port 0 picks one free port for both) and starts the
    /// reader tasks. Messages longer than `max_message_bytes` are dropped (UDP) or close the
    /// connection (TCP). Must be called inside a tokio runtime.
    pub async fn bind(
        listen: SocketAddr,
        max_message_bytes: usize,
    ) -> io::Result<(SipTransport, mpsc::Receiver<Incoming>)> {
        if max_message_bytes == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "max_message_bytes must be at least 1",
            ));
        }
        let (udp, listener) = bind_same_port(listen).await?;
        let local_addr = udp.local_addr()?;
        let (incoming_sender, incoming_receiver) = mpsc::channel(INCOMING_QUEUE);
        let (shutdown_sender, shutdown) = watch::channel(());
        let shared = Arc::new(Shared {
            udp,
            local_addr,
            max_message_bytes,
            connections: Mutex::new(HashMap::new()),
            next_connection_id: AtomicU64::new(0),
            counters: Counters::default(),
            incoming: incoming_sender,
            shutdown,
        });
        tokio::spawn(read_udp(Arc::clone(&shared)));
        tokio::spawn(accept_tcp(Arc::clone(&shared), listener));
        let transport = SipTransport {
            shared,
            _shutdown: shutdown_sender,
        };
        Ok((transport, incoming_receiver))
    }

    /// The bound address; UDP and TCP share its port.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// Sends one message. UDP: one datagram. TCP: queued on the connection from or to
    /// `destination` (opening one if there is none); `Ok` then means queued, not delivered,
    /// and a full queue is `ErrorKind::WouldBlock` rather than a wait on a stuck peer.
    pub async fn send(
        &self,
        transport: TransportKind,
        destination: SocketAddr,
        payload: Bytes,
    ) -> io::Result<()> {
        match transport {
            TransportKind::Udp => {
                self.shared.udp.send_to(&payload, destination).await?;
                bump(&self.shared.counters.udp_datagrams_out);
                Ok(())
            }
            TransportKind::Tcp => self.send_tcp(destination, payload).await,
        }
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> TransportStats {
        let counters = &self.shared.counters;
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        TransportStats {
            udp_datagrams_in: read(&counters.udp_datagrams_in),
            udp_datagrams_out: read(&counters.udp_datagrams_out),
            udp_oversize_drops: read(&counters.udp_oversize_drops),
            udp_keepalives: read(&counters.udp_keepalives),
            tcp_messages_in: read(&counters.tcp_messages_in),
            tcp_messages_out: read(&counters.tcp_messages_out),
            tcp_framing_errors: read(&counters.tcp_framing_errors),
            tcp_connections_accepted: read(&counters.tcp_connections_accepted),
            tcp_connections_opened: read(&counters.tcp_connections_opened),
            tcp_connections_refused: read(&counters.tcp_connections_refused),
            tcp_write_queue_full: read(&counters.tcp_write_queue_full),
        }
    }

    async fn send_tcp(&self, destination: SocketAddr, payload: Bytes) -> io::Result<()> {
        let writer = match self.shared.writer_for(destination) {
            Some(writer) => writer,
            None => self.connect(destination).await?,
        };
        let payload = match writer.try_send(payload) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Full(_)) => return Err(self.queue_full(destination)),
            // The connection closed after we looked it up: reconnect once.
            Err(TrySendError::Closed(payload)) => payload,
        };
        let writer = self.connect(destination).await?;
        writer.try_send(payload).map_err(|error| match error {
            TrySendError::Full(_) => self.queue_full(destination),
            TrySendError::Closed(_) => io::Error::new(
                io::ErrorKind::ConnectionReset,
                format!("TCP connection to {destination} closed before the message was queued"),
            ),
        })
    }

    fn queue_full(&self, destination: SocketAddr) -> io::Error {
        bump(&self.shared.counters.tcp_write_queue_full);
        io::Error::new(
            io::ErrorKind::WouldBlock,
            format!("TCP write queue to {destination} is full"),
        )
    }

    async fn connect(&self, destination: SocketAddr) -> io::Result<mpsc::Sender<Bytes>> {
        if self.shared.lock_connections().len() >= MAX_TCP_CONNECTIONS {
            bump(&self.shared.counters.tcp_connections_refused);
            return Err(io::Error::other(format!(
                "not connecting to {destination}: {MAX_TCP_CONNECTIONS} TCP connections open"
            )));
        }
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(destination))
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("TCP connect to {destination} timed out"),
                )
            })??;
        bump(&self.shared.counters.tcp_connections_opened);
        Ok(start_connection(&self.shared, stream, destination))
    }
}

impl Shared {
    /// Poisoning only means another task panicked mid-update of a plain map; the map is
    /// still usable, so recover it rather than propagate the panic.
    fn lock_connections(&self) -> MutexGuard<'_, HashMap<SocketAddr, Connection>> {
        self.connections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn writer_for(&self, peer: SocketAddr) -> Option<mpsc::Sender<Bytes>> {
        self.lock_connections()
            .get(&peer)
            .map(|connection| connection.writer.clone())
            .filter(|writer| !writer.is_closed())
    }

    /// Unregisters a connection; dropping its sender lets the writer task finish and close.
    fn forget_connection(&self, peer: SocketAddr, id: u64) {
        let mut connections = self.lock_connections();
        if connections
            .get(&peer)
            .is_some_and(|connection| connection.id == id)
        {
            connections.remove(&peer);
        }
    }

    /// Hands a message to the SIP core; `false` when the transport is shutting down.
    async fn deliver(&self, incoming: Incoming) -> bool {
        let mut shutdown = self.shutdown.clone();
        tokio::select! {
            _ = shutdown.changed() => false,
            sent = self.incoming.send(incoming) => sent.is_ok(),
        }
    }
}

async fn bind_same_port(listen: SocketAddr) -> io::Result<(UdpSocket, TcpListener)> {
    let mut last_error = None;
    for _ in 0..BIND_ATTEMPTS {
        let udp = UdpSocket::bind(listen).await?;
        match TcpListener::bind(udp.local_addr()?).await {
            Ok(listener) => return Ok((udp, listener)),
            // With port 0 the kernel chose a UDP port that is busy for TCP: pick another.
            Err(error) if listen.port() == 0 && error.kind() == io::ErrorKind::AddrInUse => {
                last_error = Some(error);
            }
            Err(error) => return Err(error),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("no port free for both UDP and TCP")))
}

async fn read_udp(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.clone();
    // One byte more than allowed so that an oversize datagram is recognisable as such
    // (the kernel truncates it to the buffer length instead of reporting its size).
    let mut buffer = vec![0u8; shared.max_message_bytes.min(MAX_UDP_PAYLOAD) + 1];
    loop {
        let received = tokio::select! {
            _ = shutdown.changed() => return,
            received = shared.udp.recv_from(&mut buffer) => received,
        };
        let (length, source) = match received {
            Ok(received) => received,
            Err(error) => {
                tracing::debug!(%error, "UDP receive failed");
                continue;
            }
        };
        let Some(datagram) = buffer.get(..length) else {
            continue;
        };
        if length > shared.max_message_bytes {
            bump(&shared.counters.udp_oversize_drops);
            tracing::debug!(%source, length, "dropping oversize SIP datagram");
            continue;
        }
        if datagram.iter().all(|byte| matches!(byte, b'\r' | b'\n')) {
            bump(&shared.counters.udp_keepalives);
            continue;
        }
        bump(&shared.counters.udp_datagrams_in);
        // The copy is the message's own allocation, handed to the core; the buffer is reused.
        let incoming = Incoming {
            transport: TransportKind::Udp,
            source,
            data: Bytes::copy_from_slice(datagram),
        };
        if !shared.deliver(incoming).await {
            return;
        }
    }
}

async fn accept_tcp(shared: Arc<Shared>, listener: TcpListener) {
    let mut shutdown = shared.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                if shared.lock_connections().len() >= MAX_TCP_CONNECTIONS {
                    bump(&shared.counters.tcp_connections_refused);
                    tracing::warn!(%peer, "refusing SIP TCP connection: too many open");
                    continue;
                }
                bump(&shared.counters.tcp_connections_accepted);
                start_connection(&shared, stream, peer);
            }
            Err(error) => {
                tracing::warn!(%error, "SIP TCP accept failed");
                tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
            }
        }
    }
}

/// Registers a connection and starts its reader and writer; returns its write queue.
fn start_connection(
    shared: &Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
) -> mpsc::Sender<Bytes> {
    // SIP messages are written whole; Nagle would only delay them.
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%peer, %error, "could not set TCP_NODELAY");
    }
    let (read_half, write_half) = stream.into_split();
    let (writer, queue) = mpsc::channel(WRITE_QUEUE);
    let id = shared.next_connection_id.fetch_add(1, Ordering::Relaxed);
    shared.lock_connections().insert(
        peer,
        Connection {
            id,
            writer: writer.clone(),
        },
    );
    tokio::spawn(write_connection(
        Arc::clone(shared),
        write_half,
        queue,
        peer,
        id,
    ));
    tokio::spawn(read_connection(Arc::clone(shared), read_half, peer, id));
    writer
}

async fn write_connection(
    shared: Arc<Shared>,
    mut write_half: OwnedWriteHalf,
    mut queue: mpsc::Receiver<Bytes>,
    peer: SocketAddr,
    id: u64,
) {
    let mut shutdown = shared.shutdown.clone();
    loop {
        let payload = tokio::select! {
            _ = shutdown.changed() => break,
            payload = queue.recv() => match payload {
                Some(payload) => payload,
                None => break,
            },
        };
        match tokio::time::timeout(WRITE_TIMEOUT, write_half.write_all(&payload)).await {
            Ok(Ok(())) => bump(&shared.counters.tcp_messages_out),
            Ok(Err(error)) => {
                tracing::debug!(%peer, %error, "SIP TCP write failed");
                break;
            }
            Err(_) => {
                tracing::debug!(%peer, "SIP TCP write timed out");
                break;
            }
        }
    }
    shared.forget_connection(peer, id);
    // Best effort FIN; the peer may already be gone.
    let _ = write_half.shutdown().await;
}

async fn read_connection(
    shared: Arc<Shared>,
    mut read_half: OwnedReadHalf,
    peer: SocketAddr,
    id: u64,
) {
    let mut shutdown = shared.shutdown.clone();
    let mut framer = TcpFramer::new(shared.max_message_bytes);
    'connection: loop {
        loop {
            match framer.next_message() {
                Ok(Some(data)) => {
                    bump(&shared.counters.tcp_messages_in);
                    let incoming = Incoming {
                        transport: TransportKind::Tcp,
                        source: peer,
                        data,
                    };
                    if !shared.deliver(incoming).await {
                        break 'connection;
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    bump(&shared.counters.tcp_framing_errors);
                    tracing::debug!(%peer, %error, "closing SIP TCP connection");
                    break 'connection;
                }
            }
        }
        let read = tokio::select! {
            _ = shutdown.changed() => break,
            read = read_half.read_buf(framer.read_buffer()) => read,
        };
        match read {
            Ok(0) => break,
            Ok(_) => {}
            Err(error) => {
                tracing::debug!(%peer, %error, "SIP TCP read failed");
                break;
            }
        }
    }
    // Dropping the writer's sender closes the write side too, so the socket really closes.
    shared.forget_connection(peer, id);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::timeout;

    const WAIT: Duration = Duration::from_secs(5);
    const MAX: usize = 1500;

    fn request(body: &str) -> String {
        format!(
            "MESSAGE sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP x\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    async fn bound() -> (SipTransport, mpsc::Receiver<Incoming>) {
        SipTransport::bind("127.0.0.1:0".parse().unwrap(), MAX)
            .await
            .unwrap()
    }

    async fn next(incoming: &mut mpsc::Receiver<Incoming>) -> Incoming {
        timeout(WAIT, incoming.recv()).await.unwrap().unwrap()
    }

    /// Asserts the peer closed the connection (EOF, or a reset because we sent unread bytes).
    async fn assert_closed(stream: &mut TcpStream) {
        let mut rest = Vec::new();
        let read = timeout(WAIT, stream.read_to_end(&mut rest)).await.unwrap();
        assert!(
            read.is_err() || rest.is_empty(),
            "unexpected bytes {rest:?}"
        );
    }

    #[tokio::test]
    async fn udp_round_trip() {
        let (transport, mut incoming) = bound().await;
        let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        peer.send_to(b"OPTIONS sip:x SIP/2.0\r\n\r\n", transport.local_addr())
            .await
            .unwrap();
        let received = next(&mut incoming).await;
        assert_eq!(received.transport, TransportKind::Udp);
        assert_eq!(received.source, peer.local_addr().unwrap());
        assert_eq!(&received.data[..], b"OPTIONS sip:x SIP/2.0\r\n\r\n");

        let reply = Bytes::from_static(b"SIP/2.0 200 OK\r\n\r\n");
        transport
            .send(TransportKind::Udp, received.source, reply.clone())
            .await
            .unwrap();
        let mut buffer = [0u8; 100];
        let (length, from) = timeout(WAIT, peer.recv_from(&mut buffer))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buffer[..length], &reply[..]);
        assert_eq!(from, transport.local_addr());
        let stats = transport.stats();
        assert_eq!((stats.udp_datagrams_in, stats.udp_datagrams_out), (1, 1));
    }

    #[tokio::test]
    async fn udp_oversize_and_keepalive_are_dropped() {
        let (transport, mut incoming) = bound().await;
        let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = transport.local_addr();
        peer.send_to(&[b'x'; MAX + 1], to).await.unwrap();
        peer.send_to(b"\r\n\r\n", to).await.unwrap();
        peer.send_to(&[b'y'; MAX], to).await.unwrap();
        // Only the datagram of exactly the maximum size comes through.
        assert_eq!(&next(&mut incoming).await.data[..], &[b'y'; MAX][..]);
        let stats = transport.stats();
        assert_eq!(stats.udp_oversize_drops, 1);
        assert_eq!(stats.udp_keepalives, 1);
        assert_eq!(stats.udp_datagrams_in, 1);
    }

    #[tokio::test]
    async fn tcp_two_messages_in_one_segment_and_one_split() {
        let (transport, mut incoming) = bound().await;
        let mut client = TcpStream::connect(transport.local_addr()).await.unwrap();
        client.set_nodelay(true).unwrap();
        let (first, second, third) = (request("one"), request(""), request("three"));
        client
            .write_all(format!("{first}{second}").as_bytes())
            .await
            .unwrap();
        let (head, tail) = third.as_bytes().split_at(20);
        for part in [head, tail] {
            client.write_all(part).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for expected in [first, second, third] {
            let received = next(&mut incoming).await;
            assert_eq!(received.transport, TransportKind::Tcp);
            assert_eq!(received.source, client.local_addr().unwrap());
            assert_eq!(received.data, Bytes::from(expected));
        }
        assert_eq!(transport.stats().tcp_messages_in, 3);
    }

    #[tokio::test]
    async fn tcp_keepalives_are_ignored() {
        let (transport, mut incoming) = bound().await;
        let mut client = TcpStream::connect(transport.local_addr()).await.unwrap();
        let message = request("body");
        client.write_all(b"\r\n\r\n").await.unwrap();
        client
            .write_all(format!("{message}\r\n\r\n\r\n{message}").as_bytes())
            .await
            .unwrap();
        assert_eq!(next(&mut incoming).await.data, Bytes::from(message.clone()));
        assert_eq!(next(&mut incoming).await.data, Bytes::from(message));
        assert_eq!(transport.stats().tcp_framing_errors, 0);
    }

    #[tokio::test]
    async fn tcp_framing_errors_close_the_connection() {
        let (transport, mut incoming) = bound().await;
        let oversize = format!("MESSAGE x SIP/2.0\r\nContent-Length: {MAX}\r\n\r\n");
        let no_length = "MESSAGE x SIP/2.0\r\nVia: x\r\n\r\n".to_owned();
        for (index, bad) in [oversize, no_length].into_iter().enumerate() {
            let mut client = TcpStream::connect(transport.local_addr()).await.unwrap();
            client.write_all(bad.as_bytes()).await.unwrap();
            assert_closed(&mut client).await;
            assert_eq!(transport.stats().tcp_framing_errors, index as u64 + 1);
        }
        assert!(incoming.try_recv().is_err(), "nothing may be delivered");
    }

    #[tokio::test]
    async fn tcp_reply_goes_over_the_same_connection() {
        let (transport, mut incoming) = bound().await;
        let mut client = TcpStream::connect(transport.local_addr()).await.unwrap();
        client.write_all(request("ping").as_bytes()).await.unwrap();
        let received = next(&mut incoming).await;

        let reply = request("pong");
        transport
            .send(
                TransportKind::Tcp,
                received.source,
                Bytes::from(reply.clone()),
            )
            .await
            .unwrap();
        let mut buffer = vec![0u8; reply.len()];
        timeout(WAIT, client.read_exact(&mut buffer))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(buffer, reply.as_bytes());
        let stats = transport.stats();
        assert_eq!(stats.tcp_connections_accepted, 1);
        assert_eq!(stats.tcp_connections_opened, 0);
        assert_eq!(stats.tcp_messages_out, 1);
    }

    #[tokio::test]
    async fn tcp_send_opens_a_connection_and_reads_replies_on_it() {
        let (transport, mut incoming) = bound().await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let peer_addr = listener.local_addr().unwrap();
        let outgoing = request("invite");
        transport
            .send(TransportKind::Tcp, peer_addr, Bytes::from(outgoing.clone()))
            .await
            .unwrap();
        let (mut peer, _) = timeout(WAIT, listener.accept()).await.unwrap().unwrap();
        let mut buffer = vec![0u8; outgoing.len()];
        timeout(WAIT, peer.read_exact(&mut buffer))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(buffer, outgoing.as_bytes());

        peer.write_all(request("ok").as_bytes()).await.unwrap();
        let received = next(&mut incoming).await;
        assert_eq!(received.source, peer_addr);
        assert_eq!(received.data, Bytes::from(request("ok")));

        // A second send reuses the connection instead of opening another.
        transport
            .send(TransportKind::Tcp, peer_addr, Bytes::from(outgoing.clone()))
            .await
            .unwrap();
        timeout(WAIT, peer.read_exact(&mut buffer))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(transport.stats().tcp_connections_opened, 1);
    }

    #[tokio::test]
    async fn send_to_a_closed_port_fails() {
        let (transport, _incoming) = bound().await;
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        let result = transport
            .send(TransportKind::Tcp, addr, Bytes::from_static(b"x"))
            .await;
        assert!(result.is_err());
    }

    #[tokio::test]
    async fn dropping_the_transport_stops_its_tasks() {
        let (transport, mut incoming) = bound().await;
        let client = TcpStream::connect(transport.local_addr()).await.unwrap();
        drop(transport);
        // Every task held a sender clone via `Shared`; all gone means all tasks ended.
        assert!(timeout(WAIT, incoming.recv()).await.unwrap().is_none());
        drop(client);
    }

    #[tokio::test]
    async fn zero_maximum_is_refused() {
        let error = SipTransport::bind("127.0.0.1:0".parse().unwrap(), 0).await;
        assert_eq!(
            error.err().map(|e| e.kind()),
            Some(io::ErrorKind::InvalidInput)
        );
    }
}
