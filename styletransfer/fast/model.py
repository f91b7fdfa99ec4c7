"""Saving and loading feed-forward models and training checkpoints: safetensors plus JSON."""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from styletransfer.fast.config import TrainConfig
from styletransfer.fast.network import NetworkSpec, TransformerNet

FORMAT = "stylebench-fast/1"
WEIGHTS_FILE = "model.safetensors"
META_FILE = "model.json"
CHECKPOINT_DIR = "checkpoints"
_CHECKPOINT_RE = re.compile(r"step-(\d{8})\.json\Z")


class FastModelError(ValueError):
    """A feed-forward model or checkpoint cannot be used (bad input: the message says why)."""


class ModelNotFound(FastModelError):
    """No model under the given name or path."""


class CorruptModel(FastModelError):
    """A model or checkpoint file is damaged or not in the expected format."""


class CheckpointMismatch(FastModelError):
    """A checkpoint belongs to a different training setup than the one asked for."""


@dataclass(frozen=True)
class StyleInfo:
    """One style of a model: a readable label and the sha256 of the style image's bytes."""

    label: str
    sha256: str


@dataclass(frozen=True)
class ModelMeta:
    """Everything needed to know what a model is and how it was trained."""

    name: str
    network: NetworkSpec
    styles: tuple[StyleInfo, ...]
    training: TrainConfig
    steps: int
    dataset_fingerprint: str
    dataset_size: int
    feature_weights: str = ""  # where the loss network's weights came from
    final_losses: Mapping[str, float] = field(default_factory=dict)
    curve: tuple[Mapping[str, float], ...] = ()
    created_at: str = ""

    def __post_init__(self) -> None:
        if len(self.styles) != self.network.num_styles:
            raise ValueError(
                f"the network holds {self.network.num_styles} style(s) but "
                f"{len(self.styles)} style(s) are described"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "name": self.name,
            "network": self.network.to_dict(),
            "styles": [{"label": s.label, "sha256": s.sha256} for s in self.styles],
            "feature_model": self.training.feature_model,
            "feature_weights": self.feature_weights,
            "content_layers": list(self.training.content_layers),
            "style_layers": list(self.training.style_layers),
            "layer_weights": self.training.layer_weights(),
            "training": self.training.to_dict(),
            "steps": self.steps,
            "dataset_fingerprint": self.dataset_fingerprint,
            "dataset_size": self.dataset_size,
            "final_losses": dict(self.final_losses),
            "curve": [dict(c) for c in self.curve],
            "created_at": self.created_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelMeta:
        return cls(
            name=str(data["name"]),
            network=NetworkSpec.from_dict(dict(data["network"])),
            styles=tuple(StyleInfo(str(s["label"]), str(s["sha256"])) for s in data["styles"]),
            training=TrainConfig.from_dict(dict(data["training"])),
            steps=int(data["steps"]),
            dataset_fingerprint=str(data["dataset_fingerprint"]),
            dataset_size=int(data["dataset_size"]),
            feature_weights=str(data.get("feature_weights", "")),
            final_losses={k: float(v) for k, v in dict(data.get("final_losses", {})).items()},
            curve=tuple(dict(c) for c in data.get("curve", ())),
            created_at=str(data.get("created_at", "")),
        )


@dataclass
class FastModel:
    """A loaded model: the network (in eval mode) and its metadata."""

    net: TransformerNet
    meta: ModelMeta
    path: Path


def dataset_fingerprint(items: Iterable[str]) -> str:
    """sha256 over the sorted, de-duplicated image ids (or paths) a model was trained on."""
    digest = hashlib.sha256()
    for item in sorted(set(items)):
        digest.update(item.encode())
        digest.update(b"\n")
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex}-{path.name}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    _write_atomic(path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptModel(
            f"{what} metadata {path} cannot be read ({exc}); delete {path.parent} and train again"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise CorruptModel(
            f"{path} is not a stylebench fast-model file (format {found!r}, expected {FORMAT!r})"
        )
    return data


def _read_tensors(path: Path, expected_sha256: str, what: str) -> dict[str, torch.Tensor]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CorruptModel(f"{what} weights {path} cannot be read: {exc}") from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256:
        raise CorruptModel(
            f"{what} weights {path} are corrupt: sha256 {actual[:12]}... does not match the "
            f"{expected_sha256[:12]}... recorded in its metadata; delete it (and its .json) "
            "and resume from an earlier checkpoint or train again"
        )
    try:
        return st_load(data)
    except (SafetensorError, ValueError) as exc:
        raise CorruptModel(
            f"{what} weights {path} are not a valid safetensors file: {exc}"
        ) from None


def _load_net_state(net: TransformerNet, tensors: Mapping[str, torch.Tensor], path: Path) -> None:
    state = {k[len("net.") :]: v for k, v in tensors.items() if k.startswith("net.")}
    expected = net.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:5])}")
        if unexpected:
            parts.append(f"unexpected {', '.join(unexpected[:5])}")
        if wrong:
            parts.append(
                "wrong shape for "
                + ", ".join(
                    f"{k} {tuple(state[k].shape)} != {tuple(expected[k].shape)}" for k in wrong[:5]
                )
            )
        raise CorruptModel(
            f"weights in {path} do not fit the network described by their metadata: "
            + "; ".join(parts)
        )
    net.load_state_dict(state, strict=True)


# Models --------------------------------------------------------------------------------------


def save_model(directory: str | os.PathLike[str], net: TransformerNet, meta: ModelMeta) -> Path:
    """Write ``model.safetensors`` and ``model.json`` (with the weights' sha256) to a folder."""
    if net.spec != meta.network:
        raise ValueError(f"network spec {net.spec} differs from the metadata's {meta.network}")
    directory = Path(directory)
    tensors = {f"net.{k}": v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    blob = st_save(tensors, metadata={"format": FORMAT})
    _write_atomic(directory / WEIGHTS_FILE, blob)
    payload = meta.to_dict()
    payload["weights_sha256"] = hashlib.sha256(blob).hexdigest()
    _write_json(directory / META_FILE, payload)
    return directory


def resolve_model(
    name_or_path: str | os.PathLike[str], models_dir: str | os.PathLike[str] | None = None
) -> Path:
    """The directory of a model given as a path (directory or its model.json) or a name."""
    candidates = []
    given = Path(name_or_path)
    candidates.append(given.parent if given.name == META_FILE else given)
    if models_dir is not None and given.name == str(name_or_path):
        candidates.append(Path(models_dir) / str(name_or_path))
    for candidate in candidates:
        if (candidate / META_FILE).is_file():
            return candidate
    searched = ", ".join(str(c) for c in candidates)
    available = ""
    if models_dir is not None and Path(models_dir).is_dir():
        names = sorted(p.parent.name for p in Path(models_dir).glob(f"*/{META_FILE}"))
        available = (
            f"; models available: {', '.join(names)}" if names else "; no models trained yet"
        )
    elif models_dir is None and given.name == str(name_or_path):
        available = "; to find a model by name, pass the models directory (Runtime(models_dir=))"
    raise ModelNotFound(
        f"no fast model {str(name_or_path)!r} (looked for {META_FILE} in {searched}){available}. "
        "Train one with `stylebench train-fast --style IMAGE --name NAME`."
    )


def _read_meta(directory: Path) -> tuple[ModelMeta, str]:
    data = _read_json(directory / META_FILE, "model")
    try:
        return ModelMeta.from_dict(data), str(data["weights_sha256"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptModel(f"model metadata {directory / META_FILE} is invalid: {exc}") from None


def read_meta(directory: str | os.PathLike[str]) -> ModelMeta:
    """The metadata of the model in ``directory`` (its model.json), without loading weights."""
    return _read_meta(Path(directory))[0]


def load_model(
    name_or_path: str | os.PathLike[str],
    models_dir: str | os.PathLike[str] | None = None,
    device: torch.device | str | None = None,
) -> FastModel:
    """Load a model by path or by name under ``models_dir``; checks checksum and shapes."""
    directory = resolve_model(name_or_path, models_dir)
    meta, expected_sha = _read_meta(directory)
    tensors = _read_tensors(directory / WEIGHTS_FILE, expected_sha, "model")
    net = TransformerNet(meta.network)
    _load_net_state(net, tensors, directory / WEIGHTS_FILE)
    net.eval().requires_grad_(False)
    if device is not None:
        net.to(device)
    return FastModel(net=net, meta=meta, path=directory)


# Checkpoints ---------------------------------------------------------------------------------


def checkpoint_paths(directory: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """(step, json path) of the complete checkpoints under ``directory``, oldest first."""
    root = Path(directory) / CHECKPOINT_DIR
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        match = _CHECKPOINT_RE.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def save_checkpoint(
    directory: str | os.PathLike[str],
    step: int,
    net: TransformerNet,
    optimizer: torch.optim.Optimizer,
    resume_key: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
    keep: int = 2,
) -> Path:
    """Write the network and optimiser state at ``step``; keep the newest ``keep`` checkpoints.

    The weights are written first and the JSON last, so a checkpoint whose JSON exists is
    complete: an interruption mid-write leaves the previous checkpoint as the latest.
    """
    root = Path(directory) / CHECKPOINT_DIR
    tensors = {f"net.{k}": v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    opt = optimizer.state_dict()
    plain_state: dict[str, dict[str, Any]] = {}
    for idx, state in opt["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                plain_state.setdefault(str(idx), {})[key] = value
    blob = st_save(tensors, metadata={"format": FORMAT})
    stem = f"step-{step:08d}"
    _write_atomic(root / f"{stem}.safetensors", blob)
    _write_json(
        root / f"{stem}.json",
        {
            "format": FORMAT,
            "step": step,
            "weights_sha256": hashlib.sha256(blob).hexdigest(),
            "resume_key": dict(resume_key),
            "optimizer_param_groups": opt["param_groups"],
            "optimizer_plain_state": plain_state,
            "extra": dict(extra or {}),
        },
    )
    for _, old_json in checkpoint_paths(directory)[:-keep]:
        old_json.unlink(missing_ok=True)
        old_json.with_suffix(".safetensors").unlink(missing_ok=True)
    return root / f"{stem}.json"


def _differences(
    found: Mapping[str, Any], wanted: Mapping[str, Any], prefix: str = ""
) -> list[str]:
    out = []
    for key in sorted(set(found) | set(wanted)):
        a, b = found.get(key), wanted.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out.extend(_differences(a, b, f"{prefix}{key}."))
        elif a != b:
            out.append(f"{prefix}{key}: checkpoint {a!r}, now {b!r}")
    return out


def load_checkpoint(
    json_path: str | os.PathLike[str],
    net: TransformerNet,
    optimizer: torch.optim.Optimizer,
    resume_key: Mapping[str, Any],
) -> tuple[int, dict[str, Any]]:
    """Restore ``net`` and ``optimizer`` from a checkpoint; returns (step, extra).

    Raises CheckpointMismatch when the checkpoint was made for another setup (styles, dataset,
    network, layers, loss weights ...) and CorruptModel when its files are damaged.
    """
    json_path = Path(json_path)
    data = _read_json(json_path, "checkpoint")
    wanted = json.loads(json.dumps(dict(resume_key)))  # the JSON round trip the stored key had
    found = data.get("resume_key", {})
    diffs = _differences(found, wanted)
    if diffs:
        raise CheckpointMismatch(
            f"checkpoint {json_path} was made for a different training setup ("
            + "; ".join(diffs[:6])
            + (" ..." if len(diffs) > 6 else "")
            + f"). Train under another --name, or start over with --restart (deletes "
            f"{json_path.parent})."
        )
    try:
        step = int(data["step"])
        tensors = _read_tensors(
            json_path.with_suffix(".safetensors"), str(data["weights_sha256"]), "checkpoint"
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptModel(f"checkpoint metadata {json_path} is invalid: {exc}") from None
    _load_net_state(net, tensors, json_path.with_suffix(".safetensors"))
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    for idx, values in data.get("optimizer_plain_state", {}).items():
        state.setdefault(int(idx), {}).update(values)
    try:
        optimizer.load_state_dict({"state": state, "param_groups": data["optimizer_param_groups"]})
    except (KeyError, ValueError, RuntimeError) as exc:
        raise CorruptModel(f"optimiser state in {json_path} does not fit: {exc}") from None
    return step, dict(data.get("extra", {}))
