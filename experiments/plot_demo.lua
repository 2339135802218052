-- Demo figures for the plotting layer, on synthetic numbers shaped like the
-- paper's: squared error against the number of in-context examples (a model
-- with a band, three baselines, the training-length bound, the zero
-- estimator), the same on a log scale, an attention heat map and a 2x4 grid
-- of per-head plots.
--
--   LUA_PATH="lua/?.lua;;" LUA_CPATH="build/lua/?.so;;" lua5.4 experiments/plot_demo.lua OUTDIR
local plot = require("icl.core").plot
local palette = require("icl.palette")

local outdir = arg[1] or error("usage: lua5.4 experiments/plot_demo.lua OUTDIR")
os.execute(("mkdir -p '%s'"):format(outdir:gsub("'", "'\\''")))

-- Deterministic noise in [-1, 1] (no dependence on math.random's state).
local seed = 12345
local function noise()
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed / 1073741824 - 1
end

local d, n_train, K = 20, 50, 400
local ks = {}
for k = 1, K do ks[k] = k end

-- The model: learns like least squares up to the training length, then
-- degrades slowly beyond it.
local model, lo, hi = {}, {}, {}
for k = 1, K do
  local base = k <= d and d * (1 - k / d) + 0.6 or 0.6 * d / (k - d + 6)
  local drift = k > n_train and 7 * (1 - math.exp(-(k - n_train) / 120)) or 0
  local m = base + drift + 0.03 * noise()
  local s = 0.15 + 0.08 * m
  model[k], lo[k], hi[k] = m, math.max(m - s, 0), m + s
end

local function curve(f)
  local y = {}
  for k = 1, K do y[k] = f(k) end
  return y
end

local least_squares = curve(function(k)
  if k <= d then return d * (1 - k / d) + 0.3 end
  return 0.25 * d / (k - d + 3) + 0.02
end)
local averaging = curve(function(k) return 6 + 14 * (d + 1) / (k + d + 1) end)
local nn3 = curve(function(k) return 23.5 - 2.6 * math.log(k + 1, 10) end)

local function s(name, y, extra)
  local t = palette.series(name, { x = ks, y = y, width = name == "fire" and 2.5 or 2 })
  for k, v in pairs(extra or {}) do t[k] = v end
  return t
end

local function error_figure(file, logy)
  return plot.lines {
    file = outdir .. "/" .. file,
    title = "linear_regression  d=20  N=50  fire",
    xlabel = "# in-context examples",
    ylabel = logy and "squared error (log scale)" or "squared error",
    xlim = { 0, K },
    ylim = logy and { 0.01, 40 } or { 0, 25 },
    logy = logy,
    legend = "best",
    series = {
      s("fire", model, { band = { lo = lo, hi = hi } }),
      s("least_squares", least_squares),
      s("averaging", averaging),
      s("nn_3", nn3),
    },
    vlines = { { x = n_train, label = "Bound", color = palette.color("bound"), width = 1.5 } },
    hlines = { { y = d, label = "Zero estimator", color = palette.color("zero_estimator"), style = "dashed" } },
  }
end

print(error_figure("error_vs_examples.png", false))
print(error_figure("error_vs_examples_log.png", true))

-- A causal attention map: a sink on the first token, a local diagonal and a
-- stripe every 8 positions; the masked future is NaN (left blank).
local T = 64
local z = {}
for i = 1, T do
  local row, sum = {}, 0
  for j = 1, i do
    local w = (j == 1 and 4 or 0) + 3 * math.exp(-(i - j) / 2) + ((i - j) % 8 == 0 and 0.8 or 0) + 0.1
    row[j], sum = w, sum + w
  end
  for j = 1, i do row[j] = row[j] / sum end
  for j = i + 1, T do row[j] = 0 / 0 end
  z[i] = row
end
print(plot.heatmap {
  file = outdir .. "/attention_heatmap.png",
  width = 900, height = 760,
  title = "layer 2, head 3 (fire): attention weights",
  xlabel = "key position", ylabel = "query position", zlabel = "weight",
  z = z, zlim = { 0, 1 },
})

-- Per-head: attention mass on the first token against query position, for a
-- model trained on 50 positions, with a mean-and-spread band per head.
local panels = {}
for h = 1, 8 do
  local x, y, blo, bhi = {}, {}, {}, {}
  local rate, floor = 0.02 + 0.012 * h, (h % 3) * 0.08
  for q = 1, 200 do
    local m = floor + (1 - floor) * math.exp(-rate * q) + 0.02 * math.sin(q / (3 + h))
    if q > n_train then m = m + 0.15 * (h % 2) * (1 - math.exp(-(q - n_train) / 40)) end
    x[q], y[q] = q, m
    blo[q], bhi[q] = m - 0.04, m + 0.04
  end
  panels[h] = {
    title = "head " .. h,
    ylim = { -0.05, 1.05 },
    legend = false,
    series = { { x = x, y = y, color = palette.color("fire"), band = { lo = blo, hi = bhi } } },
    vlines = { { x = n_train, color = palette.color("bound"), style = "dashed" } },
  }
end
print(plot.grid {
  file = outdir .. "/heads_grid.png",
  width = 1400, height = 700,
  rows = 2, cols = 4,
  title = "layer 1: attention on the first token, per head (fire)",
  xlabel = "query position", ylabel = "attention weight",
  panels = panels,
})
