//! Port allocation that stays disjoint when tests run in parallel (threads of one test binary,
//! or several processes, e.g. `cargo nextest`).
//!
//! Each test run takes a whole block of `BLOCK_SIZE` ports and holds an exclusive `flock` on
//! `target/e2e/.locks/block-N` while it lives: the lock is per open file, so it excludes other
//! threads and other processes alike, and the kernel drops it if the process dies. Blocks sit
//! below Linux's ephemeral range (32768+), so port-0 binds of SIPp/baresip/probes never land in
//! them.

use std::fs::{File, OpenOptions};
use std::net::{TcpListener, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicU16, Ordering};

/// First port of block 0.
pub const FIRST_PORT: u16 = 10_000;
/// Ports per test run.
pub const BLOCK_SIZE: u16 = 500;
/// Blocks between 10000 and 32000.
pub const BLOCK_COUNT: u16 = 44;

/// Layout of one block (offsets from its base).
const GATEWAY_SIP: u16 = 0;
const CLIENT_SIP: (u16, u16) = (2, 40); // SIPp / baresip local SIP ports, rotated
const CLIENT_MEDIA: (u16, u16) = (40, 100); // SIPp -mp, baresip RTP, ctrl ports (steps of 4)
const GATEWAY_RTP: (u16, u16) = (100, 300);
const PEER_RTP: (u16, u16) = (300, 500); // even ports, RTCP would be +1

/// An exclusively held range of ports.
#[derive(Debug)]
pub struct PortBlock {
    base: u16,
    _lock: File,
    next_client_sip: AtomicU16,
    next_client_media: AtomicU16,
    next_peer: AtomicU16,
}

impl PortBlock {
    /// Takes the first free block, starting at one derived from the process id so parallel
    /// processes rarely contend. `lock_dir` is created if missing.
    pub fn acquire(lock_dir: &Path) -> Result<PortBlock, String> {
        std::fs::create_dir_all(lock_dir).map_err(|e| format!("{}: {e}", lock_dir.display()))?;
        let first = (std::process::id() % u32::from(BLOCK_COUNT)) as u16;
        for i in 0..BLOCK_COUNT {
            let index = (first + i) % BLOCK_COUNT;
            let path = lock_dir.join(format!("block-{index}"));
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            if file.try_lock().is_err() {
                continue;
            }
            let base = FIRST_PORT + index * BLOCK_SIZE;
            // A foreign process may sit on the block (another tool, a leftover SIPp): skip it.
            if !udp_and_tcp_free(base + GATEWAY_SIP) || !udp_and_tcp_free(base + CLIENT_SIP.0) {
                continue;
            }
            return Ok(PortBlock {
                base,
                _lock: file,
                next_client_sip: AtomicU16::new(0),
                next_client_media: AtomicU16::new(0),
                next_peer: AtomicU16::new(0),
            });
        }
        Err(format!(
            "all {BLOCK_COUNT} port blocks under {} are in use",
            lock_dir.display()
        ))
    }

    pub fn base(&self) -> u16 {
        self.base
    }

    /// The gateway's SIP port (UDP and TCP).
    pub fn gateway_sip(&self) -> u16 {
        self.base + GATEWAY_SIP
    }

    /// Inclusive RTP port range for the gateway (`media.rtp_port_min/max`).
    pub fn gateway_rtp_range(&self) -> (u16, u16) {
        (self.base + GATEWAY_RTP.0, self.base + GATEWAY_RTP.1 - 1)
    }

    /// A fresh local SIP port for a client (SIPp, baresip, probe). Rotates through the
    /// sub-range; a port is reused only after all others were handed out.
    pub fn client_sip(&self) -> u16 {
        self.base + rotate(&self.next_client_sip, CLIENT_SIP, 1)
    }

    /// A fresh group of 4 consecutive client media ports (SIPp's -mp uses mp..mp+3).
    pub fn client_media(&self) -> u16 {
        self.base + rotate(&self.next_client_media, CLIENT_MEDIA, 4)
    }

    /// `n` fresh even RTP ports for peers.
    pub fn peer_ports(&self, n: usize) -> Vec<u16> {
        (0..n)
            .map(|_| self.base + rotate(&self.next_peer, PEER_RTP, 2))
            .collect()
    }
}

/// Next offset in `[range.0, range.1)` in steps of `step`, wrapping around.
fn rotate(counter: &AtomicU16, range: (u16, u16), step: u16) -> u16 {
    let slots = (range.1 - range.0) / step;
    let n = counter.fetch_add(1, Ordering::Relaxed) % slots;
    range.0 + n * step
}

/// True when nothing is bound to `port` on 127.0.0.1 for UDP or TCP.
pub fn udp_and_tcp_free(port: u16) -> bool {
    UdpSocket::bind(("127.0.0.1", port)).is_ok() && TcpListener::bind(("127.0.0.1", port)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_disjoint_and_layout_is_consistent() {
        let dir = std::env::temp_dir().join(format!("bargein-ports-{}", std::process::id()));
        let a = PortBlock::acquire(&dir).unwrap();
        let b = PortBlock::acquire(&dir).unwrap();
        assert_ne!(a.base(), b.base());
        assert!(a.base().abs_diff(b.base()) >= BLOCK_SIZE);
        let (lo, hi) = a.gateway_rtp_range();
        assert!(lo > a.gateway_sip() && hi < a.base() + BLOCK_SIZE);
        let peers = a.peer_ports(60);
        assert!(peers
            .iter()
            .all(|p| p % 2 == 0 && *p > hi && *p < a.base() + BLOCK_SIZE));
        let unique: std::collections::BTreeSet<_> = peers.iter().collect();
        assert_eq!(unique.len(), 60);
        let sip: Vec<u16> = (0..3).map(|_| a.client_sip()).collect();
        assert_eq!(sip, vec![a.base() + 2, a.base() + 3, a.base() + 4]);
        let media = a.client_media();
        assert_eq!(a.client_media(), media + 4);
        let base_a = a.base();
        drop(a);
        // The released block is available again.
        let c = PortBlock::acquire(&dir).unwrap();
        assert_eq!(c.base(), base_a);
        drop((b, c));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rotation_wraps() {
        let counter = AtomicU16::new(0);
        let got: Vec<u16> = (0..4).map(|_| rotate(&counter, (10, 16), 2)).collect();
        assert_eq!(got, vec![10, 12, 14, 10]);
    }
}
