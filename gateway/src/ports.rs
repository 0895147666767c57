//! RTP port pairs (even RTP port, RTCP on port+1) from the configured range.
//! Used once per call at setup, never on the packet path.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;

#[derive(Clone)]
pub struct PortPool {
    free: Arc<Mutex<VecDeque<u16>>>,
}

/// A bound RTP/RTCP socket pair; the port returns to the pool on drop.
pub struct RtpSockets {
    pub rtp: UdpSocket,
    pub rtcp: UdpSocket,
    pub port: u16,
    pool: PortPool,
}

impl Drop for RtpSockets {
    fn drop(&mut self) {
        let mut free = self.pool.free.lock().unwrap_or_else(|p| p.into_inner());
        free.push_back(self.port);
    }
}

impl PortPool {
    pub fn new(min: u16, max: u16) -> Self {
        let ports = (min..max).step_by(2).filter(|p| p % 2 == 0).collect();
        PortPool {
            free: Arc::new(Mutex::new(ports)),
        }
    }

    fn take(&self) -> Option<u16> {
        self.free
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front()
    }

    fn give_back(&self, port: u16) {
        self.free
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(port);
    }

    /// Binds the next free pair. Ports some other process holds are skipped (and retried
    /// later, at the back of the queue).
    pub async fn bind(&self, ip: IpAddr) -> Option<RtpSockets> {
        let attempts = self.free.lock().unwrap_or_else(|p| p.into_inner()).len();
        for _ in 0..attempts.min(64) {
            let port = self.take()?;
            let rtp = UdpSocket::bind(SocketAddr::new(ip, port)).await;
            let rtcp = UdpSocket::bind(SocketAddr::new(ip, port.wrapping_add(1))).await;
            match (rtp, rtcp) {
                (Ok(rtp), Ok(rtcp)) => {
                    return Some(RtpSockets {
                        rtp,
                        rtcp,
                        port,
                        pool: self.clone(),
                    })
                }
                _ => self.give_back(port),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pairs_are_even_reused_and_busy_ports_skipped() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        // Find a free even base in a high range.
        let base = 40000 + (std::process::id() % 1000) as u16 * 2;
        let blocker = UdpSocket::bind(SocketAddr::new(ip, base)).await.unwrap();
        let pool = PortPool::new(base, base + 6);
        let a = pool.bind(ip).await.unwrap();
        assert_eq!(a.port, base + 2, "busy port skipped");
        let b = pool.bind(ip).await.unwrap();
        assert_eq!(b.port, base + 4);
        assert_eq!(a.rtcp.local_addr().unwrap().port(), base + 3);
        drop(blocker);
        let c = pool.bind(ip).await.unwrap();
        assert_eq!(c.port, base, "freed port retried");
        assert!(pool.bind(ip).await.is_none(), "pool exhausted");
        drop(a);
        assert_eq!(pool.bind(ip).await.unwrap().port, base + 2);
    }
}
