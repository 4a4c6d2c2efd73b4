"""The 52-bit geohash and the distances of GEO* (Redis's geohash.c and
geohash_helper.c).

A position is stored as a sorted set score: longitude and latitude, each
scaled to 26 bits over [-180, 180] and [-85.05112878, 85.05112878] (the
Web Mercator limits: there is no geocoding at the poles), interleaved
latitude in the even bits and longitude in the odd ones. A search covers
its area with the cell of the centre and its eight neighbours at a step
(bits per coordinate) chosen from the radius, each cell one score range.

Every number must come out as Redis's, bit for bit, so this is C's
arithmetic written in Python, in C's order of operations:

- doubles are IEEE doubles on both sides and x86-64 has no extended
  precision for them (SSE2), nor fused multiply-adds in Redis's build;
  sin, cos, asin and sqrt are glibc's libm on both sides (Python's math
  calls it), except that C answers NaN where math raises (cos(inf),
  asin(1.0000000000000002)): c_cos and distance() do what C does;
- integers are uint64_t (masked to 64 bits) or uint32_t where C has them;
- a double converted to an integer is what gcc's x86-64 code gives
  (cvttsd2si): truncated, and 0x8000000000000000 when out of range or
  NaN, see double_to_uint64 and double_to_int64. Any zset score decodes,
  as in Redis: a score that is no geohash gives some clamped position.
"""

import math

GEO_STEP_MAX = 26                   # 26 * 2 = 52 bits
GEO_LAT_MIN = -85.05112878
GEO_LAT_MAX = 85.05112878
GEO_LONG_MIN = -180.0
GEO_LONG_MAX = 180.0

D_R = math.pi / 180.0
EARTH_RADIUS_IN_METERS = 6372797.560856     # quadratic mean radius for WGS-84
MERCATOR_MAX = 20037726.37

CIRCULAR_TYPE = 1
RECTANGLE_TYPE = 2

U64 = (1 << 64) - 1
U32 = (1 << 32) - 1
_EVEN = 0x5555555555555555
_ODD = 0xAAAAAAAAAAAAAAAA
_NAN = float("nan")
_TWO63 = 9223372036854775808.0      # 2**63
_INDEFINITE = 1 << 63               # cvttsd2si's "integer indefinite"
_sin, _cos, _asin, _sqrt = math.sin, math.cos, math.asin, math.sqrt


def c_cos(x):
    return math.cos(x) if -math.inf < x < math.inf else _NAN


def double_to_uint64(d):
    """(uint64_t)d as gcc compiles it on x86-64."""
    if d < _TWO63:
        if d >= -_TWO63:
            return int(d) & U64
        return _INDEFINITE          # below -2**63, -inf, NaN
    d -= _TWO63
    return (int(d) if d < _TWO63 else _INDEFINITE) ^ _INDEFINITE


def double_to_int64(d):
    """(long long)d on x86-64: truncated, or LLONG_MIN when out of range."""
    if -_TWO63 <= d < _TWO63:
        return int(d)
    return -_INDEFINITE


def deg_rad(ang):
    return ang * D_R


def rad_deg(ang):
    return ang / D_R


# ---- interleaving -------------------------------------------------------------------------

def interleave64(xlo, ylo):
    """The bits of xlo (32) in the even positions, those of ylo in the odd."""
    x = xlo & U32
    y = ylo & U32
    x = (x | (x << 16)) & 0x0000FFFF0000FFFF
    y = (y | (y << 16)) & 0x0000FFFF0000FFFF
    x = (x | (x << 8)) & 0x00FF00FF00FF00FF
    y = (y | (y << 8)) & 0x00FF00FF00FF00FF
    x = (x | (x << 4)) & 0x0F0F0F0F0F0F0F0F
    y = (y | (y << 4)) & 0x0F0F0F0F0F0F0F0F
    x = (x | (x << 2)) & 0x3333333333333333
    y = (y | (y << 2)) & 0x3333333333333333
    x = (x | (x << 1)) & _EVEN
    y = (y | (y << 1)) & _EVEN
    return x | (y << 1)


def deinterleave64(interleaved):
    """The even bits in the low 32 bits, the odd ones in the high 32."""
    x = interleaved & _EVEN
    y = (interleaved >> 1) & _EVEN
    x = (x | (x >> 1)) & 0x3333333333333333
    y = (y | (y >> 1)) & 0x3333333333333333
    x = (x | (x >> 2)) & 0x0F0F0F0F0F0F0F0F
    y = (y | (y >> 2)) & 0x0F0F0F0F0F0F0F0F
    x = (x | (x >> 4)) & 0x00FF00FF00FF00FF
    y = (y | (y >> 4)) & 0x00FF00FF00FF00FF
    x = (x | (x >> 8)) & 0x0000FFFF0000FFFF
    y = (y | (y >> 8)) & 0x0000FFFF0000FFFF
    x = (x | (x >> 16)) & U32
    y = (y | (y >> 16)) & U32
    return x | (y << 32)


# ---- encode and decode ----------------------------------------------------------------------
# A hash is (bits, step); a range is (min, max); an area is
# (long_min, long_max, lat_min, lat_max).

WGS84_LONG = (GEO_LONG_MIN, GEO_LONG_MAX)
WGS84_LAT = (GEO_LAT_MIN, GEO_LAT_MAX)


def encode(long_range, lat_range, longitude, latitude, step):
    """geohashEncode(): the bits of (longitude, latitude), or None where
    Redis returns 0 (outside the Mercator limits or the ranges)."""
    if longitude > GEO_LONG_MAX or longitude < GEO_LONG_MIN or \
            latitude > GEO_LAT_MAX or latitude < GEO_LAT_MIN:
        return None
    long_min, long_max = long_range
    lat_min, lat_max = lat_range
    if latitude < lat_min or latitude > lat_max or \
            longitude < long_min or longitude > long_max:
        return None
    lat_offset = (latitude - lat_min) / (lat_max - lat_min)
    long_offset = (longitude - long_min) / (long_max - long_min)
    # Fixed point on `step` bits; a coordinate at its maximum gives 2**step,
    # one bit more, as in Redis.
    lat_offset *= (1 << step)
    long_offset *= (1 << step)
    return interleave64(int(lat_offset), int(long_offset))


def encode_wgs84(longitude, latitude, step=GEO_STEP_MAX):
    return encode(WGS84_LONG, WGS84_LAT, longitude, latitude, step)


def decode(long_range, lat_range, bits, step):
    """geohashDecode(): the area of a hash (step is never 0 here)."""
    hash_sep = deinterleave64(bits)
    lat_scale = lat_range[1] - lat_range[0]
    long_scale = long_range[1] - long_range[0]
    ilato = hash_sep & U32
    ilono = hash_sep >> 32
    cells = float(1 << step)
    # (ilato + 1) is uint32_t arithmetic in C: it wraps.
    return (long_range[0] + (ilono * 1.0 / cells) * long_scale,
            long_range[0] + (((ilono + 1) & U32) * 1.0 / cells) * long_scale,
            lat_range[0] + (ilato * 1.0 / cells) * lat_scale,
            lat_range[0] + (((ilato + 1) & U32) * 1.0 / cells) * lat_scale)


def area_to_long_lat(area):
    """geohashDecodeAreaToLongLat(): the centre, clamped to the limits."""
    x = (area[0] + area[1]) / 2
    if x > GEO_LONG_MAX:
        x = GEO_LONG_MAX
    if x < GEO_LONG_MIN:
        x = GEO_LONG_MIN
    y = (area[2] + area[3]) / 2
    if y > GEO_LAT_MAX:
        y = GEO_LAT_MAX
    if y < GEO_LAT_MIN:
        y = GEO_LAT_MIN
    return x, y


# Positions of scores: decoding costs ~50 times a dict lookup, and searches
# of one set decode the same scores again and again. Bounded, then cleared.
_POSITIONS = {}
POSITIONS_MAX = 1 << 15


def decode_score(score):
    """decodeGeohash(): (longitude, latitude) of a zset score."""
    xy = _POSITIONS.get(score)
    if xy is None:
        xy = area_to_long_lat(decode(WGS84_LONG, WGS84_LAT, double_to_uint64(score),
                                     GEO_STEP_MAX))
        if len(_POSITIONS) >= POSITIONS_MAX:
            _POSITIONS.clear()
        _POSITIONS[score] = xy
    return xy


def align52(bits, step):
    """geohashAlign52Bits(): the hash as a 52-bit score prefix."""
    return (bits << (52 - step * 2)) & U64


# ---- neighbours -------------------------------------------------------------------------------

def _move(bits, step, d, moving, fixed):
    """geohash_move_x() (moving the odd bits, longitude) and geohash_move_y()
    (the even ones, latitude): one cell east/north (d > 0) or west/south,
    wrapping around. The carry crosses the other coordinate's bits, set to
    ones (or zeros) for the purpose."""
    m = bits & moving
    f = bits & fixed
    zz = fixed >> (64 - step * 2)
    if d > 0:
        m = (m + (zz + 1)) & U64
    else:
        m = ((m | zz) - (zz + 1)) & U64
    m &= moving >> (64 - step * 2)
    return m | f


def _move_x(bits, step, d):
    return _move(bits, step, d, _ODD, _EVEN)


def _move_y(bits, step, d):
    return _move(bits, step, d, _EVEN, _ODD)


def neighbors(bits, step):
    """geohashNeighbors(): the bits of the eight cells around a cell, in
    membersOfAllNeighbors()'s order: north, south, east, west, north_east,
    north_west, south_east, south_west."""
    east = _move_x(bits, step, 1)
    west = _move_x(bits, step, -1)
    return [_move_y(bits, step, 1), _move_y(bits, step, -1), east, west,
            _move_y(east, step, 1), _move_y(west, step, 1),
            _move_y(east, step, -1), _move_y(west, step, -1)]


# ---- the cells of a search --------------------------------------------------------------------

def estimate_steps_by_radius(range_meters, lat):
    """geohashEstimateStepsByRadius(): the bits per coordinate for a radius."""
    if range_meters == 0:
        return 26
    step = 1
    while range_meters < MERCATOR_MAX:
        range_meters *= 2
        step += 1
    step -= 2       # make sure the range is included in most of the base cases
    # Wider range towards the poles.
    if lat > 66 or lat < -66:
        step -= 1
        if lat > 80 or lat < -80:
            step -= 1
    return max(1, min(26, step))


class Shape:
    """GeoShape: a circle (radius) or a box (width, height) around xy, in
    units of `conversion` meters."""
    __slots__ = ("type", "xy", "conversion", "radius", "width", "height")

    def __init__(self):
        self.type = 0
        self.xy = (0.0, 0.0)
        self.conversion = 0.0
        self.radius = self.width = self.height = 0.0


def bounding_box(shape):
    """geohashBoundingBox(): (min_lon, min_lat, max_lon, max_lat)."""
    longitude, latitude = shape.xy
    circular = shape.type == CIRCULAR_TYPE
    height = shape.conversion * (shape.radius if circular else shape.height / 2)
    width = shape.conversion * (shape.radius if circular else shape.width / 2)
    lat_delta = rad_deg(height / EARTH_RADIUS_IN_METERS)
    long_delta_top = rad_deg(width / EARTH_RADIUS_IN_METERS /
                             c_cos(deg_rad(latitude + lat_delta)))
    long_delta_bottom = rad_deg(width / EARTH_RADIUS_IN_METERS /
                                c_cos(deg_rad(latitude - lat_delta)))
    # The northern and southern hemispheres widen in opposite directions.
    long_delta = long_delta_bottom if latitude < 0 else long_delta_top
    return (longitude - long_delta, latitude - lat_delta,
            longitude + long_delta, latitude + lat_delta)


def areas_by_shape(shape):
    """geohashCalculateAreasByShapeWGS84(): the step and the nine cells
    [centre, north, south, east, west, north_east, north_west, south_east,
    south_west] to scan, a cell that cannot hold a match as None."""
    min_lon, min_lat, max_lon, max_lat = bounding_box(shape)
    longitude, latitude = shape.xy
    if shape.type == CIRCULAR_TYPE:
        radius_meters = shape.radius
    else:
        # The distance from the centre to a corner.
        radius_meters = math.sqrt((shape.width / 2) * (shape.width / 2) +
                                  (shape.height / 2) * (shape.height / 2))
    radius_meters *= shape.conversion
    steps = estimate_steps_by_radius(radius_meters, latitude)
    bits = encode_wgs84(longitude, latitude, steps)
    around = neighbors(bits, steps)
    # Near the edge of its cell the search may reach past the neighbours:
    # then one step less.
    north = decode(WGS84_LONG, WGS84_LAT, around[0], steps)
    south = decode(WGS84_LONG, WGS84_LAT, around[1], steps)
    east = decode(WGS84_LONG, WGS84_LAT, around[2], steps)
    west = decode(WGS84_LONG, WGS84_LAT, around[3], steps)
    decrease_step = north[3] < max_lat or south[2] > min_lat or \
        east[1] < max_lon or west[0] > min_lon
    if steps > 1 and decrease_step:
        steps -= 1
        bits = encode_wgs84(longitude, latitude, steps)
        around = neighbors(bits, steps)
    area = decode(WGS84_LONG, WGS84_LAT, bits, steps)
    cells = [bits] + around
    # Exclude the cells that are useless.
    if steps >= 2:
        if area[2] < min_lat:
            cells[2] = cells[7] = cells[8] = None       # south, south_east, south_west
        if area[3] > max_lat:
            cells[1] = cells[5] = cells[6] = None       # north, north_east, north_west
        if area[0] < min_lon:
            cells[4] = cells[8] = cells[6] = None       # west, south_west, north_west
        if area[1] > max_lon:
            cells[3] = cells[7] = cells[5] = None       # east, south_east, north_east
    return steps, cells


# ---- distances ----------------------------------------------------------------------------

def lat_distance(lat1d, lat2d):
    """geohashGetLatDistance()."""
    return EARTH_RADIUS_IN_METERS * math.fabs(deg_rad(lat2d) - deg_rad(lat1d))


def distance(lon1d, lat1d, lon2d, lat2d):
    """geohashGetDistance(): the haversine great circle distance in meters.
    Run for every candidate of a search: deg_rad() inlined; C's asin of
    more than 1 (rounding, near-antipodal points) is NaN."""
    v = _sin((lon2d * D_R - lon1d * D_R) / 2)
    # Same longitudes: no need for the expensive math.
    if v == 0.0:
        return lat_distance(lat1d, lat2d)
    lat1r = lat1d * D_R
    lat2r = lat2d * D_R
    u = _sin((lat2r - lat1r) / 2)
    root = _sqrt(u * u + _cos(lat1r) * _cos(lat2r) * v * v)
    return 2.0 * EARTH_RADIUS_IN_METERS * (_asin(root) if root <= 1.0 else _NAN)


def distance_if_in_rectangle(width_m, height_m, x1, y1, x2, y2):
    """geohashGetDistanceIfInRectangle(): the distance from the centre
    (x1, y1) to (x2, y2) when inside the box, else None. The latitude
    test is the cheaper one: first."""
    if lat_distance(y2, y1) > height_m / 2:
        return None
    if distance(x2, y2, x1, y2) > width_m / 2:
        return None
    return distance(x1, y1, x2, y2)
