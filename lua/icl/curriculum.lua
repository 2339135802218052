--- The dims/points curriculum (G, B and T `src/curriculum.py`), in closed
-- form so a resumed run is at the same stage without replaying updates:
--     var(s) = min(start + inc * floor(s / interval), end)
-- for the 0-based training step s, separately for dims (n_dims_truncated)
-- and points (prompt length).
--
--   local cur = icl.curriculum.new{
--     dims   = {start = 5,  ["end"] = 20, increment = 1, interval = 2000},
--     points = {start = 11, ["end"] = 51, increment = 2, interval = 2000},
--   }                              -- the published YAML shape; `inc` = `increment`
--   cur:at(s) -> {n_dims_truncated = 7, n_points = 15}
--   cur:describe(s) -> "dims 7/20, points 15/51"
-- curriculum.parse_yaml(text) reads that YAML shape (optionally under a
-- top-level `curriculum:` key); curriculum.load(path) reads a file.
local curriculum = {}

local C = {}
C.__index = C
curriculum.Curriculum = C

local function int_field(where, t, key, min)
  local v = t[key]
  if math.type(v) ~= "integer" then
    if type(v) == "number" and v == math.floor(v) then
      v = math.tointeger(v)
    else
      error(string.format("curriculum: %s.%s must be an integer (got %s)", where, key, tostring(v)), 4)
    end
  end
  if min and v < min then error(string.format("curriculum: %s.%s = %d must be >= %d", where, key, v, min), 4) end
  return v
end

local function schedule(where, t)
  if type(t) ~= "table" then error("curriculum: missing table '" .. where .. "'", 3) end
  for k in pairs(t) do
    if not (k == "start" or k == "end" or k == "increment" or k == "inc" or k == "interval") then
      error(string.format("curriculum: unknown key %s.%s (valid: start, end, increment (or inc), interval)", where,
                          tostring(k)), 3)
    end
  end
  if t.inc ~= nil and t.increment ~= nil and t.inc ~= t.increment then
    error("curriculum: " .. where .. " has both inc and increment, with different values", 3)
  end
  local s = {
    start = int_field(where, t, "start", 1),
    ["end"] = int_field(where, t, "end", 1),
    inc = int_field(where, {inc = t.increment ~= nil and t.increment or t.inc}, "inc", 0),
    interval = int_field(where, t, "interval", 1),
  }
  if s["end"] < s.start then
    error(string.format("curriculum: %s.end = %d is below start = %d", where, s["end"], s.start), 3)
  end
  return s
end

local function value(s, step)
  return math.min(s.start + s.inc * (step // s.interval), s["end"])
end

--- A curriculum from the published YAML shape (a table), or from a table
-- with a `curriculum` key holding it.
function curriculum.new(cfg)
  if type(cfg) ~= "table" then error("curriculum.new: expected a table with dims and points", 2) end
  if cfg.curriculum ~= nil and cfg.dims == nil then cfg = cfg.curriculum end
  for k in pairs(cfg) do
    if k ~= "dims" and k ~= "points" then
      error("curriculum.new: unknown key '" .. tostring(k) .. "' (valid: dims, points)", 2)
    end
  end
  return setmetatable({dims_schedule = schedule("dims", cfg.dims), points_schedule = schedule("points", cfg.points)}, C)
end

local function check_step(step)
  if math.type(step) ~= "integer" or step < 0 then
    error("curriculum: step must be an integer >= 0 (got " .. tostring(step) .. ")", 3)
  end
end

function C:dims(step)
  check_step(step)
  return value(self.dims_schedule, step)
end

function C:points(step)
  check_step(step)
  return value(self.points_schedule, step)
end

--- {n_dims_truncated =, n_points =} at 0-based step s
function C:at(step)
  check_step(step)
  return {n_dims_truncated = value(self.dims_schedule, step), n_points = value(self.points_schedule, step)}
end

--- "dims 7/20, points 15/51"
function C:describe(step)
  local a = self:at(step)
  return string.format("dims %d/%d, points %d/%d", a.n_dims_truncated, self.dims_schedule["end"], a.n_points,
                       self.points_schedule["end"])
end

--- First step at which both schedules have reached their end.
function C:done_at()
  local function reach(s)
    if s.start >= s["end"] then return 0 end
    if s.inc == 0 then return math.huge end
    return ((s["end"] - s.start + s.inc - 1) // s.inc) * s.interval
  end
  return math.max(reach(self.dims_schedule), reach(self.points_schedule))
end

function C:__tostring()
  local d, p = self.dims_schedule, self.points_schedule
  return string.format("curriculum: dims %d->%d (+%d/%d), points %d->%d (+%d/%d)", d.start, d["end"], d.inc,
                       d.interval, p.start, p["end"], p.inc, p.interval)
end

--- The two-level YAML shape of the published curriculum files:
--   dims:\n  start: 5\n  end: 20\n  increment: 1\n  interval: 2000\n points: ...
-- (comments, blank lines and an enclosing `curriculum:` key are fine).
function curriculum.parse_yaml(text)
  local root, stack = {}, {}
  local lineno = 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    lineno = lineno + 1
    local body = line:gsub("%s*#.*$", "")
    if body:match("%S") then
      local indent, key, rest = body:match("^(%s*)([%w_%-]+)%s*:%s*(.-)%s*$")
      if not key then error(string.format("curriculum.parse_yaml: line %d: cannot read '%s'", lineno, line), 2) end
      local depth = #indent
      while #stack > 0 and stack[#stack].indent >= depth do table.remove(stack) end
      local parent = #stack > 0 and stack[#stack].tbl or root
      if rest == "" then
        local t = {}
        parent[key] = t
        stack[#stack + 1] = {indent = depth, tbl = t}
      else
        parent[key] = math.tointeger(tonumber(rest)) or tonumber(rest) or rest
      end
    end
  end
  return root
end

function curriculum.load(path)
  local f, err = io.open(path, "r")
  if not f then error("curriculum.load: " .. tostring(err), 2) end
  local text = f:read("a")
  f:close()
  return curriculum.new(curriculum.parse_yaml(text))
end

return curriculum
