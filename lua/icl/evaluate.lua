--- OOD-length evaluation (`icl eval`), the protocol of the published code:
-- 1280 fresh prompts (20 batches of 64) at the training length N and at
-- ood_factor x N; per-position mean of the metric (squared error or
-- accuracy) with a 90% bootstrap band (1000 resamples, 5th/95th
-- percentiles of the mean); the task's baselines on the same prompts; the
-- zero estimator for regression; a bound at N. Writes standard.png,
-- ood_length.png and ood_length.json (arrays and scalar summaries).
local core = require "icl.core"
local json = require "icl.json"

local evaluate = {}

-- evaluation prompts use streams 2^62 + setting (training uses stream = step),
-- batch k being prompts 64k.. of that stream (docs/tasks.md)
local STREAM_BASE = 1 << 62

--- Per-position metric matrix [P, N] of a predictor over `batches` batches.
-- predict(xs, ys) -> pred [B, N]; prompts come from task:sample with
-- streams stream0 + k, so the model and every baseline see the same prompts.
local function metric_matrix(task, predict, opts)
  local rows = {}
  local ysq, nys = 0, 0
  for k = 0, opts.batches - 1 do
    local xs, ys = task:sample(opts.batch, opts.n_points, {seed = opts.seed, stream = opts.stream,
                                                          prompt_offset = k * opts.batch, device = opts.device})
    local pred = predict(xs, ys)
    rows[#rows + 1] = task:metric(pred:to("cpu"), ys:to("cpu"))
    ysq, nys = ysq + (ys * ys):sum():item(), nys + ys:numel()
  end
  -- mean y^2: the squared error of the zero estimator on these very prompts
  return core.cat(rows, 1), ysq / nys
end

--- Summary statistics of a per-position curve (0-based position k = number
-- of in-context examples seen). Bands: [d, N), (N, 2N], (2N, 4N], (4N, 8N].
function evaluate.summaries(curve, info)
  local N, d, K = info.n_train, info.n_dims, #curve
  local function band(a, b) -- inclusive 0-based positions, clipped to the curve
    local s, n = 0, 0
    for k = math.max(a, 0), math.min(b, K - 1) do
      s, n = s + curve[k + 1], n + 1
    end
    return n > 0 and s / n or nil
  end
  local out = {
    in_distribution = band(math.min(d, N - 1), N - 1),
    ood_1x_2x = band(N + 1, 2 * N),
    ood_2x_4x = band(2 * N + 1, 4 * N),
    ood_4x_8x = band(4 * N + 1, 8 * N),
    at_end = curve[K],
    end_position = K - 1,
  }
  -- effective length (experiments.md 5.2): the largest k such that the
  -- metric stays within tolerance of its in-distribution level up to k
  local ok_at
  if info.metric == "accuracy" then
    local best = -math.huge
    for k = math.min(d, N - 1), N - 1 do best = math.max(best, curve[k + 1]) end
    local tol = info.tolerance or 0.03
    ok_at = function(k) return curve[k + 1] >= best - tol end
    out.effective_length_rule = string.format("accuracy >= best in-distribution (%.3f) - %.2f", best, tol)
  else
    local ref = info.reference -- least squares curve, when available
    local tol = info.tolerance or 0.5
    ok_at = function(k)
      local lim = tol
      if ref and ref[k + 1] then lim = math.max(tol, 2 * ref[k + 1] + 0.1) end
      return curve[k + 1] <= lim
    end
    out.effective_length_rule = string.format("squared error <= max(%.2f, 2 x least squares + 0.1)", tol)
  end
  local eff = N - 1
  for k = N, K - 1 do
    if ok_at(k) then eff = k else break end
  end
  out.effective_length = eff + 1 -- number of examples
  return out
end

local function curve_stats(m, seed)
  local mean, lo, hi = m:bootstrap({resamples = 1000, lo = 50, hi = 950, seed = seed})
  return {mean = mean, lo = lo, hi = hi}
end

--- Evaluate a model on a task: returns the results table (also used by
-- icl compare). opts: n_prompts (1280), batch (64), n_train (N), n_dims,
-- ood_factor (8), baselines (true), device, seed, quirks.
function evaluate.ood(model, task, opts)
  local batch = opts.batch or 64
  local n_prompts = opts.n_prompts or 1280
  local batches = math.max(1, n_prompts // batch)
  local N = opts.n_train
  local res = {task = task.name, metric = task.metric_name, n_train = N, n_dims = task.n_dims,
               n_prompts = batches * batch, ood_factor = opts.ood_factor or 8, settings = {}}
  for _, setting in ipairs({{"standard", N}, {"ood_length", N * res.ood_factor}}) do
    local name, n_points = setting[1], setting[2]
    local base = {task = task, batch = batch, batches = batches, n_points = n_points,
                  seed = opts.seed or 0, stream = STREAM_BASE + (name == "standard" and 0 or 1),
                  device = opts.device}
    local t0 = core.wall_time()
    local m, ysq = metric_matrix(task, function(xs, ys) return model:predict(xs, ys) end, base)
    local entry = {n_points = n_points, model = curve_stats(m, 1), seconds_model = core.wall_time() - t0,
                   baselines = {}}
    if opts.baselines ~= false then
      local cpu = {}
      for k, v in pairs(base) do cpu[k] = v end
      cpu.device = "cpu"
      for _, b in ipairs(task:baselines()) do
        local tb = core.wall_time()
        local bm = metric_matrix(task, function(xs, ys) return task:run_baseline(b, xs, ys) end, cpu)
        entry.baselines[b] = curve_stats(bm, 2)
        entry.baselines[b].seconds = core.wall_time() - tb
      end
    end
    if task.loss == "mse" then entry.zero_estimator = ysq end
    local ref = entry.baselines.least_squares and entry.baselines.least_squares.mean
    entry.summary = evaluate.summaries(entry.model.mean, {n_train = N, n_dims = task.n_dims, metric = task.metric_name,
                                                          reference = ref})
    res.settings[name] = entry
  end
  return res
end

local function series_of(name, stats, palette, label)
  local x = {}
  for k = 1, #stats.mean do x[k] = k - 1 end
  return {x = x, y = stats.mean, band = {lo = stats.lo, hi = stats.hi}, label = label or palette.label(name),
          color = palette.color(name), style = palette.style(name), width = palette.is_baseline(name) and 1.5 or 2.2}
end

--- Draw one setting's figure.
function evaluate.plot(res, setting, file, meta)
  local plot = core.plot
  local palette = require "icl.palette"
  local e = res.settings[setting]
  local series = {series_of(meta.encoding, e.model, palette, meta.model_label)}
  local names = {}
  for b in pairs(e.baselines) do names[#names + 1] = b end
  table.sort(names)
  for _, b in ipairs(names) do
    local s = series_of(b, e.baselines[b], palette)
    s.band = nil -- baselines are drawn as lines; their bands would clutter the figure
    series[#series + 1] = s
  end
  local hlines = {}
  if e.zero_estimator then
    hlines[1] = {y = e.zero_estimator, label = "zero estimator", color = palette.color("zero_estimator"),
                 style = "dashed"}
  end
  local ylim
  if res.metric == "accuracy" then ylim = {0, 1.02}
  elseif e.zero_estimator then ylim = {0, e.zero_estimator * 1.3} end
  plot.lines{file = file, title = string.format("%s  d=%d  N=%d  %s  (%s, %d prompts)", res.task, res.n_dims,
    res.n_train, meta.encoding, setting, res.n_prompts), xlabel = "# in-context examples",
    ylabel = res.metric == "accuracy" and "accuracy" or "squared error", series = series, ylim = ylim,
    vlines = {{x = res.n_train, label = "Bound", color = palette.color("bound")}}, hlines = hlines,
    legend = res.metric == "accuracy" and "bottom right" or "best"}
end

--- One line of the OOD-length summary (bands beyond the evaluated length show as "-").
function evaluate.summary_line(res)
  local s = res.settings.ood_length.summary
  local function f(v) return v and string.format("%.4g", v) or "-" end
  return string.format("%s: in-distribution %s | (N,2N] %s | (2N,4N] %s | (4N,8N] %s | at %d examples: %s | " ..
    "effective length %d", res.metric, f(s.in_distribution), f(s.ood_1x_2x), f(s.ood_2x_4x), f(s.ood_4x_8x),
    s.end_position, f(s.at_end), s.effective_length)
end

--- After training: evaluate the trained model in place and write the files.
function evaluate.after_training(run_dir, ctx)
  local run = ctx.run
  local N = run.task.curriculum.points["end"]
  local ev = run.eval or {}
  local task = require("icl.tasks").from_run(run, {eval = true})
  local res = evaluate.ood(ctx.model, task, {n_train = N, n_prompts = ev.n_prompts, batch = ev.batch_size,
    ood_factor = ev.ood_factor, baselines = ev.baselines, device = ctx.device, seed = run.training.seed})
  return evaluate.write(run_dir, res, run, ctx.out)
end

function evaluate.write(run_dir, res, run, out)
  local io_ = require "icl.io"
  local enc = require("icl.rundir").encoding_name(run)
  res.encoding = enc
  res.model = {family = run.model.family, size = run.model.name}
  io_.write_file_atomic(run_dir .. "/ood_length.json", json.encode(res) .. "\n")
  evaluate.plot(res, "standard", run_dir .. "/standard.png", {encoding = enc})
  evaluate.plot(res, "ood_length", run_dir .. "/ood_length.png", {encoding = enc})
  if out then out:write("evaluation: " .. evaluate.summary_line(res) .. "\n") end
  return res
end

--- `icl eval RUN_DIR`: load the run's model and config, evaluate, write files.
function evaluate.cli(run_dir, a)
  local icl = require "icl"
  local run = require("icl.config").load(run_dir .. "/config.yaml")
  local device = a.device or (icl.cuda_available() and "cuda" or "cpu")
  local model = require("icl.model").load_run(run_dir, run, {device = device})
  local task = require("icl.tasks").from_run(run)
  run.eval = run.eval or {}
  if a.n_prompts then run.eval.n_prompts = a.n_prompts end
  if a.ood_factor then run.eval.ood_factor = a.ood_factor end
  if a.no_baselines then run.eval.baselines = false end
  local t0 = core.wall_time()
  evaluate.after_training(run_dir, {run = run, model = model, task = task, device = device, out = io.stdout})
  print(string.format("wrote %s/{standard.png, ood_length.png, ood_length.json} in %.1f s", run_dir,
    core.wall_time() - t0))
end

return evaluate
