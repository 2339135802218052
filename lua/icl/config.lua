--- Run configs: load a YAML file (published layout, !include) or a Lua table, apply --set
-- overrides, validate against the schema (config_schema.lua), fill defaults, return a run table.
--
--   config.load(path_or_table, {overrides = {"training.max_steps=100", ...}, allow_sweep = false,
--                               name = "label for a table"}) -> run
--   config.dump(run) -> YAML text of the resolved config (config.load of it gives the same run)
--   config.validate_section(section, value, opts) -> validated section (model, patch, task,
--       curriculum, training, wandb, eval; value may be nil = all defaults)
--   config.load_sweep(path) -> validated W&B sweep table
--   config.expand(run) -> list of runs, one per combination of sweep lists
--   config.where(run, "a.b.c") -> "file:line" (or "--set ...", "default") the value came from
--   config.optimizer(run) -> effective AdamW/schedule settings (faithful_code applied)
--   config.check_buildable(run) -> error unless the backbone can be built (GPT-2 cannot)
--   config.get(run, "a.b.c") -> value
--
-- A run table has the sections model, patch, task, training, wandb, eval and output_dir, plain
-- tables only, plus run._meta (not part of the config, never dumped): source, positions (path ->
-- origin), sweep (paths holding sweep lists), backbone, implemented, not_implemented, pe,
-- optimizer, warnings. Errors read "FILE:LINE: key.path: what is wrong".
local yaml = require "icl.yaml"
local S = require "icl.config_schema"

local config = {}
local NULL = yaml.null

local V = require "icl.config_validate"
local join, deepcopy, is_seq, closest, describe, list_text = V.join, V.deepcopy, V.is_seq, V.closest, V.describe, V.list_text
local new_ctx, check_number, check_scalar, validate_map, validate = V.new_ctx, V.check_number, V.check_scalar, V.validate_map, V.validate
config.deepcopy = deepcopy

-- ---- sections -------------------------------------------------------------------------------------

local function scalar_or_first(v) return type(v) == "table" and v[1] or v end

local function validate_model(C, raw, pos, task)
  if raw == nil or raw == NULL then C:fail(pos, "model", "missing (required; include a base_model file)") end
  if type(raw) ~= "table" or is_seq(raw) then C:fail(pos, "model", "expected a mapping, got %s", describe(raw)) end
  local fpos = C:pos(raw, "family", "model.family", pos)
  if raw.family == nil or raw.family == NULL then C:fail(pos, "model.family", "missing (required; one of: Llama2, Mamba, GPT2)") end
  local family = check_scalar(C, S.model_common.family, raw.family, "model.family", fpos)
  local fields = {}
  for k, v in pairs(S.model_common) do fields[k] = v end
  for k, v in pairs(S.family_fields[family]) do fields[k] = v end
  local m = validate_map(C, nil, raw, "model", pos, fields, S.family_order[family])
  local want_type = family == "Mamba" and "ssm" or "decoder"
  if m.type == nil then
    m.type = want_type
    C.positions["model.type"] = "default"
  elseif m.type ~= want_type then
    C:fail(C.positions["model.type"], "model.type", "'%s' does not match family %s (expected %s)", m.type, family, want_type)
  end
  if m.max_length == nil then
    m.max_length = family == "Mamba" and {"inf"} or (task and {2 * task.curriculum.points["end"]}) or nil
    C.positions["model.max_length"] = "default"
  end
  for i, x in ipairs(m.max_length or {}) do
    if x == "inf" and family ~= "Mamba" then
      C:fail(C.positions["model.max_length"], "model.max_length[" .. i .. "]", "'inf' is only valid for Mamba (a %s needs a token count)", family)
    end
  end
  if family == "Llama2" then
    local h, heads = m.hidden_size, m.num_attention_heads
    if m.intermediate_size == nil and type(h) == "number" then m.intermediate_size = 4 * h end
    if m.num_key_value_heads == nil and type(heads) == "number" then m.num_key_value_heads = heads end
    if type(h) == "number" and type(heads) == "number" and h % heads ~= 0 then
      C:fail(C.positions["model.num_attention_heads"], "model.num_attention_heads", "%d heads do not divide hidden_size %d", heads, h)
    end
    if type(heads) == "number" and type(m.num_key_value_heads) == "number" and heads % m.num_key_value_heads ~= 0 then
      C:fail(C.positions["model.num_key_value_heads"] or pos, "model.num_key_value_heads", "%d key/value heads do not divide %d query heads", m.num_key_value_heads, heads)
    end
  elseif family == "GPT2" then
    local h, heads = m.n_embed, m.n_head
    if type(h) == "number" and type(heads) == "number" and h % heads ~= 0 then
      C:fail(C.positions["model.n_head"], "model.n_head", "%d heads do not divide n_embed %d", heads, h)
    end
  end
  return m
end

local function validate_patch(C, raw, pos, model)
  local p = validate_map(C, S.patch, raw, "patch", pos)
  local family = model and model.family
  local rs = p.rope_scaling
  if rs.type == nil then
    rs.type = family == "Mamba" and "none" or "rope"
    C.positions["patch.rope_scaling.type"] = "default"
  end
  local types = type(rs.type) == "table" and rs.type or {rs.type}
  for _, ty in ipairs(types) do
    if family == "Mamba" and ty ~= "none" and ty ~= "nope" then
      C:fail(C.positions["patch.rope_scaling.type"], "patch.rope_scaling.type", "'%s' cannot patch a Mamba model (it has no position encoding); use none", ty)
    end
    if family ~= "Mamba" and family ~= nil and ty == "none" then
      C:fail(C.positions["patch.rope_scaling.type"], "patch.rope_scaling.type", "'none' is for Mamba; a %s without position encoding is 'nope'", family)
    end
  end
  if p.name == nil and type(rs.type) == "string" then
    p.name = rs.type
    C.positions["patch.name"] = "default"
  end
  return p
end

local function validate_task(C, raw, pos)
  local t = validate_map(C, S.task, raw, "task", pos)
  local want = S.GAUSSIAN_TASKS[scalar_or_first(t.name)] and "gaussian" or "boolean"
  if t.data == nil then
    t.data = want
    C.positions["task.data"] = "default"
  elseif type(t.data) == "string" and type(t.name) == "string" and t.data ~= want then
    C:fail(C.positions["task.data"], "task.data", "'%s' does not match task %s (its inputs are %s)", t.data, t.name, want)
  end
  local cur = t.curriculum
  for _, what in ipairs({"dims", "points"}) do
    local s = cur[what]
    if type(s.start) == "number" and type(s["end"]) == "number" and s["end"] < s.start then
      C:fail(C.positions["task.curriculum." .. what .. ".end"], "task.curriculum." .. what .. ".end", "%d is below start %d", s["end"], s.start)
    end
  end
  if t.n_dims == nil then
    t.n_dims = cur.dims["end"]
    C.positions["task.n_dims"] = "default (curriculum dims.end)"
  elseif type(t.n_dims) == "number" and type(cur.dims["end"]) == "number" and t.n_dims < cur.dims["end"] then
    C:fail(C.positions["task.n_dims"], "task.n_dims", "%d is below the curriculum's dims.end %d", t.n_dims, cur.dims["end"])
  end
  return t
end

-- ---- loading ------------------------------------------------------------------------------------

local function parse_override(s)
  if type(s) ~= "string" then error(string.format("config: overrides must be strings like 'a.b=value', got %s", describe(s)), 0) end
  local path, value = s:match("^%s*([^=%s]+)%s*=(.*)$")
  if not path then error(string.format("--set %s: expected key.path=value", s), 0) end
  local ok, v = pcall(yaml.parse, value, {name = "--set " .. path, positions = false, includes = false})
  if not ok then error(string.format("--set %s: the value is not valid YAML: %s", s, v), 0) end
  return path, v
end

local function apply_overrides(C, raw, list)
  for _, s in ipairs(list or {}) do
    local path, v = parse_override(s)
    local where = "--set " .. s
    local segs = {}
    for seg in path:gmatch("[^%.]+") do segs[#segs + 1] = seg end
    if #segs == 0 or path:find("%.%.") or path:find("^%.") or path:find("%.$") then
      error(string.format("%s: '%s' is not a key path", where, path), 0)
    end
    local t, sofar = raw, ""
    for i = 1, #segs - 1 do
      sofar = join(sofar, segs[i])
      local nx = t[segs[i]]
      if nx == nil or nx == NULL then
        nx = {}
        t[segs[i]] = nx
        C.overrides[sofar] = C.overrides[sofar] or where
      elseif type(nx) ~= "table" or is_seq(nx) then
        error(string.format("%s: %s: is %s, not a mapping, so it has no key '%s'", where, sofar, describe(nx), segs[i + 1]), 0)
      end
      t = nx
    end
    t[segs[#segs]] = v
    C.overrides[path] = where
    for p in pairs(C.overrides) do -- deeper paths set earlier are replaced by this value
      if p:sub(1, #path + 1) == path .. "." and C.overrides[p] ~= where then C.overrides[p] = where end
    end
  end
end

local function effective_pe(run)
  local m, p = run.model, run.patch
  if m.family == "Mamba" then return "none" end
  if m.family == "GPT2" then return "learned-absolute" end
  local ty = scalar_or_first(p.rope_scaling.type)
  if ty == "rope" and m.rope_scaling then
    local hf = scalar_or_first(m.rope_scaling.type)
    if hf == "linear" or hf == "dynamic" then return hf end
  end
  return ty
end

function config.optimizer(run)
  local t = run.training
  local faithful = t.faithful_code
  local warm = t.warmup_steps > 0 and t.warmup_steps or math.ceil(t.warmup_ratio * t.max_steps) -- the HF rule
  return {
    lr = t.learning_rate, beta1 = t.adam_beta1, beta2 = t.adam_beta2,
    eps = faithful and 1e-8 or t.adam_epsilon,
    weight_decay = faithful and 0.01 or t.weight_decay,
    max_grad_norm = faithful and 0.0 or t.max_grad_norm,
    schedule = t.lr_scheduler_type, warmup_steps = warm, total_steps = t.max_steps,
  }
end

local function validate_run(C, raw, pos)
  if raw == nil or raw == NULL then C:fail(pos, "", "the config is empty") end
  if type(raw) ~= "table" or is_seq(raw) then C:fail(pos, "", "a run config must be a mapping with model, task, training, ..., got %s", describe(raw)) end
  raw._meta = nil
  if raw.logging ~= nil then
    if raw.wandb ~= nil then C:fail(C:pos(raw, "logging", "logging", pos), "logging", "give either logging or wandb, not both (logging is another name for wandb)") end
    raw.wandb = raw.logging
    raw.logging = nil
    C.overrides.wandb = C.overrides.logging or yaml.pos(raw, "logging")
  end
  local top = {model = true, patch = true, task = true, training = true, wandb = true, eval = true, output_dir = true}
  for k in pairs(raw) do
    if not top[k] then
      local names = {"eval", "logging", "model", "output_dir", "patch", "task", "training", "wandb"}
      local near = type(k) == "string" and closest(k, names)
      C:fail(C:pos(raw, k, tostring(k), pos), tostring(k), "unknown section%s; valid: %s", near and string.format(" (did you mean '%s'?)", near) or "", list_text(names))
    end
  end
  local sp = function(k) return C:pos(raw, k, k, pos) end
  local run = {}
  if raw.task == nil or raw.task == NULL then C:fail(pos, "task", "missing (required)") end
  run.task = validate_task(C, raw.task, sp("task"))
  run.model = validate_model(C, raw.model, raw.model ~= nil and sp("model") or pos, run.task)
  run.patch = validate_patch(C, raw.patch, sp("patch"), run.model)
  run.training = validate_map(C, S.training, raw.training, "training", sp("training"))
  run.wandb = validate_map(C, S.wandb, raw.wandb, "wandb", sp("wandb"))
  run.eval = validate_map(C, S.eval, raw.eval, "eval", sp("eval"))
  run.output_dir = raw.output_dir ~= nil and raw.output_dir ~= NULL and check_scalar(C, S.output_dir, raw.output_dir, "output_dir", sp("output_dir")) or S.output_dir.default
  -- cross-section notes
  local fam = run.model.family
  local pts = run.task.curriculum.points["end"]
  if fam ~= "Mamba" and #C.sweep == 0 then
    for _, L in ipairs(run.model.max_length) do
      if type(L) == "number" and L < 2 * pts then
        C.warnings[#C.warnings + 1] = string.format("model.max_length %d is shorter than the %d tokens of a %d-point training prompt", L, 2 * pts, pts)
      end
    end
  end
  local meta = {source = C.name, positions = C.positions, sweep = C.sweep, warnings = C.warnings,
                backbone = ({Llama2 = "llama", Mamba = "mamba", GPT2 = "gpt2"})[fam], implemented = fam ~= "GPT2"}
  if fam == "GPT2" then meta.not_implemented = "GPT-2 backbone not implemented; the study reports Llama only" end
  if #C.sweep == 0 then
    meta.pe = effective_pe(run)
    meta.optimizer = config.optimizer(run)
  end
  run._meta = meta
  return run
end

local function load_raw(src, opts, C)
  if type(src) == "string" then
    C.name = src
    return yaml.load(src)
  elseif type(src) == "table" then
    return deepcopy(src)
  end
  error("config.load: expected a file path or a table, got " .. type(src), 0)
end

local load_opts = {overrides = true, allow_sweep = true, name = true}

local function check_opts(fname, opts)
  if opts == nil then return {} end
  if type(opts) ~= "table" then error(fname .. ": options must be a table", 3) end
  for k in pairs(opts) do
    if not load_opts[k] then error(string.format("%s: unknown option '%s' (valid: allow_sweep, name, overrides)", fname, tostring(k)), 3) end
  end
  return opts
end

function config.load(src, opts)
  opts = check_opts("config.load", opts)
  local C = new_ctx(opts)
  local ok, run = pcall(function()
    local raw = load_raw(src, opts, C)
    if opts.overrides ~= nil and type(opts.overrides) ~= "table" then error("config.load: overrides must be a list of strings", 0) end
    if raw == NULL or raw == nil then raw = {} end
    if type(raw) == "table" and not is_seq(raw) then apply_overrides(C, raw, opts.overrides) end
    return validate_run(C, raw, yaml.where(raw) or C.name)
  end)
  if not ok then error(run, 2) end
  return run
end

local sections = {
  model = function(C, v, pos) return validate_model(C, v, pos, nil) end,
  patch = function(C, v, pos) return validate_patch(C, v, pos, nil) end,
  task = function(C, v, pos) return validate_task(C, v, pos) end,
  curriculum = function(C, v, pos) return validate_map(C, S.curriculum, v, "task.curriculum", pos) end,
  training = function(C, v, pos) return validate_map(C, S.training, v, "training", pos) end,
  wandb = function(C, v, pos) return validate_map(C, S.wandb, v, "wandb", pos) end,
  eval = function(C, v, pos) return validate_map(C, S.eval, v, "eval", pos) end,
  sweep = function(C, v, pos) return validate_map(C, S.sweep, v, "", pos) end,
}

function config.validate_section(name, v, opts)
  opts = check_opts("config.validate_section", opts)
  local fn = sections[name]
  if not fn then error("config.validate_section: unknown section '" .. tostring(name) .. "' (valid: curriculum, eval, model, patch, sweep, task, training, wandb)", 2) end
  local C = new_ctx(opts)
  local ok, res = pcall(fn, C, v, yaml.where(v) or C.name)
  if not ok then error(res, 2) end
  return res, C.sweep
end

function config.load_sweep(path)
  local ok, res = pcall(function()
    local C = new_ctx({name = path})
    local raw = yaml.load(path)
    return validate_map(C, S.sweep, raw, "", path)
  end)
  if not ok then error(res, 2) end
  return res
end

-- ---- using a run table --------------------------------------------------------------------------

function config.get(run, path)
  local v = run
  for seg in path:gmatch("[^%.]+") do
    if type(v) ~= "table" then return nil end
    v = v[seg]
  end
  return v
end

function config.where(run, path)
  return run._meta and run._meta.positions[path] or nil
end

function config.check_buildable(run)
  if run._meta and run._meta.implemented == false then
    error(string.format("%s: model.family: %s", config.where(run, "model.family") or run._meta.source, run._meta.not_implemented), 2)
  end
  if run._meta and #run._meta.sweep > 0 then
    error(string.format("%s: the config holds sweep lists (%s); expand it with config.expand first", run._meta.source, table.concat(run._meta.sweep, ", ")), 2)
  end
end

local function strip_meta(run)
  local t = {}
  for k, v in pairs(run) do
    if k ~= "_meta" then t[k] = v end
  end
  return t
end

function config.expand(run)
  local paths = run._meta and run._meta.sweep or {}
  local base = deepcopy(strip_meta(run))
  if #paths == 0 then return {config.load(base, {name = run._meta and run._meta.source})} end
  local lists = {}
  for i, p in ipairs(paths) do lists[i] = config.get(run, p) end
  local out = {}
  local function rec(i, cur)
    if i > #paths then
      local r = deepcopy(cur)
      out[#out + 1] = config.load(r, {name = run._meta.source})
      return
    end
    for _, v in ipairs(lists[i]) do
      local t = cur
      local segs = {}
      for seg in paths[i]:gmatch("[^%.]+") do segs[#segs + 1] = seg end
      for j = 1, #segs - 1 do t = t[segs[j]] end
      t[segs[#segs]] = v
      rec(i + 1, cur)
    end
  end
  rec(1, base)
  return out
end

local function schema_order(path)
  if path == "" then return S.top_order end
  local segs = {}
  for seg in path:gmatch("[^%.]+") do segs[#segs + 1] = seg end
  local sch
  if segs[1] == "model" then
    if #segs == 1 then return S.family_order.Llama2 end -- unknown keys of other families sort after
    sch = S.model_llama[segs[2]]
  else
    sch = ({patch = S.patch, task = S.task, training = S.training, wandb = S.wandb, eval = S.eval})[segs[1]]
    for i = 2, #segs do sch = sch and sch.fields and sch.fields[segs[i]] end
  end
  return sch and sch.order or nil
end

function config.dump(run)
  local body = strip_meta(run)
  local order = function(path)
    if path == "model" and run.model then return S.family_order[run.model.family] end
    return schema_order(path)
  end
  local head = string.format("# resolved icl run config (source: %s)\n", run._meta and run._meta.source or "<table>")
  return head .. yaml.dump(body, {order = order})
end

config.schema = S

return config
