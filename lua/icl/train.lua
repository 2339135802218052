--- The training loop, in Lua over the engine's bindings: no tensor data
-- crosses into Lua in the hot path (sampling, forward, loss, backward and
-- AdamW all run in C on the model's device; Lua reads two scalars at log
-- intervals).
--
-- A run is a pure function of (config, seed): the batch of step s is drawn
-- from stream s of the run's seed and the curriculum is a closed form of s,
-- so a run resumed from a checkpoint continues bit for bit.
local core = require "icl.core"
local json = require "icl.json"

local train = {}

--- Optimiser settings from the run table (icl.config.optimizer decides
-- paper vs published-code behaviour, see training.faithful_code).
function train.optimizer_settings(run)
  local o = require("icl.config").optimizer(run)
  return {lr = o.lr, beta1 = o.beta1, beta2 = o.beta2, eps = o.eps, weight_decay = o.weight_decay,
          max_grad_norm = o.max_grad_norm, schedule = o.schedule == "constant" and "constant" or "linear",
          warmup = o.warmup_steps, total_steps = o.total_steps}
end

--- Curriculum stage at 0-based step s: n_dims_truncated, n_points.
function train.stage(run, s)
  run._curriculum = run._curriculum or require("icl.curriculum").new(run.task.curriculum)
  local a = run._curriculum:at(s)
  return a.n_dims_truncated, a.n_points
end

local EVAL_STREAM_BASE = 1 << 40 -- held-out prompts never collide with training streams

-- buffers per prompt length, reused across steps (the curriculum changes N rarely)
local function batch_buffers(cache, B, N, D, device)
  local key = N
  if not cache[key] then
    cache[key] = {xs = core.zeros({B, N, D}, {device = device}), ys = core.zeros({B, N}, {device = device})}
  end
  return cache[key].xs, cache[key].ys
end

--- Which parameters' gradients are not finite (for the NaN report).
local function bad_tensors(model)
  local bad = {}
  for _, p in ipairs(model:param_list()) do
    if model:grad(p.name):has_nonfinite() or model:get(p.name):has_nonfinite() then bad[#bad + 1] = p.name end
  end
  return bad
end

--- Held-out evaluation at the current stage: mean loss and metric.
function train.evaluate_heldout(ctx, n_batches)
  local sum_loss, sum_metric = 0, 0
  for k = 0, n_batches - 1 do
    local xs, ys = ctx.eval_xs, ctx.eval_ys
    ctx.task:sample_into(xs, ys, {seed = ctx.seed, stream = EVAL_STREAM_BASE + k,
                                  n_dims_truncated = ctx.d_t, device = ctx.device})
    local pred = ctx.model:predict(xs, ys)
    local loss
    if ctx.task.loss == "bce" then loss = core._nn.bce_with_logits_loss(pred, ys) else loss = core._nn.mse_loss(pred, ys) end
    sum_loss = sum_loss + loss:item()
    sum_metric = sum_metric + ctx.task:metric(pred, ys):mean():item()
  end
  return sum_loss / n_batches, sum_metric / n_batches
end

--- train.run(run, opts): train (or resume) one run.
-- opts.run_dir: directory (created when absent; resumed when it holds checkpoints)
-- opts.device: "cpu" | "cuda"; opts.hooks: {before_step = fn(step, model)}
-- opts.out: stream for progress (default stderr); opts.evaluate: run the
-- post-training evaluation (default true)
-- Returns a summary table.
function train.run(run, opts)
  opts = opts or {}
  local icl = require "icl"
  local io_ = require "icl.io"
  local rundir = require "icl.rundir"
  local ckpt = require "icl.checkpoint"
  local metrics = require "icl.metrics"
  local progress = require "icl.progress"
  local t = run.training

  local device = opts.device or (t.device ~= "auto" and t.device) or (icl.cuda_available() and "cuda" or "cpu")
  if device == "cuda" and not icl.cuda_available() then
    error("training.device is 'cuda' but no CUDA device is available" ..
          (icl.cuda_compiled() and "" or " (this build has no CUDA backend)"), 2)
  end
  if t.threads then icl.set_num_threads(t.threads) end
  local seed = t.seed or 0
  local D = run.task.n_dims
  local B = t.per_device_train_batch_size

  local task = require("icl.tasks").from_run(run)
  local model = icl.model(run.model, run.patch, {n_dims = D, device = device, seed = seed})
  local opt = model:optimizer(train.optimizer_settings(run))

  local dir = opts.run_dir or rundir.new_path(run)
  io_.mkdir_p(dir)
  rundir.lock(dir)
  local ok, result = pcall(function()
    local config_yaml = require("icl.config").dump(run)
    local cfg_path = dir .. "/config.yaml"
    if not io_.file_exists(cfg_path) then io_.write_file_atomic(cfg_path, config_yaml) end

    -- resume from the newest valid checkpoint
    local start = 0
    local state, tensors, warnings = ckpt.latest(dir, {device = device})
    local out = opts.out or io.stderr
    for _, w in ipairs(warnings) do out:write("warning: " .. w .. "\n") end
    if state then
      ckpt.restore(tensors, model, opt)
      start = state.step
      if state.threads and state.threads ~= icl.num_threads() then
        out:write(string.format("warning: the run used %d threads, this process uses %d; results will not be " ..
          "bit-identical to an uninterrupted run\n", state.threads, icl.num_threads()))
      end
      out:write(string.format("resuming %s from step %d\n", dir, start))
    end
    local log = metrics.open(dir .. "/metrics.jsonl", {truncate_after_step = start})
    if start == 0 then
      log:write({kind = "start", step = 0, params = model:num_params(), device = device,
                 threads = icl.num_threads(), task = run.task.name, encoding = rundir.encoding_name(run)})
    end

    local max_steps = t.max_steps
    local log_every = math.max(1, t.logging_steps or 10)
    local eval_every = t.eval_steps or 0
    local save_every = t.save_steps or 0
    local keep = t.save_total_limit or 2
    local cache = {}
    local prog = progress.new{total = max_steps, start = start, out = out, tty = opts.tty}
    local ctx = {task = task, model = model, seed = seed, device = device}
    local function state_now(step, d_t, N)
      return {curriculum = {n_dims_truncated = d_t, n_points = N},
              rng = {seed = seed, next_train_stream = step, eval_stream_base = EVAL_STREAM_BASE},
              threads = icl.num_threads(), device = device, icl_version = icl.version}
    end
    rundir.write_status(dir, {state = "running", step = start, max_steps = max_steps, pid = core.getpid()})

    local last_loss, step = nil, start
    local before = opts.hooks and opts.hooks.before_step
    local save_failed
    while step < max_steps do
      local d_t, N = train.stage(run, step)
      local xs, ys = batch_buffers(cache, B, N, D, device)
      task:sample_into(xs, ys, {seed = seed, stream = step, n_dims_truncated = d_t, device = device})
      if before then before(step, model) end
      local loss = model:loss_step(xs, ys, task.loss)
      opt:step()
      step = step + 1

      if step % log_every == 0 or step == max_steps then
        last_loss = loss:item()
        local sc = opt:scalars()
        if sc.bad_step >= 0 or last_loss ~= last_loss or last_loss == math.huge or last_loss == -math.huge then
          -- the optimiser skipped every update since the first bad step, so
          -- replaying that step's batch reproduces the failure exactly
          local bad_step = sc.bad_step >= 0 and sc.bad_step or step - 1
          local bd, bN = train.stage(run, bad_step)
          local bxs, bys = batch_buffers(cache, B, bN, D, device)
          task:sample_into(bxs, bys, {seed = seed, stream = bad_step, n_dims_truncated = bd, device = device})
          local bl = model:loss_step(bxs, bys, task.loss):item()
          local names = bad_tensors(model)
          local steps = ckpt.list(dir)
          local msg = string.format("training stopped: the loss or gradients became NaN/Inf at step %d " ..
            "(loss %s; non-finite: %s). Parameters were not updated with bad values; the last good checkpoint " ..
            "is %s.", bad_step, tostring(bl), #names > 0 and table.concat(names, ", ", 1, math.min(#names, 8)) or
            "the loss only", #steps > 0 and string.format("step %d in %s", steps[#steps], dir) or "none (no " ..
            "checkpoint was saved yet)")
          log:write({kind = "error", step = bad_step, message = msg})
          rundir.write_status(dir, {state = "failed", step = bad_step, max_steps = max_steps, error = msg})
          prog:finish()
          error({icl_error = msg}, 0)
        end
        log:write({kind = "train", step = step, loss = last_loss, lr = sc.lr, grad_norm = sc.grad_norm,
                   n_points = N, n_dims = d_t, time = core.wall_time()})
      end
      prog:update(step, {loss = last_loss, lr = nil, stage = string.format("dims %d/%d points %d", d_t, D, N)})

      if eval_every > 0 and (step % eval_every == 0 or step == max_steps) then
        ctx.d_t = d_t
        ctx.eval_xs, ctx.eval_ys = batch_buffers(cache, t.per_device_eval_batch_size or B, N, D, device)
        if (t.per_device_eval_batch_size or B) ~= B then
          ctx.eval_xs = core.zeros({t.per_device_eval_batch_size, N, D}, {device = device})
          ctx.eval_ys = core.zeros({t.per_device_eval_batch_size, N}, {device = device})
        end
        local el, em = train.evaluate_heldout(ctx, t.eval_batches or 2)
        log:write({kind = "eval", step = step, loss = el, metric = em, metric_name = task.metric_name,
                   n_points = N, n_dims = d_t})
        if not prog.tty then prog:note(string.format("eval step %d: loss %.5g  %s %.4g", step, el,
          task.metric_name, em)) end
      end

      if save_every > 0 and step % save_every == 0 and step < max_steps then
        local okc, err = pcall(ckpt.save, dir, step, model, opt, state_now(step, d_t, N), keep)
        if not okc then
          -- a failed save (disk full, ...) leaves the previous checkpoint intact
          save_failed = tostring(err)
          prog:note("warning: checkpoint at step " .. step .. " failed: " .. save_failed)
          log:write({kind = "warning", step = step, message = "checkpoint failed: " .. save_failed})
        end
        rundir.write_status(dir, {state = "running", step = step, max_steps = max_steps, pid = core.getpid()})
      end
    end
    local d_t, N = train.stage(run, max_steps - 1)
    ckpt.save(dir, max_steps, model, opt, state_now(max_steps, d_t, N), keep)
    -- weights alone, under HF names, for loading elsewhere
    local weights = {}
    for _, p in ipairs(model:param_list()) do weights[p.name] = model:get(p.name) end
    io_.save(dir .. "/model.safetensors", weights, {format = "pt", icl_config = json.encode({
      family = model:family(), n_dims = D, encoding = rundir.encoding_name(run)})})
    prog:finish(string.format("trained %d steps in %s (loss %.5g)", max_steps - start,
      progress.fmt_time(core.wall_time() - prog.t0), last_loss or 0 / 0))
    log:write({kind = "end", step = max_steps, loss = last_loss})
    log:close()
    pcall(train.plot_curve, dir, run)
    rundir.write_status(dir, {state = "trained", step = max_steps, max_steps = max_steps})
    return {run_dir = dir, steps = max_steps, resumed_from = start, final_loss = last_loss,
            save_warning = save_failed}
  end)
  rundir.unlock(dir)
  if not ok then
    if type(result) == "table" and result.icl_error then error(result.icl_error, 0) end
    error(result, 0)
  end
  if opts.evaluate ~= false and run.eval and run.eval.after_training ~= false then
    local okm, ev = pcall(require, "icl.evaluate")
    if okm and ev.after_training then
      result.evaluation = ev.after_training(result.run_dir, {model = model, task = task, run = run, device = device,
                                                             out = opts.out})
    end
  end
  rundir.write_status(result.run_dir, {state = "finished", step = t.max_steps, max_steps = t.max_steps})
  return result
end

--- training_curve.png from metrics.jsonl: training loss and held-out loss vs step
function train.plot_curve(dir, run)
  local metrics = require "icl.metrics"
  local plot = require("icl.core").plot
  if not plot then return end
  local tr_x, tr_y, ev_x, ev_y = {}, {}, {}, {}
  for _, r in ipairs(metrics.read(dir .. "/metrics.jsonl")) do
    if r.kind == "train" and r.loss == r.loss then tr_x[#tr_x + 1], tr_y[#tr_y + 1] = r.step, r.loss end
    if r.kind == "eval" and r.loss == r.loss then ev_x[#ev_x + 1], ev_y[#ev_y + 1] = r.step, r.loss end
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
