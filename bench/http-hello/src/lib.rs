//! The benchmark's standard `wasi:http` component (bench/wasi_http_vs_wasmtime_serve.sh):
//! `GET /` answers the seed app's JSON for a visitor without a session,
//! `{"foo":"Not set. Go to '/set' to set value.","thread":0}`, and anything
//! else 404. It imports only the `wasi:http/proxy` world, so wasmtime serve,
//! Spin and wasmhost all run the same file.

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

const INDEX: &[u8] = br#"{"foo":"Not set. Go to '/set' to set value.","thread":0}"#;

struct Hello;

wasip2::http::proxy::export!(Hello);

impl Guest for Hello {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let (status, content_type, body): (u16, &str, &[u8]) =
            match request.path_with_query().as_deref() {
                Some("/") => (200, "application/json", INDEX),
                _ => (404, "text/plain", b"not found"),
            };
        // With its length declared, wasmtime serve frames the body as
        // wasmhost does (else it sends it chunked).
        let headers = Fields::from_list(&[
            ("content-type".to_owned(), content_type.as_bytes().to_vec()),
            (
                "content-length".to_owned(),
                body.len().to_string().into_bytes(),
            ),
        ])
        .expect("valid headers");
        let response = OutgoingResponse::new(headers);
        response.set_status_code(status).expect("a valid status");
        let outgoing = response.body().expect("a body");
        ResponseOutparam::set(out, Ok(response));
        let stream = outgoing.write().expect("a stream");
        stream
            .blocking_write_and_flush(body)
            .expect("the host reads the body");
        drop(stream);
        OutgoingBody::finish(outgoing, None).expect("the body is finished");
    }
}
