//! `/metrics`: the cache's and the agent's counters in the Prometheus text
//! format (version 0.0.4).

use std::fmt::Write;
use std::sync::atomic::Ordering;

use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use keystead::{ErrorClass, MetricsSnapshot, LOAD_LATENCY_BUCKETS};

use crate::agent::response::{self, Body};
use crate::agent::routes::{AgentState, Counters};

const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

pub(crate) fn render(state: &AgentState) -> Response<Body> {
    let text = format_metrics(&state.client.metrics(), &state.counters);
    let mut response = response::json(StatusCode::OK, text.into_bytes());
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_TEXT));
    response
}

fn format_metrics(metrics: &MetricsSnapshot, counters: &Counters) -> String {
    let mut out = String::with_capacity(4096);
    let counter = |out: &mut String, name: &str, help: &str, value: u64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
    };

    counter(&mut out, "keystead_cache_hits_total", "Reads answered from the cache with a fresh value.", metrics.hits);
    counter(&mut out, "keystead_cache_misses_total", "Reads that waited for a load.", metrics.misses);
    counter(&mut out, "keystead_cache_refreshes_total", "Background and explicit refreshes started.", metrics.refreshes);
    counter(
        &mut out,
        "keystead_cache_stale_serves_total",
        "Reads answered with a value past its TTL.",
        metrics.stale_serves,
    );
    counter(&mut out, "keystead_backend_calls_total", "Provider calls made.", metrics.backend_calls);
    counter(&mut out, "keystead_rotations_total", "Refreshes that found a new version.", metrics.rotations);
    counter(&mut out, "keystead_cache_evictions_total", "Values removed from the cache.", metrics.evictions);
    let _ = writeln!(
        out,
        "# HELP keystead_cache_entries References currently cached.\n# TYPE keystead_cache_entries gauge\nkeystead_cache_entries {}",
        metrics.entries
    );

    let _ = writeln!(
        out,
        "# HELP keystead_load_errors_total Failed loads by error class.\n# TYPE keystead_load_errors_total counter"
    );
    for class in ErrorClass::ALL {
        let _ = writeln!(out, "keystead_load_errors_total{{class=\"{}\"}} {}", class.as_str(), metrics.errors_of(class));
    }

    let _ = writeln!(
        out,
        "# HELP keystead_load_duration_seconds Time taken by backend loads.\n# TYPE keystead_load_duration_seconds histogram"
    );
    let mut cumulative = 0u64;
    for (index, count) in metrics.load_latency_buckets.iter().enumerate() {
        cumulative += count;
        match LOAD_LATENCY_BUCKETS.get(index) {
            Some(bound) => {
                let _ = writeln!(out, "keystead_load_duration_seconds_bucket{{le=\"{}\"}} {cumulative}", bound.as_secs_f64());
            }
            None => {
                let _ = writeln!(out, "keystead_load_duration_seconds_bucket{{le=\"+Inf\"}} {cumulative}");
            }
        }
    }
    let _ = writeln!(out, "keystead_load_duration_seconds_sum {}", metrics.load_latency_sum.as_secs_f64());
    let _ = writeln!(out, "keystead_load_duration_seconds_count {}", metrics.load_count);

    let _ = writeln!(
        out,
        "# HELP keystead_agent_responses_total Responses sent, by HTTP status (\"other\" for the rest).\n# TYPE keystead_agent_responses_total counter"
    );
    for (status, count) in counters.responses() {
        let label = if status == 0 { "other".to_owned() } else { status.to_string() };
        let _ = writeln!(out, "keystead_agent_responses_total{{status=\"{label}\"}} {count}");
    }
    let _ = writeln!(
        out,
        "# HELP keystead_agent_open_connections Connections open now.\n# TYPE keystead_agent_open_connections gauge\nkeystead_agent_open_connections {}",
        counters.open_connections.load(Ordering::Relaxed)
    );
    counter(
        &mut out,
        "keystead_agent_rejected_connections_total",
        "Connections answered 429 because the connection limit was reached.",
        counters.rejected_connections.load(Ordering::Relaxed),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_and_ends_at_infinity() {
        let mut metrics = MetricsSnapshot::default();
        metrics.load_latency_buckets = vec![0; LOAD_LATENCY_BUCKETS.len() + 1];
        metrics.load_latency_buckets[0] = 2;
        metrics.load_latency_buckets[3] = 1;
        metrics.load_count = 3;
        let text = format_metrics(&metrics, &Counters::default());
        assert!(text.contains("keystead_load_duration_seconds_bucket{le=\"0.001\"} 2\n"), "{text}");
        assert!(text.contains("keystead_load_duration_seconds_bucket{le=\"0.025\"} 3\n"), "{text}");
        assert!(text.contains("keystead_load_duration_seconds_bucket{le=\"+Inf\"} 3\n"), "{text}");
        assert!(text.contains("keystead_load_errors_total{class=\"not-found\"} 0\n"), "{text}");
    }
}
