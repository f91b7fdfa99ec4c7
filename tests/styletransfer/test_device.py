"""Threads while a transfer runs: numpy's and scipy's BLAS held to one, torch's left be."""

from __future__ import annotations

import numpy as np
import scipy.linalg  # noqa: F401 - scipy's own BLAS loaded too, as the methods load it
from PIL import Image
from threadpoolctl import threadpool_info, threadpool_limits

from styletransfer import TransferConfig, transfer
from styletransfer.device import single_threaded_blas


def _blas_threads() -> set[int]:
    return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}


def test_single_threaded_blas_holds_every_loaded_blas_to_one_thread():
    with threadpool_limits(limits=2, user_api="blas"):  # set back as the test ends
        assert _blas_threads() == {2}
        assert len([lib for lib in threadpool_info() if lib["user_api"] == "blas"]) >= 1
        single_threaded_blas.cache_clear()
        single_threaded_blas()
        assert _blas_threads() == {1}


def test_a_transfer_runs_its_method_with_one_blas_thread(monkeypatch):
    import styletransfer.methods.photo_fast as photo_fast

    seen: list[set[int]] = []
    real = photo_fast.rgb_to_lab

    def spy(*args, **kwargs):
        seen.append(_blas_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(photo_fast, "rgb_to_lab", spy)
    rng = np.random.default_rng(0)
    content = Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    style = Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8))
    single_threaded_blas.cache_clear()  # as in a new process
    with threadpool_limits(limits=2, user_api="blas"):
        config = TransferConfig(method="photo-fast", size=64, device="cpu", extra={"semantic": 0})
        result = transfer(content, style, config)
        assert result.status == "ok", result.error
        assert seen, "photo-fast read no colours"
        assert all(threads == {1} for threads in seen), seen
