"""check on learners' code: each bug of the catalogue (tests/check_bugs.py) is reported with its tag and a first
wrong entry that really is wrong; correct solutions in three styles, and the library's steps, pass.
"""

import copy

import numpy as np
import pytest

from tests.check_bugs import BUGS
from tests.check_solutions import STYLES, solutions, with_bug
from tinygrad_cnn import check, steps
from tinygrad_cnn.check import NAMES, cases, mistakes

VALUE_TAGS = {"stride_ignored", "assign_not_add", "batch_only_last", "bias_missing", "average_divisor",
              "mode_swapped", "mask", "wrong"}  # mistakes that leave right-shaped, wrong numbers


def test_every_tag_of_the_catalogue_has_a_bug_in_more_than_one_style():
    tags = {m.tag for found in mistakes.CATALOGUE.values() for m in found} | {"crash", "shape", "mutates_input",
                                                                               "wrong", "dtype"}
    styles = {}
    for tag, style, *_ in BUGS:
        styles.setdefault(tag, set()).add(style)
    assert tags <= set(styles), tags - set(styles)
    single = {tag for tag, found in styles.items() if len(found) < 2}
    assert not single, single


@pytest.mark.parametrize("tag, style, name, old, new", BUGS, ids=[f"{b[0]}-{b[1]}-{b[2]}" for b in BUGS])
def test_a_bug_is_named_by_its_tag(tag, style, name, old, new):
    fn = with_bug(style, name, old, new)
    report = check(fn)
    assert not report.ok and report.name == name
    assert tag in report.tags, str(report)
    assert any(f.tag == tag and f.severity == "error" and f.message for f in report.findings)
    assert not all(c.passed for c in report.cases)
    entry = report.first_wrong
    if tag in VALUE_TAGS:
        assert entry is not None, str(report)
    if entry is None:
        return
    spec = cases.SPECS[name]
    output = spec.outputs.index(entry.output)
    got = np.asarray(spec.unpack(fn(*copy.deepcopy(entry.args)))[output], dtype=np.float64)
    assert got[entry.index] == entry.got  # the arguments reproduce it
    library = np.asarray(spec.unpack(getattr(steps, name)(*copy.deepcopy(entry.args)))[output], dtype=np.float64)
    accepted = [float(alt[output][entry.index]) for alt in entry.case.expected]  # the loop reference's
    assert abs(accepted[0] - library[entry.index]) <= 1e-10 * max(1.0, np.abs(library).max())
    assert entry.expected in accepted
    assert all(abs(entry.got - a) > 1e-10 for a in accepted)
    assert entry.where in str(report) and "reproduce it" in str(report)


@pytest.mark.parametrize("style", sorted(STYLES))
def test_correct_solutions_pass_in_every_style(style):
    reports = check(solutions(style))
    assert list(reports) == list(NAMES)
    for name, report in reports.items():
        assert report.ok, str(report)
        assert all(c.passed for c in report.cases), str(report)
        assert report.first_wrong is None and not [f for f in report.findings if f.severity == "error"]
        assert str(report).startswith(f"{name}: ok, {len(report.cases)} of {len(report.cases)} cases passed")


def test_the_library_steps_pass():
    for name in NAMES:
        report = check(getattr(steps, name))
        assert report.ok and report.first_wrong is None, str(report)


@pytest.mark.parametrize("style", ["loops", "slicing"])
def test_mask_ties_warns_for_the_notebooks_mask_and_not_for_the_first_maximum(style):
    notebook_mask = check(solutions(style))  # x == np.max(x) (a loop, or vectorized): every maximum marked
    first_mask = check(solutions("einsum"))  # the first maximum only, as PyTorch
    for name in ("create_mask_from_window", "pool_backward"):
        report = notebook_mask[name]
        assert report.ok and report.tags == {"mask_ties"}
        (warning,) = report.findings
        assert warning.severity == "warning" and "PyTorch" in warning.message and warning.case.label.startswith(
            ("a tie", "windows with ties"))
        assert "warning: mask_ties" in report.verdict()
        assert first_mask[name].ok and not first_mask[name].findings


def test_a_mask_that_splits_a_tie_passes_too():
    def create_mask_from_window(x):
        marked = (x == np.max(x)).astype(float)
        return marked / marked.sum()
    assert check(create_mask_from_window).findings == []


def test_the_term_diagnosis_names_the_missing_windows():
    fn = with_bug("loops", "conv_backward", "        for h in range(n_H):\n", "        for h in range(n_H - 1):\n")
    report = check(fn)
    wrong = {f.message.split(" ")[0]: f.message for f in report.findings if f.tag == "wrong"}
    assert set(wrong) == {"dA_prev", "dW", "db"}
    assert "is the sum of 8 of its 16 terms; missing: W[0,1,0,7] * dZ[0,2,0,7] and 7 more, the window (h=2, w=0)" \
        in wrong["dA_prev"]
    assert "is the sum of 6 of its 12 terms; missing: a_slice[0,0,0] * dZ[0,2,3,0]" in wrong["dW"]
    assert "the windows of row h=2." in wrong["dW"]
    # dZ = Z: the all-padding rows 0 and 3 carry equal sums, so both are named
    assert "120 of its 160 terms; missing: dZ[0,0,0,0] and 39 more, the windows of row h=0 (or, with the same sum, " \
        "the windows of row h=3)" in wrong["db"]
    text = str(report)
    assert text.count("MISSING") == 12 and "... and 148 more summing to" in text


def test_a_crash_names_the_learners_line_and_the_fix():
    fn = with_bug("loops", "conv_single_step", "Z = Z + b.item()", "Z = Z + float(b)")
    (crash,) = check(fn).findings
    assert crash.tag == "crash" and "TypeError" in crash.message and "every case" in crash.message
    assert "line 48 in conv_single_step: `Z = Z + float(b)`" in crash.message and "b.item()" in crash.message


def test_a_named_mistake_points_at_the_learners_line():
    fn = with_bug("loops", "conv_backward", "dW[:,:,:,c] += a_slice", "dW[:,:,:,c] = a_slice")
    report = check(fn)
    assert report.tags == {"assign_not_add"}
    (finding,) = report.findings
    assert "In your code, <loops solution, conv_backward with a bug> line 229 in conv_backward: `dW[:,:,:,c] = " \
        "a_slice" in finding.message
    assert "The mistake assign_not_add explains it" in report.first_wrong.diagnosis


def test_two_independent_mistakes_are_both_named():
    fn = with_bug("loops", "conv_backward", "dW[:,:,:,c] += a_slice", "dW[:,:,:,c] = a_slice")
    code = STYLES["loops"]
    assert "db[:,:,:,c] += dZ" in code
    both = with_bug("loops", "conv_backward", "dW[:,:,:,c] += a_slice * dZ[i, h, w, c]\n"
                    "                    db[:,:,:,c] += dZ",
                    "dW[:,:,:,c] = a_slice * dZ[i, h, w, c]\n                    db[:,:,:,c] = dZ")
    assert check(fn).tags == {"assign_not_add"}
    report = check(both)
    assert report.tags == {"assign_not_add"} and len(report.findings) == 2


def test_a_mistake_made_in_one_output_only_is_named_for_that_output():
    """dW's windows at h, w while dA_prev's are right: the stride_ignored reference gives exactly that dW."""
    fn = with_bug("loops", "conv_backward", "dW[:,:,:,c] += a_slice * dZ[i, h, w, c]",
                  "dW[:,:,:,c] += a_prev_pad[h:h+f, w:w+f, :] * dZ[i, h, w, c]")
    report = check(fn)
    assert report.tags == {"stride_ignored"}, str(report)
    (finding,) = report.findings
    assert "only dW has it (your dA_prev is right)" in finding.message
    assert "`dW[:,:,:,c] += a_prev_pad[h:h+f, w:w+f, :] * dZ[i, h, w, c]`" in finding.message
    entry = report.first_wrong
    assert entry.output == "dW" and "The mistake stride_ignored explains it" in entry.diagnosis


def test_conv_single_step_with_b_inside_the_sum_says_so():
    report = check(with_bug("loops", "conv_single_step", "Z = Z + b.item()", "Z = np.sum(s + b)"))
    assert report.tags == {"wrong"}
    assert "your Z = -23.1602 is sum(a_slice_prev * W + b): b added to each of the 48 products; expected " \
        "sum(a_slice_prev * W) + b = -6.99909." in report.first_wrong.diagnosis
    off = check(with_bug("loops", "conv_single_step", "Z = Z + b.item()", "Z = Z + b.item() + 1"))
    assert "your Z = -5.99909, expected -6.99909 (difference 1)." in off.first_wrong.diagnosis
    assert "Z[]" not in str(report) + str(off)


def test_distribute_value_divided_then_multiplied_is_named():
    report = check(with_bug("loops", "distribute_value", "average = dz / (n_H * n_W)", "average = dz / n_H * n_W"))
    assert report.tags == {"average_divisor"}
    assert "dz / n_H * n_W is (dz / n_H) * n_W" in report.findings[0].message
    assert "`average = dz / n_H * n_W`" in report.findings[0].message


def test_a_backward_off_by_one_factor_everywhere_says_the_factor():
    report = check(with_bug("loops", "conv_backward", "dW[:,:,:,c] += a_slice * dZ[i, h, w, c]",
                            "dW[:,:,:,c] += a_slice * dZ[i, h, w, c] / m"))
    assert report.tags == {"wrong"}
    assert "on this case every entry of your dW is 0.1 times the expected one (1 / 10)" in report.first_wrong.diagnosis
    report = check(with_bug("loops", "conv_backward", "W[:,:,:,c] * dZ[i, h, w, c]\n",
                            "W[:,:,:,c] * dZ[i, h, w, c] / n_C\n"))
    assert "on this case every entry of your dA_prev is 0.125 times the expected one (1 / 8)" in \
        report.first_wrong.diagnosis


def test_a_gradient_kept_across_examples_names_the_entry_added_in():
    report = check(with_bug("loops", "conv_backward", "        da_prev_pad = dA_prev_pad[i]\n",
                            "        da_prev_pad = dA_prev_pad[0]\n"))
    assert report.tags == {"wrong"}
    assert "your dA_prev[1,0,0,0] = 0.839651 is the expected 0.42364 plus the expected dA_prev[0,0,0,0] = " \
        "0.416011" in report.first_wrong.diagnosis


def test_a_wrong_finding_counts_the_cases_that_returned_not_those_that_raised():
    window = "a_slice = a_prev_pad[vert_start:vert_end, horiz_start:horiz_end, "
    report = check(with_bug("loops", "conv_backward", window + ":]", window + "c]"))  # channel c only
    assert report.tags == {"crash", "wrong"}
    assert [f.message.split(":")[0] for f in report.findings if f.tag == "crash"] == [
        "conv_backward raised ValueError", "conv_backward raised IndexError"]
    assert sum(c.passed for c in report.cases) == 0 and sum(c.outcome.crashed for c in report.cases) == 5
    (wrong,) = [f for f in report.findings if f.tag == "wrong"]
    assert wrong.message.startswith("dW is wrong on 1 of 6 cases and matches no known mistake")
