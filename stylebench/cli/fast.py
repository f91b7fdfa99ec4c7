"""The ``train-fast`` command: train a multi-style feed-forward network on the content images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from stylebench.cli.common import console, err_console, fail, progress, settings, variadic_command
from stylebench.cli.settings import config_options, given, variadic_forms
from styletransfer.fast.config import TrainConfig

# Flags of TrainConfig's fields beside --the-field-name.
TRAIN_FLAGS = {"batch_size": ("--batch-size", "-b"), "feature_model": ("--feature-model", "-f")}


@config_options(TrainConfig, flags=TRAIN_FLAGS)
def train_fast(
    ctx: typer.Context,
    style: list[str] = typer.Option(
        ...,
        "--style",
        "-s",
        help="A style image: a file or a "
        "catalog image id (prefix). Repeat for a multi-style network.",
    ),
    name: str = typer.Option(
        None,
        "--name",
        "-n",
        help="Model name under models/ (default: the style labels joined by '+').",
    ),
    content_dir: Path = typer.Option(
        None,
        "--content-dir",
        help="Train on the images in this folder (default: the catalog's accepted content images).",
    ),
    weights: str = typer.Option(
        None,
        help="Feature-network weights: a local file or "
        "'torchvision' (default: vgg19's bundled weights).",
    ),
    restart: bool = typer.Option(
        False,
        "--restart",
        help="Delete this model's checkpoints and start over instead of resuming.",
    ),
    device: str = typer.Option("auto", help="auto, cpu, cuda or mps."),
    **training: Any,
) -> None:
    """Train a feed-forward network (Johnson et al. 2016) for one or more styles (conditional
    instance norm, Dumoulin et al. 2017). Checkpoints regularly; rerun the same command to
    resume after an interruption. The model lands in models/NAME of the data directory. Every
    setting of TrainConfig is an option; those left out take its defaults."""
    from flows.training import content_images, resolve_styles, train_on_catalog
    from storage import check_model_name
    from styletransfer.device import select_device
    from styletransfer.fast.model import FastModelError
    from styletransfer.fast.train import ImageLoadError
    from styletransfer.features import WeightsUnavailable, default_layers

    opts = settings(ctx)
    store = opts.store()
    try:
        styles = resolve_styles(store, style)
        contents = content_images(store, content_dir)
        model_name = check_model_name(name or "+".join(styles.labels))
        config = TrainConfig(**given(TrainConfig, training))
        defaults = default_layers(config.feature_model)
        config = config.with_layers(defaults.content, defaults.style)
        torch_device = select_device(device)
    except ValueError as exc:
        raise fail(str(exc)) from None

    out_dir = store.models.training_dir(model_name)
    console.print(
        f"training [bold]{model_name}[/]: {len(styles.paths)} style(s), "
        f"{len(contents.paths)} content image(s), {config.steps} steps of "
        f"{config.batch_size} at {config.size} px on {torch_device}, "
        f"{config.feature_model} ({', '.join(config.content_layers)} | "
        f"{', '.join(config.style_layers)})"
    )
    last_step = [0]
    with progress(quiet=opts.verbosity < 0) as bar:
        task = bar.add_task(f"train {model_name}", total=config.steps)

        def on_step(info) -> None:
            last_step[0] = info.step
            loss = info.losses
            bar.update(
                task,
                completed=info.step,
                description=(
                    f"{model_name} loss {loss['total']:.3g} "
                    f"(c {loss['content']:.2g} s {loss['style']:.2g})"
                ),
            )

        try:
            result = train_on_catalog(
                store,
                styles,
                contents,
                model_name,
                config,
                weights=weights,
                device=device,
                resume=not restart,
                on_step=on_step,
            )
        except KeyboardInterrupt:
            err_console.print(_interrupted(out_dir, last_step[0], config.checkpoint_every))
            raise typer.Exit(130) from None
        except (
            FastModelError,
            ImageLoadError,
            FloatingPointError,
            WeightsUnavailable,
            ValueError,
        ) as exc:
            raise fail(str(exc)) from None
    meta = result.meta
    if result.resumed_from:
        console.print(f"resumed from step {result.resumed_from}")
    losses = ", ".join(f"{k} {v:.4g}" for k, v in meta.final_losses.items())
    console.print(
        f"[green]saved[/] {store.display(f'models/{model_name}')} after {meta.steps} "
        f"steps in {result.seconds:.0f} s; final losses: {losses}"
    )
    console.print(
        f"use it: stylebench transfer CONTENT -o OUT.png --method fast "
        f"--model {model_name}"
        + (
            f" --style-weights {' '.join(['1'] + ['0'] * (len(styles.paths) - 1))}"
            if len(styles.paths) > 1
            else ""
        )
    )


def _interrupted(out_dir: Path, step: int, every: int) -> str:
    """What an interruption of training kept, and how to go on."""
    from rich.markup import escape

    from styletransfer.fast.model import checkpoint_paths

    kept = checkpoint_paths(out_dir)
    if not kept:
        return (
            f"[yellow]interrupted at step {step}[/], before the first checkpoint (one every "
            f"{every} steps): nothing was kept; rerun the same command to start again"
        )
    last, _ = kept[-1]
    folder = escape(str(out_dir / "checkpoints"))
    return (
        f"[yellow]interrupted at step {step}[/]: the checkpoint of step {last} in {folder} "
        "is kept; rerun the same command to resume from it"
    )


def register(app: typer.Typer) -> None:
    app.command("train-fast", cls=variadic_command(variadic_forms(TrainConfig)))(train_fast)
