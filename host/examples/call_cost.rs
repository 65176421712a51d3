//! Measures what one guest call costs without any networking: the warm-call
//! cost of a persistent instance and the cost of a fresh instance.
//!
//! `cargo run --release -p wasmhost --example call_cost -- target/wasm32-wasip2/release/guest_app.wasm [path]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmhost::__internals::{
    AppContext, CallClocks, CallLimits, GuestApp, GuestMetrics, Instance, Method, Metrics,
    OutboundPolicy, OutboundSettings, Precompiled, Request, TaskContext, engine,
};
use wasmhost::store::{Limits, MemoryStore, PrefixedStore};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let app = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: call_cost APP.wasm [PATH]"))?;
    let path = args.next().unwrap_or_else(|| "/".to_owned());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let guest = GuestApp::load(&engine(true)?, app.as_ref(), 1, Precompiled::Refuse)?;
        let limits = CallLimits::default();
        let store = MemoryStore::new(Limits::default()).into();
        let metrics = GuestMetrics::new(&Metrics::new(1), &store);
        let context = TaskContext {
            id: 0,
            count: 1,
            app: Arc::new(AppContext {
                env: Vec::new(),
                store: PrefixedStore::new(store, ""),
                limits,
                max_response: usize::MAX,
                outbound: Arc::new(OutboundPolicy::new(&OutboundSettings::default())),
                metrics,
            }),
            clocks: Arc::new(CallClocks::new(1, limits.request_timeout)),
        };
        let mut instance = Instance::new(&guest, &context).await?;
        // With `cookie` as the path's prefix, call with the session `GET /set` made.
        let (path, cookie) = match path.strip_prefix("cookie:") {
            Some(path) => {
                let set = Request {
                    method: Method::Get,
                    target_and_headers: "/set\0".into(),
                    body: None,
                    received_ms: now_ms(),
                };
                let response = instance
                    .handle(&set)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let cookie = response
                    .headers
                    .split_once("set-cookie\0")
                    .and_then(|(_, value)| value.split([';', '\0']).next())
                    .map(str::to_owned);
                (path.to_owned(), cookie)
            }
            None => (path, None),
        };
        let mut target_and_headers = format!("{path}\0host\0127.0.0.1:8080\0");
        if let Some(cookie) = cookie {
            target_and_headers.push_str(&format!("cookie\0{cookie}\0"));
        }
        let request = Request {
            method: Method::Get,
            target_and_headers,
            body: None,
            received_ms: now_ms(),
        };
        for _ in 0..10_000 {
            instance
                .handle(&request)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        let calls = 200_000;
        let started = Instant::now();
        for _ in 0..calls {
            instance
                .handle(&request)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        let per_call = started.elapsed() / calls;
        println!("warm call of GET {path}: {:.2} µs", micros(per_call));

        let fresh = 2_000;
        let started = Instant::now();
        for _ in 0..fresh {
            Instance::new(&guest, &context).await?;
        }
        println!(
            "fresh instance: {:.2} µs",
            micros(started.elapsed() / fresh)
        );
        anyhow::Ok(())
    })
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}
