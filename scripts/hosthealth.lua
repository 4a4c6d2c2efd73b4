-- hosthealth: every 10 seconds, publish this host's load and memory on the
-- "host.health" channel (one line of key=value pairs), and answer HEALTH
-- with the latest sample.
--
--   redis-cli -p 7379 subscribe host.health
--   redis-cli -p 7379 health

local CHANNEL = "host.health"
local last

local function sample()
  local s = saker.sysinfo()
  last = {
    "host", saker.hostname(),
    "time", string.format("%.3f", saker.time()),
    "load1", string.format("%.2f", s.load[1]),
    "load5", string.format("%.2f", s.load[2]),
    "load15", string.format("%.2f", s.load[3]),
    "cpu_percent", string.format("%.1f", s.cpu.percent),
    "mem_used_percent", string.format("%.1f", s.memory.percent),
    "mem_available", string.format("%d", s.memory.available),
    "swap_used_percent", string.format("%.1f", s.swap.percent),
  }
  return last
end

local function line(fields)
  local parts = {}
  for i = 1, #fields, 2 do
    parts[#parts + 1] = fields[i] .. "=" .. fields[i + 1]
  end
  return table.concat(parts, " ")
end

saker.every(10000, function()
  saker.publish(CHANNEL, line(sample()))
end, {name = "host-health"})

saker.command("health", function()
  return last or sample()
end, {arity = 1, summary = "Latest host health sample (load, cpu, memory, swap)"})
