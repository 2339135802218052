--- The metrics log of a run: one JSON object per line (metrics.jsonl).
-- Appends are flushed line by line so a killed run loses at most the line
-- being written; readers skip a torn last line.
local json = require "icl.json"

local metrics = {}
metrics.__index = metrics

function metrics.open(path, opts)
  local self = setmetatable({path = path}, metrics)
  if opts and opts.truncate_after_step then
    -- resuming: drop lines from steps the restored checkpoint has not seen yet
    local keep = {}
    for _, rec in ipairs(metrics.read(path)) do
      if (rec.step or 0) <= opts.truncate_after_step then keep[#keep + 1] = json.encode(rec) end
    end
    local f = assert(io.open(path, "w"))
    for _, l in ipairs(keep) do f:write(l, "\n") end
    f:close()
  end
  self.f, self.err = io.open(path, "a")
  if not self.f then error("metrics: cannot open " .. path .. ": " .. tostring(self.err), 2) end
  self.f:setvbuf("line")
  return self
end

function metrics:write(rec)
  self.f:write(json.encode(rec), "\n")
end

function metrics:close()
  if self.f then self.f:close() end
  self.f = nil
end

--- all records of a log (a torn last line is skipped)
function metrics.read(path)
  local out = {}
  local f = io.open(path, "r")
  if not f then return out end
  for line in f:lines() do
    local ok, rec = pcall(json.decode, line)
    if ok and type(rec) == "table" then out[#out + 1] = rec end
  end
  f:close()
  return out
end

return metrics
