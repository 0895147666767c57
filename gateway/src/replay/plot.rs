//! The replay plot: four panels over one time axis, so an operator can see at a glance why
//! the engine decided what it did.
//!
//! 1. caller channel (min/max envelope per pixel column) with the VAD's input — after echo
//!    cancellation and noise suppression — overlaid;
//! 2. agent channel, the spans counted as interruptible shaded;
//! 3. levels in dBFS per 20 ms frame: caller, expected echo (the canceller's estimate), VAD
//!    input; ERLE on the right-hand axis;
//! 4. VAD probability per chunk with the speech and silence thresholds, detected speech
//!    shaded; decisions as vertical markers through every panel (barge-in red, turn end
//!    blue, speech start green; dashed at the speech onset, solid where it was decided).

use super::canvas::{Canvas, Rgb};
use super::engine::{Decision, DecisionKind};
use super::timeline::Timeline;

pub const WIDTH: usize = 1600;
pub const HEIGHT: usize = 900;

const LEFT: i32 = 80;
const RIGHT: i32 = 56;
const TOP: i32 = 44;
const BOTTOM: i32 = 40;
const GAP: i32 = 18;
/// Panel heights, top to bottom; the last takes what is left.
const PANEL_HEIGHTS: [i32; 3] = [200, 150, 190];
const LEVEL_FLOOR_DB: f32 = -90.0;
const ERLE_MAX_DB: f32 = 60.0;

const AXIS: Rgb = Rgb(60, 60, 60);
const GRID: Rgb = Rgb(225, 225, 225);
const FRAME_BG: Rgb = Rgb(252, 252, 252);
const CALLER: Rgb = Rgb(150, 160, 180);
const VAD_INPUT: Rgb = Rgb(230, 120, 20);
const AGENT: Rgb = Rgb(90, 140, 90);
const INTERRUPTIBLE: Rgb = Rgb(250, 220, 120);
const EXPECTED_ECHO: Rgb = Rgb(150, 60, 170);
const ERLE: Rgb = Rgb(40, 160, 150);
const PROBABILITY: Rgb = Rgb(20, 40, 120);
const SPEECH: Rgb = Rgb(120, 200, 120);
const BARGE_IN: Rgb = Rgb(220, 30, 30);
const TURN_END: Rgb = Rgb(30, 80, 220);
const PAUSED: Rgb = Rgb(255, 150, 0);
const RESUMED: Rgb = Rgb(110, 110, 110);
const FALSE_BARGE_IN: Rgb = Rgb(200, 0, 200);
const OTHER: Rgb = Rgb(140, 80, 20);
const ECHO_GATE: Rgb = Rgb(150, 60, 170);
const ECHO_LIKELY: Rgb = Rgb(200, 150, 220);
const SPEECH_START: Rgb = Rgb(20, 150, 40);
const THRESHOLD: Rgb = Rgb(200, 40, 40);
const NEG_THRESHOLD: Rgb = Rgb(120, 120, 120);

/// A panel's vertical extent and value range.
#[derive(Clone, Copy, Debug)]
struct Panel {
    top: i32,
    bottom: i32,
    min: f32,
    max: f32,
}

impl Panel {
    fn y(&self, value: f32) -> i32 {
        let v = if value.is_finite() { value } else { self.min };
        let frac = ((v - self.min) / (self.max - self.min)).clamp(0.0, 1.0);
        self.bottom - (frac * (self.bottom - self.top) as f32).round() as i32
    }

    fn with_range(self, min: f32, max: f32) -> Panel {
        Panel { min, max, ..self }
    }
}

/// The shared time axis.
#[derive(Clone, Copy, Debug)]
struct TimeAxis {
    left: i32,
    width: i32,
    duration_s: f64,
}

impl TimeAxis {
    fn x(&self, t: f64) -> i32 {
        let frac = if self.duration_s > 0.0 {
            (t / self.duration_s).clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.left + (frac * f64::from(self.width - 1)).round() as i32
    }
}

/// Draws the plot of `timeline`; `title` goes on top.
pub fn draw(timeline: &Timeline, title: &str) -> Canvas {
    let mut canvas = Canvas::new(WIDTH, HEIGHT, Rgb::WHITE);
    let axis = TimeAxis {
        left: LEFT,
        width: WIDTH as i32 - LEFT - RIGHT,
        duration_s: timeline.duration_s(),
    };
    let panels = layout();
    canvas.text(LEFT, 14, title, Rgb::BLACK, 2);
    let step = nice_step(timeline.duration_s(), (axis.width / 90).max(2) as usize);
    for p in &panels {
        canvas.fill_rect(
            axis.left,
            p.top,
            axis.left + axis.width,
            p.bottom + 1,
            FRAME_BG,
        );
        for t in ticks(timeline.duration_s(), step) {
            canvas.vline(axis.x(t), p.top, p.bottom, GRID);
        }
    }
    let [caller, agent, levels, vad] = panels;
    draw_caller(&mut canvas, &axis, caller, timeline);
    draw_agent(&mut canvas, &axis, agent, timeline);
    draw_levels(&mut canvas, &axis, levels, timeline);
    draw_vad(&mut canvas, &axis, vad, timeline);
    draw_decisions(&mut canvas, &axis, &panels, &timeline.decisions);
    for p in &panels {
        frame(&mut canvas, &axis, p);
    }
    // Time ticks under the last panel.
    let decimals = if step >= 1.0 {
        0
    } else if step >= 0.1 {
        1
    } else {
        2
    };
    for t in ticks(timeline.duration_s(), step) {
        let x = axis.x(t);
        canvas.vline(x, vad.bottom, vad.bottom + 4, AXIS);
        let label = format!("{t:.decimals$}");
        let w = Canvas::text_width(&label, 1);
        canvas.text(x - w / 2, vad.bottom + 8, &label, AXIS, 1);
    }
    let label = "TIME (S)";
    let w = Canvas::text_width(label, 1);
    canvas.text(axis.left + axis.width - w, vad.bottom + 22, label, AXIS, 1);
    canvas
}

fn layout() -> [Panel; 4] {
    let mut top = TOP;
    let mut out = [Panel {
        top: 0,
        bottom: 0,
        min: 0.0,
        max: 1.0,
    }; 4];
    for (i, p) in out.iter_mut().enumerate() {
        let height = PANEL_HEIGHTS
            .get(i)
            .copied()
            .unwrap_or(HEIGHT as i32 - BOTTOM - top);
        *p = Panel {
            top,
            bottom: top + height - 1,
            min: 0.0,
            max: 1.0,
        };
        top += height + GAP;
    }
    out
}

fn frame(canvas: &mut Canvas, axis: &TimeAxis, p: &Panel) {
    let right = axis.left + axis.width - 1;
    canvas.hline(axis.left, right, p.top, AXIS);
    canvas.hline(axis.left, right, p.bottom, AXIS);
    canvas.vline(axis.left, p.top, p.bottom, AXIS);
    canvas.vline(right, p.top, p.bottom, AXIS);
}

/// Coloured legend entries in the gap above a panel, outside the data.
fn legend(canvas: &mut Canvas, axis: &TimeAxis, p: &Panel, entries: &[(&str, Rgb)]) {
    let y = p.top - 11;
    let mut x = axis.left;
    for (text, colour) in entries {
        canvas.fill_rect(x, y, x + 8, y + 7, *colour);
        x += 12;
        x += canvas.text(x, y, text, Rgb::BLACK, 1) + 10;
    }
}

/// Labels on the left axis at `values`.
fn y_ticks(canvas: &mut Canvas, axis: &TimeAxis, p: &Panel, values: &[(f32, String)]) {
    for (v, label) in values {
        let y = p.y(*v);
        canvas.hline(axis.left - 4, axis.left, y, AXIS);
        let w = Canvas::text_width(label, 1);
        canvas.text(axis.left - 7 - w, y - 3, label, AXIS, 1);
    }
}

/// Min/max of `samples` per pixel column, drawn as vertical strokes.
fn envelope(
    canvas: &mut Canvas,
    axis: &TimeAxis,
    p: &Panel,
    samples: &[i16],
    total: usize,
    c: Rgb,
) {
    if total == 0 {
        return;
    }
    let columns = axis.width.max(1) as usize;
    for col in 0..columns {
        let start = col * total / columns;
        let end = ((col + 1) * total / columns).max(start + 1);
        let Some(span) = samples.get(start..end.min(samples.len())) else {
            continue;
        };
        let (Some(lo), Some(hi)) = (span.iter().min(), span.iter().max()) else {
            continue;
        };
        let x = axis.left + col as i32;
        canvas.vline(x, p.y(f32::from(*hi)), p.y(f32::from(*lo)), c);
    }
}

/// Symmetric amplitude range covering the loudest sample, at least 1 % of full scale.
fn amplitude_panel(p: Panel, samples: &[&[i16]]) -> (Panel, f32) {
    let peak = samples
        .iter()
        .flat_map(|s| s.iter())
        .map(|s| i32::from(*s).unsigned_abs())
        .max()
        .unwrap_or(0)
        .max(328) as f32;
    (p.with_range(-peak, peak), peak / 32768.0)
}

fn draw_caller(canvas: &mut Canvas, axis: &TimeAxis, p: Panel, t: &Timeline) {
    let total = t.audio.caller.len();
    let (p, peak) = amplitude_panel(p, &[&t.audio.caller]);
    canvas.hline(axis.left, axis.left + axis.width - 1, p.y(0.0), GRID);
    envelope(canvas, axis, &p, &t.audio.caller, total, CALLER);
    envelope(canvas, axis, &p, &t.vad_input, total, VAD_INPUT);
    legend(
        canvas,
        axis,
        &p,
        &[
            ("CALLER (CH 0)", CALLER),
            ("VAD INPUT (AFTER EC + NS)", VAD_INPUT),
        ],
    );
    y_ticks(
        canvas,
        axis,
        &p,
        &[
            (p.max, format!("{peak:.2}")),
            (0.0, "0".into()),
            (p.min, format!("-{peak:.2}")),
        ],
    );
}

fn draw_agent(canvas: &mut Canvas, axis: &TimeAxis, p: Panel, t: &Timeline) {
    // One translucent fill per pixel column: on a long call many frames share a column,
    // and filling per frame would stack the translucency up to an opaque colour.
    let frame_s = 1.0 / 50.0;
    let mut columns = vec![false; axis.width.max(0) as usize];
    for (i, _) in t.frames.iter().enumerate().filter(|(_, f)| f.agent_active) {
        let x0 = axis.x(i as f64 * frame_s) - axis.left;
        let x1 = (axis.x((i + 1) as f64 * frame_s) - axis.left).max(x0 + 1);
        for x in x0..x1 {
            if let Some(c) = usize::try_from(x).ok().and_then(|x| columns.get_mut(x)) {
                *c = true;
            }
        }
    }
    for (x, _) in columns.iter().enumerate().filter(|(_, active)| **active) {
        let x = axis.left + x as i32;
        canvas.fill_rect_alpha(x, p.top, x + 1, p.bottom, INTERRUPTIBLE, 0.35);
    }
    let (p, peak) = amplitude_panel(p, &[&t.audio.agent]);
    envelope(canvas, axis, &p, &t.audio.agent, t.audio.agent.len(), AGENT);
    legend(
        canvas,
        axis,
        &p,
        &[
            ("AGENT (CH 1)", AGENT),
            ("COUNTED AS INTERRUPTIBLE", INTERRUPTIBLE),
        ],
    );
    y_ticks(
        canvas,
        axis,
        &p,
        &[
            (p.max, format!("{peak:.2}")),
            (0.0, "0".into()),
            (p.min, format!("-{peak:.2}")),
        ],
    );
}

/// A series of per-frame values as a polyline; `None` breaks the line.
fn polyline(
    canvas: &mut Canvas,
    axis: &TimeAxis,
    p: &Panel,
    points: impl Iterator<Item = (f64, Option<f32>)>,
    c: Rgb,
) {
    let mut last: Option<(i32, i32)> = None;
    for (t, v) in points {
        match v {
            Some(v) => {
                let here = (axis.x(t), p.y(v));
                let from = last.unwrap_or(here);
                canvas.line(from.0, from.1, here.0, here.1, c);
                last = Some(here);
            }
            None => last = None,
        }
    }
}

fn draw_levels(canvas: &mut Canvas, axis: &TimeAxis, p: Panel, t: &Timeline) {
    let p = p.with_range(LEVEL_FLOOR_DB, 0.0);
    let frame_t = |i: usize| (i as f64 + 0.5) / 50.0;
    let floor = |db: f32| db.max(LEVEL_FLOOR_DB);
    let frames = &t.frames;
    polyline(
        canvas,
        axis,
        &p,
        frames
            .iter()
            .enumerate()
            .map(|(i, f)| (frame_t(i), Some(floor(f.caller_db)))),
        CALLER,
    );
    polyline(
        canvas,
        axis,
        &p,
        frames
            .iter()
            .enumerate()
            .map(|(i, f)| (frame_t(i), Some(floor(f.vad_input_db)))),
        VAD_INPUT,
    );
    polyline(
        canvas,
        axis,
        &p,
        frames
            .iter()
            .enumerate()
            .map(|(i, f)| (frame_t(i), f.expected_echo_db.map(floor))),
        EXPECTED_ECHO,
    );
    // ERLE on its own scale, 0..ERLE_MAX_DB, right-hand axis.
    let erle = p.with_range(0.0, ERLE_MAX_DB);
    polyline(
        canvas,
        axis,
        &erle,
        frames
            .iter()
            .enumerate()
            .map(|(i, f)| (frame_t(i), f.erle_db)),
        ERLE,
    );
    let echo_label = if t.echo_stats.is_some() {
        "EXPECTED ECHO"
    } else {
        "EXPECTED ECHO (CANCELLATION OFF)"
    };
    legend(
        canvas,
        axis,
        &p,
        &[
            ("CALLER DBFS", CALLER),
            (echo_label, EXPECTED_ECHO),
            ("VAD INPUT DBFS", VAD_INPUT),
            ("ERLE DB (RIGHT)", ERLE),
        ],
    );
    let ticks: Vec<(f32, String)> = [0.0f32, -20.0, -40.0, -60.0, -80.0]
        .iter()
        .map(|v| (*v, format!("{v:.0}")))
        .collect();
    y_ticks(canvas, axis, &p, &ticks);
    let right = axis.left + axis.width;
    for v in [0.0f32, 20.0, 40.0, 60.0] {
        let y = erle.y(v);
        canvas.hline(right, right + 4, y, ERLE);
        canvas.text(right + 7, y - 3, &format!("{v:.0}"), ERLE, 1);
    }
}

fn draw_vad(canvas: &mut Canvas, axis: &TimeAxis, p: Panel, t: &Timeline) {
    let p = p.with_range(0.0, 1.0);
    for (start, end) in speech_regions(&t.decisions, t.duration_s()) {
        canvas.fill_rect_alpha(axis.x(start), p.top, axis.x(end) + 1, p.bottom, SPEECH, 0.3);
    }
    let chunk_s = f64::from(media::vad::CHUNK_MS) / 1000.0;
    // Chunks the echo gate judged possibly echo: a strip along the bottom.
    for c in t.chunks.iter().filter(|c| c.context.echo_likely) {
        let (x0, x1) = (axis.x(c.end_s - chunk_s), axis.x(c.end_s));
        canvas.fill_rect(x0, p.bottom - 6, x1.max(x0 + 1), p.bottom, ECHO_LIKELY);
    }
    let right = axis.left + axis.width - 1;
    canvas.dashed_hline(axis.left, right, p.y(t.thresholds.speech), THRESHOLD, 6);
    canvas.dashed_hline(
        axis.left,
        right,
        p.y(t.thresholds.silence),
        NEG_THRESHOLD,
        4,
    );
    if let Some(gate) = t.thresholds.echo_gate {
        canvas.dashed_hline(axis.left, right, p.y(gate), ECHO_GATE, 2);
    }
    // Each probability holds for its chunk: draw it as steps.
    let mut previous: Option<(i32, i32)> = None;
    for c in &t.chunks {
        let (x0, x1) = (axis.x(c.end_s - chunk_s), axis.x(c.end_s));
        let y = p.y(c.probability);
        if let Some((px, py)) = previous {
            canvas.line(px, py, x0, y, PROBABILITY);
        }
        canvas.line(x0, y, x1, y, PROBABILITY);
        previous = Some((x1, y));
    }
    let threshold = format!("THRESHOLD {:.2}", t.thresholds.speech);
    let silence = format!("SILENCE BELOW {:.2}", t.thresholds.silence);
    let gate = t
        .thresholds
        .echo_gate
        .map(|g| format!("ECHO GATE {g:.2}"))
        .unwrap_or_else(|| "ECHO GATE OFF".into());
    legend(
        canvas,
        axis,
        &p,
        &[
            ("VAD PROBABILITY", PROBABILITY),
            (&threshold, THRESHOLD),
            (&silence, NEG_THRESHOLD),
            (&gate, ECHO_GATE),
            ("ECHO LIKELY", ECHO_LIKELY),
            ("SPEECH", SPEECH),
            ("BARGE-IN", BARGE_IN),
            ("PAUSE", PAUSED),
            ("RESUME", RESUMED),
            ("SPEECH START", SPEECH_START),
            ("TURN END", TURN_END),
            ("FALSE BARGE-IN", FALSE_BARGE_IN),
        ],
    );
    let ticks: Vec<(f32, String)> = [0.0f32, 0.25, 0.5, 0.75, 1.0]
        .iter()
        .map(|v| (*v, format!("{v:.2}")))
        .collect();
    y_ticks(canvas, axis, &p, &ticks);
}

/// Confirmed speech: from each onset to the turn end that follows (or the end of the call).
pub fn speech_regions(decisions: &[Decision], duration_s: f64) -> Vec<(f64, f64)> {
    let mut regions = Vec::new();
    let mut open: Option<f64> = None;
    for d in decisions {
        if d.kind == DecisionKind::TurnEnded {
            if let Some(start) = open.take() {
                regions.push((start, d.at_s));
            }
        } else if d.confirms_speech() && open.is_none() {
            open = Some(d.onset_s().unwrap_or(d.at_s));
        }
    }
    if let Some(start) = open {
        regions.push((start, duration_s));
    }
    regions
}

/// Marker colour, label, and whether the marker crosses every panel (major decisions) or
/// only the VAD panel (pauses and resumes, which can be many).
fn marker(d: &Decision) -> (Rgb, &'static str, bool) {
    match d.kind {
        DecisionKind::BargeIn { .. } => (BARGE_IN, "BARGE-IN", true),
        DecisionKind::TurnEnded => (TURN_END, "END", true),
        DecisionKind::SpeechStarted { .. } => (SPEECH_START, "START", true),
        DecisionKind::FalseBargeIn { .. } => (FALSE_BARGE_IN, "FALSE", true),
        DecisionKind::Paused { .. } => (PAUSED, "PAUSE", false),
        DecisionKind::Resumed => (RESUMED, "RESUME", false),
        DecisionKind::DecisionRequested { .. } => (OTHER, "ASK BOT", false),
        DecisionKind::SpeechDuringNonInterruptible => (OTHER, "NON-INT", false),
        DecisionKind::PrematureCutoff => (OTHER, "CUT-OFF", true),
    }
}

fn draw_decisions(
    canvas: &mut Canvas,
    axis: &TimeAxis,
    panels: &[Panel; 4],
    decisions: &[Decision],
) {
    let (Some(first), Some(last)) = (panels.first(), panels.last()) else {
        return;
    };
    // Labels in two rows (major decisions on top, pauses and resumes below), each only
    // where it does not run into the previous label of its row.
    let mut label_end = [i32::MIN; 2];
    for d in decisions {
        let (colour, label, major) = marker(d);
        let top = if major { first.top } else { last.top };
        if major {
            if let Some(onset) = d.onset_s() {
                canvas.dashed_vline(axis.x(onset), top, last.bottom, colour, 3);
            }
        }
        let x = axis.x(d.at_s);
        for p in panels.iter().filter(|p| p.top >= top) {
            canvas.vline(x, p.top, p.bottom, colour);
        }
        let row = usize::from(!major);
        if let Some(end) = label_end.get_mut(row) {
            if x + 3 > *end {
                let y = last.top + 4 + 11 * row as i32;
                let w = Canvas::text_width(label, 1);
                canvas.fill_rect_alpha(x + 2, y - 1, x + 4 + w, y + 8, Rgb::WHITE, 0.8);
                canvas.text(x + 3, y, label, colour, 1);
                *end = x + 6 + w;
            }
        }
    }
}

/// A tick step of 1, 2 or 5 × 10^k giving at most `max_ticks` ticks over `duration_s`.
pub fn nice_step(duration_s: f64, max_ticks: usize) -> f64 {
    if duration_s.is_nan() || duration_s <= 0.0 {
        return 1.0;
    }
    let raw = duration_s / max_ticks.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude)
}

fn ticks(duration_s: f64, step: f64) -> impl Iterator<Item = f64> {
    let count = if step > 0.0 {
        (duration_s / step).floor() as usize
    } else {
        0
    };
    (0..=count).map(move |i| i as f64 * step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_steps_are_round_numbers() {
        assert_eq!(nice_step(12.5, 16), 1.0);
        assert_eq!(nice_step(60.0, 16), 5.0);
        assert_eq!(nice_step(600.0, 16), 50.0);
        assert!((nice_step(1.0, 16) - 0.1).abs() < 1e-12);
        assert_eq!(nice_step(0.0, 16), 1.0);
        assert_eq!(
            ticks(3.5, 1.0).collect::<Vec<_>>(),
            vec![0.0, 1.0, 2.0, 3.0]
        );
    }

    #[test]
    fn speech_regions_pair_onsets_with_turn_ends() {
        let d = |at_s, kind| Decision { at_s, kind };
        let d = [
            d(1.1, DecisionKind::Paused { onset_s: 1.0 }),
            d(1.1, DecisionKind::Resumed),
            d(1.5, DecisionKind::Paused { onset_s: 1.4 }),
            d(
                1.6,
                DecisionKind::BargeIn {
                    onset_s: 1.4,
                    dtmf: false,
                },
            ),
            d(2.0, DecisionKind::TurnEnded),
            d(3.2, DecisionKind::SpeechStarted { onset_s: 3.0 }),
        ];
        assert_eq!(speech_regions(&d, 5.0), vec![(1.4, 2.0), (3.0, 5.0)]);
    }

    #[test]
    fn panels_stack_inside_the_canvas() {
        let panels = layout();
        for pair in panels.windows(2) {
            assert!(pair[0].bottom < pair[1].top);
        }
        assert!(panels[3].bottom < HEIGHT as i32 - 20);
        let p = panels[3].with_range(0.0, 1.0);
        assert_eq!(p.y(0.0), p.bottom);
        assert_eq!(p.y(1.0), p.top);
        assert_eq!(p.y(f32::NAN), p.bottom);
    }
}
