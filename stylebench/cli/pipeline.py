"""Pipeline commands: ``build-dataset``, ``pair``, ``stylize``, ``report`` and ``demo``."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from enum import Enum
from pathlib import Path
from typing import Any

import typer

from stylebench.cli.common import (
    collector_paused,
    console,
    fail,
    settings,
    split_values,
    variadic_command,
)
from stylebench.cli.settings import config_options
from styletransfer.config import TransferConfig


class Strategy(str, Enum):
    all = "all"
    random = "random"
    similar = "similar"


def build_dataset(
    ctx: typer.Context,
    spec: Path = typer.Argument(
        ...,
        help="Dataset spec (YAML): queries per role, engines, counts, "
        "filters, local imports. See examples/dataset.yaml.",
    ),
) -> None:
    """Scrape and import everything a dataset spec asks for, then curate (a Prefect flow)."""
    from flows.specs import DatasetSpec, SpecError, load_spec

    try:
        load_spec(spec, DatasetSpec)
    except SpecError as exc:
        raise fail(str(exc)) from None
    from flows.prefect_client import temporary_api

    with temporary_api() as api_ready:
        from flows.pipeline import build_dataset as flow

        api_ready()
        rows = flow(str(spec), data_dir=settings(ctx).data_dir)
    for row in rows:
        console.print(row)


def pair(
    ctx: typer.Context,
    strategy: Strategy = typer.Option(
        Strategy.all,
        help="all: every content with every style "
        "(set); random: k styles per content, seeded; similar: the "
        "k styles nearest in colour.",
    ),
    styles_per_pair: int = typer.Option(
        1, "--styles-per-pair", "-k", min=1, help="Styles blended on each content image."
    ),
    style_weights: list[str] = typer.Option(
        None,
        "--style-weights",
        help="Blend weights, one per style in a pair: 0.7 0.3, 0.7,0.3 or repeated "
        "[default: equal].",
    ),
    seed: int = typer.Option(0, help="Seed of the random strategy."),
) -> None:
    """Pair accepted content images with accepted style images; record the new pairs."""
    from flows.catalog import pair_catalog

    try:
        weights = split_values(style_weights, "--style-weights", numbers=True)
        pairs, new = pair_catalog(
            settings(ctx).store(),
            strategy.value,
            styles_per_pair=styles_per_pair,
            seed=seed,
            weights=None if weights is None else list(weights),
        )
    except ValueError as exc:
        raise fail(str(exc)) from None
    console.print(
        f"{len(pairs)} pair(s) by strategy {strategy.value}: {new} new, "
        f"{len(pairs) - new} already recorded"
    )


# The settings stylize takes as options (TransferConfig's fields), over an experiment's.
STYLIZE_SETTINGS = ("size", "steps", "feature_model")


@config_options(TransferConfig, only=STYLIZE_SETTINGS, over_a_file=True)
def stylize(
    ctx: typer.Context,
    experiment: Path = typer.Option(
        None,
        "--experiment",
        "-e",
        help="Experiment YAML (methods x a grid of settings); see "
        "examples/experiment.yaml. Without it, the options below "
        "make a one-config experiment; with it, each option given overrides the file.",
    ),
    method: list[str] = typer.Option(None, "--method", "-m", help="Method(s) (default: gatys)."),
    batch_size: int = typer.Option(None, help="Work items per batch (default: 4)."),
    limit: int = typer.Option(None, help="At most this many pairs (default: all)."),
    use_prefect: bool = typer.Option(
        True,
        "--prefect/--no-prefect",
        help="Run as a Prefect flow (ephemeral server unless "
        "PREFECT_API_URL is set) or directly [default: prefect].",
    ),
    **settings_given: Any,
) -> None:
    """Stylise every pending (pair, config); skips what is already recorded ok; records runs.
    Without --experiment the settings left out take TransferConfig's defaults."""
    st = settings(ctx)
    given = {
        "method": method or None,
        **{name: settings_given.get(name) for name in STYLIZE_SETTINGS},
        "batch_size": batch_size,
        "limit": limit,
    }
    with ExitStack() as stack:
        with collector_paused():  # the imports of a batch (Prefect, torch, the methods)
            if use_prefect:
                from flows.prefect_client import temporary_api

                # A temporary server boots beside the imports and checks below.
                api_ready = stack.enter_context(temporary_api())
            spec = _stylize_spec(experiment, given)
            _import_for(spec.methods, use_prefect)
        if use_prefect:
            from flows.pipeline import stylize_nightly

            api_ready()
            result = stylize_nightly(spec.model_dump(), data_dir=st.data_dir)
        else:
            result = _stylize_directly(st, spec)
    console.print(result)


def _stylize_spec(experiment: Path | None, given: dict) -> Any:
    """The experiment that ``stylize`` runs, every setting validated before anything runs."""
    from flows.specs import ExperimentSpec, SpecError, expand_configs, load_spec

    try:
        if experiment is not None:
            spec = load_spec(experiment, ExperimentSpec)
            spec = load_spec(experiment_overrides(spec.model_dump(), given), ExperimentSpec)
        else:
            spec = load_spec(experiment_overrides(_one_config_experiment(), given), ExperimentSpec)
        expand_configs(spec, experiment)
    except SpecError as exc:
        raise fail(str(exc)) from None
    return spec


def _import_for(methods: Sequence[str], use_prefect: bool) -> None:
    """Import what a batch of ``methods`` runs (else imported when its first item loads), and
    with Prefect what its engine imports as a flow starts (0.1 s on 2 cores): all of it while a
    temporary API server, where one starts, boots beside the command."""
    import PIL.PngImagePlugin  # noqa: F401 - the first picture read or written
    import threadpoolctl  # noqa: F401

    import flows.batch  # noqa: F401
    import styletransfer.quality  # noqa: F401
    from styletransfer import method_spec

    for name in methods:
        try:
            method_spec(name).function()
        except Exception:  # noqa: BLE001 - a method that cannot load fails its runs, recorded
            pass
    if use_prefect:
        import fastapi.encoders  # noqa: F401 - how the engine serialises a flow's parameters
        import prefect.artifacts  # noqa: F401
        import prefect.flow_engine  # noqa: F401
        import prefect.task_engine  # noqa: F401

        import flows.pipeline  # noqa: F401


def _one_config_experiment() -> dict:
    """What ``stylize`` runs without --experiment before its options apply: the default
    method at the config's defaults (``TransferConfig``), the spec's batch size, every pair."""
    return {
        "name": "cli",
        "methods": [TransferConfig.method],
        "settings": {},
        "grid": {},
        "pairs": {"limit": None},
    }


def experiment_overrides(spec: dict, given: dict) -> dict:
    """An experiment (as a mapping) with the stylize options that were given applied over it.

    A setting the experiment varies in its grid cannot be fixed by an option: a SpecError says
    so rather than silently running something else.
    """
    from flows.specs import SpecError

    spec = {**spec, "settings": dict(spec["settings"]), "pairs": dict(spec["pairs"])}
    if given.get("method"):
        spec["methods"] = list(given["method"])
    for key in STYLIZE_SETTINGS:
        if given.get(key) is None:
            continue
        option = "--" + key.replace("_", "-")
        if key in spec["grid"]:
            raise SpecError(
                f"{option} {given[key]} conflicts with experiment {spec['name']!r}, whose grid "
                f"varies {key} over {spec['grid'][key]}: remove {key} from the grid or drop "
                f"{option}"
            )
        spec["settings"][key] = given[key]
    if given.get("batch_size") is not None:
        spec["batch_size"] = given["batch_size"]
    if given.get("limit") is not None:
        spec["pairs"]["limit"] = given["limit"]
    return spec


def _stylize_directly(st, spec) -> dict:
    """The body of the stylize-nightly flow without Prefect: the same plain functions."""
    from flows.batch import finish_experiment, plan_experiment, stylize_claimed
    from stylebench.cli.common import progress

    store = st.store()
    night = plan_experiment(store, spec)
    with progress(quiet=st.verbosity < 0) as bar:
        task = bar.add_task("stylising", total=len(night.items))
        done = 0
        for batch in night.batches:
            stylize_claimed(store, batch, on_item=lambda *_: bar.advance(task))
            done += len(batch)  # items another worker held count as handled
            bar.update(task, completed=done)
    result, _ = finish_experiment(store, night)
    return result


def report(
    ctx: typer.Context,
    output: Path = typer.Option(
        Path("stylebench-report"),
        "--output",
        "-o",
        help="Directory for index.html, a page per experiment and their assets "
        "[default: ./stylebench-report].",
    ),
    experiment: list[str] = typer.Option(
        None,
        "--experiment",
        "-e",
        help="An experiment to report: its name (the runs recorded under it) or its YAML file "
        "(the runs of its settings, whichever experiment recorded them); repeat to compare "
        "several [default: the experiments of the latest runs].",
    ),
    where: str = typer.Option(
        None,
        "--where",
        help="Only runs meeting this SQL condition on the runs table's columns, e.g. "
        "\"method = 'gatys' and width >= 256\" (read-only, like `stylebench query`).",
    ),
    limit: int = typer.Option(
        200,
        min=1,
        help="Latest runs in the gallery (and, without --experiment, in the report) "
        "[default: 200].",
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="Overwrite an index.html that an earlier report did not write "
        "(an earlier report in the folder is always replaced).",
    ),
) -> None:
    """Write a static HTML report: a page per experiment (its runs side by side, a summary per
    setting, time, quality and loss plots), loss matrices compared across networks, a gallery.

    An earlier report in the folder is replaced (and the command says so).
    Any other index.html there is kept unless --force.
    """
    from flows.report import build_report
    from stylebench.cli.common import escaped
    from stylebench.cli.output import check_report_folder, mark_report_folder

    replacing = check_report_folder(output, force)
    result = build_report(
        settings(ctx).store(), output, limit=limit, experiments=experiment or (), where=where
    )
    mark_report_folder(output)
    verb = "replaced the report" if replacing else "report"
    console.print(
        f"{verb} with {result.runs} run(s), {len(result.pages)} experiment page(s) and "
        f"{result.plots} plot(s): {escaped(result.index)}"
    )
    for page in result.pages:
        console.print(f"  {escaped(page.name)}", highlight=False)


def demo(
    ctx: typer.Context,
    output: Path = typer.Option(
        Path("stylebench-report"),
        "--output",
        "-o",
        help="Report directory [default: ./stylebench-report].",
    ),
    size: int = typer.Option(
        128,
        help="Output size of gatys and dpst in pixels "
        "[default: 128; photo-fast runs at 256 and 512, fast at 256].",
    ),
    steps: int = typer.Option(50, help="Steps per gatys and dpst run [default: 50]."),
    open_report: bool = typer.Option(
        False,
        "--open",
        help="Open the experiment's page in a web browser at the end, where there is one.",
    ),
) -> None:
    """The whole pipeline offline on photos shipped with scikit-image: import, curate, pair,
    train a small fast network, stylise with every method, record, report."""
    from flows.demo import run_demo
    from stylebench.cli.output import check_report_folder, mark_report_folder

    check_report_folder(output, force=False)  # an earlier report is replaced, nothing else
    run_demo(
        settings(ctx).data_dir,
        output,
        size=size,
        steps=steps,
        open_report=open_report,
        console=console,
    )
    mark_report_folder(output)  # `stylebench report -o` may replace it later


def register(app: typer.Typer) -> None:
    app.command("build-dataset")(build_dataset)
    app.command(cls=variadic_command({"--style-weights": "numbers"}))(pair)
    app.command()(stylize)
    app.command()(report)
    app.command()(demo)
