"""Benchmarks: each ``bench_<topic>.py`` has ``run(quick) -> str`` returning a markdown section."""
