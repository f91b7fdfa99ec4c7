"""``stylebench demo``: the whole pipeline, offline, on photos that ship with scikit-image."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Console

from storage import Store
from storage.query import EXAMPLE_QUERIES

CONTENT_PHOTOS = ("chelsea.png", "coffee.png", "rocket.jpg")
STYLE_PHOTOS = ("hubble_deep_field.jpg", "ihc.png")
OPTIMISED_METHODS = ("gatys", "dpst", "photo-fast")
FAST_MODEL = "demo"


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
    fast_steps: int = 80,
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

    single = pair_images(strategy="all", data_dir=data_dir)
    blended = pair_images(
        strategy="all", styles_per_pair=2, style_weights=[0.7, 0.3], data_dir=data_dir
    )
    say(f"2/6 paired: {single['pairs']} single-style and {blended['pairs']} two-style pairs")

    style_ids = [i.image_id for i in store.catalog.accepted("style", order="id")]
    trained = train_fast(
        styles=style_ids,
        name=FAST_MODEL,
        steps=fast_steps,
        batch_size=2,
        size=min(size, 128),
        checkpoint_every=max(fast_steps // 2, 1),
        data_dir=data_dir,
    )
    say(
        f"3/6 trained the fast network {FAST_MODEL!r}: {trained['steps']} steps in "
        f"{trained['seconds']} s"
    )

    optimised = stylize_nightly(
        {
            "name": "demo-optimised",
            "methods": list(OPTIMISED_METHODS),
            "batch_size": 3,
            "settings": {"size": size, "steps": steps},
        },
        data_dir=data_dir,
    )
    fast = stylize_nightly(
        {
            "name": "demo-fast",
            "methods": ["fast"],
            "batch_size": 9,
            "settings": {"size": size, "model": FAST_MODEL},
        },
        data_dir=data_dir,
    )
    say(
        f"4/6 stylised: {optimised['ok'] + fast['ok']} ok, "
        f"{optimised['failed'] + fast['failed']} failed, "
        f"{optimised['diverged'] + fast['diverged']} diverged"
    )

    matrix = loss_matrix(
        feature_models=["vgg19"], size=size, experiment_id="demo", data_dir=data_dir
    )
    say(f"5/6 loss matrix of {matrix['models'][0]['images']} images under vgg19")

    report = build_report(store, report_dir)
    say(f"6/6 report: {report.index.resolve()}")
    say(f"\ndone in {time.perf_counter() - started:.0f} s. Data: {store.display('')}")
    prefix = "stylebench" + ("" if data_dir is None else f" --data-dir {data_dir}")
    say("Try:")
    for q in EXAMPLE_QUERIES:  # what a user types into `stylebench query`
        say(f'  {prefix} query "{q}"', soft_wrap=True, highlight=False)
    return {"report": str(report.index), "runs": report.runs}
