--- Several runs of one shape trained in one process (train.run_group): the
-- seeds of one setting, or several encodings with the same parameters. Each
-- run is a session (lua/icl/train/session.lua) with its own run directory,
-- log, checkpoints and cadence; every step, each session prepares its draw,
-- one icl.group_step advances all of them, and each does its cadence work.
--
-- On the CPU the group step runs one model per OpenMP thread, each
-- single-threaded inside, so a grouped run computes exactly what the same run
-- computes alone with one thread (`icl train --threads 1`): its checkpoints
-- record 1 thread, and it resumes bit for bit as a group or alone with
-- --threads 1. On a GPU each run takes its steps through its own C step
-- (train.make_step: one CUDA graph per shape, as when it trains alone) on a
-- lane of its own (a stream with its own GEMM workspace and scratch,
-- cuda/icl_cuda.h), so the K graph replays of a group step overlap on the
-- device: a small model leaves most of the chip idle. ICL_GROUP_LANES=0 runs
-- them one after another on the one stream instead (to measure what lanes
-- bring). Where the C step does not apply (past 2^24 steps) the group step
-- below runs them one after another.
--
-- A run that fails (NaN/Inf, its final checkpoint cannot be written) is
-- recorded in its own directory and leaves the group; the others go on.
-- Ctrl-C, or a failure of the group step itself, stops them all.
local icl = require "icl"
local core = require "icl.core"
local train = require "icl.train"
local Session = require "icl.train.session"

local show = train._h.show

local group = {}

group.MAX = 64 -- ICL_GROUP_MAX in engine/models/group.h

--- Keys in which the runs of a group may differ: the seed, the encoding (patch.*, when the parameter
-- layouts match, checked once the models are built), and what does not change the computation
-- (train.RESUME_SAFE but max_steps). Everything else is one shape and one schedule for all of them.
function group.key_free(path)
  if path == "training.seed" or path == "patch" or path:sub(1, 6) == "patch." then return true end
  if path == "training.max_steps" then return false end
  return train.resume_safe(path)
end

local function label(run)
  return string.format("%s-s%d", require("icl.rundir").encoding_name(run), run.training.seed or 0)
end

-- whether two runs differ in what makes them different runs (seed or encoding)
local function distinct(a, b)
  for _, d in ipairs(train.config_diff(a, b)) do
    if d.path == "training.seed" or d.path == "patch" or d.path:sub(1, 6) == "patch." then return true end
  end
  return false
end

--- Refuse runs that cannot step together, before anything is built, naming the first differing key.
function group.check(runs)
  if #runs < 1 then error("a group needs at least one run", 0) end
  if #runs > group.MAX then
    error(string.format("a group holds at most %d runs, got %d; split it", group.MAX, #runs), 0)
  end
  for k = 2, #runs do
    for _, d in ipairs(train.config_diff(runs[1], runs[k])) do
      if not group.key_free(d.path) then
        error(string.format("runs 1 (%s) and %d (%s) cannot train as one group: %s is %s in run 1 and %s in run " ..
          "%d. The runs of a group share everything but training.seed and the encoding (patch.*, with the same " ..
          "parameters); train them separately", label(runs[1]), k, label(runs[k]), d.path, show(d.old),
          show(d.new), k), 0)
      end
    end
    for j = 1, k - 1 do
      if not distinct(runs[j], runs[k]) then
        error(string.format("runs %d and %d of the group are the same run (%s): give each its own seed or encoding",
          j, k, label(runs[k])), 0)
      end
    end
  end
end

-- the parameter layout of a model: "name [shape]" per parameter
local function layout(model)
  local out = {}
  for _, p in ipairs(model:param_list()) do out[#out + 1] = p.name .. " [" .. table.concat(p.shape, ",") .. "]" end
  return out
end

local function is_interrupt(err) return type(err) == "string" and err:find("interrupted!$") ~= nil end

-- build every model; refuse other devices, parameter layouts or a task defined in Lua
local function build_all(runs, opts)
  local built = {}
  for k, run in ipairs(runs) do
    local ok, b = pcall(train.build, run, {device = opts.device})
    if not ok then error(#runs > 1 and string.format("run %d (%s): %s", k, label(run), tostring(b)) or b, 0) end
    built[k] = b
  end
  local lay1 = layout(built[1].model)
  for k = 2, #runs do
    if built[k].device ~= built[1].device then
      error(string.format("runs 1 and %d of the group would train on %s and %s; a group trains on one device", k,
        built[1].device, built[k].device), 0)
    end
    local lay = layout(built[k].model)
    for i = 1, math.max(#lay, #lay1) do
      if lay[i] ~= lay1[i] then
        error(string.format("runs 1 (%s) and %d (%s) cannot train as one group: their parameters differ (%s in run " ..
          "1, %s in run %d); an encoding with parameters of its own (fire) or another family (mamba) needs a " ..
          "group of its own; train them separately", label(runs[1]), k, label(runs[k]), lay1[i] or "nothing",
          lay[i] or "nothing", k), 0)
      end
    end
  end
  if not built[1].task._sampler then
    error(string.format("task '%s' is defined in Lua; a group needs a built-in task (train the runs separately)",
      runs[1].task.name), 0)
  end
  return built
end

--- group.run(runs, opts) (also train.run_group): train (or resume) K runs of one shape in this process.
-- runs: validated configs (group.check says which keys may differ); opts as train.run's, plus
--   opts.run_dirs: one directory per run (default: a new one each); a directory holding the run is resumed
--   opts.resume: the run directories must exist already (icl train --resume DIR --resume DIR ...)
--   opts.resume_hint: what to tell after an interrupt (default: icl train --resume DIR for every run)
--   opts.hooks.before_step(step0, model, k) is called for each run k before the group step
-- All runs must continue from the same step (a fresh group, or one whose runs all resumed to the same
-- step); otherwise it refuses, changing nothing. Each run writes only its own directory, exactly the
-- files train.run writes. Returns one entry per run, in order: train.run's summary, or
-- {run_dir =, error =, failed = true} for a run that failed (the others went on). Raises when the group
-- is refused before training, and on Ctrl-C (after recording "interrupted" in every run).
function group.run(runs, opts)
  opts = opts or {}
  local K = #runs
  group.check(runs)
  local dirs = opts.run_dirs or {}
  if #dirs > 0 and #dirs ~= K then
    error(string.format("the group has %d runs but %d run directories", K, #dirs), 0)
  end
  local seen = {}
  for k, d in ipairs(dirs) do
    local key = d:gsub("/+$", "")
    if seen[key] then error(string.format("run directories %d and %d are the same (%s)", seen[key], k, d), 0) end
    seen[key] = k
  end
  local built = build_all(runs, opts)
  local sampler, kind = built[1].task._sampler, built[1].task.loss
  -- on the CPU each run of a group computes with one thread (checkpoints say so; resume checks it)
  local threads = built[1].device == "cpu" and 1 or icl.num_threads()
  local out = opts.out or io.stderr
  local hint = opts.resume_hint

  local sessions = {}
  local function release_all()
    for _, s in ipairs(sessions) do s:release() end
  end
  for k, run in ipairs(runs) do
    local ok, s = pcall(Session.open, run, {run_dir = dirs[k], resume = opts.resume, device = opts.device,
      evaluate = opts.evaluate,
      hooks = opts.hooks, out = out, tty = opts.tty or false, progress_every = opts.progress_every, built = built[k],
      threads = threads, group_size = K, resume_hint = hint})
    if not ok then
      release_all()
      error(K > 1 and string.format("run %d of the group: %s", k, tostring(s)) or s, 0)
    end
    s.index = k
    s.tag = K > 1 and s.dir:match("([^/]+)/*$") or nil
    sessions[k] = s
  end
  if not hint then
    -- the directories are known now (new ones were made by Session.open)
    local parts = {"icl train"}
    for _, s in ipairs(sessions) do parts[#parts + 1] = "--resume " .. s.dir end
    hint = table.concat(parts, " ")
  end
  for _, s in ipairs(sessions) do s.opts.resume_hint = hint end
  -- runs at their last step need no step (finished, or only their final checkpoint is due)
  local max_steps = sessions[1].max_steps
  local start
  for _, s in ipairs(sessions) do
    if s.start < max_steps then start = start or s.start end
  end
  for _, s in ipairs(sessions) do
    if start and s.start ~= start and s.start < max_steps then
      release_all()
      local lines = {}
      for _, x in ipairs(sessions) do lines[#lines + 1] = string.format("  %s: step %d", x.dir, x.start) end
      error(string.format("the runs of this group would continue from different steps:\n%s\nA group trains runs " ..
        "that are at the same step; nothing was changed. Train them separately (icl train --resume DIR for each; " ..
        "--threads 1 continues a grouped run bit for bit)", table.concat(lines, "\n")), 0)
    end
  end

  local results, active = {}, {}
  local function failed(s, err)
    results[s.index] = {run_dir = s.dir, error = s:abort(err), failed = true}
  end
  -- the argument lists of icl.group_step, filled once (and again when a run leaves the group)
  local models, optims, xs, ys, draws, losses = {}, {}, {}, {}, {}, {}
  -- on a GPU: the runs' C steps and their lanes (see the header)
  -- (ICL_GROUP_FORCE_STEPS=1: the same on the CPU, in turn; a testing aid)
  local on_gpu = built[1].device ~= "cpu" or os.getenv("ICL_GROUP_FORCE_STEPS") == "1"
  local steppers, steps, lanes = false, {}, nil
  if on_gpu and os.getenv("ICL_GROUP_LANES") ~= "0" then lanes = {} end
  local function gather()
    for i = #models, 1, -1 do
      models[i], optims[i], xs[i], ys[i], draws[i], losses[i], steps[i] = nil, nil, nil, nil, nil, nil, nil
      if lanes then lanes[i] = nil end
    end
    for i, s in ipairs(active) do
      models[i], optims[i], draws[i], losses[i] = s.model, s.opt, s.gdraw, s.loss_t
      -- a fixed lane per run: its graphs keep that lane's buffers
      if steppers then steps[i] = s.stepper; if lanes then lanes[i] = s.index end end
    end
  end
  -- every run through its C step, or none (train.make_step says when there is none)
  local function make_steppers()
    if not on_gpu or #active == 0 then return end
    for _, s in ipairs(active) do
      s.stepper = train.make_step(s.run, s.model, s.opt, s.task, s.opts) or false
    end
    for _, s in ipairs(active) do
      if not s.stepper then
        for _, x in ipairs(active) do
          if x.stepper then x.stepper:free() end
          x.stepper = nil
        end
        return
      end
    end
    steppers = true
  end
  local function survivors()
    local keep = {}
    for _, s in ipairs(active) do if not s.error then keep[#keep + 1] = s end end
    return keep
  end
  -- one method of every active session; a failure drops that run, Ctrl-C goes up. Allocates nothing
  -- unless a run fails.
  local function each(method)
    local dropped = false
    for _, s in ipairs(active) do
      local ok, err = pcall(s[method], s)
      if not ok then
        if is_interrupt(err) then error(err, 0) end
        failed(s, err)
        dropped = true
      end
    end
    if dropped then
      active = survivors()
      gather()
    end
  end

  start = start or max_steps
  local ok, err = pcall(function()
    local ending = {}
    for _, s in ipairs(sessions) do
      local okb, r = pcall(s.begin, s)
      if not okb then
        if is_interrupt(r) then error(r, 0) end
        failed(s, r)
      elseif r and s.step < max_steps then
        active[#active + 1] = s
      elseif r then
        ending[#ending + 1] = s
      else
        s:release()
        results[s.index] = s.result
      end
    end
    make_steppers()
    gather()
    while #active > 0 and active[1].step < max_steps do
      for i, s in ipairs(active) do
        s:prepare()
        xs[i], ys[i] = s.xs, s.ys
        if s.before then s.before(s.step, s.model, s.index) end
      end
      if steppers then
        core._train_step_group(steps, lanes, active[1].N, active[1].d_t)
      else
        icl.group_step(models, optims, sampler, xs, ys, draws, kind, losses)
      end
      each("after_step")
    end
    for _, s in ipairs(ending) do active[#active + 1] = s end
    each("finish_training")
    for _, s in ipairs(active) do
      s:release()
      results[s.index] = s.result
    end
  end)
  if not ok then
    -- Ctrl-C, or the group step itself failed: every run still held stops with it
    local at = active[1] and active[1].step or start
    for _, s in ipairs(sessions) do
      if s.lock ~= false then failed(s, err) end
    end
    active = {}
    if is_interrupt(err) then
      local lines = {}
      for _, s in ipairs(sessions) do
        if results[s.index] and results[s.index].failed then lines[#lines + 1] = "  " .. s.dir .. ": " .. s.error end
      end
      error(string.format("interrupted after step %d; continue with %s\n%s", at, hint, table.concat(lines, "\n")), 0)
    end
  end
  -- the evaluation after training, run by run
  for _, s in ipairs(active) do
    local oke, e = pcall(s.evaluate, s)
    if not oke then
      if is_interrupt(e) then
        error(string.format("interrupted during the evaluation of %s; its training is done, and icl train " ..
          "--resume %s evaluates it", s.dir, s.dir), 0)
      end
      results[s.index] = {run_dir = s.dir, error = "evaluation: " .. tostring(e), failed = true}
    end
  end
  return results
end

return group
