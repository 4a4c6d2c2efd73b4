"""Geo commands (geo.py, geohash.py), side by side with redis-server 7.0.15.

The cases of Redis's own tests/unit/geo.tcl, the edges of the Mercator
limits (+-85.05112878, +-180), BYBOX, COUNT ANY, STORE/STOREDIST, WRONGTYPE
and every error give the same bytes as redis-server in RESP2 and RESP3:
the scores (ZSCORE), GEOPOS's doubles, GEOHASH's strings, the distances
to four decimals, the order of ties. A seeded random test adds random
points and searches them with random shapes on both servers; another
watches the keyspace events of the writes.
"""

import math
import random

import pytest

from helpers import Daemon, RawConn, encode_command
from parity import run_parity

EARTH_RADIUS = 6372797.560856


@pytest.fixture(scope="module")
def sakerd(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("geo"))
    yield d
    d.stop()


def parity(sakerd, redis_server_port, script, protocol):
    assert run_parity(sakerd.port, redis_server_port, script, protocol) == []


# Redis's geo.tcl, its commands in order (its {t} hash tags dropped, its
# quoted member names without spaces).
GEO_TCL = """
SET src wrong_type|GEORADIUS src 1 1 1 km|GEORADIUS src 1 1 1 km STORE dest
GEOSEARCH src FROMLONLAT 0 0 BYRADIUS 1 km|GEOSEARCHSTORE dest src FROMLONLAT 0 0 BYRADIUS 1 km
GEORADIUSBYMEMBER src member 1 km|GEORADIUSBYMEMBER src member 1 km STORE dest
GEOSEARCH src FROMMEMBER member BYBOX 1 1 km|GEOSEARCHSTORE dest src FROMMEMBER member BYBOX 1 1 m
DEL src|GEORADIUS src 1 1 1 km|GEORADIUS src 1 1 1 km STORE dest
GEOSEARCH src FROMLONLAT 0 0 BYRADIUS 1 km|GEOSEARCHSTORE dest src FROMLONLAT 0 0 BYRADIUS 1 km
GEORADIUSBYMEMBER src member 1 km|GEORADIUSBYMEMBER src member 1 km STORE dest
GEOSEARCH src FROMMEMBER member BYBOX 1 1 km|GEOSEARCHSTORE dest src FROMMEMBER member BYBOX 1 1 m
GEOADD src 13.361389 38.115556 Palermo 15.087269 37.502669 Catania
GEORADIUS src 1 1 1 km|GEORADIUS src 1 1 1 km STORE dest
GEOSEARCH src FROMLONLAT 0 0 BYRADIUS 1 km|GEOSEARCHSTORE dest src FROMLONLAT 0 0 BYRADIUS 1 km
GEORADIUSBYMEMBER src member 1 km|GEORADIUSBYMEMBER src member 1 km STORE dest
GEOSEARCH src FROMMEMBER member BYBOX 1 1 km|GEOSEARCHSTORE dest src FROMMEMBER member BYBOX 1 1 m
GEOADD nyc -73.9454966 40.747533 lic_market|GEOADD nyc -73.9454966 40.747533 lic_market
GEOADD nyc CH 40.747533 -73.9454966 lic_market|GEOPOS nyc lic_market
GEOADD nyc NX -73.9454966 40.747533 lic_market|GEOPOS nyc lic_market
GEOADD nyc XX -83.9454966 40.747533 lic_market|GEOPOS nyc lic_market
GEOADD nyc CH NX -73.9454966 40.747533 lic_market|GEOADD nyc CH XX -73.9454966 40.747533 lic_market
GEOADD nyc xx nx -73.9454966 40.747533 lic_market|GEOADD nyc ch xx foo -73.9454966 40.747533 lic_market
GEOADD nyc -73.9454966 40.747533 lic_market foo bar luck_market
GEOADD nyc -73.9733487 40.7648057 central_park_n/q/r -73.9903085 40.7362513 union_square -74.0131604 40.7126674 wtc_one -73.7858139 40.6428986 jfk -73.9375699 40.7498929 q4 -73.9564142 40.7480973 4545
ZRANGE nyc 0 -1 WITHSCORES|GEORADIUS nyc -73.9798091 40.7598464 3 km asc
GEOSEARCH nyc fromlonlat -73.9798091 40.7598464 bybox 6 6 km asc
GEOSEARCH nyc fromlonlat -73.9798091 40.7598464 frommember xxx bybox 6 6 km asc
GEOSEARCH nyc bybox 3 3 km asc desc withhash withdist withcoord
GEOSEARCH nyc fromlonlat -73.9798091 40.7598464 byradius 3 km bybox 3 3 km asc
GEOSEARCH nyc fromlonlat -73.9798091 40.7598464 asc desc withhash withdist withcoord
GEOSEARCH nyc fromlonlat -73.9798091 40.7598464 bybox 6 6 km asc storedist
GEORADIUS nyc -73.9798091 40.7598464 3 km withdist asc
GEOSEARCH nyc fromlonlat -73.9798091 40.7598464 bybox 6 6 km withdist asc
GEORADIUS nyc -73.9798091 40.7598464 10 km COUNT 3|GEORADIUS nyc -73.9798091 40.7598464 10 km COUNT 3 ANY
GEORADIUS nyc -73.9798091 40.7598464 10 km COUNT 3 ANY ASC|GEORADIUS nyc -73.9798091 40.7598464 10 km ANY ASC
GEORADIUS nyc -73.9798091 40.7598464 10 km COUNT|GEORADIUS nyc -73.9798091 40.7598464 10 km COUNT 2 DESC
GEOADD users -47.271613776683807 -54.534504198047678 user_000000|GEORADIUS users 0 0 50000 km WITHCOORD
GEORADIUSBYMEMBER nyc wtc_one 7 km
DEL k1|GEOADD k1 -0.15307903289794921875 85 n1 0.3515625 85.00019260486917005437 n2
GEORADIUSBYMEMBER k1 n1 4891.94 m|ZREM k1 n1 n2
GEOADD k1 -4.95211958885192871094 85 n3 11.25 85.0511 n4|GEORADIUSBYMEMBER k1 n3 156544 m|ZREM k1 n3 n4
GEOADD k1 -45 65.50900022111811438208 n5 90 85.0511 n6|GEORADIUSBYMEMBER k1 n5 5009431 m
DEL k1|GEOADD k1 45 65 n1 -135 85.05 n2|GEORADIUSBYMEMBER k1 n1 5009431 m
GEOSEARCH nyc frommember wtc_one bybox 14 14 km
DEL Sicily|GEOADD Sicily 13.361389 38.115556 Palermo 15.087269 37.502669 Catania
GEOADD Sicily 12.758489 38.788135 edge1 17.241510 38.788135 eage2
GEORADIUS Sicily 15 37 200 km asc|GEOSEARCH Sicily fromlonlat 15 37 bybox 400 400 km asc
DEL Sicily|GEOADD Sicily 12.75 36.995 test1|GEOADD Sicily 12.75 36.50 test2|GEOADD Sicily 13.00 36.50 test3
GEOSEARCH Sicily fromlonlat 15 37 bybox 400 2 km|GEOADD Sicily -1 37.00 test3
GEOSEARCH Sicily fromlonlat 15 37 bybox 3000 2 km asc
DEL Sicily
GEOADD Sicily 12.758489 38.788135 edge1 17.241510 38.788135 edge2 17.250000 35.202000 edge3 12.750000 35.202000 edge4 12.748489955781654 37 edge5 15 38.798135872540925 edge6 17.251510044218346 37 edge7 15 35.201864127459075 edge8 12.692799634687903 38.798135872540925 corner1 12.692799634687903 38.798135872540925 corner2 17.200560937451133 35.201864127459075 corner3 12.799439062548865 35.201864127459075 corner4
GEOSEARCH Sicily fromlonlat 15 37 bybox 400 400 km asc
GEORADIUSBYMEMBER nyc wtc_one 7 km withdist
DEL points|GEOADD points -5.6 42.6 test|GEOHASH points test
DEL points|GEOADD points 10 20 a 30 40 b|GEOPOS points a b|GEOPOS points a x b
DEL points|GEOADD points 13.361389 38.115556 Palermo 15.087269 37.502669 Catania
GEODIST points Palermo Catania|GEODIST points Palermo Catania km|GEODIST points Palermo Palermo
GEODIST points Palermo Agrigento|GEODIST points Ragusa Agrigento|GEODIST empty_key Palermo Catania
DEL points|GEOADD points 13.361389 38.115556 Palermo 15.087269 37.502669 Catania
GEORADIUS points 13.361389 38.115556 50 km store
GEOSEARCHSTORE abc points fromlonlat 13.361389 38.115556 byradius 50 km store abc
GEORADIUS points 13.361389 38.115556 50 km store points2 withdist
GEORADIUS points 13.361389 38.115556 50 km store points2 withhash
GEORADIUS points 13.361389 38.115556 50 km store points2 withcoords
GEORADIUS points 13.361389 38.115556 500 km store points2|ZRANGE points2 0 -1 WITHSCORES
GEORADIUSBYMEMBER points Palermo 500 km store points2|ZRANGE points2 0 -1 WITHSCORES
GEORADIUSBYMEMBER points Catania 500 km storedist points2|ZRANGE points2 0 -1 WITHSCORES
GEOSEARCHSTORE points2 points fromlonlat 13.361389 38.115556 byradius 500 km|ZRANGE points2 0 -1 WITHSCORES
GEORADIUS points 13.361389 38.115556 500 km storedist points2|ZRANGE points2 0 -1 WITHSCORES
GEOSEARCHSTORE points2 points fromlonlat 13.361389 38.115556 byradius 500 km storedist
ZRANGE points2 0 -1 WITHSCORES
GEORADIUS points 13.361389 38.115556 500 km storedist points2 asc count 1|ZRANGE points2 0 -1 WITHSCORES
GEORADIUS points 13.361389 38.115556 500 km storedist points2 desc count 1|ZRANGE points2 0 -1 WITHSCORES
DEL points|GEOADD points 179.5 36 point1|GEOADD points -179.5 36 point2
GEOSEARCH points fromlonlat 179 37 bybox 400 400 km asc|GEOSEARCH points fromlonlat -179 37 bybox 400 400 km asc
DEL points|GEOADD points -122.407107 37.794300 1|GEOADD points -122.227336 37.794300 2
GEORADIUS points -122.407107 37.794300 30 mi ASC WITHDIST
"""


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_geo_tcl_cases_are_byte_identical(sakerd, redis_server_port, protocol):
    parity(sakerd, redis_server_port, GEO_TCL, protocol)


# The Mercator limits, numbers strtod takes or refuses, scores no GEOADD
# writes (any score decodes: negative, past 2**52, past 2**64, infinite),
# and every error of the argument parsing, in its order of checks.
EDGES = """
GEOADD e 180 85.05112878 ne -180 -85.05112878 sw 180 -85.05112878 se -180 85.05112878 nw 0 0 zero
GEOADD e 180.0000001 0 x|GEOADD e 0 85.06 x|GEOADD e -180.0000001 0 x|GEOADD e 0 -85.05112879 x
GEOADD e inf 0 x|GEOADD e -inf 0 x|GEOADD e nan 0 x|GEOADD e 1e400 0 x|GEOADD e '' 0 x|GEOADD e ' 1' 0 x
GEOADD e 0x10 0 x|GEOADD e 1e300 1 x|GEOADD e 1 1e-320 x|GEOADD e -0 -0 negzero|ZRANGE e 0 -1 WITHSCORES
GEOPOS e ne sw se nw zero negzero nope|GEOHASH e ne sw se nw zero negzero nope|ZSCORE e ne|ZSCORE e sw
GEODIST e ne sw|GEODIST e ne se km|GEODIST e nw ne mi|GEODIST e zero ne ft|GEODIST e zero ne FT|GEODIST e zero ne KM
GEODIST e zero ne parsec|GEODIST e zero ne km extra|GEODIST e nope ne|GEODIST e ne nope
GEOSEARCH e FROMLONLAT 0 0 BYRADIUS 20000 km WITHCOORD WITHDIST WITHHASH ASC
GEOSEARCH e FROMLONLAT 180 85.05112878 BYRADIUS 100 km WITHCOORD WITHDIST WITHHASH
GEOSEARCH e FROMLONLAT -180 -85.05112878 BYBOX 100 100 km WITHCOORD WITHDIST WITHHASH
GEOSEARCH e FROMLONLAT 180 0 BYBOX 100 100 km|GEOSEARCH e FROMLONLAT -180 0 BYRADIUS 20000 km DESC WITHDIST
GEOSEARCH e FROMMEMBER ne BYBOX 10000 10000 km WITHCOORD DESC|GEORADIUSBYMEMBER e sw 30000 km WITHDIST
GEORADIUS e 0 0 inf km|GEORADIUS e 0 0 1e308 mi WITHDIST|GEOSEARCH e FROMLONLAT 0 0 BYBOX inf 1 km
GEOSEARCH e FROMLONLAT 0 0 BYBOX 0 0 km WITHDIST|GEORADIUS e 0 0 0 m WITHDIST|GEORADIUS e 0 0 -0 m
GEORADIUS e 0 0 -1 m|GEORADIUS e 0 0 x m|GEORADIUS e 0 0 1 parsec|GEORADIUS e 0 0 '' m
GEOSEARCH e FROMLONLAT 0 0 BYBOX -1 1 km|GEOSEARCH e FROMLONLAT 0 0 BYBOX 1 -1 km|GEOSEARCH e FROMLONLAT 0 0 BYBOX x 1 km
GEOSEARCH e FROMLONLAT 0 0 BYBOX 1 x km|GEOSEARCH e FROMLONLAT 0 0 BYBOX 1 1 yd|GEOSEARCH e FROMLONLAT 200 0 BYBOX 1 1 km
GEOSEARCH e FROMLONLAT x 0 BYBOX 1 1 km|GEOSEARCH e FROMLONLAT 0 x BYBOX 1 1 km|GEOSEARCH e FROMMEMBER nope BYBOX 1 1 km
GEOSEARCH e FROMMEMBER ne FROMLONLAT 0 0 BYBOX 1 1 km|GEOSEARCH e FROMLONLAT 0 0 FROMMEMBER ne BYBOX 1 1 km
GEOSEARCH e FROMMEMBER ne FROMMEMBER zero BYRADIUS 1 km|GEOSEARCH e FROMMEMBER ne BYRADIUS 1 km BYRADIUS 100000 km
GEOSEARCH e FROMMEMBER ne BYBOX 1 1 km BYRADIUS 1 km|GEOSEARCH e FROMMEMBER ne BYRADIUS 1|GEOSEARCH e FROMMEMBER ne BYBOX 1 1
GEOSEARCH e FROMLONLAT 0 BYBOX 1 1 km|GEOSEARCH e FROMMEMBER|GEOSEARCH e BYRADIUS 1 km FROMMEMBER zero
geosearch e BYRADIUS 1 km|GeoSearch e FROMMEMBER zero|GEOSEARCHSTORE d e BYRADIUS 1 km|GeoSearchStore d e FROMMEMBER zero
GEOSEARCH e FROMMEMBER zero BYRADIUS 1 km COUNT 0|GEOSEARCH e FROMMEMBER zero BYRADIUS 1 km COUNT -1
GEOSEARCH e FROMMEMBER zero BYRADIUS 1 km COUNT x|GEOSEARCH e FROMMEMBER zero BYRADIUS 1 km COUNT 99999999999999999999
GEOSEARCH e FROMMEMBER zero BYRADIUS 1 km ANY|GEOSEARCH e FROMMEMBER zero BYRADIUS 1 km COUNT 1 ANY WITHHASH
GEOSEARCH e FROMMEMBER zero BYRADIUS 1 km STORE x|GEOSEARCH e FROMMEMBER zero BYRADIUS 1 km STOREDIST x
GEOSEARCH e FROMMEMBER zero BYRADIUS 1 km STOREDIST|GEOSEARCHSTORE d e FROMMEMBER zero BYRADIUS 1 km WITHDIST
GEOSEARCHSTORE d e FROMMEMBER zero BYRADIUS 1 km STORE d|GEOSEARCHSTORE d e FROMMEMBER zero BYRADIUS 1 km STOREDIST STOREDIST
ZRANGE d 0 -1 WITHSCORES|GEORADIUS_RO e 0 0 1 km STORE d|GEORADIUS_RO e 0 0 1 km STOREDIST d
GEORADIUS_RO e 0 0 1 km WITHDIST WITHCOORD WITHHASH|GEORADIUSBYMEMBER_RO e zero 1 km STORE d
GEORADIUSBYMEMBER_RO e zero 1 km WITHDIST|GEORADIUSBYMEMBER_RO e nope 1 km|GEORADIUSBYMEMBER e zero 1 km STORE
GEORADIUSBYMEMBER e zero x km|GEORADIUSBYMEMBER e nope x km|GEORADIUSBYMEMBER nokey nope x km
GEORADIUSBYMEMBER nokey nope x km STORE d|GEORADIUSBYMEMBER nokey nope x km foo|GEORADIUS nokey 0 0 x km
GEORADIUS nokey 200 0 1 km|GEORADIUS e 0 0 1 km FROMLONLAT 0 0|GEORADIUS e 0 0 1 km BYBOX 1 1 km
GEORADIUS e 0 0 1 km WITHDIST STORE d|GEORADIUS e 0 0 1 km STOREDIST d WITHHASH
GEORADIUS e 0 0 1 km STORE d STOREDIST d2|EXISTS d d2|ZRANGE d2 0 -1 WITHSCORES|GEORADIUS e 0 0 1 m STORE d2|EXISTS d2
SET str x|GEOADD str 0 0 a|GEOPOS str a|GEOHASH str a|GEODIST str a b|GEODIST str a b km|GEODIST str a b xx
GEORADIUS str 200 0 1 km|GEOSEARCH str FROMMEMBER a BYRADIUS 1 km|GEOSEARCHSTORE d str FROMMEMBER a BYRADIUS 1 km
GEOSEARCHSTORE str e FROMMEMBER zero BYRADIUS 1 km|TYPE str|GEOSEARCHSTORE str e FROMMEMBER zero BYRADIUS 0 km|EXISTS str
GEOADD|GEOADD e|GEOADD e 1 2|GEOADD e 1 2 m 3|GEOADD e ch 1 2|GEOADD e ch ch ch|GEOADD e gt 1 2 m|GEOADD e incr 1 2 m
GEOADD e NX XX 1 2 m|GEOADD e XX 1 2 newm|GEOADD e NX CH 1 2 zero 3 4 newm|GEOADD e XX CH 1 2 zero 3 4 other
GEOPOS|GEOPOS e|GEOHASH e|GEODIST e a|GEORADIUS e 0 0 1|GEORADIUSBYMEMBER e a 1|GEOSEARCH e FROMMEMBER a BYRADIUS
GEOSEARCHSTORE d e FROMMEMBER a BYRADIUS 1|GEOHASH nokey a b|GEOPOS nokey a b
ZADD w -1 m1 1e19 m2 1e20 m3 inf m4 -inf m5 4503599627370496 m6 9007199254740992 m7 1.5 m8 -9.3e18 m9
ZADD w 18446744073709551616 m10 9223372036854775808 m11 9007199254740993 m12 1e-300 m13
GEOPOS w m1 m2 m3 m4 m5 m6 m7 m8 m9 m10 m11 m12 m13|GEOHASH w m1 m2 m3 m4 m5 m6 m7 m8 m9 m10 m11 m12 m13
GEODIST w m1 m4|GEODIST w m6 m7|GEODIST w m9 m10 mi
GEOSEARCH w FROMMEMBER m1 BYRADIUS 30000 km WITHHASH WITHDIST WITHCOORD
GEOSEARCH w FROMMEMBER m6 BYRADIUS 30000 km WITHHASH WITHDIST WITHCOORD
CONFIG SET zset-max-listpack-entries 2|GEOADD big 1 1 a 2 2 b 3 3 c|OBJECT ENCODING big|GEORADIUS big 2 2 500 km STORE bd
OBJECT ENCODING bd|GEORADIUS big 2 2 500 km COUNT 2 STORE bd|OBJECT ENCODING bd|CONFIG SET zset-max-listpack-entries 128
GEOADD long 1 1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa|OBJECT ENCODING long
EVAL return(redis.call('GEOADD',KEYS[1],'CH',1,2,'m',3,4,'n')) 1 lua|EVAL return(redis.call('GEOPOS',KEYS[1],'m','x')) 1 lua
EVAL return(redis.call('GEOSEARCH',KEYS[1],'FROMMEMBER','m','BYRADIUS',500,'km','WITHCOORD','WITHDIST','WITHHASH')) 1 lua
EVAL return(redis.pcall('GEOADD',KEYS[1],200,2,'m')) 1 lua|EVAL return(redis.call('GEORADIUS_RO',KEYS[1],1,2,1,'m')) 1 lua
MULTI|GEOADD tx 1 2 a|GEOADD tx 1|GEOSEARCHSTORE tx2 tx FROMMEMBER a BYRADIUS 1 m|EXEC
MULTI|GEOADD tx 1 2 a|GEOADD tx 200 2 b|GEOSEARCHSTORE tx2 tx FROMMEMBER a BYRADIUS 1 m|GEOPOS tx2 a|EXEC
"""


@pytest.mark.parametrize("protocol", [2, 3])
def test_edges_and_errors_are_byte_identical(sakerd, redis_server_port, protocol):
    parity(sakerd, redis_server_port, EDGES, protocol)


def tied_points_script():
    """60 members on 6 points (many equal distances): what COUNT keeps and
    in which order is the work of pqsort() and of glibc's qsort()."""
    rng = random.Random(5)
    spots = [(13.361389, 38.115556), (15.087269, 37.502669), (13.5, 38.0), (14.0, 37.7),
             (13.361389, 38.115556), (12.9, 38.2)]
    args = []
    for i in range(60):
        x, y = spots[i % 6]
        args += ["%r" % x, "%r" % y, "m%02d_%d" % (rng.randrange(100), i)]
    lines = ["GEOADD t " + " ".join(args)]
    for count in (1, 2, 3, 5, 7, 8, 13, 40, 41, 59, 60, 61):
        for order in ("ASC", "DESC", ""):
            lines.append("GEORADIUS t 14 38 500 km COUNT %d %s WITHDIST" % (count, order))
            lines.append("GEOSEARCH t FROMLONLAT 13.361389 38.115556 BYBOX 800 800 km "
                         "COUNT %d %s" % (count, order))
            lines.append("GEORADIUS t 14 38 500 km COUNT %d ANY %s" % (count, order))
    lines += ["GEORADIUS t 14 38 500 km ASC|GEORADIUS t 14 38 500 km DESC|GEORADIUS t 14 38 500 km",
              "GEORADIUS t 14 38 500 km COUNT 7 DESC STORE d|ZRANGE d 0 -1 WITHSCORES",
              "GEORADIUS t 14 38 500 km COUNT 7 DESC STOREDIST d|ZRANGE d 0 -1 WITHSCORES"]
    return "\n".join(lines)


@pytest.mark.parametrize("protocol", [2, 3])
def test_ties_under_count_come_in_redis_s_order(sakerd, redis_server_port, protocol):
    parity(sakerd, redis_server_port, tied_points_script(), protocol)


def random_search_script(seed):
    """Random points (Redis's fuzzy test draws latitudes in [-70, 70]; here
    the whole Mercator range, some on the antimeridian) and random
    searches around random centres and members, radiuses from meters to
    thousands of km, boxes long and narrow."""
    rng = random.Random(seed)
    lines = []
    args = []
    for j in range(1500):
        lon = rng.choice([-180, 180]) if rng.random() < 0.02 else rng.uniform(-180, 180)
        lat = rng.uniform(-85.05112878, 85.05112878)
        args += ["%r" % lon, "%r" % lat, "p%d" % j]
    lines.append("GEOADD pts " + " ".join(args))
    units = ["m", "km", "mi", "ft"]
    for _ in range(60):
        unit = rng.choice(units)
        scale = {"m": 1, "km": 1000, "mi": 1609.34, "ft": 0.3048}[unit]
        big = rng.random() < 0.15
        span = (rng.uniform(1.5e6, 8e6) if big else rng.uniform(10, 1.5e6)) / scale
        if rng.random() < 0.5:
            origin = "FROMLONLAT %r %r" % (rng.uniform(-180, 180), rng.uniform(-85, 85))
        else:
            origin = "FROMMEMBER p%d" % rng.randrange(1500)
        if rng.random() < 0.5:
            shape = "BYRADIUS %r %s" % (span, unit)
        else:
            shape = "BYBOX %r %r %s" % (span, span * rng.choice([0.05, 1, 3]), unit)
        opts = rng.choice(["", "ASC", "DESC", "COUNT 5", "COUNT 3 DESC", "COUNT 4 ANY"])
        lines.append("GEOSEARCH pts %s %s %s WITHDIST WITHHASH WITHCOORD" % (origin, shape, opts))
    for _ in range(10):
        lines.append("GEORADIUS pts %r %r %r km WITHDIST ASC" % (
            rng.uniform(-180, 180), rng.uniform(-85, 85), rng.uniform(1, 3000)))
        a, b = rng.randrange(1500), rng.randrange(1500)
        lines.append("GEODIST pts p%d p%d km|GEOHASH pts p%d p%d|GEOPOS pts p%d" % (a, b, a, b, a))
    lines.append("ZRANGE pts 0 -1 WITHSCORES")
    return "\n".join(lines)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_points_and_searches_match_redis_server(sakerd, redis_server_port, seed):
    parity(sakerd, redis_server_port, random_search_script(seed), 2 + seed % 2)


def box_edges_script(seed):
    """geo.tcl's box edges fuzzy test: the four corners and the middles of
    the four sides of a box, searched with the box 4 m wider, narrower,
    taller, shorter: which points are in is decided by the last bits."""
    rng = random.Random(seed)
    lines = []
    for _ in range(25):
        lon, lat = rng.uniform(-180, 180), rng.uniform(-70, 70)
        width, height = rng.randrange(10000) + 10, rng.randrange(10000) + 10
        lat_delta = math.degrees(height / 2 / EARTH_RADIUS)
        top = math.degrees(width / 2 / EARTH_RADIUS / math.cos(math.radians(lat + lat_delta)))
        middle = math.degrees(width / 2 / EARTH_RADIUS / math.cos(math.radians(lat)))
        bottom = math.degrees(width / 2 / EARTH_RADIUS / math.cos(math.radians(lat - lat_delta)))
        points = {"north": (lon, lat + lat_delta), "south": (lon, lat - lat_delta),
                  "east": (lon + middle, lat), "west": (lon - middle, lat),
                  "north_east": (lon + top, lat + lat_delta),
                  "north_west": (lon - top, lat + lat_delta),
                  "south_east": (lon + bottom, lat - lat_delta),
                  "south_west": (lon - bottom, lat - lat_delta)}
        args = []
        for name, (x, y) in sorted(points.items()):
            x = x - 360 if x > 180 else x + 360 if x < -180 else x
            args += ["%r" % x, "%r" % y, "place:" + name]
        lines.append("DEL box|GEOADD box " + " ".join(args))
        for dw, dh in ((4, 4), (-4, 4), (4, -4), (-4, -4), (0, 0)):
            lines.append("GEOSEARCH box FROMLONLAT %r %r BYBOX %d %d m WITHDIST ASC" % (
                lon, lat, width + dw, height + dh))
    return "\n".join(lines)


@pytest.mark.parametrize("protocol", [2, 3])
def test_box_edges_are_decided_as_redis_decides_them(sakerd, redis_server_port, protocol):
    parity(sakerd, redis_server_port, box_edges_script(7), protocol)


GEO_WRITES = [
    ("GEOADD", "g", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"),
    ("GEOADD", "g", "13.361389", "38.115556", "Palermo"),           # nothing changes: no event
    ("GEOADD", "g", "XX", "CH", "13.5", "38.1", "Palermo", "1", "1", "nobody"),
    ("GEOADD", "g", "NX", "1", "1", "Palermo"),
    ("GEORADIUS", "g", "15", "37", "200", "km", "STORE", "near"),
    ("GEORADIUS", "g", "15", "37", "200", "km", "STOREDIST", "near"),
    ("GEORADIUSBYMEMBER", "g", "Palermo", "500", "km", "STORE", "near2"),
    ("GEOSEARCHSTORE", "box", "g", "FROMLONLAT", "15", "37", "BYBOX", "400", "400", "km"),
    ("GEOSEARCHSTORE", "box", "g", "FROMMEMBER", "Catania", "BYRADIUS", "1", "m", "STOREDIST"),
    ("GEOSEARCHSTORE", "box", "g", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "m"),    # deletes box
    ("GEOSEARCHSTORE", "box", "g", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "m"),    # nothing
    ("GEORADIUS", "g", "0", "0", "1", "m", "STORE", "near"),                         # deletes near
    ("GEORADIUS", "nokey", "0", "0", "1", "m", "STORE", "near2"),                    # deletes near2
    ("GEOSEARCHSTORE", "near2", "nokey", "FROMMEMBER", "x", "BYRADIUS", "1", "m"),   # nothing
    ("SET", "s", "v"), ("GEOSEARCHSTORE", "s", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "1", "km"),
    ("GEOSEARCH", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "1000", "km"),
    ("GEOPOS", "g", "Palermo"), ("GEODIST", "g", "Palermo", "Catania"),
]


@pytest.mark.parametrize("classes", ["KEA", "Kz", "Eg", "En"])
def test_keyspace_events_of_geo_writes_match_redis_server(sakerd, redis_server_port, classes):
    from test_notify import published_frames
    ours = published_frames(sakerd.port, classes, GEO_WRITES)
    theirs = published_frames(redis_server_port, classes, GEO_WRITES)
    assert ours == theirs
    if classes == "KEA":
        assert ("frame", b"*4\r\n$8\r\npmessage\r\n$10\r\n__key*__:*\r\n$29\r\n__keyevent@0__:"
                         b"georadiusstore\r\n$4\r\nnear\r\n") in ours


WATCHED_AND_BLOCKED = """
a: DEL g dst
a: GEOADD g 13.361389 38.115556 Palermo 15.087269 37.502669 Catania
b> BZPOPMIN dst 0
~ 1
a: GEOSEARCHSTORE dst g FROMLONLAT 15 37 BYRADIUS 200 km STOREDIST
b<
a: WATCH g
c: GEOADD g 1 1 x
a: MULTI
a: GEOPOS g x
a: EXEC
a: WATCH dst
c: GEORADIUS g 15 37 200 km STORE dst
a: MULTI
a: ZCARD dst
a: EXEC
a: WATCH g
c: GEOADD g 1 1 x
a: MULTI
a: GEOHASH g x
a: EXEC
"""


@pytest.mark.parametrize("protocol", [2, 3])
def test_geo_writes_touch_watched_keys_and_wake_blocked_pops(sakerd, redis_server_port, protocol):
    from sidebyside import mismatches
    assert mismatches(sakerd.port, redis_server_port, WATCHED_AND_BLOCKED, protocol) == []


def test_geoadd_shows_as_itself_in_monitor_and_runs_zadd(sakerd):
    """ZADD runs on a rewritten vector; MONITOR still shows the GEOADD sent.
    (3403951602136190: redis-server's score for 10,20.)"""
    mon = RawConn(("127.0.0.1", sakerd.port))
    assert mon.call("MONITOR") == b"+OK\r\n"
    c = RawConn(("127.0.0.1", sakerd.port))
    assert c.call("GEOADD", "m", "CH", "10", "20", "a") == b":1\r\n"
    assert c.call("ZSCORE", "m", "a") == b"$16\r\n3403951602136190\r\n"
    assert c.call("TYPE", "m") == b"+zset\r\n"
    line = mon.read_wire()
    assert line.endswith(b'"GEOADD" "m" "CH" "10" "20" "a"\r\n'), line
    c.close()
    mon.close()


GEO_COMMANDS = ["geoadd", "geodist", "geohash", "geopos", "georadius", "georadius_ro",
                "georadiusbymember", "georadiusbymember_ro", "geosearch", "geosearchstore"]


def test_command_info_of_geo_commands_is_redis_s(sakerd, redis_server_port):
    """Name, arity, key triple, ACL categories and key specs as redis-server
    says (its flags beyond write/readonly, denyoom and movablekeys, are
    not among those sakerd reports for any command)."""
    def info(port):
        c = RawConn(("127.0.0.1", port))
        c.send(encode_command("COMMAND", "INFO", *GEO_COMMANDS))
        reply = c.read_reply()
        c.close()
        return reply
    ours, theirs = info(sakerd.port), info(redis_server_port)
    for mine, real in zip(ours, theirs):
        assert mine[:2] + mine[3:] == real[:2] + real[3:], real[0]
        assert set(mine[2]) == set(real[2]) - {b"denyoom", b"movablekeys"}, real[0]


ACL_SCRIPT = """
ACL SETUSER geouser on >pw ~g* +@geo +zrange|AUTH geouser pw
GEOADD g 1 1 a|GEOADD other 1 1 a|GEORADIUS_RO g 1 1 10 km|GEORADIUS g 1 1 10 km
GEORADIUS g 1 1 10 km STORE other|GEORADIUS g 1 1 10 km STORE g2|GEORADIUSBYMEMBER g a 1 km STOREDIST other
GEOSEARCHSTORE other g FROMMEMBER a BYRADIUS 1 km|GEOSEARCH other FROMMEMBER a BYRADIUS 1 km
GEOSEARCHSTORE g3 g FROMMEMBER a BYRADIUS 1 km|ZRANGE g2 0 -1|ZRANGE g3 0 -1
"""


def test_acl_key_patterns_see_the_store_keys_as_redis_does(sakerd, redis_server_port):
    """GEORADIUS's STORE key is found by its keyword (Redis's key spec)."""
    try:
        parity(sakerd, redis_server_port, ACL_SCRIPT, 2)
    finally:
        for port in (sakerd.port, redis_server_port):
            c = RawConn(("127.0.0.1", port))
            assert c.call("ACL", "DELUSER", "geouser") == b":1\r\n"
            c.close()
