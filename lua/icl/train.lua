--- The training loop, in Lua over the engine's bindings: no tensor data
-- crosses into Lua in the hot path (sampling, forward, loss, backward and
-- AdamW all run in C on the model's device, into buffers made once), and a
-- step allocates nothing; Lua reads scalars only at log, eval, save and
-- progress times. docs/runner.md describes the run directory, checkpoints,
-- resume and faults.
--
-- A run is a pure function of (config, seed): the batch of 0-based step s is
-- drawn from stream s of the run's seed and the curriculum is a closed form
-- of s, so a run resumed from a checkpoint (parameters, AdamW moments and
-- scalars) continues bit for bit. The held-out evaluation reads its own
-- streams (2^40 + k) and never touches the training state.
--
--   train.run(run, opts) -> summary        (run: a validated config, icl.config.load)
--   train.run_group(runs, opts) -> list    K runs of one shape stepping together (lua/icl/train/group.lua)
--   train.open(run, opts) -> session       one run's training in parts (lua/icl/train/session.lua)
--   train.build(run, {device =}) -> {model =, opt =, task =, device =, seed =}
--   train.optimizer_settings(run), train.stage(run, s), train.heldout(...)
--   train.config_diff(a, b), train.check_resume_overrides(list), train.RESUME_SAFE
local core = require "icl.core"
local json = require "icl.json"

local train = {}

train.EVAL_STREAM_BASE = 1 << 40 -- held-out prompts never collide with training streams
train.EVAL_BATCHES = 2           -- batches of per_device_eval_batch_size per held-out evaluation

--- Config keys that may differ when a run is resumed: they do not change what
-- the training computes (the value says what they do change, when anything).
-- Every other key would make the resumed run a different run.
train.RESUME_SAFE = {
  ["training.max_steps"] = "the run ends at the new step count; the learning-rate schedule (linear decay to 0 " ..
    "at max_steps, warm-up from warmup_ratio) follows the new value from the resumed step on",
  ["training.logging_steps"] = true, ["training.eval_steps"] = true, ["training.evaluation_strategy"] = true,
  ["training.save_steps"] = true, ["training.save_strategy"] = true, ["training.save_total_limit"] = true,
  ["training.per_device_eval_batch_size"] = true, ["training.metric_for_best_model"] = true,
  ["training.eval_gradient_accumulation_steps"] = true,
  ["training.device"] = "another device computes other bits (a warning says so at resume)",
  ["output_dir"] = true,
}
train.RESUME_SAFE_PREFIXES = {"eval.", "wandb."}

function train.resume_safe(path)
  if train.RESUME_SAFE[path] then return true end
  for _, p in ipairs(train.RESUME_SAFE_PREFIXES) do
    if path:sub(1, #p) == p or path == p:sub(1, -2) then return true end
  end
  return false
end

local function safe_list()
  local out = {}
  for k in pairs(train.RESUME_SAFE) do out[#out + 1] = k end
  table.sort(out)
  for _, p in ipairs(train.RESUME_SAFE_PREFIXES) do out[#out + 1] = p .. "*" end
  return table.concat(out, ", ")
end

--- --set overrides given with --resume: only keys that keep the run the same run.
function train.check_resume_overrides(list)
  local bad = {}
  for _, s in ipairs(list or {}) do
    local path = tostring(s):match("^%s*([^=%s]+)%s*=")
    if not path then error(string.format("--set %s: expected key.path=value", s), 0) end
    if not train.resume_safe(path) then bad[#bad + 1] = path end
  end
  if #bad > 0 then
    error(string.format("--resume with --set %s: a resumed run must keep its config, or it would not continue " ..
      "the same run bit for bit; only these keys may change: %s. To train a different config, start a new run.",
      table.concat(bad, ", "), safe_list()), 0)
  end
end

local function is_seq(t)
  return type(t) == "table" and (#t > 0 or next(t) == nil)
end

-- path -> leaf value (sequences are leaves); run._meta and private keys skipped
local function flatten(t, prefix, out)
  for k, v in pairs(t) do
    if type(k) == "string" and k:sub(1, 1) ~= "_" then
      local p = prefix == "" and k or prefix .. "." .. k
      if type(v) == "table" and not is_seq(v) then flatten(v, p, out) else out[p] = v end
    end
  end
  return out
end

local function same(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then return a == b end
  if #a ~= #b then return false end
  for i = 1, #a do if not same(a[i], b[i]) then return false end end
  return true
end

local function show(v)
  if v == nil then return "(unset)" end
  if type(v) == "table" then
    local parts = {}
    for i, x in ipairs(v) do parts[i] = tostring(x) end
    return "[" .. table.concat(parts, ", ") .. "]"
  end
  return tostring(v)
end

--- Differences between two run tables: sorted list of {path =, old =, new =, safe = bool}.
function train.config_diff(old, new)
  local a, b = flatten(old, "", {}), flatten(new, "", {})
  local keys, seen = {}, {}
  for k in pairs(a) do keys[#keys + 1], seen[k] = k, true end
  for k in pairs(b) do if not seen[k] then keys[#keys + 1] = k end end
  table.sort(keys)
  local out = {}
  for _, k in ipairs(keys) do
    if not same(a[k], b[k]) then out[#out + 1] = {path = k, old = a[k], new = b[k], safe = train.resume_safe(k)} end
  end
  return out
end

--- Optimiser settings from the run table (icl.config.optimizer decides
-- paper vs published-code behaviour, see training.faithful_code).
function train.optimizer_settings(run)
  local o = require("icl.config").optimizer(run)
  return {lr = o.lr, beta1 = o.beta1, beta2 = o.beta2, eps = o.eps, weight_decay = o.weight_decay,
          max_grad_norm = o.max_grad_norm, schedule = o.schedule == "constant" and "constant" or "linear",
          warmup = o.warmup_steps, total_steps = o.total_steps}
end

local curricula = setmetatable({}, {__mode = "k"})

--- Curriculum stage at 0-based step s: n_dims_truncated, n_points.
function train.stage(run, s)
  local cur = curricula[run]
  if not cur then
    cur = require("icl.curriculum").new(run.task.curriculum)
    curricula[run] = cur
  end
  local a = cur:at(s)
  return a.n_dims_truncated, a.n_points
end

--- The device a run trains on: opts.device, else training.device unless
-- "auto", else cuda when available. Raises a clear error for cuda without one.
function train.device(run, wanted)
  local icl = require "icl"
  local t = run.training
  local device = wanted or (t.device ~= "auto" and t.device) or (icl.cuda_available() and "cuda" or "cpu")
  if device == "cuda" and not icl.cuda_available() then error(train.no_cuda_message(), 0) end
  return device
end

--- "no CUDA device: <the backend's reason>" (no device, a driver too old, a
-- build without CUDA), for every command that was asked for --device cuda.
function train.no_cuda_message()
  local why = require("icl").cuda_why() or "unknown reason"
  why = why:match("^device 'cuda' requested, but no CUDA device is available %((.*)%)$") or
        why:gsub("^device 'cuda' requested, but ", ""):gsub("^device 'cuda': ", "")
  return "no CUDA device: " .. why .. " (device 'cuda' was asked for but no CUDA device is available; " ..
         "use --device cpu)"
end

--- The run's training step in C (models/train_step.h) for a built-in task:
-- sampling, loss, backward and AdamW with the batch stream read from the
-- optimiser's step count on the device, captured as a CUDA graph per shape on
-- a GPU; on the CPU the same kernels in the same order as the Lua step of
-- Session:step_alone (same bits). nil (the Lua step) for Lua-defined tasks,
-- with opts.train_step == false, or past 2^24 steps (the count is a float there).
function train.make_step(run, model, opt, task, opts)
  local t = run.training
  if opts.train_step == false or not task.builtin or not core._train_step or t.max_steps > (1 << 24) then
    return nil
  end
  local _, n0 = train.stage(run, 0)
  local _, n1 = train.stage(run, math.max(0, t.max_steps - 1)) -- the curriculum only grows
  return core._train_step(model, opt, task._sampler, {
    batch = t.per_device_train_batch_size, max_points = math.max(n0, n1),
    seed = t.seed or 0, loss = task.loss, graphs = opts.graphs ~= false})
end

--- The model, optimiser and task of a run, as train.run makes them.
function train.build(run, opts)
  opts = opts or {}
  local icl = require "icl"
  local t = run.training
  if t.gradient_accumulation_steps ~= 1 then
    error(string.format("training.gradient_accumulation_steps = %d is not supported (icl takes one batch of " ..
      "per_device_train_batch_size prompts per step, as the published runs did with 1); raise " ..
      "per_device_train_batch_size instead", t.gradient_accumulation_steps), 0)
  end
  require("icl.config").check_buildable(run)
  local device = train.device(run, opts.device)
  local seed = t.seed or 0
  local task = require("icl.tasks").from_run(run)
  local model = icl.model(run.model, run.patch, {n_dims = run.task.n_dims, device = device, seed = seed})
  local opt = model:optimizer(train.optimizer_settings(run))
  return {model = model, opt = opt, task = task, device = device, seed = seed}
end

--- Held-out evaluation: mean loss and metric over `batches` batches of fresh
-- prompts from streams EVAL_STREAM_BASE + k at stage (d_t, N). Buffers come
-- from opts.cache (made once per prompt length); the training buffers, RNG
-- streams and optimiser are not touched.
function train.heldout(model, task, opts)
  local B, N, D = opts.batch, opts.n_points, task.n_dims
  local cache = opts.cache or {}
  local buf = cache[N]
  if not buf then
    buf = {xs = core.zeros({B, N, D}, {device = opts.device}), ys = core.zeros({B, N}, {device = opts.device}),
           draw = {seed = opts.seed, stream = 0, n_dims_truncated = 1, device = opts.device}}
    cache[N] = buf
  end
  local sum_loss, sum_metric = 0, 0
  local nb = opts.batches or train.EVAL_BATCHES
  for k = 0, nb - 1 do
    buf.draw.stream, buf.draw.n_dims_truncated = train.EVAL_STREAM_BASE + k, opts.n_dims_truncated
    task:sample_into(buf.xs, buf.ys, buf.draw)
    local pred = model:predict(buf.xs, buf.ys)
    local loss = task.loss == "bce" and core._nn.bce_with_logits_loss(pred, buf.ys) or core._nn.mse_loss(pred, buf.ys)
    sum_loss = sum_loss + loss:item()
    sum_metric = sum_metric + task:metric(pred, buf.ys):mean():item()
  end
  return sum_loss / nb, sum_metric / nb
end

local function finite(x) return x == x and x ~= math.huge and x ~= -math.huge end

-- Ctrl-C raises "interrupted!" wherever Lua is, also inside a pcall meant for another failure:
-- those pcalls pass it on
local function pass_interrupt(ok, err)
  if not ok and tostring(err):find("interrupted!$") then error(err, 0) end
  return ok, err
end

local function num_text(x)
  if x ~= x then return "nan" end
  if x == math.huge or x == -math.huge then return x > 0 and "inf" or "-inf" end
  return string.format("%.6g", x)
end

local function names_text(list, max)
  max = max or 6
  local shown = table.concat(list, ", ", 1, math.min(#list, max))
  if #list > max then shown = shown .. string.format(" and %d more", #list - max) end
  return shown
end

--- Which parameters (values) and gradients hold NaN/Inf.
local function nonfinite_tensors(model)
  local params, grads, n = {}, {}, 0
  for _, p in ipairs(model:param_list()) do
    n = n + 1
    if model:get(p.name):has_nonfinite() then params[#params + 1] = p.name end
    if model:grad(p.name):has_nonfinite() then grads[#grads + 1] = p.name end
  end
  return params, grads, n
end

-- for lua/icl/train/session.lua and group.lua
train._h = {show = show, safe_list = safe_list, pass_interrupt = pass_interrupt, finite = finite, num_text = num_text,
            names_text = names_text, nonfinite_tensors = nonfinite_tensors}

--- train.open(run, opts) -> a session: one run's training in parts (lua/icl/train/session.lua)
function train.open(run, opts) return require("icl.train.session").open(run, opts) end

--- train.run(run, opts): train (or resume) one run.
-- opts.run_dir: the run directory (default: a new models/<task>/<dims>/<date>/<uid>/); a directory that
--   holds checkpoints is resumed from its newest valid one, after checking that the config is the same
--   (up to train.RESUME_SAFE keys)
-- opts.resume: the run directory must exist already (icl train --resume)
-- opts.device: "cpu" | "cuda"; opts.evaluate: the OOD evaluation after training (default true)
-- opts.train_step = false: the Lua step even for a built-in task (train.make_step); opts.graphs =
-- false: the C step without CUDA graphs
-- opts.hooks: {before_step = fn(step0, model)}: called before each step's forward (0-based step)
-- opts.out: stream for progress and notes (default stderr); opts.tty: force/forbid the live line;
-- opts.progress_every: seconds between plain progress lines (default 10)
-- Returns {run_dir, steps, resumed_from, final_loss, save_warning, evaluation, already_finished}.
function train.run(run, opts)
  local s = train.open(run, opts)
  local ok, result = pcall(s.train_alone, s)
  if not ok then error(s:abort(result), 0) end
  s:release()
  if result.already_finished then return result end
  return s:evaluate()
end

--- train.run_group(runs, opts): K runs of one shape in this process (lua/icl/train/group.lua)
function train.run_group(runs, opts) return require("icl.train.group").run(runs, opts) end

--- training_curve.png from metrics.jsonl: training loss and held-out loss vs step
function train.plot_curve(dir, run)
  local metrics = require "icl.metrics"
  local plot = core.plot
  if not plot then return end
  local tr_x, tr_y, ev_x, ev_y = {}, {}, {}, {}
  local function ok(v) return type(v) == "number" and v == v and v > 0 and v < math.huge end
  for _, r in ipairs(metrics.read(dir .. "/metrics.jsonl")) do
    if r.kind == "train" and ok(r.loss) then tr_x[#tr_x + 1], tr_y[#tr_y + 1] = r.step, r.loss end
    if r.kind == "eval" and ok(r.loss) then ev_x[#ev_x + 1], ev_y[#ev_y + 1] = r.step, r.loss end
  end
  if #tr_x < 2 then return end
  local series = {{x = tr_x, y = tr_y, label = "training loss", color = {31, 119, 180}, width = 1.5}}
  if #ev_x >= 1 then series[2] = {x = ev_x, y = ev_y, label = "held-out loss", color = {214, 39, 40}, width = 2} end
  plot.lines{file = dir .. "/training_curve.png", title = string.format("%s  d=%d  %s: training curve",
    run.task.name, run.task.n_dims, require("icl.rundir").encoding_name(run)), xlabel = "step",
    ylabel = run.task.name:find("regression") and "MSE loss" or "BCE loss", logy = true, series = series,
    legend = "top right"}
end

return train
