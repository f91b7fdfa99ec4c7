"""Download + curate throughput: 2,000 images from a local server that adds 50 ms per request."""

from __future__ import annotations

import io
import multiprocessing
import os
import shutil
import sys
import tempfile
import time

import numpy as np
from PIL import Image

LATENCY_S = 0.05
SIDE = 256
TARGET_PER_S = 100.0
WORKERS = 32


def make_image(index: int) -> bytes:
    """A distinct 256 x 256 JPEG: a random 6 x 6 colour field, smoothly upscaled, plus grain."""
    rng = np.random.default_rng(index)
    field = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8))
    base = np.asarray(field.resize((SIDE, SIDE), Image.Resampling.BICUBIC), dtype=np.int16)
    grain = rng.integers(-12, 13, base.shape, dtype=np.int16)
    image = Image.fromarray(np.clip(base + grain, 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def _serve(n: int, port_queue: multiprocessing.Queue) -> None:
    """Serve ``/img/<i>.jpg`` for i < n, each answer delayed by LATENCY_S (another process)."""
    from tests.localserver import Answer, LocalServer

    server = LocalServer(backlog=128)
    for i in range(n):
        server.routes[f"/img/{i}.jpg"] = Answer(
            make_image(i), headers={"Content-Type": "image/jpeg"}, delay=LATENCY_S
        )
    port_queue.put(server.port)
    server.thread.join()


def _import(urls: list[str], workers: int) -> tuple[float, object]:
    from scraper import CurationConfig, DownloadConfig, import_sources
    from storage import Store

    root = tempfile.mkdtemp(prefix="sb-bench-scrape-")
    try:
        listing = os.path.join(root, "urls.txt")
        with open(listing, "w") as fh:
            fh.write("\n".join(urls) + "\n")
        download = DownloadConfig(workers=workers, per_host_rps=None, allow_private=True)
        start = time.perf_counter()
        summary = import_sources(
            Store(os.path.join(root, "data")),
            [listing],
            "style",
            curation=CurationConfig(min_side=64),
            download=download,
        )
        return time.perf_counter() - start, summary
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _curate_only(n: int) -> float:
    """Seconds per image for decode + features, no network and no storage (the CPU floor)."""
    from scraper import curate, validate

    bodies = [make_image(100_000 + i) for i in range(n)]
    start = time.perf_counter()
    for body in bodies:
        decoded = validate.decode(body)
        curate.features(decoded.data, decoded.image)
    return (time.perf_counter() - start) / n


def run(quick: bool = False) -> str:
    n = 300 if quick else 2_000
    n_baseline = 40 if quick else 100
    context = multiprocessing.get_context("fork")
    ports: multiprocessing.Queue = context.Queue()
    server = context.Process(target=_serve, args=(n, ports), daemon=True)
    server.start()
    try:
        port = ports.get(timeout=120)
        urls = [f"http://127.0.0.1:{port}/img/{i}.jpg" for i in range(n)]
        _import(urls[:20], WORKERS)  # warm-up: imports, connection pools
        seconds, summary = _import(urls, WORKERS)
        base_seconds, base_summary = _import(urls[:n_baseline], 1)
    finally:
        server.terminate()
        server.join(5)
    per_image = _curate_only(50 if quick else 200)
    rate = n / seconds
    base_rate = n_baseline / base_seconds
    verdict = "meets" if rate >= TARGET_PER_S else "MISSES"
    note = (
        "\nThe rejections are near-duplicates: a few of the random smooth colour fields share a\n"
        "perceptual hash within the threshold.\n"
        if summary.rejected
        else ""
    )
    return f"""## Scraper: download and curate

{n:,} distinct {SIDE} x {SIDE} JPEGs from a local HTTP server in another process that waits
{LATENCY_S * 1000:.0f} ms before every answer; `import_sources` with {WORKERS} download threads
(per-host rate limit off: every URL is on one host) fetches, sniffs, decodes, hashes (sha256,
perceptual hash), scores blur and greyness, dedups, stores the files and appends the rows.

| measurement | value |
| --- | --- |
| images | {n:,} (accepted {summary.accepted:,}, rejected {summary.rejected:,}, failed {summary.failed:,}) |
| wall time, {WORKERS} threads | {seconds:.2f} s |
| throughput, {WORKERS} threads | **{rate:.0f} images/s** — {verdict} the {TARGET_PER_S:.0f}/s target |
| throughput, 1 thread ({n_baseline} images, same process) | {base_rate:.1f} images/s (accepted {base_summary.accepted}) |
| decode + curation measures alone, per image (no network, no storage) | {per_image * 1000:.1f} ms |

Ratios (machine-independent):

- thread pool vs one thread: **{rate / base_rate:.1f}x**. One thread cannot beat
  1 / {LATENCY_S * 1000:.0f} ms = {1 / LATENCY_S:.0f} images/s; the pool overlaps the waits.
- wall time per image in the pool: {1000 / rate:.1f} ms, against {per_image * 1000:.1f} ms of
  single-thread decode + curation CPU per image (ratio {per_image * rate:.2f}; above 1 means the
  {os.cpu_count()} core(s) run that work in parallel, since Pillow and numpy release the GIL).
  Curation alone, one thread, would allow {1 / per_image:.0f} images/s.
{note}"""


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv[1:]))
