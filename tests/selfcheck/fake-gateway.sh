#!/usr/bin/env bash
# Stand-in for bargein-gateway, used only by tests/tests/harness_selfcheck.rs to check the
# harness (start, readiness by OPTIONS, logs, stop) without the real gateway. It is a SIPp UAS
# that answers OPTIONS (-aa) and INVITEs, and streams the demo prompt. No barge-in.
# Reads the same environment as the gateway: GW__SIP__LISTEN, GW__MEDIA__RTP_PORT_MIN.
set -euo pipefail
listen=${GW__SIP__LISTEN:?GW__SIP__LISTEN not set}
media_port=${GW__MEDIA__RTP_PORT_MIN:?GW__MEDIA__RTP_PORT_MIN not set}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=$(mktemp -d)
sox "$repo/deploy/prompts/prompt.wav" -t ul "$work/prompt.ulaw"
cp "$here/uas_answer_stream.xml" "$work/"
cd "$work"
echo "fake-gateway: sipp UAS on $listen, media $media_port, in $work" >&2
sipp -sf uas_answer_stream.xml -i 127.0.0.1 -mi 127.0.0.1 -p "${listen##*:}" -mp "$media_port" \
  -aa -nostdin -bind_local -trace_err -error_file "$work/errors.log" >/dev/null &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$work"; exit 0' TERM INT
wait "$pid"
