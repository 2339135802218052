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
  if device == "cuda" and not icl.cuda_available() then
    error("device 'cuda' was asked for but no CUDA device is available" ..
          (icl.cuda_compiled() and "" or " (this build of icl has no CUDA backend)") .. "; use --device cpu", 0)
  end
  return device
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

--- train.run(run, opts): train (or resume) one run.
-- opts.run_dir: the run directory (default: a new models/<task>/<dims>/<date>/<uid>/); a directory that
--   holds checkpoints is resumed from its newest valid one, after checking that the config is the same
--   (up to train.RESUME_SAFE keys)
-- opts.resume: the run directory must exist already (icl train --resume)
-- opts.device: "cpu" | "cuda"; opts.evaluate: the OOD evaluation after training (default true)
-- opts.hooks: {before_step = fn(step0, model)}: called before each step's forward (0-based step)
-- opts.out: stream for progress and notes (default stderr); opts.tty: force/forbid the live line;
-- opts.progress_every: seconds between plain progress lines (default 10)
-- Returns {run_dir, steps, resumed_from, final_loss, save_warning, evaluation, already_finished}.
function train.run(run, opts)
  opts = opts or {}
  local icl = require "icl"
  local io_ = require "icl.io"
  local config = require "icl.config"
  local rundir = require "icl.rundir"
  local ckpt = require "icl.checkpoint"
  local metrics = require "icl.metrics"
  local progress = require "icl.progress"
  local t = run.training
  local out = opts.out or io.stderr

  local B0 = train.build(run, opts)
  local model, opt, task, device, seed = B0.model, B0.opt, B0.task, B0.device, B0.seed
  local D = run.task.n_dims
  local B = t.per_device_train_batch_size
  local max_steps = t.max_steps

  local dir = opts.run_dir or rundir.new_path(run)
  if opts.resume and not io_.file_exists(dir .. "/config.yaml") then
    error(dir .. " is not a run directory (it has no config.yaml)", 0)
  end
  io_.mkdir_p(dir)
  local lock = rundir.lock(dir)
  local log, at_step
  local ok, result = pcall(function()
    -- First everything that can refuse, changing nothing: the config must be the run's (up to
    -- RESUME_SAFE keys), and some checkpoint must be usable when there are any.
    local cfg_path = dir .. "/config.yaml"
    local config_text = config.dump(run)
    local function check_same(stored, what)
      local safe, unsafe = {}, {}
      for _, d in ipairs(train.config_diff(stored, run)) do
        if d.safe then safe[#safe + 1] = d else unsafe[#unsafe + 1] = d end
      end
      if #unsafe > 0 then
        local lines = {}
        for _, d in ipairs(unsafe) do lines[#lines + 1] = string.format("  %s: %s in the run, %s now", d.path,
          show(d.old), show(d.new)) end
        error({icl_error = string.format("%s holds a run with a different config (%s):\n%s\nA resumed run must " ..
          "keep its config to continue bit for bit; only these keys may change: %s. Use another run directory for " ..
          "a different config.", dir, what, table.concat(lines, "\n"), safe_list())})
      end
      return safe
    end
    local changes = {}
    if io_.file_exists(cfg_path) then
      local okl, stored = pass_interrupt(pcall(config.load, cfg_path))
      if not okl then
        error({icl_error = "the run's config " .. cfg_path .. " cannot be loaded: " .. tostring(stored)})
      end
      changes = check_same(stored, "config.yaml")
    end
    local present = ckpt.list(dir)
    local state, tensors, warnings, bad, meta = ckpt.latest(dir, {device = device})
    for _, w in ipairs(warnings) do out:write("warning: " .. w .. "\n") end
    if not state and #present > 0 then
      error({icl_error = string.format("%s: none of its %d checkpoint(s) can be used (see the warnings above); " ..
        "nothing was changed. Restore them from a copy, or move them away to train the run again from step 0.",
        dir, #present)})
    end
    local start = 0
    if state then
      start = state.step
      if meta and meta.config then
        -- the config the checkpoint was trained with (config.yaml may have been edited since)
        local okp, stored = pass_interrupt(pcall(function()
          return config.load(require("icl.yaml").parse(meta.config, {name = "checkpoint"}), {name = "checkpoint"})
        end))
        if okp then check_same(stored, string.format("the checkpoint of step %d", start)) end
      end
      if state.rng and state.rng.seed ~= seed then
        error({icl_error = string.format("%s: its checkpoint was trained with seed %s, the config says %d", dir,
          tostring(state.rng.seed), seed)})
      end
      if start > max_steps then
        error({icl_error = string.format("%s is at step %d, past training.max_steps = %d", dir, start, max_steps)})
      end
    end

    -- then the changes: leftovers of a killed save, unusable newer checkpoints moved aside, the config
    for _, c in ipairs(ckpt.clean(dir)) do out:write("note: " .. c .. "\n") end
    for _, b in ipairs(bad) do
      -- newer than the one resumed from: out of the way of pruning and of the next save at that step
      local moved = ckpt.quarantine(dir, b.step)
      out:write(string.format("warning: moved the unusable checkpoint of step %d to %s\n", b.step,
        (moved[1] or ""):match("^(.*)/[^/]*$") or dir .. "/unusable"))
    end
    if not io_.file_exists(cfg_path) or #changes > 0 then io_.write_file_atomic(cfg_path, config_text) end

    if state then
      ckpt.restore(tensors, model, opt)
      if state.threads and state.threads ~= icl.num_threads() then
        out:write(string.format("warning: the run used %d threads, this process uses %d; results will not be " ..
          "bit-identical to an uninterrupted run (use --threads %d)\n", state.threads, icl.num_threads(),
          state.threads))
      end
      if state.device and state.device ~= device then
        out:write(string.format("warning: the run trained on %s and now continues on %s; results will not be " ..
          "bit-identical to an uninterrupted run\n", state.device, device))
      end
      for _, d in ipairs(changes) do
        out:write(string.format("note: %s changed from %s to %s%s\n", d.path, show(d.old), show(d.new),
          type(train.RESUME_SAFE[d.path]) == "string" and (": " .. train.RESUME_SAFE[d.path]) or ""))
      end
      out:write(string.format("resuming %s from step %d\n", dir, start))
    elseif opts.resume then
      out:write(string.format("resuming %s: no checkpoint was saved yet, training from step 0\n", dir))
    end

    local status0 = rundir.read_status(dir)
    if start == max_steps and status0 and status0.state == "finished" then
      out:write(string.format("%s: already finished (%d steps)\n", dir, max_steps))
      return {run_dir = dir, steps = max_steps, resumed_from = start, already_finished = true}
    end

    log = start > 0 and metrics.open(dir .. "/metrics.jsonl", {truncate_after_step = start}) or
                metrics.open(dir .. "/metrics.jsonl", {fresh = true})
    if start == 0 then
      log:write({kind = "start", step = 0, params = model:num_params(), device = device, threads = icl.num_threads(),
                 task = run.task.name, encoding = rundir.encoding_name(run), seed = seed, max_steps = max_steps})
    elseif start < max_steps then
      local ch = {}
      for _, d in ipairs(changes) do ch[d.path] = tostring(d.new) end
      log:write({kind = "resume", step = start, device = device, threads = icl.num_threads(),
                 changes = #changes > 0 and ch or nil})
    end

    local log_every = t.logging_steps
    local eval_every = t.evaluation_strategy == "steps" and t.eval_steps or nil
    local save_every = t.save_strategy == "steps" and t.save_steps or nil
    local keep = t.save_total_limit
    local Be = t.per_device_eval_batch_size
    local cur = run.task.curriculum
    local di, pi = cur.dims.interval, cur.points.interval
    local D_end, N_end = cur.dims["end"], cur.points["end"]
    local prog = progress.new{total = max_steps, start = start, out = out, tty = opts.tty,
                              every = opts.progress_every}
    local rstatus = function(st) rundir.write_status(dir, st) end
    rstatus({state = "running", step = start, max_steps = max_steps, pid = core.getpid()})

    -- everything the loop touches, made once
    local bufs = {}          -- per prompt length N: {xs, ys}
    local eval_cache = {}    -- the held-out evaluation's own buffers
    local loss_t = core.zeros({}, {device = device})
    local draw = {seed = seed, stream = 0, n_dims_truncated = 1, device = device}
    local before = opts.hooks and opts.hooks.before_step
    local d_t, N, xs, ys
    local last_loss, save_warning
    local config_meta = config_text
    local t_train = core.wall_time()

    local function state_now(step)
      local sd, sN = train.stage(run, step) -- the stage of the next step
      return {curriculum = {n_dims_truncated = sd, n_points = sN},
              rng = {seed = seed, next_train_stream = step, eval_stream_base = train.EVAL_STREAM_BASE},
              threads = icl.num_threads(), device = device, icl_version = icl.version, max_steps = max_steps}
    end
    local function stage_text()
      return string.format("stage dims %d/%d points %d/%d", d_t, D_end, N, N_end)
    end

    -- stop on NaN/Inf: name the step and the tensors, keep the last good checkpoint
    local function fail_nonfinite(step, sc, loss)
      -- the optimiser skips every update from the first non-finite gradient on, so the parameters are
      -- those that step saw, and replaying its batch shows which gradients went bad
      local bad0 = sc.bad_step >= 0 and sc.bad_step or step - 1
      local bd, bN = train.stage(run, bad0)
      local bxs, bys = core.zeros({B, bN, D}, {device = device}), core.zeros({B, bN}, {device = device})
      task:sample_into(bxs, bys, {seed = seed, stream = bad0, n_dims_truncated = bd, device = device})
      local bl = model:loss_step(bxs, bys, task.loss):item()
      local params, grads, n = nonfinite_tensors(model)
      local steps = ckpt.list(dir)
      local what = {}
      if #params > 0 then what[#what + 1] = "non-finite parameters: " .. names_text(params) end
      if #grads > 0 then
        what[#what + 1] = string.format("non-finite gradients in %d of %d tensors: %s", #grads, n, names_text(grads))
      end
      if #what == 0 then what[1] = "parameters and gradients finite, the loss is not" end
      local how = sc.bad_step >= 0 and "The optimiser applied no update from that step on" or
        string.format("The update of step %d left non-finite values", bad0 + 1)
      local msg = string.format("training stopped at step %d: NaN/Inf in the loss or the gradients (loss %s; %s). " ..
        "%s, and no checkpoint holds non-finite values; the last good checkpoint is %s.", bad0 + 1,
        num_text(sc.bad_step >= 0 and bl or loss), table.concat(what, "; "), how,
        #steps > 0 and string.format("step %d (%s)", steps[#steps], ckpt.base(dir, steps[#steps]) .. ".safetensors")
        or "none (no checkpoint was saved yet)")
      log:write({kind = "error", step = bad0 + 1, message = msg, loss = bl, nonfinite_parameters = params,
                 nonfinite_gradients = grads})
      prog:finish()
      error({icl_error = msg, state = "failed", step = bad0 + 1})
    end

    -- params: also check the parameters themselves (before a save: an update with finite gradients
    -- can still overflow them)
    local function health(step, params)
      local sc = opt:scalars()
      local l = loss_t:item()
      if sc.bad_step >= 0 or not finite(l) or (params and model:flat():has_nonfinite()) then
        fail_nonfinite(step, sc, l)
      end
      return sc, l
    end

    local step = start
    while step < max_steps do
      -- the stage changes only at interval boundaries, and never after both schedules ended
      if N == nil or ((step % di == 0 or step % pi == 0) and (d_t ~= D_end or N ~= N_end)) then
        d_t, N = train.stage(run, step)
        local b = bufs[N]
        if not b then
          b = {xs = core.zeros({B, N, D}, {device = device}), ys = core.zeros({B, N}, {device = device})}
          bufs[N] = b
        end
        xs, ys = b.xs, b.ys
        draw.n_dims_truncated = d_t
      end
      draw.stream = step
      task:sample_into(xs, ys, draw)
      if before then before(step, model) end
      model:loss_step(xs, ys, task.loss, loss_t)
      opt:step()
      step = step + 1
      at_step = step

      local log_due = step % log_every == 0 or step == max_steps
      local eval_due = (eval_every and step % eval_every == 0) or step == max_steps
      local save_due = save_every and step % save_every == 0 and step < max_steps
      if log_due or eval_due or save_due then
        local sc, l = health(step, save_due)
        last_loss = l
        if log_due then
          log:write({kind = "train", step = step, loss = l, lr = sc.lr, grad_norm = sc.grad_norm, clip = sc.clip,
                     n_dims = d_t, n_points = N, time = core.wall_time()})
        end
        if eval_due then
          local el, em = train.heldout(model, task, {batch = Be, n_points = N, n_dims_truncated = d_t, seed = seed,
                                                     device = device, cache = eval_cache})
          log:write({kind = "eval", step = step, loss = el, metric = em, metric_name = task.metric_name,
                     n_points = N, n_dims = d_t})
          prog:note(string.format("eval step %d: held-out loss %.5g  %s %.4g  (%s)", step, el, task.metric_name, em,
            stage_text()))
        end
        if save_due then
          local okc, err = pass_interrupt(pcall(ckpt.save, dir, step, model, opt, state_now(step), keep,
                                                {config = config_meta}))
          if okc then
            rstatus({state = "running", step = step, max_steps = max_steps, pid = core.getpid()})
          else
            -- a failed save (disk full, ...) leaves the previous checkpoint intact; the next save tries again
            save_warning = tostring(err)
            local newest = ckpt.list(dir)
            local msg = string.format("checkpoint at step %d failed: %s; the newest checkpoint is %s; training goes on",
              step, save_warning, #newest > 0 and ("step " .. newest[#newest]) or "none")
            prog:note("warning: " .. msg)
            log:write({kind = "warning", step = step, message = msg})
          end
        end
      end
      if prog:due() then
        prog:update(step, {loss = loss_t:item(), lr = opt:scalars().lr, stage = stage_text()})
      end
    end

    if start < max_steps then
      health(max_steps, true)
      local okc, err = pass_interrupt(pcall(ckpt.save, dir, max_steps, model, opt, state_now(max_steps), keep,
                                            {config = config_meta}))
      if not okc then
        local newest = ckpt.list(dir)
        error({icl_error = string.format("training reached step %d but its final checkpoint could not be " ..
          "written: %s. The newest checkpoint on disk is %s; free space and run icl train --resume %s", max_steps,
          tostring(err), #newest > 0 and ("step " .. newest[#newest]) or "none", dir)})
      end
      prog:finish(string.format("trained %d steps in %s (loss %.5g)", max_steps - start,
        progress.fmt_time(core.wall_time() - t_train), last_loss or 0 / 0))
      log:write({kind = "end", step = max_steps, loss = last_loss, seconds = core.wall_time() - t_train})
    end
    log:close()
    -- weights alone, under HF names, for loading elsewhere
    local weights = {}
    for _, p in ipairs(model:param_list()) do weights[p.name] = model:get(p.name) end
    local okw, werr = pass_interrupt(pcall(io_.save, dir .. "/model.safetensors", weights, {format = "pt",
      icl_config = json.encode({family = model:family(), n_dims = D, encoding = rundir.encoding_name(run)})}))
    if not okw then
      error({icl_error = string.format("the final checkpoint (step %d) is saved, but model.safetensors could not " ..
        "be written: %s; icl train --resume %s writes it again", max_steps, tostring(werr), dir)})
    end
    local okp, perr = pass_interrupt(pcall(train.plot_curve, dir, run))
    if not okp then out:write("warning: training_curve.png: " .. tostring(perr) .. "\n") end
    rstatus({state = "trained", step = max_steps, max_steps = max_steps})
    return {run_dir = dir, steps = max_steps, resumed_from = start, final_loss = last_loss,
            save_warning = save_warning}
  end)
  if not ok then
    if log then log:close() end
    local msg = type(result) == "table" and result.icl_error or tostring(result)
    local interrupted = type(result) == "string" and result:find("interrupted!$")
    if interrupted then
      local steps = ckpt.list(dir)
      msg = string.format("interrupted after step %s; the newest checkpoint is %s; continue with icl train --resume %s",
        tostring(at_step or 0), #steps > 0 and ("step " .. steps[#steps]) or "none", dir)
    end
    rundir.write_status(dir, {state = interrupted and "interrupted" or "failed",
                              step = type(result) == "table" and result.step or nil, max_steps = max_steps,
                              error = msg})
    rundir.unlock(dir, lock)
    error(msg, 0)
  end
  rundir.unlock(dir, lock)
  if result.already_finished then return result end
  if opts.evaluate ~= false then
    result.evaluation = require("icl.evaluate").after_training(result.run_dir, {model = model, task = task, run = run,
                                                                               device = device, out = out})
  end
  rundir.write_status(result.run_dir, {state = "finished", step = max_steps, max_steps = max_steps})
  return result
end

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
