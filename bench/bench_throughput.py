"""Batch throughput: how much of an overnight batch's wall time the style transfer itself takes.

``python -m bench --only throughput`` (or ``python -m bench.bench_throughput`` to update only
this section of bench/RESULTS.md). The same 24 pairs (the 12 DPST content photos of
``../shared/datasets/dpst-paper`` x 2 of its style photos, or ``$STYLEBENCH_DPST_DIR``) go
through ``stylebench stylize --no-prefect`` (a process of its own), through the Prefect flow
(``stylebench stylize``) with its ephemeral server and with a ``prefect server start`` running
(as overnight schedules need), and through a bare loop over ``transfer_batch`` in this process, for photo-fast (700 px) and gatys (256 px, 100 steps), fp32. Reported: pairs/s
and the method's share of the wall time (its recorded prepare + Laplacian + optimize seconds).
``$BENCH_THROUGHPUT_GATYS_PAIRS`` (default 24; quick 2) and ``$BENCH_THROUGHPUT_GATYS_STEPS``
(default 100; quick 10) size the gatys runs, which dominate the time on a CPU.
"""

from __future__ import annotations

import compileall
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from bench import cpu_capability, dataset_dir, dataset_missing, main

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SECTION = "## Batch throughput: the method's share of an overnight batch"
CONTENTS = (2, 4, 7, 10, 13, 15, 27, 31, 32, 45, 50, 58)
STYLES = (2, 27)
DIRECT, EPHEMERAL, SERVER = (
    "stylize --no-prefect",
    "Prefect flow, ephemeral server",
    "Prefect flow, server running",
)
TARGETS = {
    ("photo-fast", DIRECT): 0.85,
    ("photo-fast", EPHEMERAL): 0.80,
    ("photo-fast", SERVER): 0.80,
}
GATYS_TARGET = 0.95
# photo-fast's three commands run in this many rounds, alternated: a batch of 17 s moves by
# a second between runs on a shared 2-core machine; the verdicts take the rounds' medians.
PHOTO_ROUNDS = 3


@dataclass
class Way:
    """One way through: its wall time, the method's seconds and the pairs it stylised."""

    method: str
    way: str
    wall: float
    method_seconds: float
    pairs: int
    empty_wall: float | None = None  # the same command with nothing pending: start-up cost

    @property
    def share(self) -> float:
        return self.method_seconds / self.wall if self.wall > 0 else float("nan")

    @property
    def pairs_per_second(self) -> float:
        return self.pairs / self.wall if self.wall > 0 else float("nan")


def _catalog(folder: Path, root: Path, contents: tuple[int, ...]) -> Path:
    """A data directory holding the contents and styles, paired all with all."""
    from flows.catalog import pair_catalog
    from scraper import CurationConfig, import_sources
    from storage import Store

    data = root / "catalog"
    store = Store(str(data))
    for role, names in (
        ("content", [f"in{n}.png" for n in contents]),
        ("style", [f"tar{n}.png" for n in STYLES]),
    ):
        summary = import_sources(
            store, [str(folder / n) for n in names], role, curation=CurationConfig(min_side=32)
        )
        if summary.accepted != len(names):
            raise RuntimeError(f"importing the {role} photos: {summary}")
    pair_catalog(store, "all")
    return data


def _experiment(root: Path, method: str, settings: dict) -> Path:
    path = root / f"{method}.json"  # JSON is YAML
    spec = {"name": f"throughput-{method}", "methods": [method], "batch_size": 8}
    path.write_text(json.dumps({**spec, "settings": settings}))
    return path


def _method_seconds(data: Path) -> tuple[float, int]:
    from storage import Store

    rows = (
        Store(str(data))
        .query(
            "select sum(seconds_prepare + seconds_laplacian + seconds_optimize) as s, "
            "count(*) as n from runs where status = 'ok'"
        )
        .to_pylist()[0]
    )
    return float(rows["s"] or 0.0), int(rows["n"])


def _command(data: Path, spec: Path, prefect: bool, env: dict[str, str]) -> float:
    """The wall seconds of ``stylebench stylize`` over ``data`` in a process of its own (the
    program's entry point, as the ``stylebench`` command runs it)."""
    args = [sys.executable, "-m", "stylebench.cli.launch", "-d", str(data), "-q", "stylize"]
    args += ["-e", str(spec), "--prefect" if prefect else "--no-prefect"]
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args[2:])} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        )
    return wall


def _through_command(
    catalog: Path, root: Path, method: str, spec: Path, way: str, env: dict[str, str]
) -> Way:
    data = root / f"{method}-{way.split()[-2]}"
    shutil.copytree(catalog, data)
    prefect = way != DIRECT
    wall = _command(data, spec, prefect, env)
    seconds, pairs = _method_seconds(data)
    empty = _command(data, spec, prefect, env)  # all done now: what the command costs bare
    return Way(method, way, wall, seconds, pairs, empty)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def _prefect_server(env: dict[str, str], log: Path) -> Iterator[str]:
    """A ``prefect server start`` of its own (env's PREFECT_HOME); yields its API URL."""
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    prefect = Path(sys.executable).with_name("prefect")
    args = [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{api}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Prefect server did not start; its log: {log}")
            time.sleep(0.5)
        yield api
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


def _bare_loop(catalog: Path, method: str, settings: dict) -> Way:
    """transfer_batch over the same pairs in this process: styles grouped, 8 at a time."""
    from storage import Store
    from styletransfer import TransferCache, TransferConfig, transfer_batch

    store = Store(str(catalog))
    pairs = store.query(
        "select p.content_id, p.style_ids[1] as style_id, c.path as content, s.path as style "
        "from pairs p join images c on c.image_id = p.content_id "
        "join images s on s.image_id = p.style_ids[1] order by style_id, p.content_id"
    ).to_pylist()
    config = TransferConfig(method=method, **settings)
    cache = TransferCache()
    start = time.perf_counter()
    seconds = 0.0
    for style in sorted({p["style"] for p in pairs}):
        contents = [store.local_path(p["content"]) for p in pairs if p["style"] == style]
        for i in range(0, len(contents), 8):
            results = transfer_batch(
                contents[i : i + 8], store.local_path(style), config, cache=cache
            )
            seconds += sum(
                r.seconds["prepare"] + r.seconds["laplacian"] + r.seconds["optimize"]
                for r in results
                if r.status != "failed"
            )
    return Way(
        method, "bare loop over transfer_batch", time.perf_counter() - start, seconds, len(pairs)
    )


def _in_process(catalog: Path, root: Path, method: str, spec: Path, overlap: bool) -> Way:
    """The stylize loop (plan, claim, run_batch, record) in this process, overlap on or off."""
    from flows.batch import plan_experiment, run_batch
    from flows.specs import ExperimentSpec, load_spec
    from storage import Store

    data = root / f"{method}-overlap-{'on' if overlap else 'off'}"
    shutil.copytree(catalog, data)
    store = Store(str(data))
    start = time.perf_counter()
    night = plan_experiment(store, load_spec(spec, ExperimentSpec))
    for batch in night.batches:
        with store.runs.claim(list(batch)) as claim:
            run_batch(store, claim.items, overlap=overlap)
    wall = time.perf_counter() - start
    seconds, pairs = _method_seconds(data)
    return Way(
        method, f"run_batch in-process, overlap {'on' if overlap else 'off'}", wall, seconds, pairs
    )


def run(quick: bool = False) -> str:
    folder = dataset_dir()
    if (missing := dataset_missing(SECTION, folder, "inN.png and tarN.png")) is not None:
        return missing
    lines = [SECTION, ""]
    load_before = os.getloadavg()
    gatys_pairs = int(os.environ.get("BENCH_THROUGHPUT_GATYS_PAIRS", "2" if quick else "24"))
    gatys_steps = int(os.environ.get("BENCH_THROUGHPUT_GATYS_STEPS", "10" if quick else "100"))
    fp32 = {"device": "cpu", "mixed_precision": False}
    methods = {
        "photo-fast": ({"size": 700, **fp32}, CONTENTS[:2] if quick else CONTENTS),
        "gatys": (
            {"size": 256, "steps": gatys_steps, **fp32},
            CONTENTS[: max(1, gatys_pairs // len(STYLES))],
        ),
    }
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore"}
    # The project's bytecode as a user's first run leaves it (where PYTHONDONTWRITEBYTECODE is
    # set, every command would compile the project's modules again).
    for package in ("flows", "scraper", "storage", "stylebench", "styletransfer"):
        compileall.compile_dir(ROOT / package, quiet=1)
    results: list[Way] = []
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp:
        root = Path(tmp)
        env["PREFECT_HOME"] = str(root / "prefect")  # its own server's database
        env.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
        env.pop("PREFECT_API_URL", None)
        # Prefect's database is made by the first start in a home, once per machine: made
        # here before anything is timed, as it is after a user's first night.
        (root / "empty").mkdir()
        first = _command(root / "empty", _experiment(root, "gatys", {}), True, env)
        print(f"first ephemeral start in a new Prefect home: {first:.1f} s", file=sys.stderr)
        for method, (settings, contents) in methods.items():
            work = root / method
            work.mkdir()
            catalog = _catalog(folder, work, contents)
            spec = _experiment(work, method, settings)
            # The running server keeps a database of its own (made before the timings).
            own = {**env, "PREFECT_HOME": str(root / f"prefect-{method}-server")}
            with _prefect_server(own, root / f"server-{method}.log") as api:
                served = {**own, "PREFECT_API_URL": api}
                rounds = PHOTO_ROUNDS if method == "photo-fast" and not quick else 1
                for k in range(rounds):
                    (work / f"round{k}").mkdir()
                    for way, way_env in ((DIRECT, env), (EPHEMERAL, env), (SERVER, served)):
                        results.append(
                            _through_command(
                                catalog, work / f"round{k}", method, spec, way, way_env
                            )
                        )
                        print(f"{results[-1]}", file=sys.stderr, flush=True)
            results.append(_bare_loop(catalog, method, settings))
            print(f"{results[-1]}", file=sys.stderr, flush=True)
            if method == "photo-fast":  # does housekeeping beside the method slow a CPU?
                for k, overlap in enumerate((False, True, False, True)):
                    results.append(_in_process(catalog, work / f"ab{k}", method, spec, overlap))
                    print(f"{results[-1]}", file=sys.stderr, flush=True)
    load_after = os.getloadavg()
    lines += report(results, load_before, load_after, gatys_steps, first)
    return "\n".join(lines) + "\n"


def report(
    results: list[Way], before: tuple, after: tuple, gatys_steps: int, first: float
) -> list[str]:
    cpu = f"{cpu_capability()}, {torch.get_num_threads()} threads"
    out = [
        f"CPU: {cpu}; fp32 (mixed precision off). 1-minute load average {before[0]:.1f} as the "
        f"section began, {after[0]:.1f} as it ended (2 cores: above ~0.5 means other work "
        "shared the machine). photo-fast at 700 px, gatys at 256 px with "
        f"{gatys_steps} steps; 12 content photos x 2 style photos of the DPST pairs. The "
        "method's share is the runs' prepare + Laplacian + optimize seconds over the wall "
        "time of the whole command (process start-up, planning, loading, scoring, writing and "
        "recording included); *bare* is the same command with nothing left to do (its fixed "
        "cost: interpreter, imports, and for the ephemeral way the start of Prefect's "
        "server). *of the bare loop* is the way's pairs/s over the bare loop's: throughput "
        "that a method slowed by work beside it cannot inflate. Prefect's database was made "
        f"before the timings (the first start in a new Prefect home took {first:.1f} s with "
        "nothing to do). *run_batch in-process, overlap on/off* is stylize's loop without the "
        "process start-up, with the worker thread reading, scoring and writing beside the "
        "method or each batch in turn, alternated twice: whether overlapping gains a CPU "
        "anything (stylize overlaps on a CPU where the worker can run at the lowest priority, "
        "nice 19 on Linux: `flows.batch.OVERLAP_ON_CPU`). photo-fast's three commands ran "
        f"in {PHOTO_ROUNDS} rounds, alternated (a row each; the verdicts below the table take "
        "their medians); the running server keeps a database of its own.",
        "",
        "| method | way | pairs | wall s | pairs/s | of the bare loop | method s | "
        "method's share | bare s | share without the bare cost | target |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    loops = {r.method: r for r in results if r.way == "bare loop over transfer_batch"}
    for r in results:
        loop = loops.get(r.method)
        relative = f"{r.pairs_per_second / loop.pairs_per_second:.0%}" if loop else "—"
        target = GATYS_TARGET if r.method == "gatys" else TARGETS.get((r.method, r.way))
        verdict = ""
        if target is not None:
            verdict = f">= {target:.0%}: {'met' if r.share >= target else '**MISSED**'}"
        bare = f"{r.empty_wall:.1f}" if r.empty_wall is not None else "—"
        without = (
            f"{r.method_seconds / (r.wall - r.empty_wall):.0%}"
            if r.empty_wall is not None and r.wall > r.empty_wall
            else "—"
        )
        out.append(
            f"| {r.method} | {r.way} | {r.pairs} | {r.wall:.1f} | {r.pairs_per_second:.3f} | "
            f"{relative} | {r.method_seconds:.1f} | {r.share:.1%} | {bare} | {without} | {verdict} |"
        )
    rounds: dict[tuple[str, str], list[Way]] = {}
    for r in results:
        if r.empty_wall is not None:
            rounds.setdefault((r.method, r.way), []).append(r)
    summary = []
    for (method, way), rows in rounds.items():
        if len(rows) < 2:
            continue
        shares = sorted(r.share for r in rows)
        median = statistics.median(shares)
        rate = statistics.median(r.pairs_per_second for r in rows)
        target = TARGETS.get((method, way))
        verdict = ""
        if target is not None:
            verdict = f" (>= {target:.0%}: {'met' if median >= target else '**MISSED**'})"
        summary.append(
            f"- {method}, {way}: the method's share {median:.1%} at the median of "
            f"{len(rows)} rounds ({shares[0]:.1%}-{shares[-1]:.1%}), {rate:.3f} pairs/s{verdict}."
        )
    return out + ([""] + summary if summary else [])


if __name__ == "__main__":
    main(run, "bench_throughput", SECTION)
