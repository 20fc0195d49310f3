//! The local HTTP server: the app, a JSON API over the run index, and the run's images.
//!
//! Endpoints: `/` (the app), `/api/overview`, `/api/poll?version=V&rows=R`, `/api/evals`,
//! `/api/step/N`, `/api/rollout/N/G/S`, `/files/<run-relative image path>`.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use crate::assets;
use crate::error::{Error, Result};
use crate::files::{self, Refused};
use crate::http::{Listener, Reply, Request};
use crate::index::RunIndex;

/// Headers of every answer: no sniffing, no referrer, nothing loaded from elsewhere.
const COMMON_HEADERS: [(&str, &str); 3] = [
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    (
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'",
    ),
];

/// A running viewer; dropping it stops the server.
pub struct Server {
    listener: Listener,
}

impl Server {
    /// Indexes `run_dir` and serves it on `host:port` (port 0: any free port).
    pub fn start(run_dir: &Path, host: &str, port: u16) -> Result<Self> {
        let index = RunIndex::open(run_dir)?;
        let app = App {
            root: index.root().to_path_buf(),
            index: Mutex::new(index),
            loopback_only: host
                .parse::<IpAddr>()
                .map_or_else(|_| is_loopback_host(host), |ip| ip.is_loopback()),
        };
        let wanted = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let listen = |app: App| Listener::bind(&wanted, move |request| app.reply(request));
        let listener = listen(app).map_err(|error| Error::Listen {
            addr: wanted.clone(),
            message: error.to_string(),
        })?;
        Ok(Self { listener })
    }

    /// The address it listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.listener.addr()
    }

    /// The URL to open in a browser.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr())
    }

    /// Serves until the process is stopped.
    pub fn wait(self) {
        self.listener.wait();
    }
}

fn text(status: u16, message: &str) -> Reply {
    answer(
        status,
        "text/plain; charset=utf-8",
        format!("{message}\n").into_bytes(),
    )
}

fn answer(status: u16, mime: &'static str, body: impl Into<Arc<[u8]>>) -> Reply {
    let mut headers = vec![("Content-Type", mime)];
    headers.extend(COMMON_HEADERS);
    if mime == "application/json" {
        headers.push(("Cache-Control", "no-store"));
    }
    Reply {
        status,
        headers,
        body: body.into(),
    }
}

/// What the connection threads share.
struct App {
    index: Mutex<RunIndex>,
    /// The canonical run directory, outside the lock so images do not wait for the index.
    root: PathBuf,
    /// Answer only requests addressed to a loopback name, so a web page elsewhere cannot reach
    /// the run by rebinding its DNS name to 127.0.0.1.
    loopback_only: bool,
}

impl App {
    fn reply(&self, request: &Request) -> Reply {
        if !matches!(request.method.as_str(), "GET" | "HEAD") {
            return text(405, "only GET and HEAD");
        }
        if self.loopback_only && !request.host.as_deref().is_some_and(is_loopback_host) {
            return text(
                403,
                "the viewer answers only requests addressed to localhost",
            );
        }
        let (path, query) = request
            .target
            .split_once('?')
            .unwrap_or((&request.target, ""));
        match self.route(path, query) {
            Ok(reply) => reply,
            Err(error) => text(500, &error.to_string()),
        }
    }

    fn route(&self, path: &str, query: &str) -> Result<Reply> {
        if let Some(relative) = path.strip_prefix("/files/") {
            return Ok(self.file(relative));
        }
        let asset_name = if path == "/" {
            "index.html"
        } else {
            &path[1..]
        };
        if let Some(asset) = assets::find(asset_name) {
            return Ok(answer(200, asset.mime, asset.body.as_bytes()));
        }
        let Some(api) = path.strip_prefix("/api/") else {
            return Ok(text(404, "no such page"));
        };
        let mut index = self.index.lock().unwrap_or_else(PoisonError::into_inner);
        index.refresh()?;
        let segments: Vec<&str> = api.split('/').collect();
        let number = |text: &str| text.parse::<u64>().ok();
        let found: Option<Arc<[u8]>> = match segments.as_slice() {
            ["overview"] => Some(index.overview()),
            ["poll"] => {
                let param = |name: &str| {
                    query
                        .split('&')
                        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
                        .and_then(number)
                };
                let (Some(version), Some(rows)) = (param("version"), param("rows")) else {
                    return Ok(text(400, "poll needs ?version=V&rows=R"));
                };
                Some(index.poll(version, rows as usize).into())
            }
            ["evals"] => Some(index.evals_json().into()),
            ["step", step] => match number(step) {
                Some(step) => index.step_json(step)?.map(Into::into),
                None => None,
            },
            ["rollout", step, group, sample] => match (number(step), number(group), number(sample))
            {
                (Some(step), Some(group), Some(sample)) => index
                    .rollout(step, group as usize, sample as usize)?
                    .map(Into::into),
                _ => None,
            },
            _ => return Ok(text(404, "no such API endpoint")),
        };
        Ok(found.map_or_else(
            || text(404, "not in this run"),
            |body| answer(200, "application/json", body),
        ))
    }

    fn file(&self, encoded: &str) -> Reply {
        let root = &self.root;
        let resolved = files::percent_decode(encoded)
            .ok_or(Refused::Forbidden)
            .and_then(|relative| {
                let path = files::resolve(root, &relative)?;
                let mime = files::image_type(&relative).ok_or(Refused::NotFound)?;
                Ok((path, mime))
            });
        match resolved {
            Ok((path, mime)) => match std::fs::read(&path) {
                Ok(bytes) => answer(200, mime, bytes),
                Err(_) => text(404, "not found"),
            },
            Err(Refused::Forbidden) => text(403, "outside the run directory"),
            Err(Refused::NotFound) => text(404, "no such image in the run directory"),
        }
    }
}

/// Whether a `Host` header names this machine (`localhost`, `127.0.0.1`, `[::1]`, any port).
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split_once(']').map_or(rest, |(inside, _)| inside),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Serves `run_dir` on `host:port`, printing the URL, until the process is stopped (Ctrl-C).
pub fn serve(run_dir: &Path, host: &str, port: u16) -> Result<()> {
    let server = Server::start(run_dir, host, port)?;
    println!("replay viewer of {} at {}", run_dir.display(), server.url());
    println!("press Ctrl-C to stop");
    server.wait();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_recognised() {
        for host in [
            "localhost:8080",
            "127.0.0.1:1",
            "[::1]:80",
            "LOCALHOST",
            "127.0.0.2",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in ["evil.example:8080", "192.168.1.2:80", "[fe80::1]:80", ""] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }
}
