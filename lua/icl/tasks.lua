--- Tasks: the built-in C function classes and Lua-defined ones behind one
-- interface (see docs/tasks.md).
--
--   local t = icl.task("linear_regression", {n_dims = 20})
--   t.name, t.n_dims, t.data ("gaussian"|"boolean"|custom), t.loss ("mse"|"bce"),
--   t.metric_name ("squared_error"|"accuracy"), t.options (resolved options)
--   xs, ys = t:sample(B, N, {seed=, stream=, n_dims_truncated=, device=, prompt_offset=})
--   t:sample_into(xs, ys, opts)            -- no allocation for built-in tasks
--   t:metric(pred, ys) -> [B,N]
--   t:baselines() -> {"least_squares", "nn_3", "averaging"}
--   t:run_baseline(name, xs, ys) -> pred [B,N]
--   t:evaluate_baselines(xs, ys) -> {name = metric [B,N], ...}
--
--   icl.baselines(task_name) -> default baseline names
--   icl.register_task(name, spec) -- a Lua task (spec fields below)
--   icl.tasks.list() -> every task name; icl.tasks.load(path) registers a spec file
local core = require "icl.core"
local T = core._tasks

local tasks = {}

local registry = {} -- name -> {builtin = true, info = ...} | {spec = ...}
local builtin_order = T.names()
for _, n in ipairs(builtin_order) do registry[n] = {builtin = true, info = T.info(n)} end
local lua_order = {}

-- call a C function and re-raise its error at the caller's level, without
-- this file's position in the message
-- (no table per call: sample_into runs once per training step)
local function rethrow(level, ok, ...)
  if not ok then
    local msg = tostring((...)):gsub("^[^\n]-tasks%.lua:%d+: ", "")
    error(msg, level + 1)
  end
  return ...
end

local function call(level, f, ...)
  return rethrow(level, pcall(f, ...)) -- a tail call: rethrow takes call's place in the stack
end

local function sorted_keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = tostring(k) end
  table.sort(out)
  return out
end

function tasks.list()
  local out = {}
  for _, n in ipairs(builtin_order) do out[#out + 1] = n end
  for _, n in ipairs(lua_order) do out[#out + 1] = n end
  return out
end

local function lookup(name, fname, level)
  local e = type(name) == "string" and registry[name]
  if not e then
    error(string.format("%s: unknown task '%s' (valid: %s)", fname, tostring(name), table.concat(tasks.list(), ", ")),
          level + 1)
  end
  return e
end

local function check_keys(fname, t, allowed, level)
  if t == nil then return {} end
  if type(t) ~= "table" then error(fname .. ": options must be a table", level + 1) end
  for k in pairs(t) do
    if not allowed[k] then
      error(string.format("%s: unknown option '%s' (valid: %s)", fname, tostring(k),
                          table.concat(sorted_keys(allowed), ", ")), level + 1)
    end
  end
  return t
end

local draw_keys = {seed = true, stream = true, n_dims_truncated = true, device = true, prompt_offset = true}

-- ---- Lua-defined tasks -------------------------------------------------------

local spec_keys = {
  name = true, description = true, data = true, sample_x = true, sample_function = true, evaluate = true,
  loss = true, metric = true, baselines = true, options = true, init = true,
}

--- Register a task written in Lua.
-- spec = {
--   sample_x = "gaussian" | "boolean" | function(self, B, N, draw) -> xs [B,N,D],
--   sample_function = function(self, B, draw) -> fn (any Lua value: one function per prompt),
--   evaluate = function(self, fn, xs, draw) -> ys [B,N],
--   loss = "mse" | "bce",
--   metric = "squared_error" | "accuracy" | function(self, pred, ys) -> [B,N]   (default from loss),
--   baselines = { "least_squares", "nn_3", {name = "oracle", fn = function(xs, ys, task) ... end},
--                 function(xs, ys) ... end (named "lua_<position>"), ... },
--   options = {name = default, ...},    -- accepted by icl.task(name, {...}) besides n_dims
--   data = "gaussian" | "boolean" | "...",   (default: sample_x's name, else "custom")
--   init = function(self) end,          -- after options are resolved
--   description = "...",
-- }
-- draw = {seed=, stream=, n_dims_truncated=, device=, prompt_offset=, seed_for = function(tag) -> seed}:
-- draw with icl.randn(shape, {seed = draw.seed_for("w")}) etc. so the task is deterministic.
function tasks.register(name, spec)
  if type(name) == "table" and spec == nil then name, spec = name.name, name end
  if type(name) ~= "string" or name == "" then error("icl.register_task: the task needs a name", 2) end
  if registry[name] and registry[name].builtin then
    error(string.format("icl.register_task: '%s' is a built-in task", name), 2)
  end
  check_keys("icl.register_task(" .. name .. ")", spec, spec_keys, 2)
  local sx = spec.sample_x or "gaussian"
  if not (sx == "gaussian" or sx == "boolean" or type(sx) == "function") then
    error("icl.register_task: sample_x must be \"gaussian\", \"boolean\" or a function", 2)
  end
  for _, f in ipairs({"sample_function", "evaluate"}) do
    if type(spec[f]) ~= "function" then error("icl.register_task: spec." .. f .. " must be a function", 2) end
  end
  if spec.loss ~= "mse" and spec.loss ~= "bce" then error("icl.register_task: loss must be \"mse\" or \"bce\"", 2) end
  local metric = spec.metric or (spec.loss == "bce" and "accuracy" or "squared_error")
  if not (metric == "squared_error" or metric == "accuracy" or type(metric) == "function") then
    error("icl.register_task: metric must be \"squared_error\", \"accuracy\" or a function", 2)
  end
  -- baselines: names of built-ins, {name=, fn=} entries, or name = function
  local bl_names, bl_fns = {}, {}
  for i, b in ipairs(spec.baselines or {}) do
    if type(b) == "string" then
      bl_names[#bl_names + 1] = b
    elseif type(b) == "table" and type(b.name) == "string" and type(b.fn) == "function" then
      bl_names[#bl_names + 1] = b.name
      bl_fns[b.name] = b.fn
    elseif type(b) == "function" then -- unnamed: "lua_<i>"
      local n = "lua_" .. i
      bl_names[#bl_names + 1] = n
      bl_fns[n] = b
    else
      error(string.format("icl.register_task: baselines[%d] must be a name, a function or {name=, fn=}", i), 2)
    end
  end
  for _, k in ipairs(sorted_keys(spec.baselines or {})) do
    local f = spec.baselines[k]
    if math.tointeger(tonumber(k)) == nil then
      if type(f) ~= "function" then error("icl.register_task: baselines." .. k .. " must be a function", 2) end
      bl_names[#bl_names + 1] = k
      bl_fns[k] = f
    end
  end
  if not registry[name] then lua_order[#lua_order + 1] = name end
  registry[name] = {
    spec = spec, sample_x = sx, metric = metric, baselines = bl_names, baseline_fns = bl_fns,
    data = spec.data or (type(sx) == "string" and sx or "custom"),
  }
  return name
end

--- Register the spec returned by a Lua file (e.g. experiments/tasks/sign_of_sum.lua).
function tasks.load(path)
  local spec = dofile(path)
  if type(spec) ~= "table" or type(spec.name) ~= "string" then
    error("icl.tasks.load: " .. path .. " must return a task spec with a name", 2)
  end
  return tasks.register(spec.name, spec)
end

-- ---- the task object ------------------------------------------------------------

local Task = {}
Task.__index = Task
tasks.Task = Task

--- The default baseline names of a task.
function tasks.baselines(name)
  local e = lookup(name, "icl.baselines", 2)
  local src = e.builtin and e.info.baselines or e.baselines
  local out = {}
  for i, b in ipairs(src) do out[i] = b end
  return out
end

function tasks.task(name, opts)
  local e = lookup(name, "icl.task", 2)
  if e.builtin then
    if opts ~= nil and type(opts) ~= "table" then error("icl.task: options must be a table", 2) end
    local sampler = call(2, T.new, name, opts)
    local params = sampler:params()
    return setmetatable({
      name = name, n_dims = params.n_dims, data = e.info.data, loss = e.info.loss, metric_name = e.info.metric,
      options = params, builtin = true, _sampler = sampler, _entry = e,
    }, Task)
  end
  local allowed = {n_dims = true}
  for k in pairs(e.spec.options or {}) do allowed[k] = true end
  check_keys("icl.task(" .. name .. ")", opts, allowed, 2)
  opts = opts or {}
  local o = {n_dims = opts.n_dims or 20}
  if math.type(o.n_dims) ~= "integer" or o.n_dims < 1 then error("icl.task: n_dims must be a positive integer", 2) end
  for k, v in pairs(e.spec.options or {}) do
    if opts[k] ~= nil then o[k] = opts[k] else o[k] = v end
  end
  local t = setmetatable({
    name = name, n_dims = o.n_dims, data = e.data, loss = e.spec.loss,
    metric_name = type(e.metric) == "string" and e.metric or name .. "_metric",
    options = o, builtin = false, _entry = e,
  }, Task)
  if e.spec.init then e.spec.init(t) end
  return t
end

-- per-call options of a Lua task, with the seed helper
local function lua_draw(self, opts)
  check_keys("task:sample", opts, draw_keys, 3)
  opts = opts or {}
  local d = {
    seed = opts.seed, stream = opts.stream or 0, n_dims_truncated = opts.n_dims_truncated or self.n_dims,
    device = opts.device or core.default_device(), prompt_offset = opts.prompt_offset or 0,
  }
  if d.seed == nil then
    local s, k = T.next_seed()
    d.seed, d.stream = s, opts.stream or k
  end
  if d.n_dims_truncated < 1 or d.n_dims_truncated > self.n_dims then
    error(string.format("%s: n_dims_truncated = %s must be in [1, %d]", self.name, tostring(d.n_dims_truncated),
                        self.n_dims), 3)
  end
  -- distinct prompt chunks (prompt_offset) get distinct seeds
  d.seed_for = function(tag) return T.derive_seed(d.seed, d.stream, tostring(tag) .. "@" .. d.prompt_offset) end
  return d
end

local function shape_str(t) return "[" .. table.concat(t:shape(), ", ") .. "]" end

local function lua_sample(self, B, N, opts)
  local e = self._entry
  local d = lua_draw(self, opts)
  local xs
  if type(e.sample_x) == "string" then
    -- like the built-in samplers: Gaussian inputs are zero-padded past d_t,
    -- Boolean inputs ignore it (as published)
    xs = T.sample_inputs(e.sample_x, B, N, self.n_dims, {
      seed = d.seed, stream = d.stream, device = d.device, prompt_offset = d.prompt_offset,
      n_dims_truncated = e.sample_x == "gaussian" and d.n_dims_truncated or self.n_dims,
    })
  else
    xs = e.spec.sample_x(self, B, N, d)
  end
  local fn = e.spec.sample_function(self, B, d)
  local ys = e.spec.evaluate(self, fn, xs, d)
  local sx, sy = xs:shape(), ys:shape()
  if #sx ~= 3 or sx[1] ~= B or sx[2] ~= N or sx[3] ~= self.n_dims or #sy ~= 2 or sy[1] ~= B or sy[2] ~= N then
    error(string.format("%s: sample_x/evaluate gave xs %s and ys %s, expected [%d, %d, %d] and [%d, %d]", self.name,
                        shape_str(xs), shape_str(ys), B, N, self.n_dims, B, N), 3)
  end
  if xs:device() ~= d.device then xs = xs:to(d.device) end
  if ys:device() ~= d.device then ys = ys:to(d.device) end
  return xs, ys
end

function Task:sample(B, N, opts)
  if math.type(B) ~= "integer" or math.type(N) ~= "integer" then
    error(self.name .. ":sample: batch and n_points must be integers", 2)
  end
  if self.builtin then return call(2, self._sampler.sample, self._sampler, B, N, opts) end
  return lua_sample(self, B, N, opts)
end

function Task:sample_into(xs, ys, opts)
  if self.builtin then return call(2, self._sampler.sample_into, self._sampler, xs, ys, opts) end
  local sx = xs:shape()
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  o.device = xs:device()
  local nx, ny = lua_sample(self, sx[1], sx[2], o)
  xs:copy(nx)
  ys:copy(ny)
end

function Task:metric(pred, ys)
  local m = self.builtin and self.metric_name or self._entry.metric
  if type(m) == "function" then return m(self, pred, ys) end
  return call(2, T.metric, m, pred, ys)
end

function Task:baselines()
  return tasks.baselines(self.name)
end

function Task:run_baseline(name, xs, ys, opts)
  local fns = self._entry.baseline_fns
  if fns and fns[name] then return fns[name](xs, ys, self) end
  return call(2, T.baseline, name, xs, ys, opts)
end

--- {name = metric [B,N]} for every default baseline.
function Task:evaluate_baselines(xs, ys)
  local out = {}
  for _, b in ipairs(self:baselines()) do out[b] = self:metric(self:run_baseline(b, xs, ys), ys) end
  return out
end

--- The task of a run table (icl.config): its options and quirks mapped to
-- the task's own options. The independent-label-function quirk concerns the
-- published *evaluation* only, so it applies when opts.eval is true.
function tasks.from_run(run, opts)
  local t = run.task
  local e = lookup(t.name, "tasks.from_run", 2)
  local accepted = {}
  if e.builtin then
    for _, k in ipairs(e.info.options or {}) do accepted[k] = true end
  else
    for k in pairs(e.spec.options or {}) do accepted[k] = true end
  end
  local q = t.quirks or {}
  local want = {n_dims = t.n_dims, scale = t.scale, sparsity = t.sparsity, noise_std = t.noise_std,
                renormalize_ys = t.renormalize_ys, sparse_support_all_dims = q.sparse_support_all_dims,
                truncate_boolean = q.boolean_truncation,
                independent_label_function = opts and opts.eval and q.independent_label_function or nil}
  local o = {}
  for k, v in pairs(want) do
    if accepted[k] and v ~= nil then o[k] = v end
  end
  return tasks.task(t.name, o)
end

function Task:__tostring()
  return string.format("icl.Task %s (n_dims %d, %s data, loss %s)", self.name, self.n_dims, self.data, self.loss)
end

return tasks
