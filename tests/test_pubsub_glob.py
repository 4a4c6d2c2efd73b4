"""Glob patterns (PSUBSCRIBE, PUBSUB CHANNELS, KEYS): sakerd's string_match
gives the answers of Redis's stringmatchlen, checked case by case and
against a real redis-server (KEYS uses the same matcher) with hypothesis.
"""


import pytest
import redis
from hypothesis import given, settings, strategies as st, HealthCheck

from sakerd.util import string_match


# (pattern, string, matches) -- each checked against redis-server too.
CASES = [
    (b"*", b"anything", True),
    (b"*", b"", False),                 # an empty string matches only ""
    (b"", b"", True),
    (b"h?llo", b"hello", True),
    (b"h?llo", b"hllo", False),
    (b"h*llo", b"heeeello", True),
    (b"h[ae]llo", b"hallo", True),
    (b"h[ae]llo", b"hillo", False),
    (b"h[^e]llo", b"hallo", True),
    (b"h[^e]llo", b"hello", False),
    (b"h[a-b]llo", b"hbllo", True),
    (b"h[b-a]llo", b"hallo", True),      # a reversed range is swapped
    (b"h[a-]llo", b"h-llo", False),       # 'a-]' is the range ]..a, unclosed
    (b"h[a-]llo", b"h^llo", False),
    (b"h\\*llo", b"h*llo", True),
    (b"h\\*llo", b"hello", False),
    (b"[\\]]", b"]", True),
    (b"[]a]", b"a]", False),             # [] is empty: matches nothing
    (b"[abc", b"b", True),                # an unclosed [ takes the rest as its set
    (b"[", b"[", False),
    (b"[^", b"x", True),
    (b"a\\", b"a\\", True),               # a trailing backslash is literal
    (b"**a**", b"xxa", True),
    (b"*a*b", b"aaaa", False),
    (b"news.*", b"news.art.figurative", True),
    (b"[a-\xff]", b"b", False),           # ranges compare signed chars
    (b"[a-\xff]", b"\x00", True),
    (b"*" + b"a*" * 2000, b"a" * 1999 + b"b", False),   # no recursion limit
]


@pytest.fixture(scope="module")
def real_redis(redis_server_port):
    r = redis.Redis(port=redis_server_port, protocol=2, socket_timeout=10)
    yield r
    r.close()


def redis_matches(r, pattern, strings):
    """The subset of strings that real Redis's KEYS pattern returns."""
    pipe = r.pipeline(transaction=False)
    pipe.flushall()
    if strings:
        pipe.mset({s: b"1" for s in strings})
    pipe.keys(pattern)
    return set(pipe.execute()[-1])


@pytest.mark.parametrize("pattern, string, expected", CASES)
def test_string_match_cases(real_redis, pattern, string, expected):
    assert string_match(pattern, string) is expected
    if string:      # Redis cannot hold an empty key name in KEYS terms
        assert (string in redis_matches(real_redis, pattern, [string])) is expected


def test_nocase_matching():
    assert string_match(b"H[A-C]LLO", b"hbllo", nocase=True)
    assert string_match(b"h\\Ello", b"hEllo", nocase=True)
    assert not string_match(b"H[A-C]LLO", b"hbllo")


GLOB_BYTES = st.sampled_from(list(b"*?[]^-\\abc") + [0x80, 0xff, 0x00])
STRING_BYTES = st.sampled_from(list(b"abc-]^\\*?[") + [0x80, 0xff, 0x00])


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(pattern=st.lists(GLOB_BYTES, max_size=10).map(bytes),
       strings=st.lists(st.lists(STRING_BYTES, min_size=1, max_size=8).map(bytes),
                        max_size=12, unique=True))
def test_string_match_agrees_with_redis(real_redis, pattern, strings):
    ours = {s for s in strings if string_match(pattern, s)}
    assert ours == redis_matches(real_redis, pattern, strings)
