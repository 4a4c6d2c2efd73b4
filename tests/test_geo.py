"""Geo commands (geo.py, geohash.py), side by side with redis-server 7.0.15.

The cases of Redis's own tests/unit/geo.tcl, the edges of the Mercator
limits (+-85.05112878, +-180), BYBOX, COUNT ANY, STORE/STOREDIST, WRONGTYPE
and every error give the same bytes as redis-server in RESP2 and RESP3:
the scores (ZSCORE), GEOPOS's doubles, GEOHASH's strings, the distances
to four decimals, the order of ties. A seeded random test adds random
points and searches them with random shapes on both servers; another
watches the keyspace events of the writes.
"""

import random

import pytest

from helpers import Daemon, RawConn
from parity import run_parity


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
