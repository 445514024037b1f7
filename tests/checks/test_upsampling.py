"""The upsampling exercise checks accept the reference, and explain stubs and typical mistakes."""

from __future__ import annotations

import pytest
import torch

import seglib.checks
from seglib.checks import CheckFailed
from seglib.checks.upsampling import (
    OUTPUT_SIZE_QUESTIONS,
    check_conv_matrix,
    check_output_sizes,
    check_taps_per_phase,
)
from seglib.ops.upsampling import conv_output_size, conv_transpose_output_size

# --------------------------------------------------------------------------- student versions


def conv_matrix(w, n, stride):
    """A correct student answer: row o holds w at columns o*stride ... o*stride + k - 1."""
    n_out = (n - len(w)) // stride + 1
    C = torch.zeros(n_out, n)
    for o in range(n_out):
        C[o, o * stride : o * stride + len(w)] = w
    return C


def conv_matrix_transposed(w, n, stride):
    return conv_matrix(w, n, stride).T


def conv_matrix_flipped(w, n, stride):
    return conv_matrix(w.flip(0), n, stride)


def conv_matrix_off_by_one(w, n, stride):
    return conv_matrix(w, n + 1, stride)[:, :n]


def conv_matrix_stub(w, n, stride):
    raise NotImplementedError("Exercise: build the convolution matrix")


def reference_answers() -> list[int]:
    answers = []
    for q in OUTPUT_SIZE_QUESTIONS:
        settings = (q["n"], q["k"], q["s"], q["p"], q["d"])
        if q["kind"] == "transposed":
            answers.append(conv_transpose_output_size(*settings, q["output_padding"]))
        else:
            answers.append(conv_output_size(*settings))
    return answers


# --------------------------------------------------------------------------- check_taps_per_phase


def taps_per_phase(k, stride):
    return [len(range(phase, k, stride)) for phase in range(stride)]


def test_taps_per_phase_reference_passes(capsys):
    check_taps_per_phase(taps_per_phase)
    assert "taps_per_phase: 28 kernels and strides" in capsys.readouterr().out


def test_taps_per_phase_stub_and_mistakes_are_explained():
    def stub(k, stride):
        raise NotImplementedError("Exercise: count the taps")

    with pytest.raises(CheckFailed, match=r"stub is not implemented yet \(Exercise: count the taps\)"):
        check_taps_per_phase(stub)
    with pytest.raises(CheckFailed, match=r"k=6, stride=4\): got \[1, 1, 1, 0\], expected \[2, 2, 1, 1\].*rounded down"):
        check_taps_per_phase(lambda k, stride: [(k - r) // stride for r in range(stride)])
    with pytest.raises(CheckFailed, match=r"stride divides k"):
        check_taps_per_phase(lambda k, stride: [k // stride] * stride)
    with pytest.raises(CheckFailed, match=r"one count per phase"):
        check_taps_per_phase(lambda k, stride: taps_per_phase(k, stride) + [0])
    with pytest.raises(CheckFailed, match=r"return a list of ints"):
        check_taps_per_phase(lambda k, stride: "2, 1")


# --------------------------------------------------------------------------- check_output_sizes


def test_output_size_questions_are_possible_and_varied():
    assert {q["kind"] for q in OUTPUT_SIZE_QUESTIONS} == {"conv", "transposed"}
    assert any(q["d"] > 1 for q in OUTPUT_SIZE_QUESTIONS) and any(q["output_padding"] for q in OUTPUT_SIZE_QUESTIONS)
    assert all(set(q) == {"kind", "n", "k", "s", "p", "d", "output_padding"} for q in OUTPUT_SIZE_QUESTIONS)
    assert len(reference_answers()) == len(OUTPUT_SIZE_QUESTIONS)


def test_output_sizes_reference_passes(capsys):
    check_output_sizes(reference_answers())
    assert f"all {len(OUTPUT_SIZE_QUESTIONS)} output sizes are right" in capsys.readouterr().out


def test_output_sizes_off_by_one_is_explained_with_the_numbers():
    answers = reference_answers()
    answers[2] += 1  # conv n=11, k=3, s=2, p=1: one too many
    answers[5] -= 1  # transposed n=3, k=3, s=2
    with pytest.raises(CheckFailed) as info:
        check_output_sizes(answers)
    message = str(info.value)
    assert message.startswith(f"{len(OUTPUT_SIZE_QUESTIONS) - 2} of {len(OUTPUT_SIZE_QUESTIONS)} right.")
    assert (
        "question 3 (convolution with n=11, k=3, s=2, p=1, d=1): you said 7, the output size is "
        "floor((n + 2p - d(k-1) - 1) / s) + 1 = floor((11 + 2*1 - 1*(3-1) - 1) / 2) + 1 = floor(10 / 2) + 1 = 6"
    ) in message
    assert "question 6 (transposed convolution with n=3, k=3, s=2, p=0, d=1, output_padding=0): you said 6" in message
    assert "(3-1)*2 - 2*0 + 1*(3-1) + 0 + 1 = 7" in message
    assert "question 1 " not in message


def test_output_sizes_accepts_the_function_returning_the_answers(capsys):
    check_output_sizes(reference_answers)
    assert "output sizes are right" in capsys.readouterr().out

    def output_size_answers():
        raise NotImplementedError("Exercise: complete output_size_answers()")

    with pytest.raises(CheckFailed, match="output_size_answers is not implemented yet"):
        check_output_sizes(output_size_answers)


@pytest.mark.parametrize(
    "answers, match",
    [
        ([3, 32], r"expected 9 answers, one per question, got 2"),
        ("3 32", r"answers must be a list of 9 ints, got str"),
        ([...] * 9, r"question 1 \(convolution with n=5, k=3, s=1, p=0, d=1\): expected an int, got Ellipsis"),
    ],
)
def test_output_sizes_malformed_answers(answers, match):
    with pytest.raises((CheckFailed, TypeError), match=match):
        check_output_sizes(answers)


# --------------------------------------------------------------------------- check_conv_matrix


def test_conv_matrix_reference_passes(capsys):
    check_conv_matrix(conv_matrix)
    assert "C.T @ y is F.conv_transpose1d(y, w, stride)" in capsys.readouterr().out


def test_conv_matrix_stub_gives_a_reminder():
    with pytest.raises(CheckFailed, match=r"conv_matrix_stub is not implemented yet \(Exercise: build"):
        check_conv_matrix(conv_matrix_stub)


@pytest.mark.parametrize(
    "student, match",
    [
        (
            conv_matrix_transposed,
            r"conv_matrix\(w=\[1, 2, 3\], n=5, stride=1\): expected shape \(3, 5\), got \(5, 3\)\. .*looks transposed",
        ),
        (conv_matrix_flipped, r"first at index \(0, 0\): got 3, expected 1\. Your kernel is reversed"),
        (
            conv_matrix_off_by_one,
            r"n=5, stride=1\): expected shape \(3, 5\), got \(4, 5\)\. "
            r"The matrix has one row per output, \(n - k\) // stride \+ 1 = \(5 - 3\) // 1 \+ 1 = 3",
        ),
    ],
)
def test_conv_matrix_mistakes_are_explained(student, match):
    with pytest.raises(CheckFailed, match=match):
        check_conv_matrix(student)


def test_checks_are_exported_from_the_package():
    assert seglib.checks.check_taps_per_phase is check_taps_per_phase
    assert seglib.checks.check_output_sizes is check_output_sizes
    assert seglib.checks.check_conv_matrix is check_conv_matrix
    assert seglib.checks.OUTPUT_SIZE_QUESTIONS is OUTPUT_SIZE_QUESTIONS
