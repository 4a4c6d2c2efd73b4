-- diskusage: every minute, warn (log line and a message on "host.alerts")
-- about any filesystem fuller than THRESHOLD percent. DISKUSAGE lists every
-- mounted filesystem as "mountpoint percent% used/total".

local THRESHOLD = tonumber(os.getenv("SAKER_DISK_THRESHOLD") or "") or 90
local warned = {}

local function human(n)
  local units = {"B", "K", "M", "G", "T", "P"}
  local i = 1
  while n >= 1024 and i < #units do n = n / 1024; i = i + 1 end
  return string.format("%.1f%s", n, units[i])
end

saker.every(60000, function()
  for _, d in ipairs(saker.sysinfo().disks) do
    if d.percent >= THRESHOLD then
      if not warned[d.mountpoint] then
        local text = string.format("%s is %.1f%% full (%s free)", d.mountpoint, d.percent,
                                   human(d.free))
        saker.log("warning", text)
        saker.publish("host.alerts", "disk " .. text)
        warned[d.mountpoint] = true
      end
    else
      warned[d.mountpoint] = nil
    end
  end
end, {name = "disk-check"})

saker.command("diskusage", function()
  local out = {}
  for _, d in ipairs(saker.sysinfo().disks) do
    out[#out + 1] = string.format("%s %.1f%% %s/%s", d.mountpoint, d.percent, human(d.used),
                                  human(d.total))
  end
  return out
end, {arity = 1, summary = "Usage of every mounted filesystem"})
