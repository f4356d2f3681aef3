"""The benchmark (benchmarks/bench.py, outside the package) runs and prints its tables (times are measured there,
never asserted here)."""

import os
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import ROOT, load_file

BENCH = ROOT / "benchmarks" / "bench.py"
bench = load_file(BENCH, "bench")


def test_runs_as_a_script_from_anywhere_without_pythonpath(tmp_path):
    """`python benchmarks/bench.py` finds the clone's package itself (the test venv does not install it)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, str(BENCH), "--help"], capture_output=True, text=True, cwd=tmp_path,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for option in ("--quick", "--dtype", "--work", "--runs", "--repeats", "--threads", "--clock", "--profile"):
        assert option in proc.stdout


@pytest.mark.slow  # the benchmark
@pytest.mark.parametrize("torch_importable", [True, False])
def test_quick_bench_prints_every_table(capsys, monkeypatch, torch_importable):
    if not torch_importable:  # a user's machine: the README's test command installs no torch
        monkeypatch.setitem(sys.modules, "torch", None)
    set_threads = []
    monkeypatch.setattr(bench, "set_num_threads", set_threads.append)  # the test process keeps its threads
    bench.main(["--quick", "--work", "W1", "depthwise", "--runs", "1", "--repeats", "1", "--dtype", "float64"])
    out = capsys.readouterr().out
    for heading in ("GFLOP/s", "of GEMM", "square 1024x1024 GEMM", "load average", "sum().backward()", "fastest",
                    "median", "training step", "digits CNN", "loop reference", "working = peak less output",
                    "graph overhead", "chain of n ops"):
        assert heading in out
    assert "W1" in out and "conv2d" in out and "max_pool2d" in out and "avg_pool2d" in out and "depthwise" in out
    assert len(set_threads) == 1  # ours on as many threads as PyTorch's (or its default without torch)


@pytest.mark.slow  # nine profiled steps of the CIFAR-sized CNN
def test_the_profile_option_prints_the_profilers_figures_only(capsys, monkeypatch):
    """README's command for the profiler's accuracy (tests/test_profile.py checks the same two figures)."""
    monkeypatch.setattr(bench, "set_num_threads", lambda n: None)
    bench.main(["--profile"])
    out = capsys.readouterr().out
    line = out.splitlines()[-1]
    assert line.startswith("profile() on the CIFAR-size CNN m=32, forward+backward: the ops add up to ")
    assert "of the profiled wall time (median of 9 runs, " in line and "tracemalloc sees the forward's graph" in line
    assert "GFLOP/s" not in out


def test_the_cpu_clock_needs_one_thread(capsys, monkeypatch):
    monkeypatch.setattr(bench, "set_num_threads", lambda n: None)
    with pytest.raises(SystemExit):
        bench.main(["--clock", "cpu", "--threads", "2"])
    assert "--clock cpu needs --threads 1" in capsys.readouterr().err


def test_the_conv_only_rows_run_dilation_and_groups_in_both_libraries():
    pytest.importorskip("torch")
    for name in ("depthwise", "dilated", "grouped"):
        spec = bench.WORKLOADS[name]._replace(x=(2, 9, 9, bench.WORKLOADS[name].x[3]))
        data = bench.make_data(spec, np.float64)
        ours, theirs = bench.our_cases(data, spec), bench.torch_cases(data, spec)
        assert list(ours) == ["conv2d"]
        np.testing.assert_allclose(ours["conv2d"][0]().data,
                                   theirs["conv2d"][0]().detach().numpy().transpose(0, 2, 3, 1), rtol=1e-10)


def test_interleaved_medians_time_each_function(monkeypatch):
    calls = []
    medians = bench.interleaved_medians([lambda: calls.append("a"), lambda: calls.append("b")], repeats=3)
    assert len(medians) == 2 and all(m >= 0 for m in medians)
    assert calls == ["a", "a", "b", "b"] * 3  # in turn, each timed call after an untimed one


def test_train_step_runs_the_same_network_in_both_libraries():
    pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 8, 8, 1)).astype(np.float32)
    y = rng.integers(0, 10, 4)
    model = bench.digits_cnn(rng)
    ours, theirs = bench.our_train_step(model, x, y), bench.torch_train_step(model, x, y)
    np.testing.assert_allclose(ours(), theirs(), rtol=1e-5)  # same weights and data: the same first loss
    np.testing.assert_allclose(ours(), theirs(), rtol=1e-3)  # and after one Adam step each


def test_ours_and_torchs_conv_cases_agree():
    pytest.importorskip("torch")
    spec = bench.WORKLOADS["W1"]
    data = bench.make_data(spec, np.float64)
    ours, theirs = bench.our_cases(data, spec), bench.torch_cases(data, spec)
    for op in ours:
        np.testing.assert_allclose(ours[op][0]().data, theirs[op][0]().detach().numpy().transpose(0, 2, 3, 1),
                                   rtol=1e-10)


def test_conv_phase_split_names_each_phase():
    split = dict(bench.conv_phase_ms(bench.WORKLOADS["W1"], np.float32, repeats=1))
    assert list(split) == ["forward", "of it im2col", "dense(sum grad)", "dW", "dx", "db",
                           "whole f+b sum", "Tensor layer, rest"]
    assert all(np.isfinite(t) for t in split.values()) and split["whole f+b sum"] > 0
