#!/usr/bin/env bash
# Regenerate the demo bot's prompts (committed in deploy/prompts/). Needs espeak-ng and sox.
set -euo pipefail
cd "$(dirname "$0")/../deploy/prompts"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
espeak-ng -v en-us -s 165 -w "$tmp/p.wav" "Hello, and thank you for calling. This is the automated assistant of the barge-in gateway demo. I can help you with billing, with your delivery, and with changes to your account. You can interrupt me at any time: just start speaking, and I will stop and listen."
espeak-ng -v en-us -s 165 -w "$tmp/r.wav" "Thank you, I heard you. Let me look into that."
espeak-ng -v en-us -s 165 -w "$tmp/f.wav" "Sorry, the assistant is not available right now. Please call again later."
sox "$tmp/p.wav" -r 8000 -c 1 -b 16 prompt.wav
sox "$tmp/r.wav" -r 8000 -c 1 -b 16 reply.wav
sox "$tmp/f.wav" -r 8000 -c 1 -b 16 fallback.wav
