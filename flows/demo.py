"""``stylebench demo``: the whole pipeline, offline, on photos that ship with scikit-image."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from storage import Store
from storage.query import EXAMPLE_QUERIES

CONTENT_PHOTOS = ("chelsea.png", "coffee.png", "rocket.jpg")
STYLE_PHOTOS = ("hubble_deep_field.jpg", "ihc.png")
FAST_MODEL = "demo"
FAST_TRAIN_STEPS = 30
FAST_TRAIN_SIZE = 64
PHOTO_SIZE = 512


EXPERIMENT = "demo"  # the name of the demo's methods comparison (examples/methods.yaml)
DEMO_PAIRS = 2  # content photos, each with the style nearest in colour


@dataclass(frozen=True)
class DemoRun:
    """Some methods of the demo's experiment, at settings that show each well."""

    methods: tuple[str, ...]
    settings: dict[str, Any]
    grid: dict[str, list[Any]]


def demo_runs(size: int, steps: int) -> tuple[DemoRun, ...]:
    """The demo's methods comparison: every method on the same pairs, each at its best within
    the time, recorded as one experiment.

    photo-fast costs a second, so it runs at two sizes (half and full photo size, where a
    photorealistic result looks like a photograph), which puts a slope on the
    time-against-size plot; gatys and dpst run short optimisations at ``size``; the fast
    network stylises at half photo size (its losses are scored by a forward pass of the loss
    network, which costs more than the stylisation).
    """
    return (
        DemoRun(("photo-fast",), {}, {"size": [PHOTO_SIZE // 2, PHOTO_SIZE]}),
        DemoRun(("gatys", "dpst"), {"size": size, "steps": steps}, {}),
        DemoRun(("fast",), {"size": PHOTO_SIZE // 2, "model": FAST_MODEL}, {}),
    )


def cached_networks() -> list[str]:
    """vgg19 (bundled) and the other feature networks whose weights are already cached."""
    from styletransfer.features import FEATURE_MODELS, torchvision_cache_file

    return ["vgg19"] + [
        m for m in FEATURE_MODELS if m != "vgg19" and torchvision_cache_file(m).is_file()
    ]


def sample_photos() -> tuple[list[str], list[str]]:
    """Paths of the content and style photos bundled with scikit-image."""
    import skimage.data

    folder = Path(skimage.data.__file__).parent
    paths = {name: folder / name for name in (*CONTENT_PHOTOS, *STYLE_PHOTOS)}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"scikit-image's sample photos are missing: {', '.join(missing)}; "
            "reinstall scikit-image"
        )
    return [str(paths[n]) for n in CONTENT_PHOTOS], [str(paths[n]) for n in STYLE_PHOTOS]


def run_demo(
    data_dir: str | None,
    report_dir: str | Path,
    *,
    size: int = 128,
    steps: int = 50,
    fast_steps: int = FAST_TRAIN_STEPS,
    open_report: bool = False,
    console: Console | None = None,
) -> dict[str, Any]:
    """Import, curate, pair, train a small fast network, stylise with every method, report."""
    from flows.pipeline import build_dataset, loss_matrix, pair_images, stylize_nightly, train_fast
    from flows.report import build_report

    console = console or Console()
    started = time.perf_counter()
    store = Store(data_dir)
    say = console.print
    say(f"[bold]stylebench demo[/] in {store.display('')}")
    contents, styles = sample_photos()
    spec = {
        "name": "demo",
        "imports": [{"source": p, "role": "content"} for p in contents]
        + [{"source": p, "role": "style"} for p in styles],
    }
    build_dataset(spec, data_dir=data_dir)
    counts = ", ".join(f"{n} {role}" for role, n in store.catalog.accepted_counts().items())
    say(f"1/6 imported and curated: {counts}")

    similar = pair_images(strategy="similar", data_dir=data_dir)
    say(f"2/6 paired each content photo with the style nearest in colour: {similar['pairs']} pairs")

    style_ids = [i.image_id for i in store.catalog.accepted("style", order="id")]
    t0 = time.perf_counter()
    trained = train_fast(
        styles=style_ids,
        name=FAST_MODEL,
        steps=fast_steps,
        batch_size=2,
        size=FAST_TRAIN_SIZE,
        checkpoint_every=max(fast_steps // 2, 1),
        data_dir=data_dir,
    )
    say(
        f"3/6 trained the fast network {FAST_MODEL!r}: {trained['steps']} steps in "
        f"{time.perf_counter() - t0:.0f} s. [dim]A network this short only shows the workflow; "
        "one whose outputs look stylised trains for thousands of steps (hours on a CPU, "
        "minutes on a GPU): stylebench train-fast --style ID --steps 40000[/]"
    )

    totals = {"ok": 0, "failed": 0, "diverged": 0}
    timings = []
    for run in demo_runs(size, steps):
        t0 = time.perf_counter()
        result = stylize_nightly(
            {
                "name": EXPERIMENT,
                "methods": list(run.methods),
                "batch_size": 4,
                "settings": run.settings,
                "grid": run.grid,
                "pairs": {"strategy": "similar", "limit": DEMO_PAIRS},
            },
            data_dir=data_dir,
        )
        for key in totals:
            totals[key] += result[key]
        timings.append(f"{'+'.join(run.methods)} {time.perf_counter() - t0:.0f} s")
    say(
        f"4/6 stylised: {totals['ok']} ok, {totals['failed']} failed, "
        f"{totals['diverged']} diverged ({', '.join(timings)})"
    )

    networks = cached_networks()
    matrix = loss_matrix(
        feature_models=networks, size=size, experiment_id=EXPERIMENT, data_dir=data_dir
    )
    say(
        f"5/6 loss matrix of {matrix['models'][0]['images']} images under "
        f"{', '.join(networks)}"
        + ("" if len(networks) > 1 else " (other networks join where their weights are cached)")
    )

    report = build_report(store, report_dir)
    index = report.index.resolve()
    page = next(p for p in report.pages if p.name.startswith(f"experiment-{EXPERIMENT}-"))
    say(f"6/6 report: {index}; the methods side by side: {page.name}")
    say(f"\ndone in {time.perf_counter() - started:.0f} s. Data: {store.display('')}")
    prefix = "stylebench" + ("" if data_dir is None else f" --data-dir {data_dir}")
    say("Try:")
    for q in EXAMPLE_QUERIES:  # what a user types into `stylebench query`
        say(f'  {prefix} query "{q}"', soft_wrap=True, highlight=False)
    say(f"\nThe experiment: {page.resolve().as_uri()}", soft_wrap=True, highlight=False)
    if open_report:
        import webbrowser

        if not webbrowser.open(page.resolve().as_uri()):
            say("(no web browser found here: open the file above on a machine that has one)")
    return {
        "report": str(report.index),
        "experiment_page": str(page),
        "runs": report.runs,
        "seconds": timings,
    }
