--- Sweep specs: load (YAML or Lua), check and normalise.
--
-- A spec names the grid (tasks × encodings × sizes × seeds), the overrides
-- every run gets, where the runs go, how many run at once and, for Slurm,
-- the resources of each array task. See docs/sweeps.md for the format.
local files = require "icl.sweep.files"
local sizes = require "icl.sweep.sizes"

local spec = {}

spec.encodings = {"nope", "rope", "alibi", "fire", "yarn", "dynamic_yarn", "mamba"}

local TOP_KEYS = {name = true, description = true, output_dir = true, config = true, tasks = true, encodings = true,
                  sizes = true, seeds = true, overrides = true, device = true, eval = true, jobs = true,
                  per_gpu = true, gpus = true, size_presets = true, summary = true, slurm = true, train_cmd = true,
                  env = true, group = true}
local SLURM_KEYS = {partition = true, time = true, cpus_per_task = true, mem = true, gres = true, array_limit = true,
                    account = true, qos = true, extra = true, summary_time = true}
local SUMMARY_KEYS = {keys = true, compare = true}

--- the icl source tree this module was loaded from (for configs/ and bin/icl)
function spec.source_root()
  local src = debug.getinfo(1, "S").source
  local dir = src:sub(1, 1) == "@" and src:sub(2):match("^(.*)/lua/icl/sweep/spec%.lua$")
  return dir and files.abspath(dir) or nil
end

-- YAML specs are read with icl.yaml (the same loader as the configs).
local function yaml_reader()
  return function(path) return require("icl.yaml").load(path) end
end
spec.yaml_reader = yaml_reader

--- the raw table of a spec file (.yaml/.yml or .lua)
function spec.read(path)
  if not files.exists(path) then error("sweep spec not found: " .. path, 0) end
  if path:match("%.lua$") then
    local env = setmetatable({}, {__index = _G})
    local chunk, err = loadfile(path, "t", env)
    if not chunk then error("sweep spec " .. path .. ": " .. err, 0) end
    local ok, t = pcall(chunk)
    if not ok then error("sweep spec " .. path .. ": " .. tostring(t), 0) end
    if type(t) ~= "table" then error("sweep spec " .. path .. ": a Lua spec must return a table", 0) end
    return t
  end
  local reader = yaml_reader()
  if not reader then
    error("sweep spec " .. path .. ": reading YAML needs icl.yaml (or lyaml), which this build lacks; " ..
          "write the spec as a Lua file returning a table instead", 0)
  end
  local ok, t = pcall(reader, path)
  if not ok then error("sweep spec " .. path .. ": " .. tostring(t), 0) end
  if type(t) ~= "table" then error("sweep spec " .. path .. ": expected a mapping at the top level", 0) end
  return t
end

local function fail(path, fmt, ...) error(string.format("sweep spec %s: " .. fmt, path, ...), 0) end

local function check_keys(path, t, allowed, where)
  local bad = {}
  for k in pairs(t) do if not allowed[k] then bad[#bad + 1] = tostring(k) end end
  if #bad > 0 then
    table.sort(bad)
    local valid = {}
    for k in pairs(allowed) do valid[#valid + 1] = k end
    table.sort(valid)
    fail(path, "unknown key%s %s in %s (valid: %s)", #bad > 1 and "s" or "", table.concat(bad, ", "), where,
      table.concat(valid, ", "))
  end
end

local function name_list(path, t, key, pattern)
  local v = t[key]
  if type(v) == "string" then v = {v} end
  if type(v) ~= "table" or #v == 0 then fail(path, "'%s' must be a non-empty list", key) end
  local seen, out = {}, {}
  for i, x in ipairs(v) do
    if type(x) ~= "string" or not x:match(pattern) then
      fail(path, "%s[%d] = %s is not a valid name", key, i, tostring(x))
    end
    if seen[x] then fail(path, "'%s' lists %s twice", key, x) end
    seen[x] = true
    out[#out + 1] = x
  end
  return out
end

local function scalar_string(v)
  if math.type(v) == "float" and v == math.floor(v) and math.abs(v) < 2 ^ 53 then return string.format("%.1f", v) end
  return tostring(v)
end

--- overrides as a list of "key=value" (a mapping is accepted too, sorted by key)
local function override_list(path, v, where)
  if v == nil then return {} end
  local out = {}
  if type(v) == "string" then v = {v} end
  if type(v) ~= "table" then fail(path, "%s must be a list of key=value", where) end
  if #v == 0 and next(v) ~= nil then
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do out[#out + 1] = k .. "=" .. scalar_string(v[k]) end
  else
    for i, s in ipairs(v) do
      if type(s) == "table" then -- YAML `- key: value`
        local k, x = next(s)
        if not k or next(s, k) ~= nil then fail(path, "%s[%d] must be one key=value", where, i) end
        s = k .. "=" .. scalar_string(x)
      end
      if type(s) ~= "string" or not s:match("^[%w_%.%-]+=") then
        fail(path, "%s[%d] = %s is not key=value", where, i, tostring(s))
      end
      out[#out + 1] = s
    end
  end
  for _, s in ipairs(out) do
    if s:match("^training%.seed=") then
      fail(path, "%s must not set training.seed (list the seeds under 'seeds')", where)
    end
  end
  return out
end

local function positive_int(path, v, key)
  if v == nil then return nil end
  if math.type(v) == "float" and v == math.floor(v) then v = math.tointeger(v) end
  if math.type(v) ~= "integer" or v < 1 then fail(path, "'%s' must be a positive integer", key) end
  return v
end

--- load, check and normalise a spec. opts.cwd: base of relative output_dir
-- (default: the current directory). Returns the normalised table.
function spec.load(path)
  local t = spec.read(path)
  return spec.normalise(t, path)
end

function spec.normalise(t, path)
  path = files.abspath(path or "<spec>")
  check_keys(path, t, TOP_KEYS, "the spec")
  local s = {path = path}
  s.name = t.name or files.basename(path):gsub("%.[^.]*$", "")
  if type(s.name) ~= "string" or not s.name:match("^[%w_.%-]+$") then
    fail(path, "'name' must be letters, digits, '_', '.' or '-'")
  end
  s.description = t.description
  s.output_dir = files.abspath(t.output_dir or "sweeps")
  s.sweep_dir = s.output_dir .. "/" .. s.name
  s.config = t.config or "configs/tasks/{task}/{encoding}.yaml"
  if type(s.config) ~= "string" or not s.config:find("{task}", 1, true) then
    fail(path, "'config' must be a path template containing {task} (and usually {encoding})")
  end
  s.tasks = name_list(path, t, "tasks", "^[%w_]+$")
  s.encodings = name_list(path, t, "encodings", "^[%w_]+$")
  s.sizes = name_list(path, t, "sizes", "^[%w_]+$")
  if t.size_presets ~= nil and type(t.size_presets) ~= "table" then
    fail(path, "'size_presets' must map a size to {llama: [...], mamba: [...]}")
  end
  s.size_presets = t.size_presets
  if s.size_presets then
    for size, p in pairs(s.size_presets) do
      if type(p) ~= "table" then fail(path, "size_presets.%s must map a family to overrides", tostring(size)) end
      local norm = {}
      for fam, list in pairs(p) do
        if fam ~= "llama" and fam ~= "mamba" then fail(path, "size_presets.%s: family must be llama or mamba", size) end
        norm[fam] = override_list(path, list, "size_presets." .. size .. "." .. fam)
      end
      s.size_presets[size] = norm
    end
  end
  for _, size in ipairs(s.sizes) do
    for _, enc in ipairs(s.encodings) do
      local ok, err = pcall(sizes.overrides, size, enc, s.size_presets)
      if not ok then fail(path, "%s", err) end
    end
  end
  -- seeds: a list, or a count n meaning 0..n-1
  local seeds = t.seeds
  if seeds == nil then fail(path, "'seeds' is required (a list, or a count); the protocol asks for at least 3") end
  if type(seeds) == "number" then
    local n = positive_int(path, seeds, "seeds")
    seeds = {}
    for i = 0, n - 1 do seeds[#seeds + 1] = i end
  end
  if type(seeds) ~= "table" or #seeds == 0 then
    fail(path, "'seeds' must be a non-empty list of integers or a count")
  end
  s.seeds = {}
  local seen = {}
  for i, x in ipairs(seeds) do
    if math.type(x) == "float" and x == math.floor(x) then x = math.tointeger(x) end
    if math.type(x) ~= "integer" or x < 0 then
      fail(path, "seeds[%d] = %s is not a non-negative integer", i, tostring(x))
    end
    if seen[x] then fail(path, "'seeds' lists %d twice", x) end
    seen[x] = true
    s.seeds[#s.seeds + 1] = x
  end
  s.overrides = override_list(path, t.overrides, "overrides")
  if t.device ~= nil and t.device ~= "cpu" and t.device ~= "cuda" and t.device ~= "auto" then
    fail(path, "'device' must be cpu, cuda or auto")
  end
  s.device = (t.device ~= "auto") and t.device or nil
  if t.eval ~= nil and type(t.eval) ~= "boolean" then fail(path, "'eval' must be true or false") end
  s.eval = t.eval ~= false
  s.jobs = positive_int(path, t.jobs, "jobs")
  -- group: seeds trains the seeds of a (task, encoding, size) that are at the same step in one process
  if t.group ~= nil and t.group ~= false and t.group ~= "seeds" and t.group ~= "none" then
    fail(path, "'group' must be seeds or none (got %s)", tostring(t.group))
  end
  s.group = t.group == "seeds" and "seeds" or nil
  s.per_gpu = positive_int(path, t.per_gpu, "per_gpu") or 1
  if t.gpus ~= nil then
    if type(t.gpus) ~= "table" then fail(path, "'gpus' must be a list of GPU indices") end
    s.gpus = {}
    for i, g in ipairs(t.gpus) do
      if math.type(g) ~= "integer" and type(g) ~= "string" then fail(path, "gpus[%d] must be an index", i) end
      s.gpus[#s.gpus + 1] = tostring(g)
    end
  end
  local sm = t.summary or {}
  if type(sm) ~= "table" then fail(path, "'summary' must be a mapping") end
  check_keys(path, sm, SUMMARY_KEYS, "summary")
  if sm.keys ~= nil and (type(sm.keys) ~= "table" or #sm.keys == 0) then
    fail(path, "summary.keys must be a list of scalar names from ood_length.json")
  end
  s.summary = {keys = sm.keys, compare = sm.compare ~= false}
  local sl = t.slurm or {}
  if type(sl) ~= "table" then fail(path, "'slurm' must be a mapping") end
  check_keys(path, sl, SLURM_KEYS, "slurm")
  s.slurm = {}
  for k, v in pairs(sl) do
    if k == "extra" then
      if type(v) == "string" then v = {v} end
      if type(v) ~= "table" then fail(path, "slurm.extra must be a list of sbatch options") end
      for i, x in ipairs(v) do
        if type(x) ~= "string" or not x:match("^%-") then fail(path, "slurm.extra[%d] must be an sbatch option", i) end
      end
      s.slurm.extra = v
    elseif k == "cpus_per_task" or k == "array_limit" then
      s.slurm[k] = positive_int(path, v, "slurm." .. k)
    else
      if type(v) ~= "string" and type(v) ~= "number" then fail(path, "slurm.%s must be a string", k) end
      s.slurm[k] = tostring(v)
    end
  end
  if t.train_cmd ~= nil then
    local cmd = t.train_cmd
    if type(cmd) == "string" then cmd = spec.split_words(cmd) end
    if type(cmd) ~= "table" or #cmd == 0 then fail(path, "'train_cmd' must be a list of words") end
    s.train_cmd = cmd
  end
  s.env = {}
  if t.env ~= nil then
    if type(t.env) ~= "table" then fail(path, "'env' must map variable names to values") end
    for k, v in pairs(t.env) do
      if type(k) ~= "string" or not k:match("^[%a_][%w_]*$") then
        fail(path, "env: bad variable name %s", tostring(k))
      end
      s.env[k] = scalar_string(v)
    end
  end
  return s
end

--- "a b  c" -> {"a", "b", "c"} (no quoting: a command with spaces in a word goes in train_cmd as a list)
function spec.split_words(s)
  local out = {}
  for w in s:gmatch("%S+") do out[#out + 1] = w end
  return out
end

return spec
