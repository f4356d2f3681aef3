"""The benchmark runs and prints its tables (times are measured there, never asserted here)."""

from tinygrad_cnn import bench


def test_quick_bench_prints_every_table(capsys):
    bench.main(["--quick", "--repeats", "1", "--dtype", "float64"])
    out = capsys.readouterr().out
    for heading in ("GFLOP/s", "loop reference", "working = peak less output", "graph overhead", "chain of n ops"):
        assert heading in out
    assert "W2" in out and "conv2d" in out and "max_pool2d" in out and "avg_pool2d" in out


def test_interleaved_medians_time_each_function(monkeypatch):
    calls = []
    medians = bench.interleaved_medians([lambda: calls.append("a"), lambda: calls.append("b")], repeats=3)
    assert len(medians) == 2 and all(m >= 0 for m in medians)
    assert calls == ["a", "a", "b", "b"] * 3  # in turn, each timed call after an untimed one
