-- uptime: the UPTIME command answers like uptime(1):
--   "15:04:05 up 3 days,  4:05,  load average: 0.10, 0.20, 0.30"
-- (uptime(1)'s user count is left out: sakerd does not read utmp).

local function since_boot(seconds)
  local days = math.floor(seconds / 86400)
  local hours = math.floor(seconds % 86400 / 3600)
  local minutes = math.floor(seconds % 3600 / 60)
  local clock = string.format("%2d:%02d", hours, minutes)
  if days == 0 and hours == 0 then return minutes .. " min" end
  if days == 1 then return "1 day, " .. clock end
  if days > 1 then return days .. " days, " .. clock end
  return clock
end

saker.command("uptime", function()
  local s = saker.sysinfo()
  local now = saker.time()
  return string.format("%s up %s,  load average: %.2f, %.2f, %.2f",
    os.date("%H:%M:%S", math.floor(now)), since_boot(now - s.boot_time),
    s.load[1], s.load[2], s.load[3])
end, {arity = 1, summary = "How long the host has been up, and its load"})
