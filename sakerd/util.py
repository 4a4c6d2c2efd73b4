"""Small helpers ported from Redis's util.c."""


def _lower(ch):
    return ch + 32 if 65 <= ch <= 90 else ch


def string_match(pattern, string, nocase=False):
    """Glob-style match with Redis's rules: * ? [abc] [^a-z] and \\ escapes."""
    skip = [False]
    return _match(pattern, 0, len(pattern), string, 0, len(string), nocase, skip)


def _match(pat, p, plen_end, s, i, send, nocase, skip):
    # p/i index into pattern/string; plen_end/send are their ends.
    while p < plen_end and i < send:
        ch = pat[p]
        if ch == 42:  # '*'
            while p + 1 < plen_end and pat[p + 1] == 42:
                p += 1
            if p + 1 == plen_end:
                return True
            while i < send:
                if _match(pat, p + 1, plen_end, s, i, send, nocase, skip):
                    return True
                if skip[0]:
                    return False
                i += 1
            # No match for the rest of the pattern from anywhere in the rest
            # of the string: a longer match for an earlier '*' cannot help.
            skip[0] = True
            return False
        elif ch == 63:  # '?'
            i += 1
        elif ch == 91:  # '['
            p += 1
            negate = p < plen_end and pat[p] == 94
            if negate:
                p += 1
            matched = False
            c = s[i]
            while True:
                if p < plen_end and pat[p] == 92 and plen_end - p >= 2:
                    p += 1
                    if pat[p] == c:
                        matched = True
                elif p < plen_end and pat[p] == 93:
                    break
                elif p >= plen_end:
                    p -= 1
                    break
                elif plen_end - p >= 3 and pat[p + 1] == 45:
                    start, end, cc = pat[p], pat[p + 2], c
                    if start > end:
                        start, end = end, start
                    if nocase:
                        start, end, cc = _lower(start), _lower(end), _lower(cc)
                    p += 2
                    if start <= cc <= end:
                        matched = True
                else:
                    if pat[p] == c or nocase and _lower(pat[p]) == _lower(c):
                        matched = True
                p += 1
            if negate:
                matched = not matched
            if not matched:
                return False
            i += 1
        else:
            if ch == 92 and plen_end - p >= 2:  # '\\'
                p += 1
                ch = pat[p]
            if ch != s[i] and not (nocase and _lower(ch) == _lower(s[i])):
                return False
            i += 1
        p += 1
        if i == send:
            while p < plen_end and pat[p] == 42:
                p += 1
            break
    return p == plen_end and i == send


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
