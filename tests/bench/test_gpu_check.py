"""``make gpu-check`` in its tiny CPU mode: every part runs and the results file says so."""

from __future__ import annotations

import json

import pytest

from bench.gpu_check import main

PARTS = {
    "float64 Laplacian on the device",
    "warm-up (feature network, first allocations)",
    "gatys by size",
    "dpst by size",
    "photo-fast by size",
    "fast by size",
    "photo-fast at 4096 px",
    "fast: a batch of 4 against one by one",
    "gatys: a batch of 4 against one by one",
    "feed-forward images/s at 512 px",
    "autocast on and off (gatys)",
}


@pytest.mark.slow
def test_the_gpu_check_runs_every_part_in_its_tiny_cpu_mode(tmp_path):
    out = tmp_path / "check.json"
    assert main(["--cpu", "--tiny", "-o", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["mode"] == "tiny" and data["device"].startswith("cpu")
    parts = data["parts"]
    assert set(parts) == PARTS
    assert {name: p["status"] for name, p in parts.items()} == dict.fromkeys(PARTS, "ok")
    laplacian = parts["float64 Laplacian on the device"]["rows"][0]
    assert laplacian["x'Lx >= 0"] and laplacian["max abs(device - CPU)"] <= 1e-9
    for method in ("gatys", "dpst", "photo-fast", "fast"):
        rows = parts[f"{method} by size"]["rows"]
        assert rows and all(r["status"] == "ok" and r["seconds"] > 0 for r in rows)
    for row in parts["feed-forward images/s at 512 px"]["rows"]:
        assert row["float32 images/s"] > 0
    batched = parts["gatys: a batch of 4 against one by one"]["rows"][0]
    assert batched["batched images/s"] > 0 and batched["one by one images/s"] > 0
    markdown = out.with_suffix(".md").read_text()
    assert all(f"## {name}: ok" in markdown for name in PARTS)


def test_a_part_out_of_time_is_recorded_as_skipped_and_the_file_still_written(tmp_path):
    out = tmp_path / "check.json"
    assert main(["--cpu", "--tiny", "--timeout", "0", "-o", str(out)]) == 1
    parts = json.loads(out.read_text())["parts"]
    assert parts and all(p["status"] == "skipped" for p in parts.values())
    assert all("out of time" in p["error"] for p in parts.values())
