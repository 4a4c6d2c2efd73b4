"""Fleet job targets: which hosts a job is for (SPEC §12).

    target := or
    or     := and ("or" and)*
    and    := not ("and" not)*
    not    := "not" not | "(" or ")" | term
    term   := "*" | key=value | hostglob

A hostglob and a tag's value are Redis globs (`web-*`, `db-[12]`,
`dc=ams*`); `*` alone is every host. Words are separated by spaces, and
parentheses stand alone whether or not spaces surround them. Keywords are
lowercase or uppercase. parse() turns the text into a small tree of tuples
once; matches() walks it for one host. Errors name what was expected and
the character position where it was not found.
"""

import re

from .util import string_match

_TOKEN = re.compile(r"\s*(?:(\()|(\))|([^\s()]+))")
_KEYWORDS = {"and", "or", "not"}
MAX_DEPTH = 64


class TargetError(ValueError):
    pass


def tokenize(text):
    """[(kind, text, position)]: kind is '(' ')' 'and' 'or' 'not' or 'word'."""
    out = []
    pos = 0
    while True:
        m = _TOKEN.match(text, pos)
        if m is None:
            if text[pos:].strip():
                raise TargetError("bad character at %d" % pos)
            break
        start = m.start(m.lastindex)
        word = m.group(m.lastindex)
        kind = word if word in "()" else word.lower() if word.lower() in _KEYWORDS else "word"
        out.append((kind, word, start))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text):
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0
        self.end = len(text)

    def peek(self):
        return self.tokens[self.i][0] if self.i < len(self.tokens) else None

    def where(self):
        return self.tokens[self.i][2] if self.i < len(self.tokens) else self.end

    def take(self):
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def parse_or(self):
        return self.left_assoc("or", self.parse_and)

    def parse_and(self):
        return self.left_assoc("and", self.parse_not)

    def left_assoc(self, op, operand):
        """operand (op operand)*, grouped from the left."""
        node = operand()
        while self.peek() == op:
            self.take()
            node = (op, node, operand())
        return node

    def parse_not(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise TargetError("target nested too deeply at %d" % self.where())
        try:
            kind = self.peek()
            if kind == "not":
                self.take()
                return ("not", self.parse_not())
            if kind == "(":
                self.take()
                node = self.parse_or()
                if self.peek() != ")":
                    raise TargetError("expected ')' at %d" % self.where())
                self.take()
                return node
            if kind == "word":
                return _term(self.take())
            raise TargetError("expected a host, key=value, 'not' or '(' at %d" % self.where())
        finally:
            self.depth -= 1


def _term(tok):
    _, word, pos = tok
    if word == "*":
        return ("all",)
    key, eq, value = word.partition("=")
    if eq:
        if not key or not value:
            raise TargetError("tag needs key=value at %d" % pos)
        return ("tag", key, value.encode())
    return ("host", word.encode())


def parse(text):
    """The tree of a target expression; raises TargetError."""
    p = _Parser(text)
    if not p.tokens:
        raise TargetError("empty target")
    node = p.parse_or()
    if p.i != len(p.tokens):
        raise TargetError("unexpected '%s' at %d" % (p.tokens[p.i][1], p.tokens[p.i][2]))
    return node


def matches(node, name, tags):
    """Whether a host (name: bytes, tags: {key: value bytes}) is targeted."""
    op = node[0]
    if op == "host":
        return string_match(node[1], name)
    if op == "tag":
        value = tags.get(node[1])
        return value is not None and string_match(node[2], value)
    if op == "and":
        return matches(node[1], name, tags) and matches(node[2], name, tags)
    if op == "or":
        return matches(node[1], name, tags) or matches(node[2], name, tags)
    if op == "not":
        return not matches(node[1], name, tags)
    return True     # all


def parse_tags(pairs):
    """["role=web", ...] -> {"role": b"web"}."""
    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        out[key] = value.encode()
    return out
