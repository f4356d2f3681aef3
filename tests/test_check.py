"""tinygrad_cnn.check: the seed's own functions (its three bugs), the API (a function, a mapping, names, errors),
the cases, the mistakes' reference, report.plot() and the command line on a .py and an .ipynb."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_cnn
from tests.check_solutions import LOOPS, solutions, with_bug
from tests.helpers import ROOT
from tinygrad_cnn import check
from tinygrad_cnn.check import NAMES, Report, cases, mistakes, run
from tinygrad_cnn.check.analyse import find_line
from tinygrad_cnn.check.source import load, without_magics

SEED = ROOT / "examples" / "data" / "step_by_step_seed.py"


@pytest.fixture(scope="module")
def seed_reports():
    namespace, problems = load(SEED)
    assert problems == []
    return check(namespace)


# ----------------------------------------------------------------------------- the seed
def test_the_seed_passes_what_it_gets_right(seed_reports):
    assert list(seed_reports) == list(NAMES)
    for name in ("zero_pad", "pool_forward", "create_mask_from_window", "distribute_value"):
        assert seed_reports[name].ok, str(seed_reports[name])


def test_the_seed_conv_single_step_float_of_an_array_raises_on_numpy_2(seed_reports):
    report = seed_reports["conv_single_step"]
    assert report.tags == {"crash"} and not any(c.passed for c in report.cases)
    (crash,) = report.findings
    assert "TypeError" in crash.message and "`Z = Z + float(b)`" in crash.message and "write b.item()" in crash.message
    conv_forward = seed_reports["conv_forward"]  # it calls conv_single_step: the same line, and a note
    assert conv_forward.tags == {"crash"} and "in conv_single_step: `Z = Z + float(b)`" in str(conv_forward)
    assert conv_forward.notes == ["conv_forward calls your conv_single_step, which fails its own check: fix it first."]


def test_the_seed_conv_backward_breaks_at_pad_0(seed_reports):
    report = seed_reports["conv_backward"]
    assert report.tags == {"crash", "unpad"}
    failed = [c for c in report.cases if not c.passed]
    assert failed and all(c.hparameters["pad"] == 0 for c in failed)
    assert all(c.passed for c in report.cases if c.hparameters["pad"] > 0)
    crash, unpad = report.findings
    assert "ValueError" in crash.message and "da_prev_pad[pad:-pad, pad:-pad, :]" in crash.message
    assert "[pad:-pad], which is empty when pad = 0" in unpad.message and unpad.case.hparameters["pad"] == 0
    assert report.first_wrong is None  # it raised: no entry to compare


def test_the_seed_pool_backward_ignores_the_stride(seed_reports):
    report = seed_reports["pool_backward"]
    assert report.tags == {"stride_ignored", "mask_ties"} and not report.ok
    error = next(f for f in report.findings if f.severity == "error")
    assert "`vert_start = h`" in error.message and "h * stride" in error.message
    assert all(c.passed == (c.hparameters["stride"] == 1) for c in report.cases)
    entry = report.first_wrong
    assert entry.output == "dA_prev" and entry.case.hparameters["stride"] == 2
    assert "The mistake stride_ignored explains it" in entry.diagnosis


def test_readme_shows_the_seeds_pool_backward_report_as_printed(seed_reports):
    readme = (ROOT / "README.md").read_text()
    assert str(seed_reports["pool_backward"]) in readme


# ----------------------------------------------------------------------------- the API
def test_the_package_is_the_callable_and_a_module():
    import tinygrad_cnn.check as module
    from tinygrad_cnn import check as imported
    assert imported is module is tinygrad_cnn.check and callable(imported)
    fn = solutions("loops")["distribute_value"]
    assert isinstance(imported(fn), Report) and isinstance(module.check(fn), Report)
    assert module.Report is Report and "check" in tinygrad_cnn.__all__


def test_check_takes_the_name_from_the_function_or_name():
    mine = solutions("slicing")["pool_forward"]

    def my_pool(A_prev, hparameters, mode="max"):
        return mine(A_prev, hparameters, mode)
    report = check(my_pool, name="pool_forward")
    assert report.ok and report.name == "pool_forward"
    assert len(report.cases) == len(cases.pool_forward_cases())
    assert all(set(c.hparameters) == {"A_prev", "f", "stride", "mode"} for c in report.cases)


@pytest.mark.parametrize("call, error, words", [
    (lambda: check(lambda x: x), ValueError, ["'<lambda>' is not one of the notebook's functions", "name="]),
    (lambda: check(len, name="conv_fwd"), ValueError, ["'conv_fwd'", "conv_forward"]),
    (lambda: check(42), TypeError, ["a function or a mapping", "int"]),
    (lambda: check({}, name="zero_pad"), TypeError, ["name= goes with a function"]),
])
def test_check_errors_name_what_is_wrong(call, error, words):
    with pytest.raises(error) as info:
        call()
    for word in words:
        assert word in str(info.value)


def test_the_mapping_form_checks_the_notebook_names_it_holds():
    namespace = {"conv_forward": solutions("loops")["conv_forward"], "zero_pad": solutions("loops")["zero_pad"],
                 "conv_single_step": with_bug("loops", "conv_single_step", "Z = Z + b.item()", "Z = Z"),
                 "helper": len, "pool_backward": 3, "np": np}
    reports = check(namespace)
    assert list(reports) == ["zero_pad", "conv_single_step", "conv_forward"]  # the notebook's order; 3 not callable
    assert reports["zero_pad"].ok and reports["conv_single_step"].tags == {"bias_missing"}
    assert reports["conv_forward"].ok  # it calls its own module's conv_single_step, which is right
    assert check({}) == {}


def test_a_failing_function_notes_the_failing_helper_it_calls():
    learner = with_bug("loops", "distribute_value", "average = dz / (n_H * n_W)", "average = dz / n_H")
    reports = check(learner.__globals__)  # the learner's whole module, this bug in it
    assert reports["distribute_value"].tags == {"average_divisor"}
    assert reports["pool_backward"].tags == {"average_divisor", "mask_ties"}  # through the helper, exactly
    assert reports["pool_backward"].notes == ["pool_backward calls your distribute_value, which fails its own check: "
                                              "fix it first."]
    assert reports["conv_backward"].ok and not reports["conv_backward"].notes


def test_the_learners_arrays_are_never_the_cases_own():
    seen = []

    def zero_pad(X, pad):
        seen.append(X)
        X += 1.0  # the learner's in-place change must not reach the next run
        return np.pad(X - 1.0, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    first, second = check(zero_pad), check(zero_pad)
    assert first.tags == second.tags == {"mutates_input"}
    assert all(x is not c.args[0] for x in seen for c in cases.zero_pad_cases())
    assert "X" in first.findings[0].message


def test_a_mistakes_line_is_found_in_code_not_in_a_comment():
    """find_line names the line whose code makes the mistake: a trailing comment that quotes the pattern (the notebook's
    hint X[pad:-pad]) is not code; a '#' inside a string does not start a comment."""
    def conv_backward(dA_prev_pad, pad):
        mark = "#"  # the hint: use X[pad:-pad, pad:-pad, :]
        dA_prev = dA_prev_pad[:, pad:-pad, pad:-pad, :]  # the cut
        return dA_prev, mark
    found = find_line(conv_backward, r"\[\s*:\s*,\s*pad\s*:\s*-\s*pad")
    assert "`dA_prev = dA_prev_pad[:, pad:-pad, pad:-pad, :]  # the cut`" in found
    assert "`dA_prev = dA_prev_pad" in find_line(conv_backward, r"\[\s*pad\s*:\s*-\s*pad|pad:-pad, :\]")
    assert find_line(conv_backward, r"the hint") == ""


def test_a_learners_sys_exit_is_a_crash_not_the_end_of_the_check():
    """sys.exit() inside the learner's function is reported as a crash (SystemExit) on every case; KeyboardInterrupt
    (Ctrl-C) still stops the check."""
    def zero_pad(X, pad):
        sys.exit("done")
    report = check(zero_pad)
    assert report.tags == {"crash"} and not any(c.passed for c in report.cases)
    assert "zero_pad raised SystemExit: done at test_check.py" in report.findings[0].message

    def interrupted(X, pad):
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        check(interrupted, name="zero_pad")


def test_the_cached_cases_and_expected_arrays_are_read_only():
    """A learner poking at report.cases[n].expected (or a case's arguments) cannot corrupt the next checks."""
    zero_pad = solutions("loops")["zero_pad"]
    first = check(zero_pad)
    with pytest.raises(ValueError, match="read-only"):
        first.cases[0].expected[0][0][...] = 0
    with pytest.raises(ValueError, match="read-only"):
        cases.conv_backward_cases()[0].args[1][0][...] = 0  # the cache's A_prev
    assert all(a.flags.writeable for a in first.cases[0].args if isinstance(a, np.ndarray))  # the learner's copies
    assert check(zero_pad).ok and check(solutions("loops")["conv_backward"]).ok


def test_a_wrong_return_value_says_what_the_notebook_returns():
    def conv_forward(A_prev, W, b, hparameters):
        return solutions("slicing")["conv_forward"](A_prev, W, b, hparameters)[0]  # forgot the cache
    report = check(conv_forward)
    assert report.tags == {"shape"}
    assert "returned an array of shape (2, 3, 4, 8); the notebook's returns (Z, cache)" in report.findings[0].message


def test_outputs_returned_in_another_order_are_named_as_swapped():
    def conv_backward(dZ, cache):
        dA_prev, dW, db = solutions("slicing")["conv_backward"](dZ, cache)
        return dW, dA_prev, db  # the notebook returns (dA_prev, dW, db)
    report = check(conv_backward)
    assert not report.ok and report.tags == {"shape"}
    messages = " ".join(f.message for f in report.findings)
    assert "yours has the shape of dW (the notebook returns dA_prev, dW, db in that order)" in messages
    assert "yours has the shape of dA_prev (the notebook returns dA_prev, dW, db in that order)" in messages


def test_a_missing_return_is_said():
    def distribute_value(dz, shape):
        np.ones(shape) * dz / (shape[0] * shape[1])
    (finding,) = check(distribute_value).findings
    assert finding.tag == "shape" and "returned None (is the return statement missing?)" in finding.message


# ----------------------------------------------------------------------------- the cases and the mistakes
def test_the_cases_cover_the_known_bugs():
    conv = [c.hparameters for c in cases.conv_backward_cases()]
    assert any(h["pad"] == 0 for h in conv) and any(h["stride"] > 1 for h in conv)
    shapes = [eval(h["A_prev"]) + eval(h["W"]) + (h["stride"],) for h in conv]
    assert any(s[8] < s[4] for s in shapes) and any(s[8] > s[4] for s in shapes)  # overlapping windows and gaps
    assert any(s[1] != s[2] for s in shapes) and any(s[0] == 1 and s[3] == 1 for s in shapes)
    pool = [c for c in cases.pool_backward_cases()]
    assert any(c.ties for c in pool) and any(c.hparameters["f"] > c.hparameters["stride"] > 1 for c in pool)
    assert any(c.hparameters["stride"] > c.hparameters["f"] for c in pool)
    assert cases.conv_backward_cases()[0].label == "the notebook's (dZ = Z)"
    for name, spec in cases.SPECS.items():
        assert spec.cases()[0].label.startswith("the notebook's"), name
        for n in range(len(spec.cases())):
            for alternative in cases.expected(name, n):
                assert all(a.dtype == np.float64 for a in alternative)


def test_the_notebooks_cases_give_the_numbers_the_notebook_prints():
    (Z,) = cases.expected("conv_forward", 0)[0]
    assert np.isclose(Z.mean(), 0.5511276474566768, rtol=0, atol=1e-12)
    dA, dW, db = cases.expected("conv_backward", 0)[0]
    assert [round(float(v.mean()), 11) for v in (dA, dW, db)] == [1.45243777754, 1.72699145831, 7.83923256462]
    (Z,) = cases.expected("conv_single_step", 0)[0]
    assert np.isclose(Z, -6.999089450680221, rtol=0, atol=1e-12)


def test_check_leaves_numpys_global_random_state_alone():
    for spec in cases.SPECS.values():
        spec.cases.cache_clear()  # so the cases are built again, inside this test
    cases.expected.cache_clear()
    run.mistake_outcomes.cache_clear()
    np.random.seed(5)
    state = np.random.get_state()[1].copy()
    check(solutions("slicing"))
    check(with_bug("loops", "conv_backward", "        for h in range(n_H):\n", "        for h in range(n_H - 1):\n"))
    assert np.array_equal(np.random.get_state()[1], state)


@pytest.mark.parametrize("name", NAMES)
def test_the_mistakes_reference_without_a_mistake_is_the_loop_reference(name):
    spec = cases.SPECS[name]
    for n, case in enumerate(spec.cases()):
        outcome = run.mistake_outcomes(name, None, n)[0]
        assert not outcome.crashed and outcome.structure is None
        assert all(run.same(o, e) for o, e in zip(outcome.outputs, cases.expected(name, n)[0], strict=True)), case


@pytest.mark.parametrize("name", NAMES)
def test_each_catalogued_mistake_changes_some_output(name):
    spec = cases.SPECS[name]
    for mistake in mistakes.CATALOGUE[name]:
        outcomes = [run.mistake_outcomes(name, mistake.key, n)[0] for n in range(len(spec.cases()))]
        assert any(o.crashed or o.outputs is None or any(not run.same(a, e) for a, e in zip(
            o.outputs, cases.expected(name, n)[0], strict=True)) for n, o in enumerate(outcomes)), mistake.key


def test_a_crash_matches_a_crash_of_the_same_type_and_message_only():
    """The message is compared with its numbers and shapes left out (a loop per example or one cut of the whole batch
    raise the same words with other shapes)."""
    def broadcast(shape, into):
        return run.Outcome(error=ValueError(f"could not broadcast input array from shape {shape} into shape {into}"))
    a = broadcast((0, 0, 3), (4, 4, 3))
    assert run.same_outcome(a, broadcast((2, 0, 0, 3), (2, 5, 5, 3)), 0)
    assert not run.same_outcome(a, run.Outcome(error=ValueError("I only handle padded convolutions")), 0)
    assert not run.same_outcome(a, run.Outcome(error=TypeError(str(a.error))), 0)
    assert not run.same_outcome(a, run.Outcome(outputs=(np.zeros(2),)), 0)


def test_a_crash_inside_a_helper_names_the_line_that_called_it():
    """conv_forward's window is cut too narrow; the multiply that raises is in the (right) conv_single_step."""
    report = check(with_bug("loops", "conv_forward", "horiz_end = horiz_start + f", "horiz_end = vert_start + f"))
    (crash,) = report.findings
    assert crash.tag == "crash" and "line 43 in conv_single_step: `s = np.multiply(a_slice_prev, W)`" in crash.message
    assert "called from line 107 in conv_forward: `Z[i, h, w, c] = conv_single_step(a_slice_prev, weights, " \
        "biases)`" in crash.message
    (own,) = check(with_bug("loops", "conv_single_step", "Z = Z + b.item()", "Z = Z + float(b)")).findings
    assert "called from" not in own.message


def test_check_names_unpad_only_for_the_unpad_crash():
    """A learner's own ValueError at pad 0 is a crash, not the [pad:-pad] mistake their code does not contain (a crash
    of the same type on the same cases was taken for it)."""
    good = solutions("loops")["conv_backward"]

    def conv_backward(dZ, cache):
        if cache[3]["pad"] == 0:
            raise ValueError("I only handle padded convolutions")
        return good(dZ, cache)
    report = check(conv_backward)
    assert report.tags == {"crash"}
    assert "I only handle padded convolutions" in report.findings[0].message


# ----------------------------------------------------------------------------- plot
def test_plot_marks_the_wrong_entries_of_dA_prev(tmp_path, seed_reports):
    pytest.importorskip("matplotlib")
    fig = seed_reports["pool_backward"].plot(tmp_path / "pool.png")
    assert (tmp_path / "pool.png").stat().st_size > 10_000
    left, right = fig.axes[:2]
    assert "dA_prev[0,0,1,0] in red" in left.get_title() and "yours - expected" in right.get_title()
    report = check(with_bug("loops", "conv_backward", "vert_start = h * stride", "vert_start = h"))
    assert len(report.plot().axes[0].patches) >= 2  # the entry and the windows over it
    for bad in (seed_reports["conv_backward"], seed_reports["zero_pad"]):
        with pytest.raises(ValueError, match="draws the wrong entries of dA_prev"):
            bad.plot()


def test_plot_without_matplotlib_names_the_extra(monkeypatch, seed_reports):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r'report.plot\(\) needs matplotlib: \.venv/bin/pip install -e "\.\[plot\]"'):
        seed_reports["pool_backward"].plot()


# ----------------------------------------------------------------------------- reading files, the command line
def test_magic_and_shell_lines_are_skipped_keeping_line_numbers():
    code = "%matplotlib inline\nif True:\n    !ls\nx = 1"
    assert without_magics(code).splitlines() == ["pass  # matplotlib inline", "if True:", "    pass  # ls", "x = 1"]


def notebook_of(path, cells):
    path.write_text(json.dumps({"cells": [{"cell_type": kind, "source": source, "metadata": {}, "outputs": []}
                                          for kind, source in cells], "metadata": {}, "nbformat": 4,
                                "nbformat_minor": 5}))
    return path


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "tinygrad_cnn.check", *map(str, args)], capture_output=True,
                          text=True, timeout=300, cwd=ROOT)


def test_cli_on_the_seed_py_exits_1_and_prints_every_report():
    proc = run_cli(SEED)
    assert proc.returncode == 1, proc.stderr
    for name in NAMES:
        assert re.search(rf"^{name}: (ok|FAILED)", proc.stdout, re.M), name
    assert ("4 of 8 functions passed; failed: conv_single_step, conv_forward, conv_backward, pool_backward"
            in proc.stdout)


def test_cli_on_a_notebook_skips_magics_reports_a_failing_cell_and_checks_the_rest(tmp_path):
    code = SEED.read_text().split("import numpy as np\n", 1)[1]
    functions = re.split(r"\n\n\n(?=def )", code.strip())
    cells = [("markdown", "# Convolutional Neural Networks: Step by Step"),
             ("code", "import numpy as np\nfrom public_tests import *\n%matplotlib inline\n!pip list"),
             *[("code", f) for f in functions],
             ("code", ["np.random.seed(1)\n", "print(zero_pad(np.ones((1, 2, 2, 1)), 1).shape)"])]
    proc = run_cli(notebook_of(tmp_path / "mine.ipynb", cells))
    assert proc.returncode == 1, proc.stderr
    assert "note: mine.ipynb [cell 2] line 2: ModuleNotFoundError: No module named 'public_tests'" in proc.stdout
    assert "pool_backward: FAILED" in proc.stdout and "[stride_ignored]" in proc.stdout
    words = " ".join(proc.stdout.split())  # the report wraps its lines
    assert "In your code, mine.ipynb [cell 10] line 34 in pool_backward: `vert_start = h`" in words
    assert "(1, 4, 4, 1)" not in proc.stdout  # the cell's print was captured


def test_cli_exits_0_when_all_pass_and_2_when_none_is_found(tmp_path):
    (tmp_path / "good.py").write_text(LOOPS)
    proc = run_cli(tmp_path / "good.py")
    assert proc.returncode == 0 and "8 of 8 functions passed" in proc.stdout, proc.stdout + proc.stderr
    (tmp_path / "other.py").write_text("def conv(x):\n    return x\n")
    proc = run_cli(tmp_path / "other.py")
    assert proc.returncode == 2 and "no notebook function found" in proc.stdout
    (tmp_path / "broken.py").write_text("def zero_pad(X, pad)\n    return X\n")
    proc = run_cli(tmp_path / "broken.py")
    assert proc.returncode == 2 and "broken.py line 1: SyntaxError" in proc.stdout
    proc = run_cli(tmp_path / "missing.py")
    assert proc.returncode == 2 and "cannot read" in proc.stdout


def test_cli_help_says_it_runs_the_files_code():
    proc = run_cli("--help")
    assert proc.returncode == 0
    assert "RUNS THE CODE OF FILE" in proc.stdout and "exit status: 0" in proc.stdout
