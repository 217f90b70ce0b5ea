//! Peak memory of one 1 MiB batch through the ingest handler, written to
//! DynamoDB Local: the heap high-water mark during the call (a counting
//! allocator) and the process's resident high-water mark (VmHWM), which is
//! what Lambda's memory setting has to cover.
//!
//! cargo bench -p integration-tests --bench peak_memory

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use integration_tests::{Answer, ApiEvent, fresh_table, ingest_token};
use serde_json::json;

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// Counts on top of mimalloc, the allocator the function binary uses.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { analytics_shared::alloc::Allocator.alloc(layout) };
        if !p.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Relaxed) + layout.size();
            PEAK.fetch_max(now, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { analytics_shared::alloc::Allocator.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn vm_hwm_kb() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

/// 500 events of about 2 KiB each: just under the 1 MiB body limit.
fn body(run: usize) -> String {
    let at = (chrono::Utc::now() - chrono::Duration::minutes(2)).to_rfc3339();
    let events: Vec<_> = (0..500)
        .map(|i| {
            json!({"event_id": format!("mem-{run}-{i}"), "kind": "activity", "occurred_at": at, "user_id": format!("u-{}", i % 50),
                   "action": "upload_csv", "client_id": "c-7", "description": "d".repeat(900),
                   "metadata": {"file": "x".repeat(900), "rows": i, "source": "web"}})
        })
        .collect();
    json!({"events": events}).to_string()
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (client, cfg) = fresh_table().await;
        let app = ingest::App::new(cfg, client);
        let token = ingest_token("bench");
        // Warm the client (connections, credentials) as a warm Lambda would be.
        let warm = Answer::from(app.handle(ApiEvent::post("/api/v1/analytics/events", body(0)).bearer(&token).into_request()).await);
        assert_eq!(warm.status, 202);
        // `cargo test --all-targets` runs this once as a smoke test; `cargo bench` measures.
        let runs = if std::env::args().any(|a| a == "--bench") { 5 } else { 1 };
        let mut peaks = Vec::new();
        for run in 1..=runs {
            let b = body(run);
            let size = b.len();
            assert!(size <= 1024 * 1024, "{size}");
            let req = ApiEvent::post("/api/v1/analytics/events", b).bearer(&token).into_request();
            let base = CURRENT.load(Relaxed);
            PEAK.store(base, Relaxed);
            let a = Answer::from(app.handle(req).await);
            assert_eq!(a.status, 202, "{}", a.body);
            assert_eq!(a.body["accepted"], 500);
            peaks.push((size, PEAK.load(Relaxed) - base));
        }
        let (size, worst) = peaks.iter().max_by_key(|p| p.1).copied().unwrap();
        println!("body bytes per batch:            {size}");
        println!("heap peak during handler (worst): {:.1} MiB (request included)", worst as f64 / 1048576.0);
        println!("process resident peak (VmHWM):    {:.1} MiB", vm_hwm_kb() as f64 / 1024.0);
    });
}
