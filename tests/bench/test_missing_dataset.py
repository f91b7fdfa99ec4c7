"""The benchmarks that read the DPST pairs say so and go on where the pairs are missing."""

from __future__ import annotations

import importlib

import pytest

from bench import update_results


@pytest.mark.parametrize(
    "name", ["bench_photo", "bench_photo_nomask", "bench_scoring", "bench_throughput"]
)
def test_a_section_without_the_pairs_says_where_it_looked_and_what_to_set(
    name, tmp_path, monkeypatch
):
    missing = tmp_path / "no-pairs"
    monkeypatch.setenv("STYLEBENCH_DPST_DIR", str(missing))
    module = importlib.import_module(f"bench.{name}")
    text = module.run(quick=True)
    assert text.startswith(module.SECTION + "\n")
    assert f"({missing} is missing): this section did not run" in text
    assert "STYLEBENCH_DPST_DIR" in text and "inN.png" in text
    # The other sections of the results file are left as they were.
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\n## Another section\n\nkept\n")
    update_results(text, module.SECTION, results)
    assert "kept" in results.read_text() and "did not run" in results.read_text()
