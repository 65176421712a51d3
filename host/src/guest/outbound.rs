//! What a guest may send out over HTTP: requests to the origins the operator
//! allowed (`--allow-outbound`), at most `--max-outbound` at once; nothing
//! else.
//!
//! Standard `wasi:http` components import `wasi:http/outgoing-handler`
//! whether they use it or not, so it is linked for every guest, and a
//! request to an origin not on the list fails with `http-request-denied`
//! before any connection or DNS lookup (the guest sees a failed request,
//! not a trap), as Spin refuses hosts missing from `allowed_outbound_hosts`:
//! a host reachable from any guest would let every app reach the
//! operator's private network with the host's address. Past the cap a
//! request fails at once with `connection-limit-reached`, so a guest cannot
//! hold the host's sockets.
//!
//! An allowed request is sent by `wasmtime-wasi-http`'s client (HTTP/1.1;
//! TLS by rustls with the webpki roots). It runs as a task of its own that
//! ends when the guest drops its handles, so the request's deadline covers
//! it: an overdue call's instance is dropped with everything it holds.

use std::fmt;
use std::sync::Arc;

use http_body_util::BodyExt;
use tokio::sync::Semaphore;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// One origin guests may send requests to: a scheme, a host and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    https: bool,
    /// Lower case, as URIs compare hosts.
    host: String,
    port: u16,
}

impl Origin {
    /// Parses `http://host[:port]` or `https://host[:port]` (a trailing `/`
    /// allowed, nothing else after the authority).
    pub fn parse(text: &str) -> Result<Origin, String> {
        let refuse = |why: &str| {
            format!(
                "`{text}` is not an origin like https://api.example.com or http://10.0.0.5:8080: {why}"
            )
        };
        let uri: hyper::Uri = text.parse().map_err(|_| refuse("not a URI"))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            return Err(refuse("the scheme must be http or https"));
        }
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            return Err(refuse("no user name or password"));
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(refuse("no path or query"));
        }
        let (https, host, port) = endpoint(&uri).ok_or_else(|| refuse("no host"))?;
        Ok(Origin {
            https,
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    fn matches(&self, uri: &hyper::Uri) -> bool {
        endpoint(uri).is_some_and(|(https, host, port)| {
            https == self.https && port == self.port && host.eq_ignore_ascii_case(&self.host)
        })
    }
}

/// Whether `uri` is https, its host, and its port (the scheme's default if
/// it names none); none unless it is an absolute http or https URI.
fn endpoint(uri: &hyper::Uri) -> Option<(bool, &str, u16)> {
    let https = match uri.scheme_str()? {
        "https" => true,
        "http" => false,
        _ => return None,
    };
    let authority = uri.authority()?;
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    Some((https, authority.host(), port))
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
    }
}

/// Where guests may send requests, and how many at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundSettings {
    /// `--allow-outbound`: empty (the default) refuses every request.
    pub allowed: Vec<Origin>,
    /// `--max-outbound`: requests in flight at once, all tasks together.
    pub max_in_flight: usize,
}

impl Default for OutboundSettings {
    fn default() -> Self {
        OutboundSettings {
            allowed: Vec::new(),
            max_in_flight: 64,
        }
    }
}

/// The settings in force, with the permits of the cap; one per app, shared
/// by its tasks.
#[derive(Debug)]
pub struct OutboundPolicy {
    allowed: Vec<Origin>,
    permits: Arc<Semaphore>,
}

impl OutboundPolicy {
    pub fn new(settings: &OutboundSettings) -> Self {
        OutboundPolicy {
            allowed: settings.allowed.clone(),
            permits: Arc::new(Semaphore::new(settings.max_in_flight)),
        }
    }

    fn allows(&self, uri: &hyper::Uri) -> bool {
        self.allowed.iter().any(|origin| origin.matches(uri))
    }
}

/// Largest write to a `wasi:http` body stream the host takes at once (a
/// stream buffers at most two): wasmtime's default of 1 MiB would let a
/// guest park 2 MiB of host memory per body it leaks.
pub const MAX_BODY_CHUNK: usize = 64 * 1024;

/// The `wasi:http` hooks of one instance: the default forbidden headers,
/// body writes of at most [`MAX_BODY_CHUNK`], and outbound requests under
/// the app's [`OutboundPolicy`].
pub struct Outbound {
    pub policy: Arc<OutboundPolicy>,
}

/// What [`WasiHttpHooks::send_request`] returns once the request is answered.
type Sent = Result<
    (
        hyper::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), Error>> + Send>,
    ),
    Error,
>;

impl WasiHttpHooks for Outbound {
    fn p2_outgoing_body_chunk_size(&mut self) -> usize {
        MAX_BODY_CHUNK
    }

    fn send_request(
        &mut self,
        request: hyper::Request<WasiBody>,
        options: Option<RequestOptions>,
        _done: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = Sent> + Send> {
        if !self.policy.allows(request.uri()) {
            return Box::new(std::future::ready(Err(Error::HttpRequestDenied)));
        }
        let Ok(permit) = Arc::clone(&self.policy.permits).try_acquire_owned() else {
            return Box::new(std::future::ready(Err(Error::ConnectionLimitReached)));
        };
        Box::new(async move {
            let (response, connection) =
                wasmtime_wasi_http::default_send_request(request, options).await?;
            // The permit is held while the connection lives, body included.
            let connection = async move {
                let ended = connection.await;
                drop(permit);
                ended
            };
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(connection) as Box<dyn Future<Output = Result<(), Error>> + Send>,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_parse_with_default_ports_and_refuse_anything_more() {
        let origin = Origin::parse("https://API.example.com").unwrap();
        assert_eq!(origin.to_string(), "https://api.example.com:443");
        assert_eq!(
            Origin::parse("http://10.0.0.5:8080/").unwrap().to_string(),
            "http://10.0.0.5:8080"
        );
        for bad in [
            "api.example.com",
            "ftp://example.com",
            "https://example.com/path",
            "https://example.com?q",
            "https://user:pw@example.com",
            "https://",
        ] {
            assert!(Origin::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_request_is_allowed_only_to_the_same_scheme_host_and_port() {
        let policy = OutboundPolicy::new(&OutboundSettings {
            allowed: vec![Origin::parse("https://api.example.com").unwrap()],
            max_in_flight: 1,
        });
        let allows = |uri: &str| policy.allows(&uri.parse().unwrap());
        assert!(allows("https://api.example.com/v1?x"));
        assert!(allows("https://API.EXAMPLE.COM:443/"));
        assert!(!allows("http://api.example.com/"));
        assert!(!allows("https://api.example.com:8443/"));
        assert!(!allows("https://api.example.com.evil.test/"));
        assert!(!allows("/relative"));
    }
}
