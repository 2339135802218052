--- A training session: one run's training in parts, so that one process can
-- drive one run (train.run) or several runs of one shape that step together
-- (train.run_group, lua/icl/train/group.lua). docs/runner.md says what a run
-- computes and writes.
--   s = train.open(run, opts)   build the model, claim the run directory and run every check that can
--                               refuse (config, checkpoints), changing nothing; s.start is the step
--                               training continues from
--   s:begin()                   the changes: leftovers cleared, config.yaml, restore, the metrics log,
--                               status.json; false when the run is already finished (s.result says so)
--   while s.step < s.max_steps do
--     s:prepare()               curriculum stage, buffers and the draw of step s.step (0-based)
--     s:step_alone()            sample, forward, loss, backward, AdamW (train.run; a group steps all at once)
--     s:after_step()            the cadence work: logs, held-out evaluation, saves, NaN/Inf checks, progress
--   end
--   s:finish_training()         the final checkpoint, model.safetensors, training_curve.png, status "trained"
--   s:release()                 give the run directory back; s:evaluate() then evaluates
-- Any of them raises on failure; s:abort(err) then records it (status.json, the log) the way a run
-- that fails does, releases the directory and returns the one-line message.
local core = require "icl.core"
local json = require "icl.json"
local train = require "icl.train"

local h = train._h
local show, safe_list, pass_interrupt, finite = h.show, h.safe_list, h.pass_interrupt, h.finite
local num_text, names_text, nonfinite_tensors = h.num_text, h.names_text, h.nonfinite_tensors

local Session = {}
Session.__index = Session

--- Session.open(run, opts) (also train.open): see above. opts as train.run's, plus
-- opts.built: train.build's result (the model already made)
-- opts.threads: the thread count a step computes with (what checkpoints record; default icl.num_threads())
-- opts.tag: a name put before progress lines and notes (a group's runs share one output stream)
-- opts.resume_hint: how to continue after an interrupt (default "icl train --resume DIR")
function Session.open(run, opts)
  opts = opts or {}
  local icl = require "icl"
  local io_ = require "icl.io"
  local rundir = require "icl.rundir"
  local t = run.training
  local s = setmetatable({run = run, opts = opts, out = opts.out or io.stderr, tag = opts.tag}, Session)
  local B0 = opts.built or train.build(run, opts)
  s.model, s.opt, s.task, s.device, s.seed = B0.model, B0.opt, B0.task, B0.device, B0.seed
  s.D, s.B, s.max_steps = run.task.n_dims, t.per_device_train_batch_size, t.max_steps
  s.threads = opts.threads or icl.num_threads()
  local dir = opts.run_dir or rundir.new_path(run)
  s.dir = dir
  if opts.resume and not io_.file_exists(dir .. "/config.yaml") then
    error(dir .. " is not a run directory (it has no config.yaml)", 0)
  end
  io_.mkdir_p(dir)
  s.lock = rundir.lock(dir)
  local ok, err = pcall(s.inspect, s)
  if not ok then error(s:abort(err), 0) end
  return s
end

-- everything that can refuse, changing nothing: the config must be the run's (up to RESUME_SAFE
-- keys), and some checkpoint must be usable when there are any
function Session:inspect()
  local config = require "icl.config"
  local io_ = require "icl.io"
  local ckpt = require "icl.checkpoint"
  local run, dir, out = self.run, self.dir, self.out
  self.cfg_path = dir .. "/config.yaml"
  self.config_text = config.dump(run)
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
  if io_.file_exists(self.cfg_path) then
    local okl, stored = pass_interrupt(pcall(config.load, self.cfg_path))
    if not okl then
      error({icl_error = "the run's config " .. self.cfg_path .. " cannot be loaded: " .. tostring(stored)})
    end
    changes = check_same(stored, "config.yaml")
  end
  local present = ckpt.list(dir)
  local state, tensors, warnings, bad, meta = ckpt.latest(dir, {device = self.device})
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
    if state.rng and state.rng.seed ~= self.seed then
      error({icl_error = string.format("%s: its checkpoint was trained with seed %s, the config says %d", dir,
        tostring(state.rng.seed), self.seed)})
    end
    if start > self.max_steps then
      error({icl_error = string.format("%s is at step %d, past training.max_steps = %d", dir, start, self.max_steps)})
    end
  end
  self.changes, self.state, self.tensors, self.bad = changes, state, tensors, bad
  self.start, self.step = start, start
end

--- the changes (see Session); false when the run is already finished (self.result is its summary)
function Session:begin()
  local io_ = require "icl.io"
  local rundir = require "icl.rundir"
  local ckpt = require "icl.checkpoint"
  local metrics = require "icl.metrics"
  local progress = require "icl.progress"
  local run, dir, out, state, changes = self.run, self.dir, self.out, self.state, self.changes
  local t = run.training
  local start, max_steps, device = self.start, self.max_steps, self.device

  -- leftovers of a killed save, unusable newer checkpoints moved aside, the config
  for _, c in ipairs(ckpt.clean(dir)) do out:write("note: " .. c .. "\n") end
  for _, b in ipairs(self.bad) do
    -- newer than the one resumed from: out of the way of pruning and of the next save at that step
    local moved = ckpt.quarantine(dir, b.step)
    out:write(string.format("warning: moved the unusable checkpoint of step %d to %s\n", b.step,
      (moved[1] or ""):match("^(.*)/[^/]*$") or dir .. "/unusable"))
  end
  if not io_.file_exists(self.cfg_path) or #changes > 0 then io_.write_file_atomic(self.cfg_path, self.config_text) end

  if state then
    ckpt.restore(self.tensors, self.model, self.opt)
    self.tensors = nil
    if state.threads and state.threads ~= self.threads then
      out:write(string.format("warning: the run used %d threads, this process uses %d; results will not be " ..
        "bit-identical to an uninterrupted run (use --threads %d)\n", state.threads, self.threads, state.threads))
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
  elseif self.opts.resume then
    out:write(string.format("resuming %s: no checkpoint was saved yet, training from step 0\n", dir))
  end

  local status0 = rundir.read_status(dir)
  if start == max_steps and status0 and status0.state == "finished" then
    out:write(string.format("%s: already finished (%d steps)\n", dir, max_steps))
    self.result = {run_dir = dir, steps = max_steps, resumed_from = start, already_finished = true}
    return false
  end

  local group = self.opts.group_size
  self.log = start > 0 and metrics.open(dir .. "/metrics.jsonl", {truncate_after_step = start}) or
             metrics.open(dir .. "/metrics.jsonl", {fresh = true})
  if start == 0 then
    self.log:write({kind = "start", step = 0, params = self.model:num_params(), device = device,
                    threads = self.threads, task = run.task.name, encoding = rundir.encoding_name(run),
                    seed = self.seed, max_steps = max_steps, group = group})
  elseif start < max_steps then
    local ch = {}
    for _, d in ipairs(changes) do ch[d.path] = tostring(d.new) end
    self.log:write({kind = "resume", step = start, device = device, threads = self.threads,
                    changes = #changes > 0 and ch or nil, group = group})
  end

  self.log_every = t.logging_steps
  self.eval_every = t.evaluation_strategy == "steps" and t.eval_steps or nil
  self.save_every = t.save_strategy == "steps" and t.save_steps or nil
  self.keep = t.save_total_limit
  self.Be = t.per_device_eval_batch_size
  local cur = run.task.curriculum
  self.di, self.pi = cur.dims.interval, cur.points.interval
  self.D_end, self.N_end = cur.dims["end"], cur.points["end"]
  self.prog = progress.new{total = max_steps, start = start, out = out, tty = self.opts.tty,
                           every = self.opts.progress_every, label = self.tag and ("train " .. self.tag) or nil}
  self.pid = core.getpid()
  rundir.write_status(dir, {state = "running", step = start, max_steps = max_steps, pid = self.pid})

  -- everything the loop touches, made once
  self.bufs = {}          -- per prompt length N: {xs, ys}
  self.eval_cache = {}    -- the held-out evaluation's own buffers
  self.loss_t = core.zeros({}, {device = device})
  self.draw = {seed = self.seed, stream = 0, n_dims_truncated = 1, device = device}
  -- the same draw as icl.group_step reads it
  self.gdraw = {B = self.B, N = 0, seed = self.seed, stream = 0, n_dims_truncated = 1}
  self.before = self.opts.hooks and self.opts.hooks.before_step
  self.t_train = core.wall_time()
  return true
end

-- the stage of the next step, as checkpoints record it
function Session:state_now(step)
  local icl = require "icl"
  local sd, sN = train.stage(self.run, step)
  return {curriculum = {n_dims_truncated = sd, n_points = sN},
          rng = {seed = self.seed, next_train_stream = step, eval_stream_base = train.EVAL_STREAM_BASE},
          threads = self.threads, device = self.device, icl_version = icl.version, max_steps = self.max_steps}
end

function Session:stage_text()
  return string.format("stage dims %d/%d points %d/%d", self.d_t, self.D_end, self.N, self.N_end)
end

-- a line that stays (held-out results, warnings), named in a group
function Session:note(text)
  self.prog:note(self.tag and (self.tag .. ": " .. text) or text)
end

--- stage, buffers and draw of step self.step (allocates only when the stage changes)
function Session:prepare()
  local step = self.step
  -- the stage changes only at interval boundaries, and never after both schedules ended
  if self.N == nil or ((step % self.di == 0 or step % self.pi == 0) and
                       (self.d_t ~= self.D_end or self.N ~= self.N_end)) then
    local d_t, N = train.stage(self.run, step)
    self.d_t, self.N = d_t, N
    local b = self.bufs[N]
    if not b then
      b = {xs = core.zeros({self.B, N, self.D}, {device = self.device}),
           ys = core.zeros({self.B, N}, {device = self.device})}
      self.bufs[N] = b
    end
    self.xs, self.ys = b.xs, b.ys
    self.draw.n_dims_truncated = d_t
    self.gdraw.n_dims_truncated, self.gdraw.N = d_t, N
  end
  self.draw.stream = step
  self.gdraw.stream = step
end

--- one step of this run by itself: through the C step (train.make_step; made at the first
-- step, never for a group's runs) when it applies, else sample, loss_step and AdamW from Lua
function Session:step_alone()
  if self.stepper == nil then
    self.stepper = train.make_step(self.run, self.model, self.opt, self.task, self.opts) or false
  end
  if self.stepper then -- the batch of step s is stream s: the optimiser's count, read on the device
    if self.before then self.before(self.step, self.model) end
    self.stepper:run(self.N, self.d_t)
    return
  end
  self.task:sample_into(self.xs, self.ys, self.draw)
  if self.before then self.before(self.step, self.model) end
  self.model:loss_step(self.xs, self.ys, self.task.loss, self.loss_t)
  self.opt:step()
end

-- stop on NaN/Inf: name the step and the tensors, keep the last good checkpoint
function Session:fail_nonfinite(step, sc, loss)
  local ckpt = require "icl.checkpoint"
  local run, dir, task, model, device, B, D = self.run, self.dir, self.task, self.model, self.device, self.B, self.D
  -- the optimiser skips every update from the first non-finite gradient on, so the parameters are
  -- those that step saw, and replaying its batch shows which gradients went bad
  local bad0 = sc.bad_step >= 0 and sc.bad_step or step - 1
  local bd, bN = train.stage(run, bad0)
  local bxs, bys = core.zeros({B, bN, D}, {device = device}), core.zeros({B, bN}, {device = device})
  task:sample_into(bxs, bys, {seed = self.seed, stream = bad0, n_dims_truncated = bd, device = device})
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
  self.log:write({kind = "error", step = bad0 + 1, message = msg, loss = bl, nonfinite_parameters = params,
                  nonfinite_gradients = grads})
  self.prog:finish()
  error({icl_error = msg, state = "failed", step = bad0 + 1})
end

-- params: also check the parameters themselves (before a save: an update with finite gradients
-- can still overflow them)
-- the loss of the step just taken (step = steps taken)
function Session:loss_now(step)
  if self.stepper then return self.stepper:loss(step - 1) end
  return self.loss_t:item()
end

function Session:health(step, params)
  local sc = self.opt:scalars()
  local l = self:loss_now(step)
  if self.stepper and sc.bad_step < 0 and sc.steps ~= step then
    error({icl_error = string.format("training step %d: the optimiser counts %d steps (the batch streams " ..
      "follow its count)", step, sc.steps), step = step})
  end
  if sc.bad_step >= 0 or not finite(l) or (params and self.model:flat():has_nonfinite()) then
    self:fail_nonfinite(step, sc, l)
  end
  return sc, l
end

--- the cadence work after a step: logs, held-out evaluation, saves, health, progress
function Session:after_step()
  local step = self.step + 1
  self.step = step
  local max_steps = self.max_steps
  local log_due = step % self.log_every == 0 or step == max_steps
  local eval_due = (self.eval_every and step % self.eval_every == 0) or step == max_steps
  local save_due = self.save_every and step % self.save_every == 0 and step < max_steps
  if log_due or eval_due or save_due then
    local sc, l = self:health(step, save_due)
    self.last_loss = l
    if log_due then
      self.log:write({kind = "train", step = step, loss = l, lr = sc.lr, grad_norm = sc.grad_norm, clip = sc.clip,
                      n_dims = self.d_t, n_points = self.N, time = core.wall_time()})
    end
    if eval_due then
      local task = self.task
      local el, em = train.heldout(self.model, task, {batch = self.Be, n_points = self.N,
        n_dims_truncated = self.d_t, seed = self.seed, device = self.device, cache = self.eval_cache})
      self.log:write({kind = "eval", step = step, loss = el, metric = em, metric_name = task.metric_name,
                      n_points = self.N, n_dims = self.d_t})
      self:note(string.format("eval step %d: held-out loss %.5g  %s %.4g  (%s)", step, el, task.metric_name, em,
        self:stage_text()))
    end
    if save_due then self:save(step) end
  end
  if self.prog:due() then
    self.prog:update(step, {loss = self:loss_now(step), lr = self.opt:scalars().lr, stage = self:stage_text()})
  end
end

function Session:save(step)
  local ckpt = require "icl.checkpoint"
  local okc, err = pass_interrupt(pcall(ckpt.save, self.dir, step, self.model, self.opt, self:state_now(step),
                                        self.keep, {config = self.config_text}))
  if okc then
    require("icl.rundir").write_status(self.dir, {state = "running", step = step, max_steps = self.max_steps,
                                                  pid = self.pid})
  else
    -- a failed save (disk full, ...) leaves the previous checkpoint intact; the next save tries again
    self.save_warning = tostring(err)
    local newest = ckpt.list(self.dir)
    local msg = string.format("checkpoint at step %d failed: %s; the newest checkpoint is %s; training goes on",
      step, self.save_warning, #newest > 0 and ("step " .. newest[#newest]) or "none")
    self:note("warning: " .. msg)
    self.log:write({kind = "warning", step = step, message = msg})
  end
end

--- after the last step: the final checkpoint, the weights, the curve, status "trained"; returns the summary
function Session:finish_training()
  local io_ = require "icl.io"
  local ckpt = require "icl.checkpoint"
  local rundir = require "icl.rundir"
  local progress = require "icl.progress"
  local run, dir, model, max_steps, start = self.run, self.dir, self.model, self.max_steps, self.start
  if start < max_steps then
    self:health(max_steps, true)
    local okc, err = pass_interrupt(pcall(ckpt.save, dir, max_steps, model, self.opt, self:state_now(max_steps),
                                          self.keep, {config = self.config_text}))
    if not okc then
      local newest = ckpt.list(dir)
      error({icl_error = string.format("training reached step %d but its final checkpoint could not be " ..
        "written: %s. The newest checkpoint on disk is %s; free space and run icl train --resume %s", max_steps,
        tostring(err), #newest > 0 and ("step " .. newest[#newest]) or "none", dir)})
    end
    self.prog:finish(string.format("%strained %d steps in %s (loss %.5g)", self.tag and (self.tag .. ": ") or "",
      max_steps - start, progress.fmt_time(core.wall_time() - self.t_train), self.last_loss or 0 / 0))
    self.log:write({kind = "end", step = max_steps, loss = self.last_loss, seconds = core.wall_time() - self.t_train})
  end
  self.log:close()
  -- weights alone, under HF names, for loading elsewhere
  local weights = {}
  for _, p in ipairs(model:param_list()) do weights[p.name] = model:get(p.name) end
  local okw, werr = pass_interrupt(pcall(io_.save, dir .. "/model.safetensors", weights, {format = "pt",
    icl_config = json.encode({family = model:family(), n_dims = self.D, encoding = rundir.encoding_name(run)})}))
  if not okw then
    error({icl_error = string.format("the final checkpoint (step %d) is saved, but model.safetensors could not " ..
      "be written: %s; icl train --resume %s writes it again", max_steps, tostring(werr), dir)})
  end
  local okp, perr = pass_interrupt(pcall(train.plot_curve, dir, run))
  if not okp then self.out:write("warning: training_curve.png: " .. tostring(perr) .. "\n") end
  rundir.write_status(dir, {state = "trained", step = max_steps, max_steps = max_steps})
  self.result = {run_dir = dir, steps = max_steps, resumed_from = start, final_loss = self.last_loss,
                 save_warning = self.save_warning}
  return self.result
end

--- give the run directory back (idempotent)
function Session:release()
  if self.stepper then -- its graphs and buffers; the model and optimiser stay
    self.stepper:free()
    self.stepper = false
  end
  if self.lock ~= false then
    require("icl.rundir").unlock(self.dir, self.lock)
    self.lock = false
  end
end

--- record a failure raised by any part (status.json "failed", or "interrupted" for Ctrl-C), release the
-- run directory; returns the one-line message
function Session:abort(result)
  local ckpt = require "icl.checkpoint"
  if self.log then self.log:close() end
  local dir = self.dir
  local msg = type(result) == "table" and result.icl_error or tostring(result)
  local interrupted = type(result) == "string" and result:find("interrupted!$")
  if interrupted then
    self.interrupted = true
    local steps = ckpt.list(dir)
    msg = string.format("interrupted after step %s; the newest checkpoint is %s; continue with %s",
      tostring(self.step or 0), #steps > 0 and ("step " .. steps[#steps]) or "none",
      self.opts.resume_hint or ("icl train --resume " .. dir))
  end
  require("icl.rundir").write_status(dir, {state = interrupted and "interrupted" or "failed",
                                           step = type(result) == "table" and result.step or nil,
                                           max_steps = self.max_steps, error = msg})
  self:release()
  self.error = msg
  return msg
end

--- the OOD-length evaluation after training (status "finished" once written)
function Session:evaluate()
  if self.opts.evaluate ~= false then
    self.result.evaluation = require("icl.evaluate").after_training(self.dir, {model = self.model, task = self.task,
      run = self.run, device = self.device, out = self.out})
  end
  require("icl.rundir").write_status(self.dir, {state = "finished", step = self.max_steps,
                                                max_steps = self.max_steps})
  return self.result
end


--- one run by itself, as train.run drives it (inside its pcall): the summary
function Session:train_alone()
  if not self:begin() then return self.result end
  while self.step < self.max_steps do
    self:prepare()
    self:step_alone()
    self:after_step()
  end
  return self:finish_training()
end

return Session
