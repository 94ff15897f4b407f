"""A safe calculator for agents: arithmetic on numbers, evaluated by walking Python's syntax tree
(:mod:`ast`), never by ``eval``.

Accepted: numbers in decimal digits, ``1.5e6`` too (``1,234.5`` thousands separators and a
number's leading ``$`` are dropped, commas inside a function's parentheses only when its
arguments are separated by ``", "``; hex, ``1_000`` and ``2j`` are refused), ``+ - * /``,
``**`` (exponent at most :data:`MAX_EXPONENT` in magnitude), parentheses, unary minus, and the
functions ``abs``, ``round``, ``min``, ``max``, ``sum`` and ``avg`` (of their arguments). Anything
else (names, attributes, calls of other functions, comparisons, strings, ``%`` unless every number
is a percentage and nothing is multiplied: ``21% - 20.98%`` is in percentage points) is refused with a
:class:`CalculatorError` naming what was found, so a model sees why and can write the expression
again. The result must be finite; it is rounded to 10 significant digits (float noise such as
``0.30000000000000004`` would otherwise fail an exact comparison).
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable

__all__ = ["CalculatorError", "MAX_EXPRESSION_CHARS", "MAX_EXPONENT", "evaluate"]

MAX_EXPRESSION_CHARS = 500
MAX_EXPONENT = 100  # 10**100 is still a float; 9**9**9 would hang an unbounded evaluator
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_DOLLAR = re.compile(r"(?<![\w.$])\$(?=\d|\.\d)")  # a leading "$" of a number ("1$2" is no number)
# Python's other ways to write a number: hex, octal, binary, "1_000", "2j" (an exponent, "1.5e6", is kept)
_NOT_DECIMAL = re.compile(r"(?<![\w.])(?:0[xXoObB]\w*|\d[\d.]*(?:_[\d_.]*|[jJ])\b)")
_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def _avg(*xs: float) -> float:
    return sum(xs) / len(xs)


def _round(x: float, digits: float = 0) -> float:
    return round(x, int(digits))


_FUNCTIONS: dict[str, Callable[..., float]] = {"abs": abs, "round": _round, "min": min, "max": max,
                                               "sum": lambda *xs: sum(xs), "avg": _avg}


class CalculatorError(ValueError):
    """An expression the calculator refuses or cannot evaluate (the message says why)."""


def _value(node: ast.AST) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _value(node.operand)
        return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.BinOp):
        left, right = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Pow):
            if abs(right) > MAX_EXPONENT:
                raise CalculatorError(f"exponent {right:g} is larger than {MAX_EXPONENT}")
            if left == 0 and right < 0:
                raise CalculatorError("division by zero (0 to a negative power)")
            power = left ** right
            if isinstance(power, complex):
                raise CalculatorError("a negative number to a fractional power is not a real number")
            return float(power)
        op = _BINARY.get(type(node.op))
        if op is None:
            raise CalculatorError(f"operator {type(node.op).__name__} is not allowed; use + - * / ** and parentheses")
        if isinstance(node.op, ast.Div) and right == 0:
            raise CalculatorError("division by zero")
        return op(left, right)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS and not node.keywords:
        args = [_value(a) for a in node.args]
        if not args:
            raise CalculatorError(f"{node.func.id}() needs at least one number")
        try:
            return float(_FUNCTIONS[node.func.id](*args))
        except TypeError:  # abs(1, 2), round(1, 2, 3)
            raise CalculatorError(f"{node.func.id}() does not take {len(args)} numbers") from None
    found = ast.unparse(node) if isinstance(node, ast.expr) else type(node).__name__
    raise CalculatorError(f"{found!r} is not a number or arithmetic; allowed: numbers, + - * / **, parentheses, "
                          f"{', '.join(sorted(_FUNCTIONS))}")


_LITERAL = re.compile(r"\d[\d,]*(?:\.\d+)?(\s*%)?")


def _points(text: str) -> str:
    """An expression whose every number is a percentage (``21% - 20.98%``, ``avg(12.5%, 13.1%)``)
    without its ``%`` signs: computed in percentage points. Any other ``%`` (a product, a mix of
    percentages and plain numbers, Python's remainder) is refused, naming how to write it."""
    literals = list(_LITERAL.finditer(text))
    if literals and all(m.group(1) for m in literals) and "*" not in text:
        return text.replace("%", "")
    raise CalculatorError("'%' is allowed only when every number is a percentage and nothing is multiplied "
                          "(21% - 20.98%); otherwise write a percentage as a number (12.5% -> 12.5 or 0.125)")


_CALL = re.compile(r"\b(?:" + "|".join(_FUNCTIONS) + r")\s*\(")


_RUN = re.compile(r"\d[\d.,]*\d")  # digits with their separators ("1,568.6, 1,571.7" is two runs: a space)


def _misgrouped(text: str) -> None:
    """Refuse digits whose commas neither separate thousands nor arguments: a decimal point before
    a comma (``1.234,567``, a European decimal comma, read as 1.234567) or a group of more than
    three digits after a comma (``max(1,0000, 2)``, read as the arguments 1 and 0)."""
    for run in _RUN.finditer(text):
        number = run.group()
        groups = number.split(",")
        decimal_comma = "." in ",".join(groups[:-1]) and "." not in groups[-1]  # max(1.5,2.5) is two arguments
        if "," in number and (decimal_comma or any(len(g.split(".")[0]) > 3 for g in groups[1:])):
            raise CalculatorError(f"{number!r}: its commas separate neither thousands (1,234,567.5) nor arguments "
                                  f"(max(1, 2)); write the number without them, with a point for decimals")


def _ambiguous_commas(text: str) -> None:
    """Refuse a function call whose commas could separate thousands or arguments: in ``avg(45,430)``
    the comma may be either, so a guess could be 1,000 times off. A call that separates its
    arguments with ``", "`` reads a comma between digits as a thousands separator
    (``avg(1,568.6, 1,571.7)``)."""
    for call in _CALL.finditer(text):
        depth, end = 0, len(text)
        for i in range(call.end() - 1, len(text)):
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            if depth == 0:
                end = i
                break
        args = text[call.end():end]
        if _THOUSANDS.search(args) and ", " not in args:
            name = call.group().rstrip("( ")
            raise CalculatorError(f"{name}({args}): a comma between digits may separate arguments or thousands; "
                                  f"write the arguments with ', ' between them (avg(45, 430)) or a number without "
                                  f"commas (45430)")


def evaluate(expression: str) -> float:
    """The value of an arithmetic ``expression`` (see the module docstring), rounded to 10
    significant digits. Raises :class:`CalculatorError` for an empty, over-long
    (> :data:`MAX_EXPRESSION_CHARS` characters), unreadable or refused expression, a division by
    zero, or a result that is not finite."""
    text = (expression or "").strip()
    if not text:
        raise CalculatorError("expression: expected arithmetic such as (1568.6 - 1571.7) / 1571.7, got nothing")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise CalculatorError(f"expression: {len(text)} characters, at most {MAX_EXPRESSION_CHARS}")
    if "%" in text:
        text = _points(text)
    other = _NOT_DECIMAL.search(text)
    if other:
        raise CalculatorError(f"{other.group()!r}: write numbers in decimal digits (1234.5), not as Python literals")
    text = _DOLLAR.sub("", text)
    _ambiguous_commas(text)
    _misgrouped(text)
    text = _THOUSANDS.sub("", text)
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise CalculatorError(f"expression: not arithmetic ({exc.msg}): {expression!r}") from None
    try:
        result = _value(tree.body)
    except OverflowError:
        raise CalculatorError("the result is too large") from None
    if not math.isfinite(result):
        raise CalculatorError("the result is not a finite number")
    return float(f"{result:.10g}")
