"""The grammar of a custom loss's expression, and its parser (recursive descent, no ``eval``).

::

    expression  := sum
    sum         := product (("+" | "-") product)*
    product     := unary (("*" | "/") unary)*
    unary       := "-" unary | power
    power       := atom ("**" unary)?              right-associative: 2**3**2 = 2**9
    atom        := number | name | call | "(" expression ")"
    call        := function "(" expression ("," expression)* ")"
                 | "where" "(" comparison "," expression "," expression ")"
    comparison  := sum ("<" | "<=" | ">" | ">=" | "==" | "!=") sum
    function    := "abs" | "exp" | "log" | "log1p" | "expm1" | "sqrt" | "square" | "sin"
                 | "cos" | "tanh" | "sigmoid" | "softplus" | "relu" | "sign"   (one argument)
                 | "minimum" | "maximum"                                        (two: a, b)
                 | "clip"                                                (three: x, lo, hi)
    number      := digits ["." digits] [("e" | "E") ["+" | "-"] digits]   (or ".5", "1.")
    name        := "p" | "y" | a constant of params.constants

Precedence and associativity are Python's (``-p**2`` is ``-(p**2)``, ``p**-1`` is allowed).
The functions and their arities are :data:`service.expressions.tree.FUNCTIONS`. Comparisons exist
only as the first argument of ``where``, one at a time (no chains, no ``and`` / ``or`` /
``not``: nest ``where`` instead). Whitespace is spaces, tabs and newlines; anything else
outside this grammar (other characters, attributes, subscripts, strings, keywords, calls of
other names, keyword arguments, non-ASCII lookalikes) is an :class:`ExpressionError` that
names the 1-based column.

Limits, checked while parsing so hostile input costs O(length): at most :data:`MAX_LENGTH`
characters, :data:`MAX_NESTING` levels of nesting (parentheses, calls, unary minus, ``**`` exponents, and
the depth of the resulting tree) and :data:`MAX_NODES` nodes. Numbers are kept as written: the
parser folds nothing but a minus sign into the number it precedes, so ``9**9**9**9`` parses in
microseconds (and evaluates to inf, which the engine reports as a non-finite result).
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass

from service.expressions.tree import COMPARISONS, FUNCTIONS, VARIABLES, Node, apply, name, number

MAX_LENGTH = 2000
MAX_NESTING = 64
MAX_NODES = 500
ALLOWED_FUNCTIONS = ", ".join(FUNCTIONS)

_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_OPERATORS = ("**", "<=", ">=", "==", "!=", "+", "-", "*", "/", "(", ")", ",", "<", ">")
_WHITESPACE = " \t\r\n"
#: Characters that start a construct the grammar leaves out, and what that construct is.
_FORBIDDEN = {
    ".": "attribute access is not allowed",
    "[": "subscripts and lists are not allowed",
    "]": "subscripts and lists are not allowed",
    "{": "dicts and sets are not allowed",
    "}": "dicts and sets are not allowed",
    "'": "strings are not allowed",
    '"': "strings are not allowed",
    "=": "assignments and keyword arguments are not allowed; use == inside where()",
    ":": "lambdas, slices and annotations are not allowed",
    ";": "statements are not allowed",
    "&": "use nested where() instead of & and |",
    "|": "use nested where() instead of & and |",
    "%": "the operators are + - * / **",
    "^": "the power operator is **",
    "@": "the operators are + - * / **",
}


class ExpressionError(ValueError):
    """A malformed or unsupported expression; ``column`` is 1-based (None: the whole text)."""

    def __init__(self, message: str, column: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.column = column


@dataclass(frozen=True)
class Token:
    kind: str  # "number", "name", an operator, or "end"
    text: str
    column: int


def describe_character(character: str) -> str:
    """``'@'`` for printable ASCII, ``U+0430 ('а')`` otherwise, ``U+0000`` for controls."""
    if " " < character <= "~":
        return repr(character)
    if character.isprintable():
        return f"U+{ord(character):04X} ({character!r})"
    return f"U+{ord(character):04X}"


def tokens(text: str) -> Iterator[Token]:
    """The tokens of ``text``, lazily: an error is raised when the parser reaches it, so the
    first problem in reading order is the one reported."""
    position = 0
    while position < len(text):
        character = text[position]
        column = position + 1
        if character in _WHITESPACE:
            position += 1
            continue
        match = _NUMBER.match(text, position) or _NAME.match(text, position)
        if match:
            yield Token("number" if match.re is _NUMBER else "name", match.group(), column)
            position = match.end()
            continue
        operator = next((op for op in _OPERATORS if text.startswith(op, position)), None)
        if operator is not None:
            yield Token(operator, operator, column)
            position += len(operator)
            continue
        message = f"unexpected character {describe_character(character)} at column {column}"
        if character in _FORBIDDEN:
            message += f": {_FORBIDDEN[character]}"
        elif not character.isascii():
            message += ": only ASCII is allowed"
        raise ExpressionError(message, column)
    while True:
        yield Token("end", "", len(text) + 1)


def parse(text: str, constants: Collection[str] | None = ()) -> Node:
    """The tree of ``text``. ``constants``: the names allowed besides p and y; ``None`` skips
    the check of names (used when the constants themselves were refused)."""
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"the expression has {len(text)} characters; at most {MAX_LENGTH}")
    return _Parser(tokens(text), constants).parse()


class _Parser:
    def __init__(self, stream: Iterator[Token], constants: Collection[str] | None) -> None:
        self.stream = stream
        self.current = next(stream)
        self.constants = constants
        self.nesting = 0
        self.nodes = 0

    # -- helpers ------------------------------------------------------------------------------

    def advance(self) -> Token:
        token = self.current
        self.current = next(self.stream)
        return token

    def expect(self, kind: str, context: str) -> Token:
        if self.current.kind != kind:
            raise ExpressionError(
                f"expected '{kind}' {context} at column {self.current.column}, "
                f"found {self.shown(self.current)}",
                self.current.column,
            )
        return self.advance()

    @staticmethod
    def shown(token: Token) -> str:
        return "the end of the expression" if token.kind == "end" else repr(token.text)

    def enter(self, column: int) -> None:
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise ExpressionError(
                f"the expression nests deeper than {MAX_NESTING} levels at column {column}",
                column,
            )

    def leave(self) -> None:
        self.nesting -= 1

    def refuse_comparison(self) -> None:
        """A comparison where the grammar has none: say where comparisons go."""
        token = self.current
        if token.kind in COMPARISONS:
            raise ExpressionError(
                f"comparison {token.text!r} at column {token.column} is only allowed as the "
                "first argument of where(condition, a, b), without parentheses",
                token.column,
            )

    def node(self, column: int, operator: str, *arguments: Node) -> Node:
        built = apply(operator, *arguments)
        return self.count(built, column)

    def count(self, built: Node, column: int) -> Node:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ExpressionError(
                f"the expression has more than {MAX_NODES} terms (operators, functions, "
                f"numbers and names) at column {column}",
                column,
            )
        if built.depth > MAX_NESTING:
            raise ExpressionError(
                f"the expression nests deeper than {MAX_NESTING} levels at column {column} "
                "(every operation on the result of another is a level: a + b + c is two; "
                "group a long sum or product in parentheses)",
                column,
            )
        return built

    # -- grammar ------------------------------------------------------------------------------

    def parse(self) -> Node:
        tree = self.sum()
        token = self.current
        self.refuse_comparison()
        if token.kind != "end":
            raise ExpressionError(
                f"unexpected {self.shown(token)} at column {token.column}: expected an "
                "operator (+ - * / **) or the end of the expression",
                token.column,
            )
        return tree

    def sum(self) -> Node:
        tree = self.product()
        while self.current.kind in ("+", "-"):
            operator = self.advance()
            tree = self.node(operator.column, operator.kind, tree, self.product())
        return tree

    def product(self) -> Node:
        tree = self.unary()
        while self.current.kind in ("*", "/"):
            operator = self.advance()
            tree = self.node(operator.column, operator.kind, tree, self.unary())
        return tree

    def unary(self) -> Node:
        if self.current.kind != "-":
            return self.power()
        minus = self.advance()
        self.enter(minus.column)
        operand = self.unary()
        self.leave()
        if operand.operator == "number":  # -2 is the number -2 (exact), not an operation
            return number(-operand.value)  # type: ignore[operator]
        return self.node(minus.column, "neg", operand)

    def power(self) -> Node:
        base = self.atom()
        if self.current.kind != "**":
            return base
        operator = self.advance()
        self.enter(operator.column)
        exponent = self.unary()
        self.leave()
        return self.node(operator.column, "**", base, exponent)

    def atom(self) -> Node:
        token = self.current
        if token.kind == "number":
            self.advance()
            value = float(token.text)
            if value == float("inf"):
                raise ExpressionError(
                    f"the number {token.text} at column {token.column} overflows float64",
                    token.column,
                )
            return self.count(number(value), token.column)
        if token.kind == "name":
            self.advance()
            if self.current.kind == "(":
                return self.call(token)
            return self.count(self.resolve(token), token.column)
        if token.kind == "(":
            self.advance()
            self.enter(token.column)
            inner = self.sum()
            self.leave()
            self.refuse_comparison()
            self.expect(")", f"to close the '(' of column {token.column}")
            return inner
        what = "found the end of the expression" if token.kind == "end" else f"found {token.text!r}"
        raise ExpressionError(
            f"expected a number, p, y, a constant, a function call or '(' at column "
            f"{token.column}, {what}",
            token.column,
        )

    def resolve(self, token: Token) -> Node:
        identifier = token.text
        if identifier in VARIABLES:
            return name(identifier)
        if identifier in FUNCTIONS:
            raise ExpressionError(
                f"function {identifier!r} at column {token.column} must be called: "
                f"{identifier}({', '.join(FUNCTIONS[identifier])})",
                token.column,
            )
        if self.constants is None or identifier in self.constants:
            return name(identifier)
        if keyword.iskeyword(identifier):
            raise ExpressionError(
                f"{identifier!r} at column {token.column} is a Python keyword, which the "
                "grammar does not have",
                token.column,
            )
        known = ", ".join(sorted(self.constants)) if self.constants else "none given"
        raise ExpressionError(
            f"unknown name {identifier!r} at column {token.column}; names are p (prediction), "
            f"y (target) and the constants of params.constants ({known})",
            token.column,
        )

    def call(self, function: Token) -> Node:
        identifier, column = function.text, function.column
        if identifier not in FUNCTIONS:
            what = f"unknown function {identifier!r} at column {column}"
            if identifier in VARIABLES:
                what = f"{identifier!r} at column {column} is a variable, not a function"
            elif self.constants is not None and identifier in self.constants:
                what = f"{identifier!r} at column {column} is a constant, not a function"
            raise ExpressionError(f"{what}; allowed: {ALLOWED_FUNCTIONS}", column)
        parameters = FUNCTIONS[identifier]
        self.advance()  # "("
        self.enter(column)
        arguments = [self.condition() if identifier == "where" else self.sum()]
        while self.current.kind == ",":
            self.advance()
            arguments.append(self.sum())
        self.refuse_comparison()
        self.expect(")", f"to close the call of {identifier} at column {column}")
        self.leave()
        if len(arguments) != len(parameters):
            raise ExpressionError(
                f"{identifier} at column {column} takes {len(parameters)} argument"
                f"{'s' if len(parameters) > 1 else ''} ({', '.join(parameters)}), "
                f"{len(arguments)} given",
                column,
            )
        return self.node(column, identifier, *arguments)

    def condition(self) -> Node:
        left = self.sum()
        token = self.current
        if token.kind not in COMPARISONS:
            raise ExpressionError(
                f"the condition of where at column {token.column} must be a comparison "
                f"(a < b, a <= b, a > b, a >= b, a == b, a != b), found {self.shown(token)}",
                token.column,
            )
        self.advance()
        right = self.sum()
        if self.current.kind in COMPARISONS:
            raise ExpressionError(
                f"chained comparison at column {self.current.column}: one comparison per "
                "where(); nest where() for a range",
                self.current.column,
            )
        return self.node(token.column, token.kind, left, right)
