"""Checks for the exercises of the upsampling notebook.

=============================  ===================================================================
``check_taps_per_phase(f)``    ``f(k, stride)``: taps per inner output cell of a transposed convolution, by phase
``check_output_sizes(a)``      ``a``: list of ints (or a function returning it), the sizes of ``OUTPUT_SIZE_QUESTIONS``
``check_conv_matrix(f)``       ``f(w, n, stride)``: the ``(n_out, n)`` matrix of ``conv1d`` with ``w (k,)``
=============================  ===================================================================
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from seglib.checks.core import CheckFailed, assert_close, call_student, passed, student_check
from seglib.ops.upsampling import conv_matrix, conv_output_size, conv_transpose_output_size, explain_output_size

OUTPUT_SIZE_QUESTIONS: list[dict] = [
    dict(kind="conv", n=5, k=3, s=1, p=0, d=1, output_padding=0),
    dict(kind="conv", n=32, k=3, s=1, p=1, d=1, output_padding=0),
    dict(kind="conv", n=11, k=3, s=2, p=1, d=1, output_padding=0),
    dict(kind="conv", n=12, k=3, s=2, p=1, d=1, output_padding=0),
    dict(kind="conv", n=9, k=3, s=1, p=0, d=2, output_padding=0),
    dict(kind="transposed", n=3, k=3, s=2, p=0, d=1, output_padding=0),
    dict(kind="transposed", n=16, k=4, s=2, p=1, d=1, output_padding=0),
    dict(kind="transposed", n=6, k=3, s=2, p=1, d=1, output_padding=1),
    dict(kind="transposed", n=2, k=3, s=1, p=0, d=2, output_padding=0),
]
"""Layer settings of the output-size quiz: input size ``n``, kernel ``k``, stride ``s``,
padding ``p``, dilation ``d`` and, for transposed convolutions, ``output_padding``."""


def _format(values: torch.Tensor) -> str:
    return "[" + ", ".join(f"{v:g}" for v in values.tolist()) + "]"


def _taps_reference(k: int, stride: int) -> list[int]:
    """Taps of a kernel of ``k`` ones landing on an inner output cell of each phase, counted by scatter-adding."""
    ones = torch.ones(4 * (k + stride), dtype=torch.float64)
    counts = F.conv_transpose1d(ones[None, None], torch.ones(1, 1, k, dtype=torch.float64), stride=stride)[0, 0]
    inner = 2 * (k + stride) * stride            # an output cell far from both ends, at phase 0
    return [int(counts[inner + phase]) for phase in range(stride)]


def _taps_hint(k: int, stride: int, got: list) -> str:
    expected = _taps_reference(k, stride)
    variants = [
        ([(k - r) // stride for r in range(stride)], "you rounded down: phase r gets the taps r, r + stride, "
                                                     "r + 2 stride, ... below k, that is ceil((k - r) / stride)"),
        ([k // stride] * stride, "every phase got k // stride taps: that holds only when stride divides k"),
        (expected[::-1], "the phases are reversed: phase 0 is the cell where input i's copy starts"),
    ]
    if len(got) != stride:
        return f" Return one count per phase: {stride} numbers, for o % {stride} = 0 .. {stride - 1}."
    return next((f" It looks like {hint}." for wrong, hint in variants if got == wrong and wrong != expected), "")


@student_check
def check_taps_per_phase(student_fn: Callable) -> None:
    """Check ``student_fn(k, stride)`` -> list of ``stride`` ints for kernels 1-7 and strides 1-4.

    Entry ``r`` is the number of kernel taps that land on an inner output cell
    ``o`` with ``o % stride == r`` in a 1-D transposed convolution (the checkerboard's
    pattern: a 2-D cell gets the product of its row's and its column's counts).
    """
    first = [(6, 4), (7, 4)]  # these tell the typical mistakes apart, so their hints come first
    cases = first + [(k, stride) for stride in (1, 2, 3, 4) for k in range(1, 8) if (k, stride) not in first]
    for k, stride in cases:
        got = call_student(student_fn, k, stride)
        if isinstance(got, torch.Tensor):
            got = got.tolist()
        if not isinstance(got, (list, tuple)) or not all(isinstance(v, int) and not isinstance(v, bool) for v in got):
            raise CheckFailed(f"taps_per_phase({k}, {stride}): return a list of ints, got {got!r}")
        expected = _taps_reference(k, stride)
        if list(got) != expected:
            raise CheckFailed(f"taps_per_phase(k={k}, stride={stride}): got {list(got)}, expected {expected}."
                              + _taps_hint(k, stride, list(got)))
    rule = all((len(set(_taps_reference(k, stride))) == 1) == (k % stride == 0) for k, stride in cases)
    passed(f"taps_per_phase: {len(cases)} kernels and strides; the counts are equal "
           + ("exactly when the stride divides k" if rule else "for some k the stride does not divide"))


def _question_text(question: dict) -> str:
    settings = f"n={question['n']}, k={question['k']}, s={question['s']}, p={question['p']}, d={question['d']}"
    if question["kind"] == "transposed":
        return f"transposed convolution with {settings}, output_padding={question['output_padding']}"
    return f"convolution with {settings}"


def _settings(question: dict) -> tuple[int, ...]:
    return question["n"], question["k"], question["s"], question["p"], question["d"]


def _expected_size(question: dict) -> int:
    if question["kind"] == "transposed":
        return conv_transpose_output_size(*_settings(question), question["output_padding"])
    return conv_output_size(*_settings(question))


def _explain(question: dict) -> str:
    transposed = question["kind"] == "transposed"
    return explain_output_size(*_settings(question), question["output_padding"], transposed=transposed)


def check_output_sizes(answers: Sequence[int] | Callable[[], Sequence[int]]) -> None:
    """Check the output sizes for :data:`OUTPUT_SIZE_QUESTIONS`, one int per question, in order.

    ``answers`` is the list, or the student's function without arguments that
    returns it (so that an unfinished stub gets the usual one-line reminder).

    Raises:
        CheckFailed: listing every wrong answer with its formula and the numbers filled in.
    """
    if callable(answers):
        answers = call_student(answers)
    if not isinstance(answers, (list, tuple)):
        raise TypeError(f"answers must be a list of {len(OUTPUT_SIZE_QUESTIONS)} ints, got {type(answers).__name__}")
    if len(answers) != len(OUTPUT_SIZE_QUESTIONS):
        raise CheckFailed(f"expected {len(OUTPUT_SIZE_QUESTIONS)} answers, one per question, got {len(answers)}")
    problems = []
    for number, (question, answer) in enumerate(zip(OUTPUT_SIZE_QUESTIONS, answers), start=1):
        if isinstance(answer, bool) or not isinstance(answer, int):
            problems.append(f"question {number} ({_question_text(question)}): expected an int, got {answer!r}")
            continue
        if answer != _expected_size(question):
            problems.append(
                f"question {number} ({_question_text(question)}): you said {answer}, "
                f"the output size is {_explain(question)}"
            )
    if problems:
        right = len(OUTPUT_SIZE_QUESTIONS) - len(problems)
        raise CheckFailed(f"{right} of {len(OUTPUT_SIZE_QUESTIONS)} right.\n" + "\n".join(problems))
    passed(f"all {len(OUTPUT_SIZE_QUESTIONS)} output sizes are right")


def _matrix_cases() -> list[tuple[torch.Tensor, int, int]]:
    w = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    generator = torch.Generator().manual_seed(7)
    cases = [(w, 5, 1), (w, 7, 2), (w, 3, 1)]
    for k, n, stride in [(2, 6, 2), (4, 9, 3), (1, 4, 1)]:
        cases.append((torch.randn(k, dtype=torch.float64, generator=generator), n, stride))
    return cases


def _matrix_hint(got: torch.Tensor, w: torch.Tensor, n: int, stride: int, expected: torch.Tensor) -> str:
    n_out = expected.shape[0]
    if tuple(got.shape) == (n, n_out) and n != n_out:
        return " Rows index outputs and columns index inputs: your matrix looks transposed."
    if tuple(got.shape) != tuple(expected.shape):
        return (
            f" The matrix has one row per output, (n - k) // stride + 1 = ({n} - {len(w)}) // {stride} + 1 = {n_out},"
            f" and one column per input ({n})."
        )
    if torch.allclose(got.detach().to(torch.float64), conv_matrix(w.flip(0), n, stride)):
        return " Your kernel is reversed: conv1d does not flip it, row o holds w[t] at column o*stride + t."
    return ""


@student_check
def check_conv_matrix(student_fn: Callable) -> None:
    """Check ``student_fn(w, n, stride)``: the matrix ``C (n_out, n)`` with ``C @ x == conv1d(x, w, stride)``.

    Also checks the consequence shown in the notebook: ``C.T @ y`` equals
    ``F.conv_transpose1d(y, w, stride)`` (with ``output_padding`` making up
    the input cells that the stride skipped).

    Raises:
        CheckFailed: naming the inputs, the first wrong entry, what came and what was expected.
    """
    cases = _matrix_cases()
    for w, n, stride in cases:
        got = call_student(student_fn, w.clone(), n, stride)
        expected = conv_matrix(w, n, stride)
        name = f"conv_matrix(w={_format(w)}, n={n}, stride={stride})"
        try:
            assert_close(name, got, expected)
        except CheckFailed as exc:
            hint = _matrix_hint(got, w, n, stride, expected) if isinstance(got, torch.Tensor) else ""
            raise CheckFailed(f"{exc}.{hint}") from None
        y = torch.arange(1.0, expected.shape[0] + 1, dtype=torch.float64)
        skipped = (n - len(w)) % stride
        transposed = F.conv_transpose1d(y[None, None], w[None, None], stride=stride, output_padding=skipped)[0, 0]
        assert_close(f"{name}.T @ y for y = {_format(y)}", got.detach().to(torch.float64).T @ y, transposed)
    passed(f"conv_matrix is right on {len(cases)} inputs, and C.T @ y is F.conv_transpose1d(y, w, stride)")


__all__ = ["OUTPUT_SIZE_QUESTIONS", "check_conv_matrix", "check_output_sizes", "check_taps_per_phase"]
