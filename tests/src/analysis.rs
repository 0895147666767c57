//! Measurements on received audio and packet timing, shared by the RTP peer and the tests.
//!
//! All times are milliseconds (f64) relative to the start of whatever is measured.

/// Length of one G.711 frame as the gateway sends it.
pub const FRAME_MS: f64 = 20.0;
/// 20 ms frames with an RMS above this (16-bit linear) count as voiced. The demo prompts and
/// espeak speech sit at RMS 1000–8000 while the gateway's silence packets decode to 0; 300
/// (≈ −41 dBFS) keeps quiet consonants in and line noise out.
pub const VOICED_RMS_THRESHOLD: f64 = 300.0;
/// Voiced frames separated by at most this much silence belong to the same interval, so the
/// short pauses between words do not split one utterance into many.
pub const HANGOVER_MS: f64 = 200.0;
/// An outbound gap above this means the gateway missed at least one 20 ms tick.
pub const GAP_LIMIT_MS: f64 = 40.0;

/// Root mean square of 16-bit samples (0 for an empty slice).
pub fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len() as f64).sqrt()
}

/// Merges voiced frames into `[start, end]` intervals. `frames` yields `(time_ms, rms)` in time
/// order; a voiced frame covers `[time, time + FRAME_MS]`; frames closer than `hangover_ms`
/// to the previous interval's end extend it.
pub fn voiced_intervals(
    frames: impl IntoIterator<Item = (f64, f64)>,
    threshold: f64,
    hangover_ms: f64,
) -> Vec<[f64; 2]> {
    let mut out: Vec<[f64; 2]> = Vec::new();
    for (t, level) in frames {
        if level <= threshold {
            continue;
        }
        match out.last_mut() {
            Some(last) if t - last[1] <= hangover_ms => last[1] = last[1].max(t + FRAME_MS),
            _ => out.push([t, t + FRAME_MS]),
        }
    }
    out
}

/// Voiced intervals of a whole 8 kHz recording, analysed in consecutive 20 ms frames.
pub fn wav_voiced_intervals(samples: &[i16]) -> Vec<[f64; 2]> {
    let frames = samples
        .chunks(crate::rtp::SAMPLES_PER_FRAME)
        .enumerate()
        .map(|(i, frame)| (i as f64 * FRAME_MS, rms(frame)));
    voiced_intervals(frames, VOICED_RMS_THRESHOLD, HANGOVER_MS)
}

/// Sum of interval lengths.
pub fn total_ms(intervals: &[[f64; 2]]) -> f64 {
    intervals.iter().map(|[a, b]| b - a).sum()
}

/// How much of `intervals` falls inside `[from, to]`.
pub fn overlap_ms(intervals: &[[f64; 2]], from: f64, to: f64) -> f64 {
    intervals
        .iter()
        .map(|[a, b]| (b.min(to) - a.max(from)).max(0.0))
        .sum()
}

/// Largest inter-arrival gap and the number of gaps above `limit_ms`. Arrivals must be in
/// receive order; the time before the first packet is not a gap.
pub fn gap_stats(arrivals_ms: &[f64], limit_ms: f64) -> (f64, u64) {
    let mut max_gap: f64 = 0.0;
    let mut over = 0;
    for pair in arrivals_ms.windows(2) {
        let gap = pair[1] - pair[0];
        max_gap = max_gap.max(gap);
        if gap > limit_ms {
            over += 1;
        }
    }
    (max_gap, over)
}

/// Stop latency of a barge-in: arrival time of the last voiced packet received while the caller
/// was speaking (`[onset, speech_end]`) minus `onset`. 0 when nothing voiced arrived in that
/// window (the prompt was already silent). `packets` yields `(arrival_ms, voiced)`.
pub fn stop_latency_ms(
    packets: impl IntoIterator<Item = (f64, bool)>,
    onset_ms: f64,
    speech_end_ms: f64,
) -> f64 {
    packets
        .into_iter()
        .filter(|&(t, voiced)| voiced && t >= onset_ms && t <= speech_end_ms)
        .map(|(t, _)| t - onset_ms)
        .fold(0.0, f64::max)
}

/// The first voiced interval that starts after `after_ms` (the bot's reply to the caller).
pub fn first_interval_after(intervals: &[[f64; 2]], after_ms: f64) -> Option<[f64; 2]> {
    intervals
        .iter()
        .copied()
        .find(|[start, _]| *start > after_ms)
}

/// Nearest-rank percentile (`p` in 0..=100) of unsorted values; None when empty.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rms_of_constant_and_empty() {
        assert_eq!(rms(&[]), 0.0);
        assert_eq!(rms(&[-500, 500, -500, 500]), 500.0);
    }

    #[test]
    fn intervals_merge_within_hangover_and_split_beyond() {
        // voiced at 0,20 ; silent 40..=160 ; voiced 180 (gap 140 ≤ 200 → merge) ;
        // silent until 500 ; voiced 500 (gap 300 > 200 → new interval).
        let frames = vec![
            (0.0, 1000.0),
            (20.0, 1000.0),
            (40.0, 0.0),
            (180.0, 900.0),
            (200.0, 10.0),
            (500.0, 5000.0),
        ];
        let got = voiced_intervals(frames, 300.0, 200.0);
        assert_eq!(got, vec![[0.0, 200.0], [500.0, 520.0]]);
        assert_eq!(total_ms(&got), 220.0);
        assert_eq!(overlap_ms(&got, 100.0, 510.0), 110.0);
        assert!(voiced_intervals(vec![(0.0, 300.0)], 300.0, 200.0).is_empty());
    }

    #[test]
    fn wav_analysis_finds_a_tone_burst() {
        let mut samples = vec![0i16; 8000];
        for (i, s) in samples.iter_mut().enumerate().skip(1600).take(1600) {
            *s = if i % 2 == 0 { 3000 } else { -3000 };
        }
        assert_eq!(wav_voiced_intervals(&samples), vec![[200.0, 400.0]]);
    }

    #[test]
    fn gaps_ignore_the_lead_in_and_count_late_packets() {
        let arrivals = [500.0, 520.0, 540.0, 600.0, 620.0, 641.0];
        let (max_gap, over) = gap_stats(&arrivals, 40.0);
        assert_eq!(max_gap, 60.0);
        assert_eq!(over, 1);
        assert_eq!(gap_stats(&[], 40.0), (0.0, 0));
        assert_eq!(gap_stats(&[1.0], 40.0), (0.0, 0));
    }

    #[test]
    fn stop_latency_uses_the_last_voiced_packet_inside_the_speech() {
        let packets = vec![
            (2900.0, true),
            (3100.0, true),
            (3350.0, true),
            (3360.0, false),
            (5200.0, true), // after speech end: the reply, not the prompt
        ];
        assert_eq!(stop_latency_ms(packets.clone(), 3000.0, 5000.0), 350.0);
        assert_eq!(stop_latency_ms(packets, 3400.0, 5000.0), 0.0);
    }

    #[test]
    fn reply_is_the_first_interval_after_the_speech() {
        let iv = [[0.0, 2900.0], [4900.0, 5000.0], [5400.0, 8000.0]];
        assert_eq!(first_interval_after(&iv, 5000.0), Some([5400.0, 8000.0]));
        assert_eq!(first_interval_after(&iv, 9000.0), None);
    }

    #[test]
    fn percentile_nearest_rank() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(10.0));
        assert_eq!(percentile(&v, 95.0), Some(19.0));
        assert_eq!(percentile(&v, 100.0), Some(20.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
