"""What every exercise check shares: the failure type, the success line, calling and comparing."""

from __future__ import annotations

import functools
import inspect
import traceback
from typing import Any, Callable, Sequence

import torch


class CheckFailed(AssertionError):
    """An exercise check did not pass; the message says why."""

    def _render_traceback_(self) -> list[str]:
        """What IPython shows instead of a traceback through the check's code: the one-line message,
        after the student's own traceback when their function crashed."""
        lines = []
        if self.__cause__ is not None:
            lines = "".join(traceback.format_exception(self.__cause__)).rstrip("\n").split("\n")
        return [*lines, f"CheckFailed: {self}"]


def passed(message: str) -> None:
    """Print the one-line success message of a check."""
    print(f"\u2714 {message}")


def student_check(check: Callable) -> Callable:
    """Decorator of a check: its first argument must be the student's function (or class).

    Passing the result of a call (``check(f())`` instead of ``check(f)``) or a
    misspelt name then gets a ``TypeError`` that names the argument.
    """
    name = next(iter(inspect.signature(check).parameters))

    @functools.wraps(check)
    def wrapper(student: Any, *args: Any, **kwargs: Any) -> Any:
        if not callable(student):
            raise TypeError(f"{name} must be your function itself (without calling it), "
                            f"got {type(student).__name__}")
        return check(student, *args, **kwargs)

    return wrapper


def call_student(function: Callable, *args: Any, **kwargs: Any) -> Any:
    """Call the student's ``function``; turn an unfinished stub or a crash into :class:`CheckFailed`.

    A crash keeps its traceback (chained), so the student sees the failing line of their code.
    """
    if not callable(function):
        raise TypeError(f"expected your function, got {type(function).__name__}")
    try:
        return function(*args, **kwargs)
    except NotImplementedError as exc:
        detail = f" ({exc})" if str(exc) else ""
        raise CheckFailed(
            f"{getattr(function, '__name__', 'your function')} is not implemented yet{detail}: "
            "replace the `raise NotImplementedError` line with your code and run the cell again."
        ) from None
    except CheckFailed:
        raise
    except Exception as exc:  # the traceback above this message shows where in the student's code
        raise CheckFailed(f"{getattr(function, '__name__', 'your function')} raised {type(exc).__name__}: {exc}"
                          ) from exc


def assert_close(name: str, got: Any, expected: torch.Tensor, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """Raise :class:`CheckFailed` naming the first element where ``got`` differs from ``expected``."""
    if not isinstance(got, torch.Tensor):
        raise CheckFailed(f"{name}: expected a torch.Tensor, got {type(got).__name__}")
    if tuple(got.shape) != tuple(expected.shape):
        raise CheckFailed(f"{name}: expected shape {tuple(expected.shape)}, got {tuple(got.shape)}")
    got_cmp = got.detach().to(expected.dtype).cpu()
    expected = expected.detach().cpu()
    close = torch.isclose(got_cmp, expected, rtol=rtol, atol=atol)
    if not bool(close.all()):
        index = tuple(int(i) for i in (~close).nonzero()[0])
        raise CheckFailed(
            f"{name}: {int((~close).sum())} of {close.numel()} values differ; first at index {index}: "
            f"got {got_cmp[index].item():.6g}, expected {expected[index].item():.6g}"
        )


def matching_hint(got: torch.Tensor, variants: Sequence[tuple[torch.Tensor, str]]) -> str:
    """The hint of the first wrong-but-plausible answer that ``got`` reproduces, else ``""``."""
    got = got.detach().cpu().double()
    for wrong, hint in variants:
        wrong = wrong.detach().cpu().double()
        if got.shape == wrong.shape and bool(torch.allclose(got, wrong, rtol=1e-4, atol=1e-6, equal_nan=True)):
            return f" It looks like {hint}."
    return ""
