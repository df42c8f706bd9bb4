"""`kvtool bench`'s plot, drawn from results shaped as the GPU run writes them (the run itself needs a GPU)."""

from __future__ import annotations

from kvtool import bench
from kvtool.bench import plot


def test_the_plot_has_a_panel_per_part_measured_and_none_for_the_check_alone(tmp_path):
    row = lambda name, context, **values: {"format": name, "context": context, "batch": 1, **values}  # noqa: E731
    results = {
        "attention": [row("kivi2", 4096, us=20.0), row("kivi2", 8192, us=35.0)],
        "e2e": {"throughput": [row("kivi2", 8192, **{"tokens/s": 900.0})],
                "latency": [row("kivi2", 8192, **{"ms/step": 9.6}), row("HF quanto int4", 8192, error="missing")],
                "longest": [row("kivi2", 2_560_000, **{"longest context decoded": 2_560_000})]},
    }
    assert plot(results, tmp_path / "bench.png")
    import matplotlib.image

    height, width, _ = matplotlib.image.imread(tmp_path / "bench.png").shape
    assert width > 5 * height  # four panels side by side: attention at batch 1, throughput, latency, longest
    assert not plot({"check": {"kivi2 2x5000": 6e-4}}, tmp_path / "check.png")
    assert not (tmp_path / "check.png").exists()
