"""Serving throughput and latency of `gaitrun serve` against ONNX Runtime in process, and the
server's memory over many requests. Target: >= 0.7x in-process throughput at 32 clients.

For a finished run with an ONNX export, in one run on this machine:

1. in process: one ONNX Runtime session (same thread count as the server, default options) on
   batches of 1, 8 and 32 rows; rows/s, and p50/p95 of one call;
2. served: `gaitrun serve RUN` in a subprocess on 127.0.0.1 (dynamic batching on, --max-batch
   32), loaded by 1, 8 and 32 concurrent clients, each sending one row per request
   (application/x-npy) in a closed loop over keep-alive connections; rows/s, p50/p95 of a
   request as the client sees it. The ratio compares C clients with in-process batch C; the two
   alternate in short rounds (the machine is shared and its load moves) and the median ratio
   over the rounds is reported with its range;
3. memory: the server's resident set size after warm-up and every 2,000 requests up to
   --rss-requests (default 10,000).

The load generator is a minimal asyncio HTTP/1.1 client in this process (no library
overhead to speak of), so client and server share the 2 cores, as the in-process baseline
does not; this is counted against serving. Traffic goes to 127.0.0.1 only; every phase is
bounded in requests and time.

    python bench/serve.py RUN_FOLDER [--rounds 5] [--seconds 2] [--threads 2] [--rss-requests 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HOST = "127.0.0.1"
LEVELS = (1, 8, 32)


def machine() -> str:
    model, flags = "unknown CPU", set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name") and model == "unknown CPU":
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    vnni = ", ".join(f"{v}={'yes' if v in flags else 'no'}" for v in ("avx512_vnni", "avx_vnni"))
    return f"{model}; {os.cpu_count()} cores; {vnni}; load avg {os.getloadavg()}"


def percentiles(ms: list[float]) -> tuple[float, float]:
    ms = sorted(ms)
    return statistics.median(ms), ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]


def session_runner(model: Path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    session = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})


def in_process(run, x: np.ndarray, seconds: float) -> tuple[float, list[float]]:
    """(rows/s, call latencies in ms) of ``run`` on batch ``x`` for ``seconds``."""
    times, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds or len(times) < 3:
        t = time.perf_counter()
        run(x)
        times.append((time.perf_counter() - t) * 1000)
    return len(x) * len(times) / (time.perf_counter() - start), times


def npy(x: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, x)
    return buf.getvalue()


async def _client(port: int, body: bytes, stop_at: float, max_requests: list[int], latencies: list[float]) -> int:
    """One keep-alive connection sending POST /v1/predict in a closed loop; returns non-200 count."""
    reader, writer = await asyncio.open_connection(HOST, port)
    head = (f"POST /v1/predict HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/x-npy\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    errors = 0
    try:
        while time.perf_counter() < stop_at and max_requests[0] > 0:
            max_requests[0] -= 1
            t = time.perf_counter()
            writer.write(head + body)
            status_line = await reader.readuntil(b"\r\n")
            headers = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
            length = int(headers.split("content-length:", 1)[1].split("\r\n", 1)[0])
            await reader.readexactly(length)
            latencies.append((time.perf_counter() - t) * 1000)
            errors += b" 200 " not in status_line
    finally:
        writer.close()
    return errors


async def load(port: int, body: bytes, clients: int, seconds: float, requests: int) -> dict:
    latencies: list[float] = []
    budget = [requests]
    start = time.perf_counter()
    errors = await asyncio.gather(*[_client(port, body, start + seconds, budget, latencies) for _ in range(clients)])
    wall = time.perf_counter() - start
    return {"rows_per_s": len(latencies) / wall, "latencies": latencies, "requests": len(latencies),
            "errors": sum(errors)}


def compare(run, port: int, shape: tuple[int, ...], rounds: int, seconds: float) -> None:
    """Rounds of (in process at batch C, served with C clients) for each C, interleaved, so that
    both sides of a ratio see the same machine load; the median ratio over rounds is reported."""
    rng = np.random.default_rng(1)
    body = npy(rng.random((1, *shape), dtype=np.float32))
    batches = {c: rng.random((c, *shape), dtype=np.float32) for c in LEVELS}
    for x in batches.values():
        run(x)
    asyncio.run(load(port, body, 8, 2.0, 2000))  # warm-up
    res = {c: {"base": [], "served": [], "base_ms": [], "served_ms": [], "errors": 0} for c in LEVELS}
    for _ in range(rounds):
        for c in LEVELS:
            rate, ms = in_process(run, batches[c], seconds)
            served = asyncio.run(load(port, body, c, seconds, 10**9))
            r = res[c]
            r["base"].append(rate)
            r["base_ms"] += ms
            r["served"].append(served["rows_per_s"])
            r["served_ms"] += served["latencies"]
            r["errors"] += served["errors"]
    print("\n| clients = batch | in-process rows/s | p50 / p95 ms | served rows/s | p50 / p95 ms "
          "| ratio, median (range) | errors |")
    print("|---|---|---|---|---|---|---|")
    for c in LEVELS:
        r = res[c]
        ratios = [s / b for s, b in zip(r["served"], r["base"], strict=True)]
        bp, sp = percentiles(r["base_ms"]), percentiles(r["served_ms"])
        print(f"| {c} | {statistics.median(r['base']):.0f} | {bp[0]:.2f} / {bp[1]:.2f} | "
              f"{statistics.median(r['served']):.0f} | {sp[0]:.2f} / {sp[1]:.2f} | "
              f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f}) | {r['errors']} |")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start_server(run: Path, port: int, threads: int, max_wait_ms: float) -> subprocess.Popen:
    import urllib.request

    exe = Path(sys.executable).parent / "gaitrun"
    proc = subprocess.Popen([str(exe), "serve", str(run), "--host", HOST, "--port", str(port), "--quiet",
                             "--threads", str(threads), "--max-batch", "32",
                             "--max-wait-ms", str(max_wait_ms)])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not start within 120 s")


def rss_mb(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def rss(proc: subprocess.Popen, port: int, shape: tuple[int, ...], requests: int) -> None:
    body = npy(np.random.default_rng(2).random((1, *shape), dtype=np.float32))
    print(f"\n# server RSS over {requests} requests (8 clients), MB:")
    start_rss, done = rss_mb(proc.pid), 0
    print(f"start {start_rss:.1f}")
    while done < requests:
        r = asyncio.run(load(port, body, 8, 600.0, min(2000, requests - done)))
        done += r["requests"]
        print(f"after {done}: {rss_mb(proc.pid):.1f} (errors {r['errors']})")
    end = rss_mb(proc.pid)
    print(f"end {end:.1f} (growth {end - start_rss:+.1f} MB); load avg {os.getloadavg()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds per level")
    ap.add_argument("--seconds", type=float, default=2.0, help="per round and side")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--max-wait-ms", type=float, default=0.0)
    ap.add_argument("--rss-requests", type=int, default=10_000)
    args = ap.parse_args()

    from gaitrun.serve.model import load_served_model

    model = load_served_model(args.run)
    if model.artifact.suffix != ".onnx":
        raise SystemExit(f"{args.run}: bench/serve.py compares with ONNX Runtime; the export is {model.artifact.name}")
    print(f"# {machine()}")
    print(f"# run {model.run_id}: {model.target} {model.precision}, input {model.input_shape}, "
          f"threads {args.threads}, max-batch 32, max-wait-ms {args.max_wait_ms:g}")
    port = free_port()
    proc = start_server(args.run, port, args.threads, args.max_wait_ms)
    try:
        compare(session_runner(model.artifact, args.threads), port, model.input_shape, args.rounds, args.seconds)
        rss(proc, port, model.input_shape, args.rss_requests)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
