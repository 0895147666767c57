//! The barge-in evaluation corpus: one caller-side WAV per call (8 kHz mono s16, the whole
//! call long, sent from the ACK on) and a JSON manifest with the ground truth of each call.
//!
//! Deterministic: every call draws from its own stream derived from (corpus seed, call id),
//! so the same seed gives byte-identical WAVs and manifest, and the `--subset` calls are the
//! first calls of each family of the full corpus, unchanged.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::echo::EchoParams;
use super::rng::{derive_seed, Rng};
use super::sources::SourceBank;
use super::synth::{self, BurstEvent};
use crate::audio::write_wav;

pub const MANIFEST_FILE: &str = "manifest.json";
pub const MANIFEST_VERSION: u32 = 1;
/// Calls per family in the full corpus and in the CI subset.
pub const FULL_PER_FAMILY: usize = 12;
pub const SUBSET_PER_FAMILY: usize = 3;
/// Every call lasts this long: the 16 s demo prompt, or onset ≤ 10 s + ≤ 3 s of speech + turn
/// end + the 3.3 s reply.
pub const CALL_MS: f64 = 18_000.0;
/// Caller speech starts this far into the call (the prompt starts < 100 ms after the ACK).
pub const ONSET_RANGE_MS: (f64, f64) = (2_000.0, 10_000.0);
/// Active speech level of the caller.
pub const SPEECH_LEVEL_DBFS: (f64, f64) = (-30.0, -20.0);
/// Echo path ranges (G.168: ERL down to 6 dB, bulk delay up to ~120 ms on mobile/VoIP).
pub const ECHO_DELAY_MS: (f64, f64) = (0.0, 120.0);
pub const ECHO_ERL_DB: (f64, f64) = (6.0, 20.0);
pub const ECHO_DISPERSION_MS: (f64, f64) = (8.0, 16.0);

/// Scenario families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Family {
    #[serde(rename = "interrupt_clean")]
    InterruptClean,
    #[serde(rename = "interrupt_snr20")]
    InterruptSnr20,
    #[serde(rename = "interrupt_snr10")]
    InterruptSnr10,
    #[serde(rename = "interrupt_snr5")]
    InterruptSnr5,
    #[serde(rename = "noise_music")]
    NoiseMusic,
    #[serde(rename = "noise_babble")]
    NoiseBabble,
    #[serde(rename = "noise_car")]
    NoiseCar,
    #[serde(rename = "noise_hvac")]
    NoiseHvac,
    #[serde(rename = "noise_bursts")]
    NoiseBursts,
    #[serde(rename = "echo_only")]
    EchoOnly,
}

impl Family {
    pub const ALL: [Family; 10] = [
        Family::InterruptClean,
        Family::InterruptSnr20,
        Family::InterruptSnr10,
        Family::InterruptSnr5,
        Family::NoiseMusic,
        Family::NoiseBabble,
        Family::NoiseCar,
        Family::NoiseHvac,
        Family::NoiseBursts,
        Family::EchoOnly,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Family::InterruptClean => "interrupt_clean",
            Family::InterruptSnr20 => "interrupt_snr20",
            Family::InterruptSnr10 => "interrupt_snr10",
            Family::InterruptSnr5 => "interrupt_snr5",
            Family::NoiseMusic => "noise_music",
            Family::NoiseBabble => "noise_babble",
            Family::NoiseCar => "noise_car",
            Family::NoiseHvac => "noise_hvac",
            Family::NoiseBursts => "noise_bursts",
            Family::EchoOnly => "echo_only",
        }
    }

    pub fn from_name(name: &str) -> Option<Family> {
        Family::ALL.into_iter().find(|f| f.name() == name)
    }

    /// True for the families where the caller speaks (and should barge in).
    pub fn has_speech(self) -> bool {
        matches!(
            self,
            Family::InterruptClean
                | Family::InterruptSnr20
                | Family::InterruptSnr10
                | Family::InterruptSnr5
        )
    }

    /// Speech-to-noise ratio of the interrupt families over a noise bed.
    pub fn snr_db(self) -> Option<f64> {
        match self {
            Family::InterruptSnr20 => Some(20.0),
            Family::InterruptSnr10 => Some(10.0),
            Family::InterruptSnr5 => Some(5.0),
            _ => None,
        }
    }

    /// What the family's description in the README says, for reports.
    pub fn describe(self) -> &'static str {
        match self {
            Family::InterruptClean => "caller speech, no noise",
            Family::InterruptSnr20 => "caller speech over a noise bed at 20 dB SNR",
            Family::InterruptSnr10 => "caller speech over a noise bed at 10 dB SNR",
            Family::InterruptSnr5 => "caller speech over a noise bed at 5 dB SNR",
            Family::NoiseMusic => "music only",
            Family::NoiseBabble => "babble (4-6 talkers) only",
            Family::NoiseCar => "car noise only",
            Family::NoiseHvac => "HVAC hum + fan only",
            Family::NoiseBursts => "coughs/clicks/knocks < 200 ms only",
            Family::EchoOnly => "silent caller: only the agent's echo",
        }
    }
}

/// Noise bed kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoiseKind {
    Music,
    Babble,
    Car,
    Hvac,
    Bursts,
}

/// Beds the SNR families draw from (bursts are too sparse for an SNR to mean anything).
const SNR_BEDS: [NoiseKind; 4] = [
    NoiseKind::Babble,
    NoiseKind::Car,
    NoiseKind::Hvac,
    NoiseKind::Music,
];

/// One placed caller utterance: the ground truth for "the caller is speaking".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeechSpan {
    /// From the start of the WAV (= the first packet the peer sends).
    pub onset_ms: f64,
    pub offset_ms: f64,
    pub source: String,
    pub active_level_dbfs: f64,
}

/// The noise bed of a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoiseSpec {
    pub kind: NoiseKind,
    /// RMS of the bed over the whole call (bursts: including the quiet floor).
    pub level_dbfs: f64,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bursts: Vec<BurstEvent>,
}

/// One call of the corpus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallSpec {
    pub id: String,
    pub family: Family,
    pub seed: u64,
    /// File name of the caller WAV, next to the manifest.
    pub wav: String,
    pub duration_ms: f64,
    pub speech: Vec<SpeechSpan>,
    pub snr_db: Option<f64>,
    pub noise: Option<NoiseSpec>,
    /// The echo path the peer applies to what it receives.
    pub echo: EchoParams,
    /// Samples that hit ±32767 when mixing (0 in a well-levelled corpus).
    pub clipped_samples: usize,
}

/// The corpus manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub seed: u64,
    pub subset: bool,
    pub per_family: usize,
    pub sample_rate: u32,
    pub call_ms: f64,
    pub calls: Vec<CallSpec>,
}

impl Manifest {
    pub fn load(dir: &Path) -> Result<Manifest, String> {
        let path = dir.join(MANIFEST_FILE);
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct CorpusConfig {
    pub seed: u64,
    pub per_family: usize,
    pub subset: bool,
    pub families: Vec<Family>,
}

impl CorpusConfig {
    /// The full corpus (12 calls per family) or the CI subset (3 per family).
    pub fn new(seed: u64, subset: bool) -> CorpusConfig {
        CorpusConfig {
            seed,
            per_family: if subset {
                SUBSET_PER_FAMILY
            } else {
                FULL_PER_FAMILY
            },
            subset,
            families: Family::ALL.to_vec(),
        }
    }
}

/// Rounds to `decimals` through the decimal text, so the value is the double nearest to a
/// short decimal and survives a JSON round trip unchanged.
fn round_to(x: f64, decimals: usize) -> f64 {
    format!("{x:.decimals$}").parse().unwrap_or(x)
}

/// The id of the `k`-th call of `family` (the same in the subset and the full corpus).
pub fn call_id(family: Family, k: usize) -> String {
    format!("{}-{k:02}", family.name())
}

/// Generates every WAV and `manifest.json` into `out_dir` (created if needed). Calls are
/// interleaved by family so a few concurrent calls mix families.
pub fn generate(
    cfg: &CorpusConfig,
    out_dir: &Path,
    bank: &mut SourceBank,
) -> Result<Manifest, String> {
    std::fs::create_dir_all(out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let mut calls = Vec::new();
    for k in 0..cfg.per_family {
        for &family in &cfg.families {
            let id = call_id(family, k);
            let (spec, samples) = make_call(cfg.seed, family, &id, bank)?;
            write_wav(&out_dir.join(&spec.wav), &samples)?;
            calls.push(spec);
        }
    }
    let manifest = Manifest {
        version: MANIFEST_VERSION,
        seed: cfg.seed,
        subset: cfg.subset,
        per_family: cfg.per_family,
        sample_rate: crate::audio::SAMPLE_RATE,
        call_ms: CALL_MS,
        calls,
    };
    let json = serde_json::to_string_pretty(&manifest).map_err(|e| format!("manifest: {e}"))?;
    let path = out_dir.join(MANIFEST_FILE);
    std::fs::write(&path, json + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(manifest)
}

/// Path of a call's WAV.
pub fn wav_path(dir: &Path, call: &CallSpec) -> PathBuf {
    dir.join(&call.wav)
}

/// One call: its spec and its samples.
pub fn make_call(
    corpus_seed: u64,
    family: Family,
    id: &str,
    bank: &mut SourceBank,
) -> Result<(CallSpec, Vec<i16>), String> {
    let seed = derive_seed(corpus_seed, id);
    let len = (CALL_MS * 8.0) as usize;
    let mut mix = vec![0.0; len];

    let mut speech = Vec::new();
    let mut speech_level = None;
    if family.has_speech() {
        let mut rng = Rng::derive(seed, "speech");
        let mut clip = bank.caller_clip(&mut rng)?;
        let level = round_to(rng.range(SPEECH_LEVEL_DBFS.0, SPEECH_LEVEL_DBFS.1), 1);
        synth::scale_to(&mut clip.samples, level, synth::active_level_dbfs);
        let onset = (rng.range(ONSET_RANGE_MS.0, ONSET_RANGE_MS.1) * 8.0).round() as usize;
        synth::add_into(&mut mix, &clip.samples, onset, 1.0);
        speech.push(SpeechSpan {
            onset_ms: onset as f64 / 8.0,
            offset_ms: (onset + clip.samples.len()) as f64 / 8.0,
            source: clip.source,
            active_level_dbfs: level,
        });
        speech_level = Some(level);
    }

    let mut rng = Rng::derive(seed, "noise");
    let bed = match family {
        Family::InterruptClean | Family::EchoOnly => None,
        Family::InterruptSnr20 | Family::InterruptSnr10 | Family::InterruptSnr5 => {
            let kind = *rng.pick(&SNR_BEDS).unwrap_or(&NoiseKind::Car);
            let level = speech_level.unwrap_or(-25.0) - family.snr_db().unwrap_or(10.0);
            Some((kind, level))
        }
        Family::NoiseMusic => Some((NoiseKind::Music, rng.range(-32.0, -22.0))),
        Family::NoiseBabble => Some((NoiseKind::Babble, rng.range(-34.0, -24.0))),
        Family::NoiseCar => Some((NoiseKind::Car, rng.range(-30.0, -20.0))),
        Family::NoiseHvac => Some((NoiseKind::Hvac, rng.range(-36.0, -26.0))),
        Family::NoiseBursts => Some((NoiseKind::Bursts, rng.range(-28.0, -14.0))),
    };
    let noise = match bed {
        None => None,
        Some((kind, level)) => {
            let level = round_to(level, 1);
            let (mut samples, detail, bursts) = noise_bed(kind, level, len, &mut rng, bank)?;
            let bed_level = if kind == NoiseKind::Bursts {
                // Bursts are levelled per burst; report the bed's overall RMS.
                round_to(synth::rms_dbfs(&samples), 2)
            } else {
                synth::scale_to_dbfs(&mut samples, level);
                level
            };
            synth::add_into(&mut mix, &samples, 0, 1.0);
            Some(NoiseSpec {
                kind,
                level_dbfs: bed_level,
                detail,
                bursts,
            })
        }
    };

    let mut rng = Rng::derive(seed, "echo");
    let echo = EchoParams {
        delay_ms: rng.range(ECHO_DELAY_MS.0, ECHO_DELAY_MS.1).round(),
        erl_db: round_to(rng.range(ECHO_ERL_DB.0, ECHO_ERL_DB.1), 1),
        dispersion_ms: rng
            .range(ECHO_DISPERSION_MS.0, ECHO_DISPERSION_MS.1)
            .round(),
        seed: rng.child_seed(),
    };

    let mut clipped = 0;
    let samples: Vec<i16> = mix
        .iter()
        .map(|&v| {
            let r = v.round();
            if !(-32768.0..=32767.0).contains(&r) {
                clipped += 1;
            }
            r.clamp(-32768.0, 32767.0) as i16
        })
        .collect();
    let spec = CallSpec {
        id: id.to_string(),
        family,
        seed,
        wav: format!("{id}.wav"),
        duration_ms: CALL_MS,
        speech,
        snr_db: family.snr_db(),
        noise,
        echo,
        clipped_samples: clipped,
    };
    Ok((spec, samples))
}

type Bed = (Vec<f64>, String, Vec<BurstEvent>);

fn noise_bed(
    kind: NoiseKind,
    level: f64,
    len: usize,
    rng: &mut Rng,
    bank: &mut SourceBank,
) -> Result<Bed, String> {
    Ok(match kind {
        NoiseKind::Music => {
            let (x, d) = synth::music(rng, len);
            (x, d, Vec::new())
        }
        NoiseKind::Car => {
            let (x, d) = synth::car(rng, len);
            (x, d, Vec::new())
        }
        NoiseKind::Hvac => {
            let (x, d) = synth::hvac(rng, len);
            (x, d, Vec::new())
        }
        NoiseKind::Babble => {
            let talkers = 4 + rng.below(3);
            let mut all = Vec::with_capacity(talkers);
            let mut names = Vec::new();
            for _ in 0..talkers {
                let clips = bank.babble_clips(rng, 3)?;
                names.extend(clips.iter().map(|c| c.source.clone()));
                all.push(clips.into_iter().map(|c| c.samples).collect::<Vec<_>>());
            }
            let x = synth::babble(rng, len, &all);
            (
                x,
                format!("{talkers} talkers: {}", names.join(", ")),
                Vec::new(),
            )
        }
        NoiseKind::Bursts => {
            let (x, events) = synth::bursts(rng, len, level);
            let detail = format!("{} bursts at {level:.1} dBFS each", events.len());
            (x, detail, events)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("bargein-corpus-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn family_names_round_trip() {
        for f in Family::ALL {
            assert_eq!(Family::from_name(f.name()), Some(f));
            let json = serde_json::to_string(&f).unwrap();
            assert_eq!(json, format!("\"{}\"", f.name()));
            assert_eq!(serde_json::from_str::<Family>(&json).unwrap(), f);
        }
        assert_eq!(Family::from_name("nope"), None);
        assert_eq!(Family::ALL.iter().filter(|f| f.has_speech()).count(), 4);
    }

    #[test]
    fn clean_call_is_silent_exactly_outside_the_ground_truth_span() {
        let mut bank = SourceBank::synthetic();
        for k in 0..4 {
            let (spec, samples) = make_call(
                9,
                Family::InterruptClean,
                &call_id(Family::InterruptClean, k),
                &mut bank,
            )
            .unwrap();
            let span = &spec.speech[0];
            let first = samples.iter().position(|&s| s != 0).unwrap();
            let last = samples.iter().rposition(|&s| s != 0).unwrap();
            assert_eq!(first as f64 / 8.0, span.onset_ms);
            assert!(((last + 1) as f64 / 8.0 - span.offset_ms).abs() <= 0.125);
            assert!((ONSET_RANGE_MS.0..ONSET_RANGE_MS.1).contains(&span.onset_ms));
            let dur = span.offset_ms - span.onset_ms;
            assert!((600.0..=3000.0).contains(&dur), "{dur}");
            assert!(spec.noise.is_none() && spec.snr_db.is_none());
            assert_eq!(samples.len(), (CALL_MS * 8.0) as usize);
            assert!((6.0..=20.0).contains(&spec.echo.erl_db));
            assert!((0.0..=120.0).contains(&spec.echo.delay_ms));
            assert!((8.0..=16.0).contains(&spec.echo.dispersion_ms));
            assert!(super::super::echo::EchoPath::new(spec.echo).is_ok());
        }
    }

    #[test]
    fn snr_calls_put_the_bed_at_the_requested_snr() {
        let mut bank = SourceBank::synthetic();
        for family in [
            Family::InterruptSnr20,
            Family::InterruptSnr10,
            Family::InterruptSnr5,
        ] {
            let (spec, samples) = make_call(3, family, &call_id(family, 0), &mut bank).unwrap();
            let noise = spec.noise.as_ref().unwrap();
            let snr = spec.speech[0].active_level_dbfs - noise.level_dbfs;
            assert!((snr - family.snr_db().unwrap()).abs() < 0.11, "{snr}");
            // The bed's level is what the manifest says (measured before the speech).
            let onset = (spec.speech[0].onset_ms * 8.0) as usize;
            let before: Vec<f64> = samples[..onset].iter().map(|&s| f64::from(s)).collect();
            let measured = synth::rms_dbfs(&before);
            assert!(
                (measured - noise.level_dbfs).abs() < 1.5,
                "{measured} vs {}",
                noise.level_dbfs
            );
        }
    }

    #[test]
    fn noise_and_echo_families_have_no_speech() {
        let mut bank = SourceBank::synthetic();
        for family in Family::ALL.into_iter().filter(|f| !f.has_speech()) {
            let (spec, samples) = make_call(1, family, &call_id(family, 1), &mut bank).unwrap();
            assert!(spec.speech.is_empty());
            if family == Family::EchoOnly {
                assert!(
                    samples.iter().all(|&s| s == 0),
                    "echo_only: caller sends silence"
                );
            } else {
                let noise = spec.noise.as_ref().unwrap();
                let x: Vec<f64> = samples.iter().map(|&s| f64::from(s)).collect();
                assert!(synth::rms_dbfs(&x) > -60.0, "{family:?} bed missing");
                assert_eq!(noise.bursts.is_empty(), family != Family::NoiseBursts);
            }
        }
    }

    #[test]
    fn generation_is_deterministic_and_the_subset_is_a_prefix() {
        let (a, b, c) = (tmp("a"), tmp("b"), tmp("c"));
        let mut cfg = CorpusConfig::new(5, true);
        cfg.per_family = 1;
        cfg.families = vec![
            Family::InterruptSnr10,
            Family::NoiseBabble,
            Family::EchoOnly,
        ];
        let ma = generate(&cfg, &a, &mut SourceBank::synthetic()).unwrap();
        let mb = generate(&cfg, &b, &mut SourceBank::synthetic()).unwrap();
        assert_eq!(ma, mb);
        assert_eq!(Manifest::load(&a).unwrap(), ma);
        for call in &ma.calls {
            let x = std::fs::read(wav_path(&a, call)).unwrap();
            let y = std::fs::read(wav_path(&b, call)).unwrap();
            assert!(x == y, "{} differs between runs", call.id);
        }
        let mut bigger = cfg.clone();
        bigger.per_family = 2;
        bigger.subset = false;
        let mc = generate(&bigger, &c, &mut SourceBank::synthetic()).unwrap();
        assert_eq!(mc.calls.len(), 6);
        for call in &ma.calls {
            let same = mc.calls.iter().find(|x| x.id == call.id).unwrap();
            assert_eq!(same, call);
        }
        let mut other = cfg.clone();
        other.seed = 6;
        let md = generate(&other, &c, &mut SourceBank::synthetic()).unwrap();
        assert_ne!(md.calls[0].speech, ma.calls[0].speech);
        assert!(Manifest::load(&c.join("missing")).is_err());
        for d in [a, b, c] {
            std::fs::remove_dir_all(d).unwrap();
        }
    }
}
