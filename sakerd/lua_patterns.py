"""Bounded Lua patterns: string.find, match, gmatch and gsub that cannot stall.

Lua's pattern matcher is C code that backtracks: `.-.-.-b` against 330
a's takes 7-10 s, and the count hook, which only fires between VM
instructions, never runs meanwhile, so neither lua-time-limit, BUSY
replies nor SCRIPT KILL can stop it. A longer subject never finishes.

The choice: a wrapper that bounds the work before the C matcher starts,
rather than a matcher written in Lua (which the hook could interrupt).
A Lua matcher would be 20-50 times slower for every pattern every script
uses, and would have to reproduce each version's quirks (5.1 and 5.4
differ on empty matches in gsub and gmatch, on `%` in replacements, on
`%g`); the wrapper changes nothing for the patterns scripts actually use
and refuses only those whose worst case is too long, with an error that
says so.

The bound. Matching tries each start position (one when the pattern is
anchored with `^`), and at each walks the pattern's m items. A quantified
item (`*`, `+`, `-`) multiplies the work by the subject's length n only
when it can backtrack into what follows: when its character set overlaps
the set of characters the following items may match at that point (up to
the first item that must match). `x*` before `%d` cannot give back an
`x` that `%d` would take, so it costs a walk, not a factor. `?` is a factor
of 2; `%b` and back-references (`%1`) scan the subject: a factor of n.
So worst case <= starts * m * product(factors) steps, an over-estimate
that is exact for the pathological patterns (`.-.-.-b`: n^4). A call whose
bound exceeds `lua-pattern-max-steps` (default 10^8: about a second of C
matching at worst) raises `pattern too complex ...` instead of running.
The character sets are computed with the C matcher itself, one character
at a time, so every class (%a, [^%s], ...) means what it means to the
version in use; they are cached per pattern.
"""

# Run with the real string library; returns the replacement functions and
# a setter for the limit. `counted_gsub` is the sandbox's gsub (C depth).
PATTERNS_SOURCE = r"""
local counted_gsub = ...
local byte, char, sub, find, match, gmatch = string.byte, string.char, string.sub,
  string.find, string.match, string.gmatch
local type, tostring, tonumber, error, floor = type, tostring, tonumber, error, math.floor
local max_steps = 1e8
local is51 = _VERSION == "Lua 5.1"

-- Pattern -> {m, items}; items[i] = {set = {[byte] = true}, q = quantifier} or
-- {any = true} (a %b or a back-reference: treated as matching anything).
local cache, cached = {}, 0

local function item_end(p, i, plen)
  local c = byte(p, i)
  i = i + 1
  if c == 37 then
    return i + 1
  elseif c == 91 then
    if byte(p, i) == 94 then i = i + 1 end
    repeat
      if i > plen then return nil end
      local cc = byte(p, i)
      i = i + 1
      if cc == 37 then i = i + 1 end
    until byte(p, i) == 93
    return i + 1
  end
  return i
end

local function char_set(item)
  local set, pat = {}, "^" .. item
  for c = 0, 255 do
    if find(char(c), pat) then set[c] = true end
  end
  return set
end

-- The items of p, or nil when p is malformed (the C matcher then says why).
local function parse(p)
  local plen, i, items = #p, 1, {}
  if byte(p, 1) == 94 then i = 2 end
  while i <= plen do
    local c = byte(p, i)
    if c == 40 or c == 41 then                       -- ( ) captures: consume nothing
      i = i + 1
    elseif c == 36 and i == plen then                -- $ at the end
      i = i + 1
    elseif c == 37 and (byte(p, i + 1) == 98) then   -- %bxy
      items[#items + 1] = {any = true, q = "n"}
      i = i + 4
    elseif c == 37 and byte(p, i + 1) == 102 then    -- %f[set]: zero width
      local e = item_end(p, i + 2, plen)
      if not e then return nil end
      i = e
    elseif c == 37 and i < plen and find(char(byte(p, i + 1)), "^%d") then   -- %1 back-reference
      items[#items + 1] = {any = true, q = "n"}
      i = i + 2
    else
      local e = item_end(p, i, plen)
      if not e or e - 1 > plen then return nil end
      local q = sub(p, e, e)
      if q == "*" or q == "+" or q == "-" or q == "?" then
        items[#items + 1] = {set = char_set(sub(p, i, e - 1)), q = q}
        e = e + 1
      else
        items[#items + 1] = {set = char_set(sub(p, i, e - 1))}
      end
      i = e
    end
  end
  return items
end

local function overlaps(a, b)
  if b.any then return true end
  for c in next, a do
    if b.set[c] then return true end
  end
  return false
end

-- The worst case of p as {factors of n+1, factors of 2}: an item that
-- scans (%b, %1) or that can backtrack into the items after it counts n+1.
local function growth(items)
  local scans, twos = 0, 0
  for k = 1, #items do
    local it = items[k]
    if it.q == "n" then
      scans = scans + 1
    elseif it.q == "?" then
      twos = twos + 1
    elseif it.q then
      -- Can what it gives back be taken by the items after it?
      for j = k + 1, #items do
        local nx = items[j]
        if overlaps(it.set, nx) then scans = scans + 1; break end
        if not (nx.q == "*" or nx.q == "-" or nx.q == "?") then break end
      end
    end
  end
  return {scans, twos}
end

-- p's {scans, twos, anchored, #p}, or false when p is no pattern the
-- bound can read (not a string, malformed: the C matcher decides).
local function shape(p)
  if type(p) == "number" then p = tostring(p) end
  if type(p) ~= "string" then return false end
  local ok, items = pcall(parse, p)
  if not ok or not items then return false end
  local g = growth(items)
  g[3] = byte(p, 1) == 94
  g[4] = #p
  return g
end

-- Refuse (an error at the caller's caller) when matching s against p from
-- init could take more than max_steps. Called on every match: the cached
-- shape makes it a table lookup and a little arithmetic.
local function bound(fname, s, p, init, anchorable)
  local g = cache[p]
  if g == nil then
    if cached >= 256 then cache, cached = {}, 0 end
    g = shape(p)
    if p ~= nil and p == p then cache[p] = g; cached = cached + 1 end
  end
  if not g or max_steps <= 0 then return end
  if type(s) ~= "string" then
    if type(s) ~= "number" then return end
    s = tostring(s)
  end
  local n = #s
  if init then
    init = tonumber(init) or 1
    if init < 0 then init = n + init + 1 end
    if init > 1 then n = n - floor(init) + 1 end
    if n < 0 then n = 0 end
  end
  local starts = (anchorable and g[3]) and 1 or n + 1
  local steps = starts * (g[4] + 1) * (n + 1) ^ g[1] * 2 ^ g[2]
  if steps > max_steps then
    error(string.format("%s: pattern too complex for a subject of %d bytes: up to %.3g "
      .. "matching steps, over lua-pattern-max-steps (%.0f)", fname, n, steps, max_steps), 3)
  end
end

local F = {}
function F.find(s, p, init, plain)
  if not plain then bound("find", s, p, init, true) end
  return find(s, p, init, plain)
end
function F.match(s, p, init)
  bound("match", s, p, init, true)
  return match(s, p, init)
end
function F.gmatch(s, p, ...)
  bound("gmatch", s, p, not is51 and (...) or 1, false)   -- no anchor in gmatch
  return gmatch(s, p, ...)
end
function F.gsub(s, p, repl, n)
  bound("gsub", s, p, 1, true)
  return counted_gsub(s, p, repl, n)
end

local function set_max_steps(n) max_steps = n end
return F, set_max_steps
"""
