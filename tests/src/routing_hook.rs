//! A tiny HTTP/1.1 server standing in for a routing service in the end-to-end tests: it
//! records every JSON request the gateway POSTs and answers from a closure (status, body,
//! optional delay to test the gateway's timeout). One thread per connection; `Connection:
//! close` on every answer.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// How the hook answers one request.
#[derive(Clone, Debug)]
pub struct HookReply {
    pub delay: Duration,
    pub status: u16,
    pub body: String,
}

impl HookReply {
    pub fn json(body: Value) -> HookReply {
        HookReply {
            delay: Duration::ZERO,
            status: 200,
            body: body.to_string(),
        }
    }
}

type Handler = dyn Fn(&Value) -> HookReply + Send + Sync;

pub struct HookServer {
    port: u16,
    requests: Arc<Mutex<Vec<Value>>>,
    stop: Arc<AtomicBool>,
}

impl HookServer {
    pub fn start(handler: impl Fn(&Value) -> HookReply + Send + Sync + 'static) -> HookServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the hook server");
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let (reqs, stopped) = (requests.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((tcp, _)) => {
                        let (handler, reqs) = (handler.clone(), reqs.clone());
                        std::thread::spawn(move || {
                            let _ = serve(tcp, handler.as_ref(), &reqs);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        HookServer {
            port,
            requests,
            stop,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/route", self.port)
    }

    /// Every request body received so far (parsed JSON; `null` if it was not JSON).
    pub fn requests(&self) -> Vec<Value> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for HookServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(tcp: TcpStream, handler: &Handler, requests: &Mutex<Vec<Value>>) -> std::io::Result<()> {
    tcp.set_nonblocking(false)?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(tcp.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    if !line.starts_with("POST ") {
        return write_answer(tcp, 405, "{}");
    }
    let mut length = 0usize;
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; length.min(1 << 20)];
    reader.read_exact(&mut body)?;
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    requests
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(request.clone());
    let reply = handler(&request);
    std::thread::sleep(reply.delay);
    write_answer(tcp, reply.status, &reply.body)
}

fn write_answer(mut tcp: TcpStream, status: u16, body: &str) -> std::io::Result<()> {
    let answer = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(answer.as_bytes())?;
    tcp.flush()
}
