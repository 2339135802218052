--- The grid of a sweep: every (task, encoding, size, seed) as a cell with a
-- stable id, index and run directory, and the trainer command that runs it.
--
-- Order: tasks, then encodings, then sizes, then seeds (innermost), each in
-- the order the spec lists them. The id and directory depend only on the
-- cell's coordinates, so a rerun (or another machine) finds the same runs:
--   id   <task>/<encoding>-<size>-s<seed>
--   dir  <output_dir>/<sweep name>/<task>/<encoding>-<size>-s<seed>
local files = require "icl.sweep.files"
local sizes = require "icl.sweep.sizes"
local specm = require "icl.sweep.spec"

local grid = {}

local function fill(template, c)
  return (template:gsub("{(%w+)}", function(k)
    local v = c[k]
    if v == nil then error("config template: unknown field {" .. k .. "} (use task, encoding, size, seed)", 0) end
    return tostring(v)
  end))
end

--- where a config template points: absolute as is; relative to the current
-- directory, else to the icl source tree
function grid.resolve_config(template, c)
  local rel = fill(template, c)
  if rel:sub(1, 1) == "/" then return rel end
  local here = files.abspath(rel)
  if files.exists(here) then return here end
  local root = specm.source_root()
  if root and files.exists(root .. "/" .. rel) then return root .. "/" .. rel end
  return here
end

--- cells of a normalised spec. opts.check_configs (default true): error
-- when a config file is missing, listing all of them.
function grid.expand(s, opts)
  opts = opts or {}
  local cells, missing = {}, {}
  for _, task in ipairs(s.tasks) do
    for _, enc in ipairs(s.encodings) do
      for _, size in ipairs(s.sizes) do
        for _, seed in ipairs(s.seeds) do
          local c = {task = task, encoding = enc, size = size, seed = seed, index = #cells}
          c.name = string.format("%s-%s-s%d", enc, size, seed)
          c.id = task .. "/" .. c.name
          c.dir = string.format("%s/%s/%s", s.sweep_dir, task, c.name)
          c.group = string.format("%s/%s/%s", task, enc, size)
          c.config = grid.resolve_config(s.config, c)
          if not files.exists(c.config) then missing[#missing + 1] = c.config end
          local ov = {}
          for _, o in ipairs(sizes.overrides(size, enc, s.size_presets)) do ov[#ov + 1] = o end
          for _, o in ipairs(s.overrides) do ov[#ov + 1] = o end
          ov[#ov + 1] = "training.seed=" .. seed
          c.overrides = ov
          cells[#cells + 1] = c
        end
      end
    end
  end
  if opts.check_configs ~= false and #missing > 0 then
    local seen, list = {}, {}
    for _, m in ipairs(missing) do
      if not seen[m] then seen[m] = true; list[#list + 1] = "  " .. m end
    end
    error(string.format("sweep %s: %d config file%s not found (set 'config:' in the spec):\n%s", s.name, #list,
      #list > 1 and "s" or "", table.concat(list, "\n", 1, math.min(#list, 20))) .. (#list > 20 and "\n  ..." or ""), 0)
  end
  return cells
end

--- argv of the trainer for a cell: train_cmd CONFIG --set k=v ... --run-dir DIR [--device D] [--no-eval]
function grid.train_argv(s, c, train_cmd)
  local argv = {}
  for _, w in ipairs(train_cmd) do argv[#argv + 1] = w end
  argv[#argv + 1] = c.config
  for _, o in ipairs(c.overrides) do
    argv[#argv + 1] = "--set"
    argv[#argv + 1] = o
  end
  argv[#argv + 1] = "--run-dir"
  argv[#argv + 1] = c.dir
  if s.device then
    argv[#argv + 1] = "--device"
    argv[#argv + 1] = s.device
  end
  if not s.eval then argv[#argv + 1] = "--no-eval" end
  return argv
end

--- argv of one trainer for several cells that differ only in their seed (a group, see runner.lua):
-- train_cmd CONFIG --set k=v ... --seeds S1,S2,... --run-dir DIR1 --run-dir DIR2 ... [--device D] [--no-eval]
function grid.group_argv(s, cells, train_cmd)
  local first = cells[1]
  local argv = {}
  for _, w in ipairs(train_cmd) do argv[#argv + 1] = w end
  argv[#argv + 1] = first.config
  for _, o in ipairs(first.overrides) do
    if not o:match("^training%.seed=") then
      argv[#argv + 1] = "--set"
      argv[#argv + 1] = o
    end
  end
  local seeds = {}
  for i, c in ipairs(cells) do
    if c.group ~= first.group or c.config ~= first.config then
      error(string.format("sweep: cells %s and %s differ in more than the seed; they cannot train as one group",
        first.id, c.id), 0)
    end
    seeds[i] = tostring(c.seed)
  end
  argv[#argv + 1] = "--seeds"
  argv[#argv + 1] = table.concat(seeds, ",")
  for _, c in ipairs(cells) do
    argv[#argv + 1] = "--run-dir"
    argv[#argv + 1] = c.dir
  end
  if s.device then
    argv[#argv + 1] = "--device"
    argv[#argv + 1] = s.device
  end
  if not s.eval then argv[#argv + 1] = "--no-eval" end
  return argv
end

--- what grid.json records: enough to check that a later expansion (a Slurm
-- array task) still means the same cells
function grid.describe(s, cells)
  local list = {}
  for _, c in ipairs(cells) do
    list[#list + 1] = {index = c.index, id = c.id, dir = c.dir, config = c.config, overrides = c.overrides}
  end
  return {sweep = s.name, spec = s.path, sweep_dir = s.sweep_dir, cells = list}
end

--- compress sorted 0-based indices into Slurm's array syntax: 0-3,5,7-9
function grid.ranges(indices)
  local parts, i = {}, 1
  while i <= #indices do
    local j = i
    while j < #indices and indices[j + 1] == indices[j] + 1 do j = j + 1 end
    parts[#parts + 1] = (j > i) and (indices[i] .. "-" .. indices[j]) or tostring(indices[i])
    i = j + 1
  end
  return table.concat(parts, ",")
end

return grid
