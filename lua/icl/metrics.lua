--- The metrics log of a run: one JSON object per line (metrics.jsonl).
-- Appends are flushed line by line so a killed run loses at most the line
-- being written; readers skip a torn last line. Non-finite numbers (which
-- JSON cannot hold) are written as the strings "NaN", "Infinity", "-Infinity".
--
--   local log = metrics.open(path, {fresh = true})              -- a new run: start empty
--   local log = metrics.open(path, {truncate_after_step = s})   -- resuming from step s
--   log:write{kind = "train", step = 10, loss = 0.5}; log:close()
--   metrics.read(path) -> list of records
local json = require "icl.json"

local metrics = {}
metrics.__index = metrics

local function finite_or_text(v)
  if v ~= v then return "NaN" end
  if v == math.huge then return "Infinity" end
  if v == -math.huge then return "-Infinity" end
  return v
end

--- a copy of rec with non-finite numbers replaced by strings (only when there are any)
local function sanitize(rec)
  local bad = false
  for _, v in pairs(rec) do
    if type(v) == "number" and (v ~= v or v == math.huge or v == -math.huge) then bad = true end
  end
  if not bad then return rec end
  local out = {}
  for k, v in pairs(rec) do out[k] = type(v) == "number" and finite_or_text(v) or v end
  return out
end

function metrics.open(path, opts)
  opts = opts or {}
  local self = setmetatable({path = path}, metrics)
  local keep
  if opts.fresh then
    keep = {}
  elseif opts.truncate_after_step then
    -- resuming: drop the lines of steps the restored checkpoint has not seen (they will be
    -- written again, with the same values) and a torn last line
    keep = {}
    for _, rec in ipairs(metrics.read(path)) do
      if (tonumber(rec.step) or 0) <= opts.truncate_after_step then keep[#keep + 1] = json.encode(rec) .. "\n" end
    end
  end
  if keep then
    -- atomic, so that a crash here cannot lose the log
    require("icl.io").write_file_atomic(path, table.concat(keep))
  end
  self.f, self.err = io.open(path, "a")
  if not self.f then error("metrics: cannot open " .. path .. ": " .. tostring(self.err), 2) end
  self.f:setvbuf("line")
  return self
end

--- append one record; returns true, or nil and the error (a full disk must not stop training)
function metrics:write(rec)
  local ok, err = self.f:write(json.encode(sanitize(rec)), "\n")
  if not ok then
    self.err = err
    return nil, err
  end
  return true
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
