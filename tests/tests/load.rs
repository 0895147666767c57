//! Load: 50 concurrent calls, each with its own RTP peer.

use bargein_e2e::flows::{concurrent_calls, summarize};
use bargein_e2e::{Gateway, TestRun};

const CALLS: u32 = 50;
const HOLD_MS: u64 = 8000;

/// 50 calls started within 2 s and held 8 s together: all succeed (SIPp exit 0, 50 successful
/// calls in its statistics), and every call's peer received the prompt with no inter-arrival gap
/// over 40 ms (kernel receive timestamps, so the peers' own scheduling does not count).
#[test]
fn fifty_concurrent_calls_without_outbound_gaps() {
    let run = TestRun::new("load-fifty_concurrent_calls");
    let mut gw = Gateway::start(&run, &[]);
    let (sipp, reports) = concurrent_calls(&run, &gw, CALLS, 25, HOLD_MS);
    let stats = sipp
        .stats()
        .unwrap_or_else(|e| panic!("SIPp statistics: {e}"));
    assert_eq!(
        stats.get("SuccessfulCall(C)").map(String::as_str),
        Some("50"),
        "{stats:?}"
    );
    assert_eq!(reports.len(), CALLS as usize);

    let bad: Vec<String> = reports
        .iter()
        .filter(|r| r.gaps_over_40ms > 0 || r.packets_rx < 300 || r.voiced_total_ms < 1000.0)
        .map(summarize)
        .collect();
    let worst = reports.iter().map(|r| r.max_gap_ms).fold(0.0, f64::max);
    assert!(bad.is_empty(), "{} of {CALLS} calls had gaps > 40 ms, too few packets or no prompt (worst gap {worst:.1} ms):\n{}", bad.len(), bad.join("\n"));
    let ssrcs: std::collections::BTreeSet<u32> = reports
        .iter()
        .flat_map(|r| r.ssrcs.iter().copied())
        .collect();
    assert_eq!(
        ssrcs.len(),
        CALLS as usize,
        "each call must have its own SSRC"
    );
    eprintln!("50 calls OK, worst inter-arrival gap {worst:.1} ms");
    gw.assert_healthy();
}
