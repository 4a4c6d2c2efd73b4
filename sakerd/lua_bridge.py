"""The Lua runtime: every call into Lua, the sandbox, the `saker` API.

The `saker` table is built from SAKER_API: a Python function becomes
saker.<name> by decorating it with @saker_api(name, *argspec). The bridge
checks the arguments against argspec the way Lua's own libraries do and
raises `bad argument #N to 'name' (string expected, got nil)` on a wrong
call, converts the arguments to plain Python values, and converts the
return value back.

argspec items: "string", "number", "integer", "boolean", "table",
"function", "any"; "a|b" for alternatives; a trailing "?" for optional.
Conversions into Python: string -> str, number -> int when integral else
float, boolean -> bool, nil -> None, table -> dict or list (a list when
its keys are exactly 1..n), function -> the Lua function (kept only by
functions that register callbacks on purpose).
The Python function returns one value or a tuple of values; the
operational-failure convention is `return None, "message"`. Raising
ArgError(n, "message") gives `bad argument #n to 'name' (message)`.
"""

SAKER_API = {}


class ArgError(Exception):
    """A bad argument detected by the function itself."""

    def __init__(self, argno, message):
        super().__init__(message)
        self.argno = argno
        self.message = message


def saker_api(name, *argspec):
    """Register fn as saker.<name> with the given argument spec."""
    def register(fn):
        SAKER_API[name] = (fn, argspec)
        return fn
    return register
