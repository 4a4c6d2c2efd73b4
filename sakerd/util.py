"""Small helpers ported from Redis's util.c."""


def _lower(ch):
    return ch + 32 if 65 <= ch <= 90 else ch


def _signed(ch):
    # stringmatchlen() compares C chars, which are signed on the platforms
    # Redis ships for: in a range, bytes >= 0x80 sort below 0x00.
    return ch - 256 if ch > 127 else ch


_ANY_BYTE = frozenset(range(256))


def string_match(pattern, string, nocase=False):
    """Glob-style match with Redis's rules: * ? [abc] [^a-z] and \\ escapes.

    Same answers as Redis's stringmatchlen(), including its quirks (an
    empty string matches only the empty pattern; an unclosed [ takes the
    rest of the pattern as its set; ranges compare signed chars), without
    its recursion: every token but * matches exactly one byte, so the
    classic scan that backtracks only to the last * is exact, linear in
    practice, and cannot exhaust Python's stack on a pattern of many *s.
    """
    if not string:
        return not pattern
    tokens = _compile_glob(pattern, nocase)
    ntok = len(tokens)
    nstr = len(string)
    i = t = 0
    star = -1
    mark = 0
    while i < nstr:
        tok = tokens[t] if t < ntok else _END
        if tok is None:                      # '*': first try matching nothing
            star = t
            mark = i
            t += 1
        elif tok is not _END and string[i] in tok:
            i += 1
            t += 1
        elif star >= 0:                      # let the last '*' eat one more byte
            mark += 1
            i = mark
            t = star + 1
        else:
            return False
    while t < ntok and tokens[t] is None:
        t += 1
    return t == ntok


_END = frozenset()
_glob_cache = {}


def _compile_glob(pattern, nocase):
    """Tokens of a pattern: None for a run of *, else the set of bytes it matches."""
    key = (pattern, nocase)
    tokens = _glob_cache.get(key)
    if tokens is None:
        if len(_glob_cache) >= 1024:
            _glob_cache.clear()
        tokens = _glob_cache[key] = _tokenize_glob(pattern, nocase)
    return tokens


def _literal(ch, nocase):
    if nocase:
        low = _lower(ch)
        return frozenset(b for b in range(256) if _lower(b) == low)
    return frozenset((ch,))


def _tokenize_glob(pat, nocase):
    tokens = []
    n = len(pat)
    p = 0
    while p < n:
        ch = pat[p]
        if ch == 42:  # '*'
            if not tokens or tokens[-1] is not None:
                tokens.append(None)
        elif ch == 63:  # '?'
            tokens.append(_ANY_BYTE)
        elif ch == 91:  # '['
            p, members = _bracket(pat, p + 1, nocase)
            tokens.append(members)
        else:
            if ch == 92 and n - p >= 2:  # '\\' quotes the next byte
                p += 1
                ch = pat[p]
            tokens.append(_literal(ch, nocase))
        p += 1
    return tokens


def _bracket(pat, p, nocase):
    """The byte set of [...] starting after '['; returns (index of its end, set)."""
    n = len(pat)
    negate = p < n and pat[p] == 94  # '^'
    if negate:
        p += 1
    members = set()
    while True:
        if p < n and pat[p] == 92 and n - p >= 2:   # escaped: exact, even nocase
            p += 1
            members.add(pat[p])
        elif p < n and pat[p] == 93:                # ']'
            break
        elif p >= n:                                # unclosed: the set ends here
            p = n - 1
            break
        elif n - p >= 3 and pat[p + 1] == 45:       # 'a-z'
            start, end = _signed(pat[p]), _signed(pat[p + 2])
            if start > end:
                start, end = end, start
            if nocase:
                start, end = _lower(start), _lower(end)
                members.update(b for b in range(256) if start <= _lower(_signed(b)) <= end)
            else:
                members.update(b for b in range(256) if start <= _signed(b) <= end)
            p += 2
        else:
            members |= _literal(pat[p], nocase)
        p += 1
    if negate:
        return p, _ANY_BYTE - members
    return p, frozenset(members)


def bytes_to_human(n):
    """1.00K, 2.50M ... as Redis's bytesToHuman."""
    n = float(n)
    for unit, size in (("B", 1), ("K", 1024), ("M", 1024 ** 2), ("G", 1024 ** 3),
                       ("T", 1024 ** 4), ("P", 1024 ** 5)):
        if n < size * 1024 or unit == "P":
            if unit == "B":
                return "%dB" % n
            return "%.2f%s" % (n / size, unit)
    return "%dB" % n
