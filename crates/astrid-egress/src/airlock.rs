//! The request loop: every hop is checked (scheme, consent, the host's authorization, DNS
//! and the address policy) before a socket is opened, and redirects are followed by hand.

use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request};
use hyper::body::Incoming;
use tokio::time::{timeout_at, Instant};
use tokio_rustls::TlsConnector;
use url::{Host, Position, Url};

use crate::connect::{self, Conn, Sender};
use crate::policy::{self, Hop, ORIGIN_BOUND};
use crate::resolve::{Resolve, SystemResolver};
use crate::response::{drive, EgressResponse};
use crate::upload::{EgressUpload, ReqBody, Started};
use crate::{check_ip, AirlockConfig, Authorize, Consent, EgressError, EgressRequest, Redirects};

/// The network airlock. Cheap to share (`Arc` it); each request opens its own connection.
pub struct Airlock {
    pub(crate) cfg: AirlockConfig,
    tls: TlsConnector,
    /// TLS for `astrid:net` streams: the same roots, no ALPN (the capsule speaks its own
    /// protocol over it).
    pub(crate) tls_stream: TlsConnector,
    resolver: Arc<dyn Resolve>,
}

/// A credential ready to be put on the wire for the hops of its origin.
struct PreparedCredential<'a> {
    cred: &'a crate::Credential,
    name: HeaderName,
    value: HeaderValue,
}

impl Airlock {
    /// An airlock with the system resolver.
    pub fn new(cfg: AirlockConfig) -> Result<Airlock, EgressError> {
        Self::with_resolver(cfg, Arc::new(SystemResolver))
    }

    /// An airlock with its own resolver (tests, or a host with its own DNS).
    pub fn with_resolver(
        cfg: AirlockConfig,
        resolver: Arc<dyn Resolve>,
    ) -> Result<Airlock, EgressError> {
        let tls = connect::tls_connector(&cfg.extra_roots, &[b"http/1.1"])?;
        let tls_stream = connect::tls_connector(&cfg.extra_roots, &[])?;
        Ok(Airlock {
            cfg,
            tls,
            tls_stream,
            resolver,
        })
    }

    pub fn config(&self) -> &AirlockConfig {
        &self.cfg
    }

    /// Sends `req` and returns once the head of the final response arrived.
    pub async fn send(
        &self,
        req: EgressRequest,
        consent: &Consent,
        auth: &dyn Authorize,
    ) -> Result<EgressResponse, EgressError> {
        let limit = req
            .timeout
            .unwrap_or(self.cfg.default_timeout)
            .min(self.cfg.max_timeout);
        let deadline = Instant::now() + limit;

        let mut method = policy::method(&req.method)?;
        let mut headers = policy::capsule_headers(&req.headers)?;
        let creds = prepare_credentials(&req.credentials)?;
        let mut body = Bytes::from(req.body);
        let mut url = Url::parse(&req.url)
            .map_err(|e| EgressError::InvalidArgument(format!("URL `{}`: {e}", req.url)))?;
        url.set_fragment(None);

        let max_body = req
            .max_body
            .map_or(self.cfg.max_body, |m| m.min(self.cfg.max_body));
        let (max_redirects, manual) = match req.redirects {
            None => (self.cfg.max_redirects, false),
            Some(Redirects::Follow(n)) => (n.min(self.cfg.max_redirects), false),
            Some(Redirects::Manual) => (0, true),
        };
        let https_only = req.https_only;

        let mut redirects = 0u8;
        loop {
            // A spent budget (the caller's invocation deadline) stops before the next hop
            // rather than racing a connect against an already-expired timer.
            if Instant::now() >= deadline {
                return Err(in_redirect(
                    EgressError::Timeout(format!("no time left to request {url}")),
                    redirects,
                    &url,
                ));
            }
            let (parts, incoming, conn) = self
                .hop(
                    &url, &method, &headers, &creds, &body, consent, auth, deadline, https_only,
                )
                .await
                .map_err(|e| in_redirect(e, redirects, &url))?;
            let next = match manual {
                true => None,
                false => redirect_target(&parts, &url)?,
            };
            let Some(next) = next else {
                let mut response =
                    EgressResponse::new(parts, incoming, conn, url.to_string(), deadline, max_body);
                if let Some(integrity) = &req.integrity {
                    response.verify(integrity).await?;
                }
                return Ok(response);
            };
            if redirects >= max_redirects {
                return Err(EgressError::Connection(format!(
                    "{url} redirected more than {max_redirects} times"
                )));
            }
            redirects += 1;
            let status = parts.status.as_u16();
            if matches!(status, 301..=303) && method != Method::HEAD {
                method = Method::GET;
                body = Bytes::new();
                for h in ["content-type", "content-encoding", "content-language"] {
                    headers.remove(h);
                }
            }
            if next.origin() != url.origin() {
                for h in ORIGIN_BOUND {
                    headers.remove(*h);
                }
            }
            url = next;
        }
    }

    /// Starts `req` with a body written as it goes: the one hop is checked, authorized and
    /// connected exactly as [`Airlock::send`]'s first, then `req.body` is the body's first
    /// piece and [`EgressUpload::write`] adds the rest. Redirects are never followed (a
    /// streamed body cannot be sent twice): a 3xx is the answer.
    pub async fn start(
        &self,
        req: EgressRequest,
        consent: &Consent,
        auth: &dyn Authorize,
    ) -> Result<EgressUpload, EgressError> {
        let limit = req
            .timeout
            .unwrap_or(self.cfg.default_timeout)
            .min(self.cfg.max_timeout);
        let deadline = Instant::now() + limit;
        let method = policy::method(&req.method)?;
        if matches!(method, Method::GET | Method::HEAD) {
            return Err(EgressError::InvalidArgument(format!(
                "a {method} request has no body to stream"
            )));
        }
        let headers = policy::capsule_headers(&req.headers)?;
        let creds = prepare_credentials(&req.credentials)?;
        let mut url = Url::parse(&req.url)
            .map_err(|e| EgressError::InvalidArgument(format!("URL `{}`: {e}", req.url)))?;
        url.set_fragment(None);
        let max_body = req
            .max_body
            .map_or(self.cfg.max_body, |m| m.min(self.cfg.max_body));
        if Instant::now() >= deadline {
            return Err(EgressError::Timeout(format!(
                "no time left to request {url}"
            )));
        }
        let (sender, conn) = self
            .checked_connection(&url, consent, auth, deadline, req.https_only)
            .await?;
        let (tx, rx) = tokio::sync::mpsc::channel(crate::upload::QUEUED_PIECES);
        let request = build_request(&url, &method, &headers, &creds, ReqBody::Streamed(rx))?;
        let mut upload = EgressUpload::new(Started {
            sender,
            conn,
            request,
            body: tx,
            url,
            deadline,
            max_body,
            integrity: req.integrity,
        });
        upload.queue_first(Bytes::from(req.body));
        Ok(upload)
    }

    /// One hop: policy, authorization, resolution, connection, request head.
    #[allow(clippy::too_many_arguments)]
    async fn hop(
        &self,
        url: &Url,
        method: &Method,
        headers: &HeaderMap,
        creds: &[PreparedCredential<'_>],
        body: &Bytes,
        consent: &Consent,
        auth: &dyn Authorize,
        deadline: Instant,
        https_only: bool,
    ) -> Result<
        (
            http::response::Parts,
            Incoming,
            Option<std::pin::Pin<Box<Conn>>>,
        ),
        EgressError,
    > {
        let (sender, conn) = self
            .checked_connection(url, consent, auth, deadline, https_only)
            .await?;
        let request = build_request(url, method, headers, creds, ReqBody::full(body.clone()))?;
        exchange(sender, conn, request, url, deadline).await
    }

    /// Every check of one hop (https only, the scheme and consent rules, the host's
    /// authorization, one lookup and the address policy), then a connection to an address
    /// that passed. The one gate of both [`Airlock::send`]'s hops and [`Airlock::start`].
    async fn checked_connection(
        &self,
        url: &Url,
        consent: &Consent,
        auth: &dyn Authorize,
        deadline: Instant,
        https_only: bool,
    ) -> Result<(Sender, Conn), EgressError> {
        if https_only && url.scheme() != "https" {
            return Err(EgressError::Denied(format!(
                "the request is https-only and {url} is not https"
            )));
        }
        let hop = policy::check_url(url, consent, auth)?;
        auth.authorize(url).map_err(EgressError::Denied)?;
        let addrs = self.addresses(url, &hop, auth, deadline).await?;
        connect::open(&addrs, url, &self.tls, &self.cfg, deadline).await
    }

    /// The checked addresses of this hop: the literal itself, or the one DNS answer with
    /// every non-public address dropped (unless the target is consented).
    pub(crate) async fn addresses(
        &self,
        url: &Url,
        hop: &Hop,
        auth: &dyn Authorize,
        deadline: Instant,
    ) -> Result<Vec<SocketAddr>, EgressError> {
        if let Some(ip) = hop.literal {
            return Ok(vec![SocketAddr::new(ip, hop.port)]);
        }
        let Some(Host::Domain(name)) = url.host() else {
            return Err(EgressError::InvalidArgument(format!("`{url}` has no host")));
        };
        let found = timeout_at(deadline, self.resolver.resolve(name, hop.port))
            .await
            .map_err(|_| EgressError::Timeout(format!("resolving {name} ran past the deadline")))?
            .map_err(|e| EgressError::Connection(format!("resolving {name}: {e}")))?;
        filter_addresses(name, hop.port, found, hop.consented, &|why| {
            auth.consent_local(url, why)
        })
    }
}

/// Keeps the public addresses (all of them for a consented target), pinned to `port`. A
/// name that answered only with loopback or private addresses is put to `ask` (the caller's
/// [`Authorize::consent_local`]); a yes keeps them, this once.
pub(crate) fn filter_addresses(
    name: &str,
    port: u16,
    found: Vec<SocketAddr>,
    consented: bool,
    ask: &dyn Fn(&str) -> bool,
) -> Result<Vec<SocketAddr>, EgressError> {
    if found.is_empty() {
        return Err(EgressError::Connection(format!("{name} has no addresses")));
    }
    let mut kept = Vec::new();
    let mut refused = Vec::new();
    for addr in &found {
        let ip = addr.ip();
        match check_ip(ip) {
            Ok(()) => kept.push(SocketAddr::new(ip, port)),
            Err(_) if consented => kept.push(SocketAddr::new(ip, port)),
            Err(why) => refused.push(why),
        }
    }
    if kept.is_empty() {
        let why = format!(
            "{name} resolves only to non-public addresses: {}",
            refused.join("; ")
        );
        if found.iter().all(|a| crate::policy::askable(a.ip())) && ask(&why) {
            return Ok(found
                .iter()
                .map(|a| SocketAddr::new(a.ip(), port))
                .collect());
        }
        return Err(EgressError::Denied(why));
    }
    Ok(kept)
}

fn prepare_credentials(
    creds: &[crate::Credential],
) -> Result<Vec<PreparedCredential<'_>>, EgressError> {
    creds
        .iter()
        .map(|cred| {
            let name = HeaderName::from_bytes(cred.header.as_bytes()).map_err(|_| {
                EgressError::InvalidArgument(format!(
                    "credential header `{}` is not a valid header name",
                    cred.header
                ))
            })?;
            // The value is never echoed into the message.
            let mut value = HeaderValue::from_str(&cred.value).map_err(|_| {
                EgressError::InvalidArgument(format!(
                    "credential for header `{name}` has an invalid value"
                ))
            })?;
            value.set_sensitive(true);
            Ok(PreparedCredential { cred, name, value })
        })
        .collect()
}

fn build_request(
    url: &Url,
    method: &Method,
    headers: &HeaderMap,
    creds: &[PreparedCredential<'_>],
    body: ReqBody,
) -> Result<Request<ReqBody>, EgressError> {
    let target = &url[Position::BeforePath..Position::AfterQuery];
    let uri: http::Uri = target
        .parse()
        .map_err(|e| EgressError::InvalidArgument(format!("request target `{target}`: {e}")))?;
    let mut headers = headers.clone();
    for c in creds.iter().filter(|c| c.cred.matches(url)) {
        headers.remove(&c.name);
    }
    for c in creds.iter().filter(|c| c.cred.matches(url)) {
        headers.append(c.name.clone(), c.value.clone());
    }
    let host = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    };
    let host = HeaderValue::from_str(&host)
        .map_err(|_| EgressError::InvalidArgument(format!("host `{host}`")))?;
    headers.insert(header::HOST, host);
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    if !headers.contains_key(header::USER_AGENT) {
        headers.insert(
            header::USER_AGENT,
            HeaderValue::from_static(concat!("astrid-egress/", env!("CARGO_PKG_VERSION"))),
        );
    }
    let mut request = Request::new(body);
    *request.method_mut() = method.clone();
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    Ok(request)
}

/// Writes the request and waits for the response head, driving the connection meanwhile.
async fn exchange(
    mut sender: Sender,
    conn: Conn,
    request: Request<ReqBody>,
    url: &Url,
    deadline: Instant,
) -> Result<
    (
        http::response::Parts,
        Incoming,
        Option<std::pin::Pin<Box<Conn>>>,
    ),
    EgressError,
> {
    let mut conn = Some(Box::pin(conn));
    let mut response = pin!(sender.send_request(request));
    let head = timeout_at(
        deadline,
        poll_fn(|cx| match drive(&mut conn, cx) {
            Some(e) => std::task::Poll::Ready(Err(e)),
            None => response.as_mut().poll(cx),
        }),
    )
    .await
    .map_err(|_| EgressError::Timeout(format!("no response from {url} before the deadline")))?
    // EgressError is Clone + PartialEq and mirrors the WIT `error-code` a guest receives as
    // text, so hyper's error (neither) is flattened into the message here.
    .map_err(|e| EgressError::Connection(format!("{url}: {e}")))?;
    let (parts, incoming) = head.into_parts();
    Ok((parts, incoming, conn))
}

/// The next URL when `parts` is a followable redirect with a `Location`.
fn redirect_target(parts: &http::response::Parts, url: &Url) -> Result<Option<Url>, EgressError> {
    if !matches!(parts.status.as_u16(), 301 | 302 | 303 | 307 | 308) {
        return Ok(None);
    }
    let Some(location) = parts.headers.get(header::LOCATION) else {
        return Ok(None);
    };
    let location = location
        .to_str()
        .map_err(|_| EgressError::Connection(format!("{url} redirected to a non-text Location")))?;
    let mut next = url
        .join(location)
        .map_err(|e| EgressError::Connection(format!("{url} redirected to `{location}`: {e}")))?;
    next.set_fragment(None);
    Ok(Some(next))
}

/// Says which hop failed when it was not the first.
fn in_redirect(e: EgressError, redirects: u8, url: &Url) -> EgressError {
    if redirects == 0 {
        return e;
    }
    let at = |m: String| format!("after redirect to {url}: {m}");
    match e {
        EgressError::Denied(m) => EgressError::Denied(at(m)),
        EgressError::InvalidArgument(m) => EgressError::InvalidArgument(at(m)),
        EgressError::Timeout(m) => EgressError::Timeout(at(m)),
        EgressError::TooLarge(m) => EgressError::TooLarge(at(m)),
        EgressError::Connection(m) => EgressError::Connection(at(m)),
        EgressError::Integrity(m) => EgressError::Integrity(at(m)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn filter_drops_private_and_pins_port() {
        let kept = filter_addresses(
            "mixed.example",
            443,
            vec![sa("10.0.0.1:1"), sa("8.8.8.8:1"), sa("[fd00::1]:1")],
            false,
            &|_| panic!("a public address remains: nobody is asked"),
        )
        .unwrap();
        assert_eq!(kept, vec![sa("8.8.8.8:443")]);
    }

    #[test]
    fn filter_refuses_when_nothing_public_remains() {
        let err = filter_addresses(
            "metadata.google.internal",
            80,
            vec![sa("169.254.169.254:80")],
            false,
            // Link-local (the metadata service) is never put to anyone.
            &|_| panic!("asked about the metadata address"),
        )
        .unwrap_err();
        let EgressError::Denied(why) = err else {
            panic!("{err:?}")
        };
        assert!(why.contains("169.254.0.0/16"), "{why}");
    }

    #[test]
    fn filter_keeps_private_when_consented() {
        let never = |_: &str| panic!("consented: nobody is asked");
        let kept =
            filter_addresses("nas.lan", 8080, vec![sa("192.168.1.5:0")], true, &never).unwrap();
        assert_eq!(kept, vec![sa("192.168.1.5:8080")]);
        assert!(filter_addresses("x", 1, vec![], true, &never).is_err());
    }

    #[test]
    fn a_local_answer_is_kept_only_when_the_person_says_yes() {
        let asked = std::cell::Cell::new(0);
        let ask = |answer: bool| {
            move |why: &str| {
                assert!(why.contains("nas.lan resolves only to non-public"), "{why}");
                answer
            }
        };
        let yes = ask(true);
        let counted = |why: &str| {
            asked.set(asked.get() + 1);
            yes(why)
        };
        let kept =
            filter_addresses("nas.lan", 80, vec![sa("192.168.1.5:0")], false, &counted).unwrap();
        assert_eq!(kept, vec![sa("192.168.1.5:80")]);
        assert_eq!(asked.get(), 1);
        let no = ask(false);
        assert!(filter_addresses("nas.lan", 80, vec![sa("192.168.1.5:0")], false, &no).is_err());
        // A mix with link-local is not put to anyone.
        let err = filter_addresses(
            "mixed.lan",
            80,
            vec![sa("192.168.1.5:0"), sa("169.254.1.1:0")],
            false,
            &|_| panic!("asked about a link-local answer"),
        );
        assert!(err.is_err());
    }
}
