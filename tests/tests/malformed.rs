//! Malformed SIP: every datagram of `tests/corpus/sip/` gets its expected answer (or none), the
//! gateway survives, and a normal call still works afterwards.

use std::time::Duration;

use bargein_e2e::corpus::{self, Expect, SIP_CASES};
use bargein_e2e::flows::expect_success;
use bargein_e2e::{send_udp_and_wait_response, Gateway, Sipp, TestRun};

#[test]
fn malformed_corpus_gets_expected_answers_and_gateway_survives() {
    let run = TestRun::new("malformed-corpus");
    let mut gw = Gateway::start(&run, &[]);
    let mut failures = Vec::new();
    for case in SIP_CASES {
        let bytes = corpus::load(case).unwrap_or_else(|e| panic!("{e}"));
        // Silence is only proven by waiting; 1 s is many round trips on loopback.
        let wait = match case.expect {
            Expect::Drop | Expect::StatusOrDrop(_) => Duration::from_secs(1),
            _ => Duration::from_secs(3),
        };
        let got = send_udp_and_wait_response(gw.sip_addr(), &bytes, wait);
        if let Err(e) = case.expect.check(got) {
            failures.push(format!("{}: {e} ({})", case.file, case.why));
        }
        if let Some(status) = gw.exit_status() {
            panic!(
                "gateway died ({status}) on {}\n{}",
                case.file,
                gw.log_tail(60)
            );
        }
    }
    gw.assert_healthy();
    assert!(
        failures.is_empty(),
        "unexpected answers:\n{}\n{}",
        failures.join("\n"),
        gw.log_tail(40)
    );

    let sipp = Sipp::new(&run, "uac_call_plain.xml", gw.sip_addr())
        .hold_ms(1000)
        .timeout(Duration::from_secs(20))
        .run();
    expect_success(&sipp, &gw);
    gw.assert_healthy();
}
