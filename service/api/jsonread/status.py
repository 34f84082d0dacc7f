"""Status codes the kernels return, and the words the Python layer turns them into.

Kernels never raise on user input: they stop at the first problem and report a code and a
byte position. :func:`malformed_message` words the code the way orjson words its own errors
("unexpected end of data: line 1 column 7 (char 6)"), so clients see the same kind of message
as before; the position is a character index, as in Python's ``JSONDecodeError``.
"""

OK = 0
EMPTY = 1
END_OF_DATA = 2
EXPECTED_VALUE = 3
EXPECTED_KEY = 4
EXPECTED_COLON = 5
EXPECTED_COMMA_IN_ARRAY = 6
EXPECTED_COMMA_IN_OBJECT = 7
TRAILING_COMMA = 8
TRAILING_CONTENT = 9
TOO_DEEP = 10
LEADING_ZERO = 11
NO_DIGIT_AFTER_SIGN = 12
NO_DIGIT_AFTER_POINT = 13
NO_DIGIT_IN_EXPONENT = 14
CONTROL_CHARACTER = 15
INVALID_ESCAPE = 16
LONE_LOW_SURROGATE = 17
NO_LOW_SURROGATE = 18
INVALID_LOW_SURROGATE = 19
INVALID_UTF8 = 20
INVALID_TRUE = 21
INVALID_FALSE = 22
INVALID_NULL = 23

MAX_DEPTH = 1024  # nesting orjson accepts (the top-level value counts as one level)

_MESSAGES = {
    END_OF_DATA: "unexpected end of data",
    EXPECTED_VALUE: "unexpected character, expected a JSON value",
    EXPECTED_KEY: "unexpected character, expected a string key",
    EXPECTED_COLON: "unexpected character, expected ':' after key",
    EXPECTED_COMMA_IN_ARRAY: "unexpected character, expected ',' or ']'",
    EXPECTED_COMMA_IN_OBJECT: "unexpected character, expected ',' or '}'",
    TRAILING_COMMA: "trailing comma is not allowed",
    TRAILING_CONTENT: "unexpected content after document",
    TOO_DEEP: f"depth limit exceeded (more than {MAX_DEPTH} nested arrays and objects)",
    LEADING_ZERO: "number with leading zero is not allowed",
    NO_DIGIT_AFTER_SIGN: "no digit after sign",
    NO_DIGIT_AFTER_POINT: "no digit after decimal point",
    NO_DIGIT_IN_EXPONENT: "no digit after exponent sign",
    CONTROL_CHARACTER: "unexpected control character in string",
    INVALID_ESCAPE: "invalid escaped sequence in string",
    LONE_LOW_SURROGATE: "invalid high surrogate in string (a lone low surrogate)",
    NO_LOW_SURROGATE: "no low surrogate in string",
    INVALID_LOW_SURROGATE: "invalid low surrogate in string",
    INVALID_UTF8: "invalid UTF-8 byte sequence",
    INVALID_TRUE: "invalid literal, expected 'true'",
    INVALID_FALSE: "invalid literal, expected 'false'",
    INVALID_NULL: "invalid literal, expected 'null'",
}


def malformed_message(status: int, line: int, column: int, character: int) -> str:
    """``the body is not valid JSON: <what>: line L column C (char N)``."""
    return (
        f"the body is not valid JSON: {_MESSAGES[status]}: "
        f"line {line} column {column} (char {character})"
    )
