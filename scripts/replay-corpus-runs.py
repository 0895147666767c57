#!/usr/bin/env python3
"""Replays the recorded calls of corpus runs through a gateway binary, offline, and scores
them: the like-for-like comparison of two engines (the same recorded input for both).

Record runs first:  cargo run --release -p bargein-e2e --bin eval_bargein -- \
                        --name RUN --set calls.record_dir=/tmp/recRUN   (the dir must exist)
Then:               scripts/replay-corpus-runs.py BINARY OUT.json RUN[,RUN...]
e.g. build the old engine, copy target/release/bargein-gateway to /tmp/old, build the new
one, run this once per binary and compare the two OUT.json files call by call.

A barge-in before the caller's onset (− 50 ms) counts as false, a pause before it as a false
pause (the caller hears a stutter even if the agent resumes); an interruption is stopped
if a barge-in comes between the onset and 1 s after the speech ends (offline, no RTP: the
windows are looser than the live harness's)."""
import json, sys, subprocess, os
from concurrent.futures import ThreadPoolExecutor
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if len(sys.argv) != 4:
    sys.exit(__doc__)
binary, out, runs = os.path.abspath(sys.argv[1]), sys.argv[2], sys.argv[3].split(',')
jobs = []
for run in runs:
    r = json.load(open(os.path.join(ROOT, 'target/e2e', run, 'report.json')))
    rec = [x[1] for x in r['options']['gateway_overrides'] if x[0] == 'calls.record_dir'][0]
    for c in r['results']:
        cid = c['call_id'].split('@')[0]
        wav = f"{rec}/{cid}_127.0.0.1.wav"
        if os.path.exists(wav):
            jobs.append((run, c, wav))
def one(job):
    run, c, wav = job
    p = subprocess.run([binary, 'replay', '--stereo', wav, '--json'], capture_output=True, text=True, cwd=ROOT)
    ev = [json.loads(l) for l in p.stdout.splitlines() if l.startswith('{')]
    bi = [e['t'] for e in ev if e.get('event') == 'barge_in']
    pauses = [e['t'] for e in ev if e.get('event') == 'paused']
    onset = c['onset_ms'] / 1000 if c['onset_ms'] else None
    offset = c['offset_ms'] / 1000 if c['offset_ms'] else None
    false = any(onset is None or t < onset - 0.05 for t in bi)
    # A pause for nothing (the caller hears a stutter even if the agent resumes).
    false_pause = any(onset is None or t < onset - 0.05 for t in pauses)
    hit = onset is not None and any(onset - 0.05 <= t <= offset + 1.0 for t in bi)
    lat = min((t - onset for t in bi if onset is not None and t >= onset - 0.05), default=None)
    return dict(run=run, id=c['id'], family=c['family'], barge_ins=bi, false=false,
                missed=(onset is not None and not hit), lat=lat, false_pause=false_pause,
                paused=sum(e.get('event') == 'paused' for e in ev))
with ThreadPoolExecutor(2) as ex:
    res = list(ex.map(one, jobs))
json.dump(res, open(out, 'w'), indent=0)
n = len(res); fam = {}
for x in res:
    f = fam.setdefault(x['family'], [0, 0, 0, 0])
    f[0] += 1; f[1] += x['false']; f[2] += x['missed']; f[3] += x['false_pause']
for k, v in sorted(fam.items()):
    print(f"{k:18s} n={v[0]:3d} false={v[1]:2d} missed={v[2]:2d} false_pause={v[3]:2d}")
lat = sorted(x['lat'] for x in res if x['lat'] is not None)
print('TOTAL', n, 'false', sum(x['false'] for x in res), 'missed', sum(x['missed'] for x in res),
      'false_pause', sum(x['false_pause'] for x in res),
      'lat p50/p95', lat[len(lat)//2] if lat else None, lat[int(len(lat)*.95)] if lat else None)
