//! What a guest may send out over HTTP: nothing.
//!
//! Standard `wasi:http` components import `wasi:http/outgoing-handler`
//! whether they use it or not, so it is linked, and every request made
//! through it is refused here with `http-request-denied` (the guest sees a
//! failed request, not a trap), as Spin refuses hosts missing from
//! `allowed_outbound_hosts`. A host reachable from the guests would let any
//! app reach the operator's private network with the host's address.

use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// The `wasi:http` hooks of one instance: the default forbidden headers
/// and schemes, and an outbound request that always fails.
#[derive(Debug, Default)]
pub struct Outbound;

/// What [`WasiHttpHooks::send_request`] returns once the request is answered.
type Sent = Result<
    (
        hyper::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), Error>> + Send>,
    ),
    Error,
>;

impl WasiHttpHooks for Outbound {
    fn send_request(
        &mut self,
        _request: hyper::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _done: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = Sent> + Send> {
        Box::new(std::future::ready(Err(Error::HttpRequestDenied)))
    }
}
