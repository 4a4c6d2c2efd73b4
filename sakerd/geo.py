"""Geo commands: GEOADD GEOSEARCH GEORADIUS GEOPOS... (Redis's geo.c).

A geo set is a sorted set (t_zset.ZSet) whose scores are 52-bit geohashes
(geohash.py): GEOADD turns each position into a score and runs ZADD with
them, as Redis does (its options, reply, notifications and encoding are
ZADD's); a search scans the score ranges of the nine cells around its
centre with the zset's own range lookup (ZSet.score_range, the min <=
score < max of geoGetPointsInRange), keeps what lies in the circle or the
box, sorts by distance when asked (pqsort.py) and replies or stores the
result as a zset (t_zset.stored_zset).

Numbers are printed as Redis prints them: distances with four decimals
(fixedpoint_d2string: llrint of d * 10000, so -0.00001 is "0.0000"),
coordinates as long doubles in "human" form (ld2string LD_STR_HUMAN: a bulk
string in RESP2, a double in RESP3), hashes as the integer of the score.
"""

from fractions import Fraction

from .db import lookup_typed, signal_modified_key
from .geohash import (CIRCULAR_TYPE, GEO_LAT_MAX, GEO_LAT_MIN, GEO_LONG_MAX, GEO_LONG_MIN,
                      GEO_STEP_MAX, RECTANGLE_TYPE, Shape, align52, areas_by_shape,
                      decode_score, distance, distance_if_in_rectangle, double_to_int64,
                      encode, encode_wgs84)
from .pqsort import msort, pqsort
from .resp import string2ll
from .server_h import Command, CMD_READONLY, CMD_WRITE
from .t_string import ld2string_human
from .t_zset import SYNTAX_ERR, NOT_FLOAT, NOT_INTEGER, ZSet, notify_del, notify_zset, \
    stored_zset, string2d, zadd_generic

_LLONG_MIN = -(1 << 63)
_GEOALPHABET = b"0123456789bcdefghjkmnpqrstuvwxyz"
_UNITS = {b"m": 1.0, b"km": 1000.0, b"ft": 0.3048, b"mi": 1609.34}

# georadiusGeneric()'s flags.
RADIUS_COORDS = 1 << 0      # search around coordinates
RADIUS_MEMBER = 1 << 1      # search around a member
RADIUS_NOSTORE = 1 << 2     # no STORE/STOREDIST (the _RO variants)
GEOSEARCH = 1 << 3          # GEOSEARCH's arguments
GEOSEARCHSTORE = 1 << 4     # GEOSEARCHSTORE: STOREDIST as a flag

SORT_NONE = 0
SORT_ASC = 1
SORT_DESC = 2


# ---- arguments -----------------------------------------------------------------------------

def get_double_or_reply(c, arg, msg=NOT_FLOAT):
    """getDoubleFromObjectOrReply()."""
    d = string2d(arg)
    if d is None:
        c.add_reply_error(msg)
    return d


def extract_long_lat_or_reply(c, lon_arg, lat_arg):
    """extractLongLatOrReply(): (longitude, latitude) in the Mercator limits, or None."""
    lon = get_double_or_reply(c, lon_arg)
    if lon is None:
        return None
    lat = get_double_or_reply(c, lat_arg)
    if lat is None:
        return None
    if lon < GEO_LONG_MIN or lon > GEO_LONG_MAX or lat < GEO_LAT_MIN or lat > GEO_LAT_MAX:
        c.add_reply_error("-ERR invalid longitude,latitude pair %f,%f\r\n" % (lon, lat))
        return None
    return lon, lat


def extract_unit_or_reply(c, arg):
    """extractUnitOrReply(): the meters in one unit, or None."""
    to_meters = _UNITS.get(arg.lower())
    if to_meters is None:
        c.add_reply_error("unsupported unit provided. please use M, KM, FT, MI")
    return to_meters


def extract_distance_or_reply(c, args):
    """extractDistanceOrReply(): (meters per unit, radius) of `radius unit`, or None."""
    radius = get_double_or_reply(c, args[0], "need numeric radius")
    if radius is None:
        return None
    if radius < 0:
        c.add_reply_error("radius cannot be negative")
        return None
    to_meters = extract_unit_or_reply(c, args[1])
    return None if to_meters is None else (to_meters, radius)


def extract_box_or_reply(c, args):
    """extractBoxOrReply(): (meters per unit, width, height) of `width height unit`."""
    w = get_double_or_reply(c, args[0], "need numeric width")
    if w is None:
        return None
    h = get_double_or_reply(c, args[1], "need numeric height")
    if h is None:
        return None
    if h < 0 or w < 0:
        c.add_reply_error("height or width cannot be negative")
        return None
    to_meters = extract_unit_or_reply(c, args[2])
    return None if to_meters is None else (to_meters, w, h)


# ---- replies ----------------------------------------------------------------------------------

def distance_text(d):
    """fixedpoint_d2string(d, 4): llrint(d * 10000) as digits with a dot
    before the last four (llrint: ties to even; LLONG_MIN when out of range)."""
    if d == 0:
        return b"0.0000"
    scaled = d * 10000.0
    v = round(scaled) if -9.3e18 < scaled < 9.3e18 else _LLONG_MIN
    if not -(1 << 63) <= v < (1 << 63):
        v = _LLONG_MIN
    digits = b"%05d" % abs(v)
    return (b"-" if v < 0 else b"") + digits[:-4] + b"." + digits[-4:]


def reply_distance(d):
    t = distance_text(d)
    return b"$%d\r\n%s\r\n" % (len(t), t)


def reply_human_double(c, d):
    """addReplyHumanLongDouble() of a double."""
    t = ld2string_human(Fraction(d))
    if c.resp == 2:
        return b"$%d\r\n%s\r\n" % (len(t), t)
    return b",%s\r\n" % t


# ---- searching ----------------------------------------------------------------------------------

def within_shape(shape, score):
    """geoWithinShape(): (longitude, latitude, distance) of the point of
    `score` when it lies inside the shape, else None."""
    x, y = decode_score(score)
    cx, cy = shape.xy
    if shape.type == CIRCULAR_TYPE:
        dist = distance(cx, cy, x, y)
        if dist > shape.radius * shape.conversion:
            return None
    else:
        dist = distance_if_in_rectangle(shape.width * shape.conversion,
                                        shape.height * shape.conversion, cx, cy, x, y)
        if dist is None:
            return None
    return x, y, dist


def points_in_range(zs, lo, hi, shape, found, limit):
    """geoGetPointsInRange(): append to `found` the points whose score is in
    [lo, hi) and inside the shape, as [dist, score, member, lon, lat];
    stop once `found` holds `limit` points (0: no limit)."""
    first, last = zs.score_range((float(lo), False, float(hi), True))
    if first > last:
        return
    for score, member in zs.sl.islice(first, last + 1):
        point = within_shape(shape, score)
        if point is not None:
            found.append([point[2], score, member, point[0], point[1]])
        if found and limit and len(found) >= limit:
            break


def members_of_all_neighbors(zs, steps, cells, shape, limit):
    """membersOfAllNeighbors(): the points of the nine cells. A cell equal
    to the last one scanned (huge radiuses: neighbours wrap around) is
    skipped, so that no member is found twice."""
    found = []
    last = None     # the last neighbour scanned (Redis's last_processed: not the centre)
    for i, bits in enumerate(cells):
        if bits is None or bits == last:
            continue
        if found and limit and len(found) >= limit:
            break
        points_in_range(zs, align52(bits, steps), align52(bits + 1, steps), shape, found, limit)
        if i:
            last = bits
    return found


def _cmp_asc(a, b):
    """sort_gp_asc(): NaN compares below everything, both ways, as in C."""
    if a[0] > b[0]:
        return 1
    if a[0] == b[0]:
        return 0
    return -1


def _cmp_desc(a, b):
    return -_cmp_asc(a, b)


def sort_points(found, sort, returned):
    """qsort() of everything, or pqsort() of the first `returned` places."""
    cmp = _cmp_asc if sort == SORT_ASC else _cmp_desc
    if returned == len(found):
        if any(p[0] != p[0] for p in found):
            return msort(found, cmp)
        return sorted(found, key=lambda p: p[0], reverse=sort == SORT_DESC)
    pqsort(found, cmp, 0, returned - 1)
    return found


# ---- GEORADIUS and GEOSEARCH --------------------------------------------------------------------

class SearchArgs:
    """What georadiusGeneric() parses: the shape and the options."""
    __slots__ = ("shape", "storekey", "storedist", "withdist", "withhash", "withcoords",
                 "frommember", "fromloc", "byradius", "bybox", "sort", "any", "count")

    def __init__(self):
        self.shape = Shape()
        self.storekey = None
        self.storedist = False
        self.withdist = self.withhash = self.withcoords = False
        self.frommember = self.fromloc = self.byradius = self.bybox = False
        self.sort = SORT_NONE
        self.any = False
        self.count = 0


def member_position_or_reply(c, zs, member):
    """longLatFromMember(), or the error when the member is not there."""
    score = zs.dict.get(member)
    if score is None:
        c.add_reply_error("could not decode requested zset member")
        return None
    return decode_score(score)


def set_circle_or_reply(c, shape, xy, radius_args):
    """GEORADIUS[BYMEMBER]'s circle: centre xy (None: already replied), then
    `radius unit`. False when an error was replied."""
    if xy is None:
        return False
    dist = extract_distance_or_reply(c, radius_args)
    if dist is None:
        return False
    shape.type = CIRCULAR_TYPE
    shape.xy = xy
    shape.conversion, shape.radius = dist
    return True


def parse_search_base(c, zs, flags, s):
    """The fixed arguments: the index of the first option, or None (replied)."""
    argv = c.argv
    if flags & RADIUS_COORDS:
        xy = extract_long_lat_or_reply(c, argv[2], argv[3])
        return 6 if set_circle_or_reply(c, s.shape, xy, argv[4:6]) else None
    if flags & RADIUS_MEMBER:
        if zs is None:
            # Parse the options all the same: they choose the reply.
            return 5
        xy = member_position_or_reply(c, zs, argv[2])
        return 5 if set_circle_or_reply(c, s.shape, xy, argv[3:5]) else None
    if flags & GEOSEARCHSTORE:
        s.storekey = argv[1]
        return 3
    return 2


def parse_search_options(c, zs, flags, s, base):
    """The options, in georadiusGeneric()'s order of checks: True, or False (replied)."""
    argv = c.argv
    shape = s.shape
    remaining = len(argv) - base
    can_store = not flags & (RADIUS_NOSTORE | GEOSEARCH)
    search = flags & GEOSEARCH
    i = 0
    while i < remaining:
        arg = argv[base + i].lower()
        if arg == b"withdist":
            s.withdist = True
        elif arg == b"withhash":
            s.withhash = True
        elif arg == b"withcoord":
            s.withcoords = True
        elif arg == b"any":
            s.any = True
        elif arg == b"asc":
            s.sort = SORT_ASC
        elif arg == b"desc":
            s.sort = SORT_DESC
        elif arg == b"count" and i + 1 < remaining:
            count = string2ll(argv[base + i + 1])
            if count is None:
                c.add_reply_error(NOT_INTEGER)
                return False
            if count <= 0:
                c.add_reply_error("COUNT must be > 0")
                return False
            s.count = count
            i += 1
        elif arg in (b"store", b"storedist") and i + 1 < remaining and can_store:
            s.storekey = argv[base + i + 1]
            s.storedist = arg == b"storedist"
            i += 1
        elif arg == b"storedist" and search and flags & GEOSEARCHSTORE:
            s.storedist = True
        elif arg == b"frommember" and i + 1 < remaining and search and not s.fromloc:
            # Without a source key parsing goes on: the reply is chosen after.
            if zs is not None:
                xy = member_position_or_reply(c, zs, argv[base + i + 1])
                if xy is None:
                    return False
                shape.xy = xy
            s.frommember = True
            i += 1
        elif arg == b"fromlonlat" and i + 2 < remaining and search and not s.frommember:
            xy = extract_long_lat_or_reply(c, argv[base + i + 1], argv[base + i + 2])
            if xy is None:
                return False
            shape.xy = xy
            s.fromloc = True
            i += 2
        elif arg == b"byradius" and i + 2 < remaining and search and not s.bybox:
            dist = extract_distance_or_reply(c, argv[base + i + 1:base + i + 3])
            if dist is None:
                return False
            shape.conversion, shape.radius = dist
            shape.type = CIRCULAR_TYPE
            s.byradius = True
            i += 2
        elif arg == b"bybox" and i + 3 < remaining and search and not s.byradius:
            box = extract_box_or_reply(c, argv[base + i + 1:base + i + 4])
            if box is None:
                return False
            shape.conversion, shape.width, shape.height = box
            shape.type = RECTANGLE_TYPE
            s.bybox = True
            i += 3
        else:
            c.add_reply_error(SYNTAX_ERR)
            return False
        i += 1
    return True


def check_search_options(c, flags, s):
    """The combinations georadiusGeneric() refuses: True when none is there."""
    name = c.argv[0].decode("latin-1")
    if s.storekey is not None and (s.withdist or s.withhash or s.withcoords):
        c.add_reply_error("%s is not compatible with WITHDIST, WITHHASH and WITHCOORD options" %
                          ("GEOSEARCHSTORE" if flags & GEOSEARCHSTORE else
                           "STORE option in GEORADIUS"))
        return False
    if flags & GEOSEARCH and not (s.frommember or s.fromloc):
        c.add_reply_error("exactly one of FROMMEMBER or FROMLONLAT can be specified for %s" % name)
        return False
    if flags & GEOSEARCH and not (s.byradius or s.bybox):
        c.add_reply_error("exactly one of BYRADIUS and BYBOX can be specified for %s" % name)
        return False
    if s.any and not s.count:
        c.add_reply_error("the ANY argument requires COUNT argument")
        return False
    return True


def georadius_generic(c, src_idx, flags):
    """georadiusGeneric(): GEORADIUS[BYMEMBER][_RO], GEOSEARCH[STORE]."""
    zs, ok = lookup_typed(c, c.argv[src_idx], ZSet)
    if not ok:
        return
    s = SearchArgs()
    base = parse_search_base(c, zs, flags, s)
    if base is None or not parse_search_options(c, zs, flags, s, base) or \
            not check_search_options(c, flags, s):
        return
    if zs is None:
        if s.storekey is not None:
            delete_store_key(c, s.storekey)
            c.add_reply(b":0\r\n")
        else:
            c.add_reply(b"*0\r\n")
        return
    # COUNT without ordering makes little sense (the closest N are wanted),
    # except with ANY: ascending then.
    if s.count and s.sort == SORT_NONE and not s.any:
        s.sort = SORT_ASC
    steps, cells = areas_by_shape(s.shape)
    found = members_of_all_neighbors(zs, steps, cells, s.shape, s.count if s.any else 0)
    if not found and s.storekey is None:
        c.add_reply(b"*0\r\n")
        return
    returned = len(found) if not s.count or len(found) < s.count else s.count
    if s.sort != SORT_NONE:
        found = sort_points(found, s.sort, returned)
    conversion = s.shape.conversion
    for p in found[:returned]:
        p[0] /= conversion
    if s.storekey is None:
        reply_points(c, s, found, returned)
    else:
        store_points(c, s, flags, found, returned)


def reply_points(c, s, found, returned):
    options = s.withdist + s.withhash + s.withcoords
    out = [b"*%d\r\n" % returned]
    for dist, score, member, lon, lat in found[:returned]:
        if options:
            out.append(b"*%d\r\n" % (options + 1))
        out.append(b"$%d\r\n%s\r\n" % (len(member), member))
        if s.withdist:
            out.append(reply_distance(dist))
        if s.withhash:
            out.append(b":%d\r\n" % double_to_int64(score))
        if s.withcoords:
            out.append(b"*2\r\n" + reply_human_double(c, lon) + reply_human_double(c, lat))
    c.add_reply(b"".join(out))


def store_points(c, s, flags, found, returned):
    """The result as a zset at the STORE key (scores: the geohashes, or the
    distances for STOREDIST); no result deletes the key."""
    db = c.db
    key = s.storekey
    if returned:
        pairs = [(p[0] if s.storedist else p[1], p[2]) for p in found[:returned]]
        db.set_key(key, stored_zset(pairs))      # signals the key as modified
        notify_zset(c, b"geosearchstore" if flags & GEOSEARCH else b"georadiusstore", key)
    else:
        delete_store_key(c, key)
    c.add_reply(b":%d\r\n" % returned)


def delete_store_key(c, key):
    db = c.db
    if db.delete(key):
        signal_modified_key(c, db, key)
        notify_del(c, key)


def georadius_command(c):
    georadius_generic(c, 1, RADIUS_COORDS)


def georadiusbymember_command(c):
    georadius_generic(c, 1, RADIUS_MEMBER)


def georadius_ro_command(c):
    georadius_generic(c, 1, RADIUS_COORDS | RADIUS_NOSTORE)


def georadiusbymember_ro_command(c):
    georadius_generic(c, 1, RADIUS_MEMBER | RADIUS_NOSTORE)


def geosearch_command(c):
    georadius_generic(c, 1, GEOSEARCH)


def geosearchstore_command(c):
    georadius_generic(c, 2, GEOSEARCH | GEOSEARCHSTORE)


# ---- GEOADD ----------------------------------------------------------------------------------

def geoadd_command(c):
    """GEOADD key [NX|XX] [CH] lon lat member...: ZADD with the geohashes as
    scores. As in Redis, ZADD runs on a rewritten argument vector; the
    client's own is put back after it (what MONITOR and SLOWLOG show, as
    Redis shows the original vector)."""
    argv = c.argv
    longidx = 2
    nx = xx = False
    while longidx < len(argv):
        opt = argv[longidx].lower()
        if opt == b"nx":
            nx = True
        elif opt == b"xx":
            xx = True
        elif opt != b"ch":      # CH is ZADD's
            break
        longidx += 1
    if (len(argv) - longidx) % 3 or (xx and nx):
        c.add_reply_error(SYNTAX_ERR)
        return
    zargv = [b"zadd"] + list(argv[1:longidx])
    for i in range(longidx, len(argv), 3):
        xy = extract_long_lat_or_reply(c, argv[i], argv[i + 1])
        if xy is None:
            return
        bits = align52(encode_wgs84(xy[0], xy[1], GEO_STEP_MAX), GEO_STEP_MAX)
        zargv += [b"%d" % bits, argv[i + 2]]
    c.argv = zargv
    try:
        zadd_generic(c, 0)
    finally:
        c.argv = argv


# ---- GEOHASH / GEOPOS / GEODIST ----------------------------------------------------------------

# The standard geohash's ranges: the latitude over [-90, 90].
_STANDARD_LONG = (-180.0, 180.0)
_STANDARD_LAT = (-90.0, 90.0)


def geohash_text(score):
    """The 11-character standard geohash of a score: decoded, re-encoded
    over the standard ranges; 52 bits make 10 characters, the 11th is '0'."""
    x, y = decode_score(score)
    bits = encode(_STANDARD_LONG, _STANDARD_LAT, x, y, 26)
    chars = bytearray(11)
    for i in range(10):
        chars[i] = _GEOALPHABET[(bits >> (52 - (i + 1) * 5)) & 0x1F]
    chars[10] = _GEOALPHABET[0]
    return bytes(chars)


def reply_per_member(c, null_resp2, reply_of_score):
    """GEOHASH/GEOPOS: an array of one reply per member, a null for a member
    that is not there (null_resp2 in RESP2, _ in RESP3)."""
    zs, ok = lookup_typed(c, c.argv[1], ZSet)
    if not ok:
        return
    d = zs.dict if zs is not None else {}
    null = null_resp2 if c.resp == 2 else b"_\r\n"
    out = [b"*%d\r\n" % (len(c.argv) - 2)]
    for member in c.argv[2:]:
        score = d.get(member)
        out.append(null if score is None else reply_of_score(c, score))
    c.add_reply(b"".join(out))


def geohash_command(c):
    reply_per_member(c, b"$-1\r\n", lambda c, score: b"$11\r\n%s\r\n" % geohash_text(score))


def position_reply(c, score):
    x, y = decode_score(score)
    return b"*2\r\n" + reply_human_double(c, x) + reply_human_double(c, y)


def geopos_command(c):
    reply_per_member(c, b"*-1\r\n", position_reply)


def geodist_command(c):
    argv = c.argv
    to_meter = 1.0
    if len(argv) == 5:
        to_meter = extract_unit_or_reply(c, argv[4])
        if to_meter is None:
            return
    elif len(argv) > 5:
        c.add_reply_error(SYNTAX_ERR)
        return
    zs, ok = lookup_typed(c, argv[1], ZSet)
    if not ok:
        return
    score1 = score2 = None
    if zs is not None:
        score1 = zs.dict.get(argv[2])
        score2 = zs.dict.get(argv[3])
    if score1 is None or score2 is None:
        c.add_reply_null()
        return
    x1, y1 = decode_score(score1)
    x2, y2 = decode_score(score2)
    c.add_reply(reply_distance(distance(x1, y1, x2, y2) / to_meter))


_W = CMD_WRITE
_R = CMD_READONLY
_G = "geo"

COMMANDS = [
    Command("geoadd", geoadd_command, -5, _W, 1, 1, 1, group=_G,
            summary="Add one or more geospatial items in the geospatial index represented "
                    "using a sorted set"),
    Command("geodist", geodist_command, -4, _R, 1, 1, 1, group=_G,
            summary="Returns the distance between two members of a geospatial index"),
    Command("geohash", geohash_command, -2, _R, 1, 1, 1, group=_G,
            summary="Returns members of a geospatial index as standard geohash strings"),
    Command("geopos", geopos_command, -2, _R, 1, 1, 1, group=_G,
            summary="Returns longitude and latitude of members of a geospatial index"),
    Command("georadius", georadius_command, -6, _W, 1, 1, 1, group=_G,
            summary="Query a sorted set representing a geospatial index to fetch members "
                    "matching a given maximum distance from a point"),
    Command("georadius_ro", georadius_ro_command, -6, _R, 1, 1, 1, group=_G,
            summary="A read-only variant for GEORADIUS"),
    Command("georadiusbymember", georadiusbymember_command, -5, _W, 1, 1, 1, group=_G,
            summary="Query a sorted set representing a geospatial index to fetch members "
                    "matching a given maximum distance from a member"),
    Command("georadiusbymember_ro", georadiusbymember_ro_command, -5, _R, 1, 1, 1, group=_G,
            summary="A read-only variant for GEORADIUSBYMEMBER"),
    Command("geosearch", geosearch_command, -7, _R, 1, 1, 1, group=_G,
            summary="Query a sorted set representing a geospatial index to fetch members "
                    "inside an area of a box or a circle."),
    Command("geosearchstore", geosearchstore_command, -8, _W, 1, 2, 1, group=_G,
            summary="Query a sorted set representing a geospatial index to fetch members "
                    "inside an area of a box or a circle, and store the result in another "
                    "key."),
]
