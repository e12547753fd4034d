#!/usr/bin/env python3
"""An example remote grader for grpo-cpp, in Python: copy it and replace the graders with your own checker.

The trainer (RemoteGrader) sends batches of completions over TCP and this server answers with scores. The protocol is
reward/remote/grader_service.proto, each message in one grpo wire frame:

    b"GRPW"  payload length (4 bytes, little-endian)  serialized protobuf message

The client sends a GradeRequest and waits for the GradeReply with the same request_id before it sends the next one on
that connection; it opens several connections for concurrency. Anything else on a connection (another protocol, a
frame over the size limit, bytes that are not a GradeRequest) gets one error reply and the connection closed.

Needs only the standard library and protobuf (pip install protobuf==4.21.12, which matches protoc 3.21); protoc
compiles grader_service.proto into a temporary folder at start unless --proto-dir names a folder that already holds
grader_service_pb2.py.

    python examples/remote_grader/server.py --port 9000
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import math
import re
import signal
import struct
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, NamedTuple

MAGIC = b"GRPW"
LENGTH = struct.Struct("<I")
DEFAULT_MAX_FRAME_BYTES = 64 << 20
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PROTO = REPO_ROOT / "reward" / "remote" / "grader_service.proto"

pb = None  # the generated module, loaded by load_protocol()


# ---- Graders: replace these with your own -----------------------------------------------------------------------


class Grade(NamedTuple):
    score: float  # a finite number; in [0, 1] to mix with the built-in graders
    reason: str = ""  # why the score is below full; empty at full score
    extracted: str = ""  # what was read from the completion, for logs
    cannot_score: bool = False  # True: the trainer leaves the sample out of the group baseline


ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def grade_palindrome(prompt: str, completion: str, reference: str, metadata: str) -> Grade:
    """1 when the text in the last <answer>...</answer> reads the same backwards (letters and digits only, any case)."""
    del prompt, reference, metadata  # this grader needs only the completion
    answers = ANSWER.findall(completion)
    if not answers:
        return Grade(0.0, "no <answer>...</answer> in the completion")
    answer = answers[-1].strip()
    letters = [c.lower() for c in answer if c.isalnum()]
    if not letters:
        return Grade(0.0, "the answer has no letters or digits", extracted=answer)
    if letters != letters[::-1]:
        return Grade(0.0, f"{answer!r} does not read the same backwards", extracted=answer)
    return Grade(1.0, extracted=answer)


def grade_length_penalty(prompt: str, completion: str, reference: str, metadata: str) -> Grade:
    """1 up to a length budget, then falling linearly to 0 at twice the budget. The budget is the row's
    {"max_chars": N} metadata, 200 characters when absent; a row whose metadata is not JSON cannot be scored."""
    del prompt, reference
    budget = 200
    if metadata:
        try:
            budget = int(json.loads(metadata).get("max_chars", budget))
        except (ValueError, TypeError, AttributeError) as error:
            return Grade(0.0, f"metadata is not a JSON object with an integer max_chars: {error}", cannot_score=True)
    if budget <= 0:
        return Grade(0.0, f"max_chars must be positive, got {budget}", cannot_score=True)
    length = len(completion)
    if length <= budget:
        return Grade(1.0, extracted=str(length))
    score = max(0.0, 1.0 - (length - budget) / budget)
    return Grade(score, f"{length} characters, over the budget of {budget}", extracted=str(length))


GRADERS: dict[str, Callable[[str, str, str, str], Grade]] = {
    "palindrome": grade_palindrome,
    "length_penalty": grade_length_penalty,
}


# ---- The protocol -----------------------------------------------------------------------------------------------


def load_protocol(proto: Path, proto_dir: str | None, protoc: str) -> None:
    """Imports grader_service_pb2, compiling grader_service.proto with protoc first unless proto_dir has it."""
    global pb
    if proto_dir is not None:
        sys.path.insert(0, proto_dir)
        pb = importlib.import_module("grader_service_pb2")
        return
    with tempfile.TemporaryDirectory(prefix="grpo_grader_proto_") as generated:  # removed once imported
        command = [protoc, f"-I{proto.parent}", f"--python_out={generated}", proto.name]
        try:
            subprocess.run(command, check=True, capture_output=True, text=True)
        except FileNotFoundError:
            sys.exit(f"cannot run protoc ('{protoc}'): install protobuf-compiler or pass --protoc PATH, "
                     "or --proto-dir with a pre-generated grader_service_pb2.py")
        except subprocess.CalledProcessError as error:
            sys.exit(f"protoc failed on {proto}: {error.stderr.strip()}")
        sys.path.insert(0, generated)
        pb = importlib.import_module("grader_service_pb2")
        sys.path.remove(generated)


def grade_items(grader, items) -> list:
    """Grades each item; an exception from the grader makes that one item "cannot score", not the whole request."""
    results = []
    for item in items:
        result = pb.GradeItemResult()
        try:
            grade = grader(item.prompt, item.completion, item.reference, item.metadata)
            if not math.isfinite(grade.score):
                raise ValueError(f"the grader returned a non-finite score ({grade.score})")
            result.score = grade.score
            result.reason = grade.reason
            result.extracted = grade.extracted
            result.cannot_score = grade.cannot_score
        except Exception as error:  # noqa: BLE001 - any checker failure is this sample's "cannot score"
            result.cannot_score = True
            result.reason = f"grader raised {type(error).__name__}: {error}"
        results.append(result)
    return results


async def grade_request(request) -> object:
    reply = pb.GradeReply(request_id=request.request_id)
    grader = GRADERS.get(request.grader)
    if grader is None:
        reply.error = f"unknown grader {request.grader!r}; this server has: {', '.join(sorted(GRADERS))}"
        return reply
    timeout = request.deadline_ms / 1000 if request.deadline_ms else None
    try:
        # In a worker thread, so that a slow checker does not stop this server from reading other connections.
        # (A grader that can hang should run in a subprocess it can kill; wait_for only stops waiting for it.)
        results = await asyncio.wait_for(asyncio.to_thread(grade_items, grader, list(request.items)), timeout)
    except asyncio.TimeoutError:
        for _ in request.items:
            reply.results.add(cannot_score=True, reason=f"grading took longer than {request.deadline_ms} ms")
        return reply
    reply.results.extend(results)
    return reply


def quote_bytes(data: bytes) -> str:
    """Bytes a peer sent, single-quoted, anything outside printable ASCII as \\xNN (as grpo's C++ side writes them)."""
    quoted = []
    for byte in data:
        if byte in b"\\'":
            quoted.append("\\" + chr(byte))
        elif 0x20 <= byte < 0x7F:
            quoted.append(chr(byte))
        else:
            quoted.append(f"\\x{byte:02x}")
    return "'" + "".join(quoted) + "'"


def encode_frame(message) -> bytes:
    payload = message.SerializeToString()
    return MAGIC + LENGTH.pack(len(payload)) + payload


async def refuse(writer: asyncio.StreamWriter, peer: str, problem: str) -> None:
    """A client that sent something unreadable: log it, tell it why, close the connection."""
    print(f"grader server: {peer}: {problem}; closing the connection", file=sys.stderr, flush=True)
    try:
        writer.write(encode_frame(pb.GradeReply(error=f"grader server could not read the request: {problem}")))
        await asyncio.wait_for(writer.drain(), 1.0)
    except (OSError, asyncio.TimeoutError):
        pass


async def serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, max_frame_bytes: int,
                           idle_timeout: float, connections: set) -> None:
    connections.add(writer)
    address = writer.get_extra_info("peername")
    peer = f"{address[0]}:{address[1]}" if address else "a client"
    try:
        while True:
            # The magic first, so that a client speaking another protocol is refused on its first 4 bytes.
            try:
                magic = await asyncio.wait_for(reader.readexactly(4), idle_timeout)
            except asyncio.IncompleteReadError as error:
                if error.partial:
                    print(f"grader server: {peer}: connection closed after {len(error.partial)} of 8 header bytes",
                          file=sys.stderr, flush=True)
                return
            if magic != MAGIC:
                problem = f"peer sent {quote_bytes(magic)} where a grpo frame starts (is this a grpo port?)"
                await refuse(writer, peer, problem)
                return
            (length,) = LENGTH.unpack(await reader.readexactly(LENGTH.size))
            if length > max_frame_bytes:  # checked before reading (and allocating) the payload
                await refuse(writer, peer, f"frame of {length} bytes exceeds the {max_frame_bytes}-byte limit")
                return
            payload = await reader.readexactly(length)
            request = pb.GradeRequest()
            try:
                request.ParseFromString(payload)
            except Exception:  # noqa: BLE001 - protobuf raises DecodeError, and others on some malformed input
                problem = f"frame payload of {length} bytes is not a valid grpo.wire.GradeRequest message"
                await refuse(writer, peer, problem)
                return
            reply = await grade_request(request)
            writer.write(encode_frame(reply))
            await writer.drain()
    except asyncio.IncompleteReadError as error:
        print(f"grader server: {peer}: connection closed in the middle of a frame ({len(error.partial)} of "
              f"{error.expected} bytes)", file=sys.stderr, flush=True)
    except (asyncio.TimeoutError, ConnectionError):
        pass  # idle for too long, or the client went away
    finally:
        connections.discard(writer)
        writer.close()


async def main_async(args: argparse.Namespace) -> None:
    connections: set[asyncio.StreamWriter] = set()
    server = await asyncio.start_server(
        lambda reader, writer: serve_connection(reader, writer, args.max_frame_bytes, args.idle_timeout, connections),
        args.host, args.port)
    host, port = server.sockets[0].getsockname()[:2]
    print(f"listening on {host}:{port}", flush=True)  # a test reads the port from this line
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stop.set)
    await stop.wait()
    # Close the clients' idle connections too: since Python 3.12, wait_closed() waits for every connection to end.
    server.close()
    for writer in list(connections):
        writer.close()
    await server.wait_closed()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=9000, help="port to listen on; 0 picks a free one (default 9000)")
    parser.add_argument("--proto", type=Path, default=DEFAULT_PROTO, help="grader_service.proto to compile")
    parser.add_argument("--proto-dir", help="folder holding a pre-generated grader_service_pb2.py (skips protoc)")
    parser.add_argument("--protoc", default="protoc", help="the protoc program (default: protoc on PATH)")
    parser.add_argument("--max-frame-bytes", type=int, default=DEFAULT_MAX_FRAME_BYTES,
                        help="largest request accepted (default 64 MiB)")
    parser.add_argument("--idle-timeout", type=float, default=300.0,
                        help="seconds a connection may stay idle before it is closed (default 300)")
    args = parser.parse_args()
    load_protocol(args.proto, args.proto_dir, args.protoc)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
