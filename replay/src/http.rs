//! A minimal HTTP/1.1 server on `std::net`: one thread per connection, one request per
//! connection (`Connection: close`), GET and HEAD only.
//!
//! Why not a crate: the viewer needs a handful of static answers on loopback, and a pooled
//! keep-alive server can leave a browser's new connection queued behind its idle ones (page
//! loads that never finish); closing after each answer frees every thread at once.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Longest request head accepted; the viewer's URLs are short.
const MAX_HEAD: usize = 16 * 1024;
/// Connections served at once; more wait in the listen queue… or get a 503.
const MAX_CONNECTIONS: usize = 64;
/// A client that sends nothing for this long is dropped.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The parts of a request the viewer looks at.
#[derive(Debug)]
pub(crate) struct Request {
    /// `GET`, `HEAD`, …
    pub method: String,
    /// The request target exactly as sent (not decoded, not normalised).
    pub target: String,
    /// The `Host` header, if any.
    pub host: Option<String>,
}

/// An answer before it is written.
pub(crate) struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// Extra headers (the content type among them).
    pub headers: Vec<(&'static str, &'static str)>,
    /// The body.
    pub body: Arc<[u8]>,
}

/// A listening server; dropping it stops accepting and joins the accept thread.
pub(crate) struct Listener {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Listener {
    /// Listens on `addr` and answers each request with `handler` on its own thread.
    pub fn bind(
        addr: &str,
        handler: impl Fn(&Request) -> Reply + Send + Sync + 'static,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let handler = Arc::new(handler);
        let open = Arc::new(AtomicUsize::new(0));
        let accept = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    if open.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
                        open.fetch_sub(1, Ordering::AcqRel);
                        let busy = Reply {
                            status: 503,
                            headers: vec![("Content-Type", "text/plain")],
                            body: b"busy\n"[..].into(),
                        };
                        let _ = write_reply(&stream, &busy, false);
                        continue;
                    }
                    let (handler, open) = (Arc::clone(&handler), Arc::clone(&open));
                    std::thread::spawn(move || {
                        // A client that hangs up or times out has nothing more to be told.
                        let _ = serve_connection(&stream, handler.as_ref());
                        open.fetch_sub(1, Ordering::AcqRel);
                    });
                }
            })
        };
        Ok(Self {
            addr,
            stop,
            accept: Some(accept),
        })
    }

    /// The bound address (with the real port when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Blocks until the server stops (it does not, short of the process ending).
    pub fn wait(mut self) {
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(accept) = self.accept.take() {
            // Wake the blocking accept so it sees the flag.
            let _ = TcpStream::connect(self.addr);
            let _ = accept.join();
        }
    }
}

fn serve_connection(
    stream: &TcpStream,
    handler: &dyn Fn(&Request) -> Reply,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let reply = match read_request(stream)? {
        Some(request) => {
            let head_only = request.method == "HEAD";
            let reply = handler(&request);
            return write_reply(stream, &reply, head_only);
        }
        None => Reply {
            status: 400,
            headers: vec![("Content-Type", "text/plain")],
            body: b"malformed request\n"[..].into(),
        },
    };
    write_reply(stream, &reply, false)
}

/// Reads a request head; `None` when it is not HTTP/1.x or too long.
fn read_request(stream: &TcpStream) -> std::io::Result<Option<Request>> {
    let mut reader = BufReader::new(stream).take(MAX_HEAD as u64);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Ok(None);
    };
    if !version.starts_with("HTTP/1.") {
        return Ok(None);
    }
    let mut request = Request {
        method: method.to_owned(),
        target: target.to_owned(),
        host: None,
    };
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || !header.ends_with('\n') {
            return Ok(None);
        }
        let header = header.trim_end();
        if header.is_empty() {
            return Ok(Some(request));
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("host")
        {
            request.host = Some(value.trim().to_owned());
        }
    }
}

fn write_reply(mut stream: &TcpStream, reply: &Reply, head_only: bool) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
    for (name, value) in &reply.headers {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    let _ = write!(
        head,
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        reply.body.len()
    );
    stream.write_all(head.as_bytes())?;
    if !head_only {
        stream.write_all(&reply.body)?;
    }
    stream.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}
