--- Duplicated-data attacks and lost in the middle (`icl atk`), after the
-- published eval_atk.py (experiments.md 2.3). Every prompt is a
-- rearrangement of examples (x, f(x)) drawn from ONE function per prompt,
-- so y is always f(x):
--   instruction = the first 2d examples, answer = the last d of the N,
--   target = the last d/2, noise = copies of instruction[-1].
-- One batch of 100 prompts, bootstrap with 100 resamples (5th/95th).
-- Figures and attacks.json go to <run>/duplicated/.
local core = require "icl.core"
local json = require "icl.json"

local attacks = {}

local function range(a, b) -- inclusive, 0-based
  local t = {}
  for i = a, b do t[#t + 1] = i end
  return t
end

local function rep(i, n)
  local t = {}
  for k = 1, n do t[k] = i end
  return t
end

local function concat(...)
  local out = {}
  for _, t in ipairs({...}) do
    for _, v in ipairs(t) do out[#out + 1] = v end
  end
  return out
end

--- The index layout of every prompt (0-based example indices into a pool of
-- N + d/2 examples: the N of the prompt and d/2 fresh ones at the end).
function attacks.layouts(d, N, T)
  local h = math.max(1, d // 2)
  local inst = range(0, 2 * d - 1)
  local answer = range(N - d, N - 1)
  local target = range(N - h, N - 1)
  local fresh = range(N, N + h - 1)
  local noise = 2 * d - 1
  local L = {d = d, N = N, T = T, h = h, target_len = h}
  -- 1. noise-count sweep: the first N-k examples, k noise copies, the target
  L.noise_count = {}
  for k = 5, 20 do
    if N - k > 0 then L.noise_count[k] = concat(range(0, N - k - 1), rep(noise, k), target) end
  end
  -- 2. instruction + noise + target at three distances (the last one ends at T)
  local n3 = math.max(0, T - 2 * d - h)
  local n2, n1 = n3 // 2, math.max(0, N - 2 * d)
  L.distance = {}
  for _, n in ipairs({n1, n2, n3}) do
    L.distance[#L.distance + 1] = {target_start = 2 * d + n, idx = concat(inst, rep(noise, n), target)}
  end
  -- 3. all duplicated: one example repeated T times
  L.all_dup = rep(0, T)
  -- 4. instruction position inside T - 2d noise copies, then fresh queries
  local nn = math.max(0, T - 2 * d)
  L.inst_position = {
    begin = concat(inst, rep(noise, nn), fresh),
    middle = concat(rep(noise, nn // 2), inst, rep(noise, nn - nn // 2), fresh),
    ["end"] = concat(rep(noise, nn), inst, fresh),
  }
  -- 5. lost in the middle: instruction + answer + noise + target = T; the
  -- answer block moves; target = a copy of the answer's last d/2 (copyable)
  -- or d/2 fresh queries from the same function
  local nm = math.max(0, T - 2 * d - d - h)
  local function lim(before)
    return concat(inst, rep(noise, before), answer, rep(noise, nm - before))
  end
  L.lost = {
    begin = lim(0), middle = lim(nm // 2), ["end"] = lim(nm),
  }
  L.lost_sweep = {}
  local P = 7
  for j = 0, P - 1 do
    local before = math.floor(j * nm / (P - 1) + 0.5)
    L.lost_sweep[#L.lost_sweep + 1] = {answer_start = 2 * d + before, prefix = lim(before)}
  end
  L.target_copy, L.target_fresh = target, fresh
  return L
end

local function gather(xs, ys, idx)
  local one = {}
  for i, v in ipairs(idx) do one[i] = v + 1 end
  return xs:index_select(2, one), ys:index_select(2, one)
end

-- per-position metric [B, L] of the model on a constructed prompt
local function run(model, task, pool_xs, pool_ys, idx)
  local xs, ys = gather(pool_xs, pool_ys, idx)
  local pred = model:predict(xs, ys)
  return task:metric(pred:to("cpu"), ys:to("cpu"))
end

local function stats(m)
  local mean, lo, hi = m:bootstrap({resamples = 100, lo = 5, hi = 95})
  return {mean = mean, lo = lo, hi = hi}
end

local function block_mean(curve, a, b) -- inclusive 0-based
  local s, n = 0, 0
  for k = a, b do
    if curve[k + 1] then s, n = s + curve[k + 1], n + 1 end
  end
  return n > 0 and s / n or nil
end

--- Run every attack; returns the results table.
function attacks.run(model, task, opts)
  local d, N = opts.n_dims, opts.n_train
  local T = opts.length or 8 * N
  local B = opts.batch or 100
  local L = attacks.layouts(d, N, T)
  local pool_xs, pool_ys = task:sample(B, N + L.h, {seed = opts.seed or 0, stream = (1 << 62) + 16,
                                                    device = opts.device})
  local res = {task = task.name, metric = task.metric_name, n_dims = d, n_train = N, length = T, batch = B,
               target_len = L.h}
  -- reference: an ordinary prompt of length T
  local ref_xs, ref_ys = task:sample(B, T, {seed = opts.seed or 0, stream = (1 << 62) + 17, device = opts.device})
  res.reference = stats(task:metric(model:predict(ref_xs, ref_ys):to("cpu"), ref_ys:to("cpu")))

  res.noise_count = {}
  for k = 5, 20 do
    if L.noise_count[k] then
      local s = stats(run(model, task, pool_xs, pool_ys, L.noise_count[k]))
      local n = #L.noise_count[k]
      s.target = block_mean(s.mean, n - L.h, n - 1)
      res.noise_count[tostring(k)] = s
    end
  end
  res.distance = {}
  for i, v in ipairs(L.distance) do
    local s = stats(run(model, task, pool_xs, pool_ys, v.idx))
    s.target_start = v.target_start
    s.target = block_mean(s.mean, v.target_start, v.target_start + L.h - 1)
    res.distance[i] = s
  end
  res.distance_decay = res.distance[3].target and res.distance[1].target and
                       res.distance[3].target - res.distance[1].target
  local ad = stats(run(model, task, pool_xs, pool_ys, L.all_dup))
  ad.mean_after_first = block_mean(ad.mean, 1, T - 1)
  ad.at_N, ad.at_end = ad.mean[N + 1], ad.mean[T]
  res.all_dup = ad
  res.inst_position = {}
  for name, idx in pairs(L.inst_position) do
    local s = stats(run(model, task, pool_xs, pool_ys, idx))
    s.target = block_mean(s.mean, #idx - L.h, #idx - 1)
    res.inst_position[name] = s
  end
  res.lost = {}
  for _, kind in ipairs({"copy", "fresh"}) do
    local tgt = kind == "copy" and L.target_copy or L.target_fresh
    res.lost[kind] = {}
    for name, prefix in pairs(L.lost) do
      local idx = concat(prefix, tgt)
      local s = stats(run(model, task, pool_xs, pool_ys, idx))
      s.target = block_mean(s.mean, #idx - L.h, #idx - 1)
      res.lost[kind][name] = s
    end
    res.lost[kind].sweep = {}
    for _, v in ipairs(L.lost_sweep) do
      local idx = concat(v.prefix, tgt)
      local m = run(model, task, pool_xs, pool_ys, idx)
      local s = stats(m)
      res.lost[kind].sweep[#res.lost[kind].sweep + 1] = {answer_start = v.answer_start,
        target = block_mean(s.mean, #idx - L.h, #idx - 1)}
    end
  end
  return res
end

-- ---- figures ---------------------------------------------------------------------------------------

local function xs_of(n)
  local x = {}
  for k = 1, n do x[k] = k - 1 end
  return x
end

local function curve(stats_, label, color, style)
  return {x = xs_of(#stats_.mean), y = stats_.mean, band = {lo = stats_.lo, hi = stats_.hi}, label = label,
          color = color, style = style or "solid", width = 2}
end

local COLORS = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {148, 103, 189}, {140, 86, 75}, {227, 119, 194},
                {127, 127, 127}}

function attacks.plot(res, dir, meta)
  local plot = core.plot
  local palette = require "icl.palette"
  local ylabel = res.metric == "accuracy" and "accuracy" or "squared error"
  local ylim = res.metric == "accuracy" and {0, 1.02} or nil
  local title = function(what)
    return string.format("%s  d=%d  N=%d  %s: %s", res.task, res.n_dims, res.n_train, meta.encoding, what)
  end
  local bound = {{x = res.n_train, label = "Bound", color = palette.color("bound")}}
  for k, s in pairs(res.noise_count) do
    plot.lines{file = string.format("%s/noise_points=%s.png", dir, k), title = title(k .. " noise points"),
      xlabel = "# in-context examples", ylabel = ylabel, ylim = ylim, vlines = bound,
      series = {curve(s, meta.encoding, palette.color(meta.encoding))}}
  end
  local ser = {curve(res.reference, "random prompt", {127, 127, 127}, "dashed")}
  for i, s in ipairs(res.distance) do
    ser[#ser + 1] = curve(s, "target dist = " .. s.target_start, COLORS[i])
  end
  plot.lines{file = dir .. "/noise_target_dist.png", title = title("instruction + noise + target"),
    xlabel = "# in-context examples", ylabel = ylabel, ylim = ylim, series = ser, vlines = bound}
  plot.lines{file = dir .. "/baseline_all_dup.png", title = title("all duplicated"), xlabel = "# in-context examples",
    ylabel = ylabel, ylim = ylim, vlines = bound,
    series = {curve(res.all_dup, meta.encoding, palette.color(meta.encoding))}}
  ser = {}
  for i, name in ipairs({"begin", "middle", "end"}) do
    ser[#ser + 1] = curve(res.inst_position[name], "instruction at " .. name, COLORS[i])
  end
  plot.lines{file = dir .. "/change_inst_position.png", title = title("instruction position"),
    xlabel = "# in-context examples", ylabel = ylabel, ylim = ylim, series = ser, vlines = bound}
  ser = {}
  for i, name in ipairs({"begin", "middle", "end"}) do
    ser[#ser + 1] = curve(res.lost.copy[name], "answer at " .. name, COLORS[i])
  end
  plot.lines{file = dir .. "/lost_in_mid.png", title = title("lost in the middle"), xlabel = "# in-context examples",
    ylabel = ylabel, ylim = ylim, series = ser, vlines = bound}
  local sx, sc, sf = {}, {}, {}
  for i, v in ipairs(res.lost.copy.sweep) do
    sx[i], sc[i], sf[i] = v.answer_start, v.target, res.lost.fresh.sweep[i].target
  end
  plot.lines{file = dir .. "/lost_in_mid_sweep.png", title = title("target vs answer position"),
    xlabel = "answer block start (example index)", ylabel = ylabel .. " on the target block", ylim = ylim,
    series = {{x = sx, y = sc, label = "copyable target", color = COLORS[1], marker = "circle", width = 2},
              {x = sx, y = sf, label = "fresh queries", color = COLORS[2], marker = "square", width = 2}}}
end

function attacks.cli(run_dir, a)
  local icl = require "icl"
  local run = require("icl.config").load(run_dir .. "/config.yaml")
  local device = a.device or (icl.cuda_available() and "cuda" or "cpu")
  local model = require("icl.model").load_run(run_dir, run, {device = device})
  local task = require("icl.tasks").from_run(run)
  local t0 = core.wall_time()
  local res = attacks.run(model, task, {n_dims = run.task.n_dims, n_train = run.task.curriculum.points["end"],
                                        device = device, seed = run.training.seed})
  local dir = run_dir .. "/duplicated"
  local io_ = require "icl.io"
  io_.mkdir_p(dir)
  local enc = require("icl.rundir").encoding_name(run)
  res.encoding = enc
  io_.write_file_atomic(dir .. "/attacks.json", json.encode(res) .. "\n")
  attacks.plot(res, dir, {encoding = enc})
  local lc = res.lost.copy
  print(string.format("all-duplicated: mean %s after the first example %.4g | distance (target at %d/%d/%d): " ..
    "%.4g / %.4g / %.4g | lost in the middle (copy target) begin %.4g middle %.4g end %.4g",
    res.metric, res.all_dup.mean_after_first, res.distance[1].target_start, res.distance[2].target_start,
    res.distance[3].target_start, res.distance[1].target, res.distance[2].target, res.distance[3].target,
    lc.begin.target, lc.middle.target, lc["end"].target))
  print(string.format("wrote %s/ (attacks.json and figures) in %.1f s", dir, core.wall_time() - t0))
end

return attacks
