#!/usr/bin/env python3
"""Example bot for the bargein gateway's gRPC API (proto/bargein/v1/bot.proto), in Python.

Per call it plays a WAV prompt (with its text, so the gateway can say which words the caller
heard), prints what the caller heard when they interrupt (played ms, delivered and remaining
text), and plays a reply once the caller's turn ends. One JSON object per line on stdout.

    ./examples/grpc-python-bot/setup.sh        # venv with grpcio + grpcio-tools (PyPI)
    .cache/grpc-python-bot/venv/bin/python examples/grpc-python-bot/bot.py \\
        --listen 127.0.0.1:50051 --prompt deploy/prompts/prompt.wav --reply deploy/prompts/reply.wav
    GW__BOT__KIND=grpc GW__BOT__GRPC__ENDPOINT=http://127.0.0.1:50051 target/release/bargein-gateway

The Python stubs are generated from the proto file at start (grpc_tools), so they always
match the proto next to this file.
"""

import argparse
import asyncio
import json
import os
import sys
import tempfile
import wave

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_ROOT = os.path.join(HERE, "..", "..", "proto")

DEFAULT_PROMPT_TEXT = (
    "Hello, and thank you for calling. This is the automated assistant of the barge-in "
    "gateway demo. I can help you with billing, with your delivery, and with changes to "
    "your account. You can interrupt me at any time: just start speaking, and I will stop "
    "and listen."
)
DEFAULT_REPLY_TEXT = "Thank you, I heard you. Let me look into that."


def generate_stubs():
    """Compiles bot.proto into a temporary directory and imports the generated modules."""
    from grpc_tools import protoc

    out = tempfile.mkdtemp(prefix="bargein-stubs-")
    status = protoc.main([
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        "bargein/v1/bot.proto",
    ])
    if status != 0:
        sys.exit(f"protoc failed on {PROTO_ROOT}/bargein/v1/bot.proto (status {status})")
    sys.path.insert(0, out)
    from bargein.v1 import bot_pb2, bot_pb2_grpc  # noqa: E402

    return bot_pb2, bot_pb2_grpc


def load_wav(path):
    """PCM16 mono bytes and sample rate (8, 16 or 24 kHz)."""
    with wave.open(path, "rb") as w:
        if w.getnchannels() != 1 or w.getsampwidth() != 2:
            sys.exit(f"{path}: need a mono 16-bit WAV")
        if w.getframerate() not in (8000, 16000, 24000):
            sys.exit(f"{path}: sample rate must be 8000, 16000 or 24000")
        return w.readframes(w.getnframes()), w.getframerate()


def emit(**fields):
    print(json.dumps(fields), flush=True)


class Bot:
    """The BotService implementation: one `Call` stream per phone call."""

    def __init__(self, pb, args):
        self.pb = pb
        self.args = args
        self.prompt = load_wav(args.prompt)
        self.reply = load_wav(args.reply)

    def play(self, playback_id, audio, text):
        pcm, rate = audio
        return self.pb.BotMessage(play=self.pb.Play(
            playback_id=playback_id,
            audio=pcm,
            encoding=self.pb.AUDIO_ENCODING_PCM16,
            sample_rate=rate,
            text=text,
            interruptible=True,
        ))

    async def Call(self, request_iterator, context):
        # grpcio sends response headers with the first message unless told otherwise; the
        # gateway waits for them before answering the phone call.
        await context.send_initial_metadata(())
        outbox = asyncio.Queue()
        reader = asyncio.create_task(self.read(request_iterator, outbox))
        try:
            while True:
                msg = await outbox.get()
                if msg is None:
                    return
                yield msg
        finally:
            reader.cancel()

    async def read(self, request_iterator, outbox):
        replied = False
        call_id = ""
        try:
            async for m in request_iterator:
                kind = m.WhichOneof("msg")
                if kind == "call_started":
                    s = m.call_started
                    call_id = s.call_id
                    emit(event="call_started", call_id=s.call_id, caller=getattr(s, "from"),
                         to=s.to, audio_rate=s.caller_audio_format.sample_rate)
                    await outbox.put(self.play("prompt", self.prompt, self.args.prompt_text))
                elif kind == "barge_in":
                    b = m.barge_in
                    if b.tentative:
                        emit(event="barge_in_tentative", call_id=call_id)
                        continue
                    for c in b.chunks:
                        emit(event="barge_in", call_id=call_id, playback_id=c.playback_id,
                             played_ms=c.played_ms, total_ms=c.total_ms,
                             delivered=c.delivered_text, remaining=c.remaining_text)
                elif kind == "turn_ended":
                    emit(event="turn_ended", call_id=call_id)
                    if not replied:
                        replied = True
                        await outbox.put(self.play("reply", self.reply, self.args.reply_text))
                elif kind == "playback_finished":
                    p = m.playback_finished
                    emit(event="playback_finished", call_id=call_id,
                         playback_id=p.playback_id, played_ms=p.played_ms)
                    if p.playback_id == "reply" and self.args.hangup_after_reply:
                        await outbox.put(self.pb.BotMessage(hangup=self.pb.Hangup()))
                elif kind == "error":
                    emit(event="error", call_id=call_id, code=m.error.code, message=m.error.message)
                elif kind == "call_ended":
                    emit(event="call_ended", call_id=call_id, reason=m.call_ended.reason)
        finally:
            await outbox.put(None)


async def serve(args):
    import grpc

    pb, pb_grpc = generate_stubs()
    servicer = Bot(pb, args)
    server = grpc.aio.server()
    # The generated registration only needs an object with a `Call` method.
    pb_grpc.add_BotServiceServicer_to_server(servicer, server)
    server.add_insecure_port(args.listen)
    await server.start()
    emit(event="listening", address=args.listen)
    await server.wait_for_termination()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", default="127.0.0.1:50051")
    p.add_argument("--prompt", default=os.path.join(HERE, "..", "..", "deploy/prompts/prompt.wav"))
    p.add_argument("--prompt-text", default=DEFAULT_PROMPT_TEXT)
    p.add_argument("--reply", default=os.path.join(HERE, "..", "..", "deploy/prompts/reply.wav"))
    p.add_argument("--reply-text", default=DEFAULT_REPLY_TEXT)
    p.add_argument("--hangup-after-reply", action="store_true")
    asyncio.run(serve(p.parse_args()))


if __name__ == "__main__":
    main()
