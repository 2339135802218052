--- Attention analyses (`icl attn`), after the published eval_attn.py
-- (experiments.md 2.2 and 5.3). 64 prompts in batches of 32; the query is
-- the final x token (the model predicts its y):
--   (a) length N: last-layer attention of each head to the x tokens;
--   (b) length 4N: attention to every y token, averaged over heads and
--       prompts, one curve per layer on a normalised axis
--       (avg_attention_score.png), per-head plots, the recency ratio;
--   (c) an N-example block repeated 4 times: per-head attention (an
--       induction-like head peaks at the earlier copies), the attention on
--       the copies relative to other positions, and the error per repeat;
--   (d) a heat map of one layer's attention matrix (head-averaged).
-- Figures and attention.json go to <run>/duplicated/.
local core = require "icl.core"
local json = require "icl.json"

local attention = {}

local STREAM = (1 << 62) + 32

-- attention rows [B, H, 1, T] of the final x token for the given layers,
-- summed over `batches` batches; returns {layer = {sum over prompts [H][T]}}, prompts, and the predictions' metric
local function query_rows(model, task, n_points, layers, opts, make)
  local acc, prompts, metric = {}, 0, nil
  for b = 0, opts.batches - 1 do
    local xs, ys = task:sample(opts.batch, make and make.sample_len or n_points,
                               {seed = opts.seed, stream = STREAM + n_points, prompt_offset = b * opts.batch,
                                device = opts.device})
    if make then xs, ys = make.build(xs, ys) end
    local caps, pred = model:attention(xs, ys, {layers = layers, query = "last_x"})
    local m = task:metric(pred:to("cpu"), ys:to("cpu"))
    metric = metric and core.cat({metric, m}, 1) or m
    for _, l in ipairs(layers) do
      local s = caps[l]:to("cpu"):sum(1):squeeze(2) -- [H, T]
      acc[l] = acc[l] and (acc[l] + s) or s
    end
    prompts = prompts + opts.batch
  end
  local out = {}
  for l, s in pairs(acc) do out[l] = (s / prompts):totable() end
  return out, prompts, metric
end

-- entries j = first, first + 2, ... below `upto` (0-based tokens) of a row (1-based table)
local function every_other(row, first, upto)
  local v = {}
  for j = first, upto - 1, 2 do v[#v + 1] = row[j + 1] end
  return v
end

--- recency ratio: share of the y-token mass on the most recent 10% of the
-- y tokens, divided by 0.10 (1 = uniform over y tokens, > 1 = recency)
function attention.recency_ratio(yrow)
  local n = #yrow
  local k = math.max(1, math.floor(0.1 * n + 0.5))
  local tot, rec = 0, 0
  for i = 1, n do
    tot = tot + yrow[i]
    if i > n - k then rec = rec + yrow[i] end
  end
  return tot > 0 and (rec / tot) / (k / n) or 0 / 0
end

function attention.run(model, task, opts)
  local N, L = opts.n_train, opts.layers
  local o = {batches = math.max(1, (opts.n_prompts or 64) // (opts.batch or 32)), batch = opts.batch or 32,
             seed = opts.seed or 0, device = opts.device}
  local all_layers = {}
  for l = 1, L do all_layers[l] = l end
  local res = {task = task.name, n_train = N, layers = L, prompts = o.batches * o.batch}

  -- (a) at N: last layer, per head, to the x tokens (query = x_{N-1})
  local rows = query_rows(model, task, N, {L}, o)
  res.at_N = {}
  for h, row in ipairs(rows[L]) do res.at_N[h] = every_other(row, 0, 2 * N - 1) end
  res.heads = #rows[L]

  -- (b) at 4N (+1 so that 4N y tokens precede the final query)
  local n4 = 4 * N + 1
  rows = query_rows(model, task, n4, all_layers, o)
  res.avg_attention = {}
  res.recency_ratio = {}
  for l = 1, L do
    local mean_y = {}
    for h, row in ipairs(rows[l]) do
      local y = every_other(row, 1, 2 * n4 - 2)
      for i, v in ipairs(y) do mean_y[i] = (mean_y[i] or 0) + v / #rows[l] end
      if l == L then
        res.at_4N = res.at_4N or {}
        res.at_4N[h] = every_other(row, 0, 2 * n4 - 1)
      end
    end
    res.avg_attention[l] = mean_y
    res.recency_ratio[l] = attention.recency_ratio(mean_y)
  end

  -- (c) a block of N examples repeated 4 times; query = the last x, whose
  -- earlier copies are examples N-1, 2N-1, 3N-1
  local idx = {}
  for r = 0, 3 do for i = 1, N do idx[#idx + 1] = i end end
  local make = {sample_len = N, build = function(xs, ys) return xs:index_select(2, idx), ys:index_select(2, idx) end}
  local metric
  rows, _, metric = query_rows(model, task, 4 * N, {L}, o, make)
  res.repeated = {heads = {}, copy_ratio = {}}
  for h, row in ipairs(rows[L]) do
    local x = every_other(row, 0, 8 * N - 1)
    res.repeated.heads[h] = x
    local copies, other, nc, no = 0, 0, 0, 0
    for i, v in ipairs(x) do
      local ex = i - 1
      if ex < 4 * N - 1 and (ex + 1) % N == 0 then copies, nc = copies + v, nc + 1
      elseif ex < 4 * N - 1 then other, no = other + v, no + 1 end
    end
    res.repeated.copy_ratio[h] = (no > 0 and other > 0) and (copies / nc) / (other / no) or 0 / 0
  end
  local curve = metric:mean(1):totable()
  res.repeated.metric_per_repeat = {}
  for r = 0, 3 do
    local s = 0
    for i = r * N + 1, (r + 1) * N do s = s + curve[i] end
    res.repeated.metric_per_repeat[r + 1] = s / N
  end
  res.metric_name = task.metric_name

  -- (d) heat map: layer opts.heatmap_layer (default the last), head-averaged, first prompt, length N
  local hl = opts.heatmap_layer or L
  local xs, ys = task:sample(1, N, {seed = o.seed, stream = STREAM + 7, device = o.device})
  local caps = model:attention(xs, ys, {layers = {hl}, query = "all"})
  res.heatmap = {layer = hl, matrix = caps[hl]:to("cpu"):mean(2):squeeze():totable()}
  return res
end

-- ---- figures ---------------------------------------------------------------------------------------

local COLORS = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40}, {148, 103, 189}, {140, 86, 75},
                {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}}

local function layer_color(l, L)
  if L <= #COLORS then return COLORS[l] end
  local t = (l - 1) / math.max(1, L - 1) -- dark blue -> yellow for many layers
  return {math.floor(40 + 200 * t), math.floor(40 + 160 * t), math.floor(140 - 100 * t)}
end

local function head_grid(file, title, heads, xlabel, vlines)
  local panels = {}
  for h, v in ipairs(heads) do
    local x = {}
    for i = 1, #v do x[i] = i - 1 end
    panels[h] = {title = "head " .. h, series = {{x = x, y = v, color = {31, 119, 180}, width = 1.5}}, vlines = vlines}
  end
  core.plot.grid{file = file, title = title, xlabel = xlabel, ylabel = "attention", panels = panels,
                 cols = math.min(4, #heads)}
end

function attention.plot(res, dir, meta)
  local title = function(what)
    return string.format("%s  N=%d  %s: %s", res.task, res.n_train, meta.encoding, what)
  end
  head_grid(dir .. "/attn_heads_N.png", title(string.format("last layer, query x_%d -> x tokens", res.n_train - 1)),
            res.at_N, "example index")
  head_grid(dir .. "/attn_heads_4N.png", title(string.format("last layer at 4N, query x_%d -> x tokens",
            4 * res.n_train)), res.at_4N, "example index", {{x = res.n_train, label = "N", color = {214, 39, 40}}})
  local series = {}
  for l = 1, res.layers do
    local v = res.avg_attention[l]
    local x = {}
    for i = 1, #v do x[i] = (i - 1) / math.max(1, #v - 1) end
    series[l] = {x = x, y = v, label = "layer " .. l, color = layer_color(l, res.layers), width = 1.5}
  end
  core.plot.lines{file = dir .. "/avg_attention_score.png",
    title = title(string.format("attention to y tokens at 4N (%d prompts, mean over heads)", res.prompts)),
    xlabel = "normalised position of the y token", ylabel = "average attention score", series = series,
    legend = res.layers <= 16 and "outside" or "none"}
  local vl = {}
  for r = 1, 3 do vl[r] = {x = r * res.n_train - 1, color = {214, 39, 40}, style = "dashed"} end
  head_grid(dir .. "/attn_repeated_heads.png", title("block of N repeated 4x, last layer -> x tokens"),
            res.repeated.heads, "example index", vl)
  local z = {}
  local m = res.heatmap.matrix
  local zmax = 0
  for i = 1, #m do for j = 1, i do zmax = math.max(zmax, m[i][j]) end end
  for i = 1, #m do
    z[i] = {}
    for j = 1, #m[i] do z[i][j] = j <= i and m[i][j] or 0 / 0 end -- the masked upper triangle stays blank
  end
  core.plot.heatmap{file = dir .. "/attn_heatmap.png", z = z, zlim = {0, zmax > 0 and zmax or 1},
    title = title(string.format("layer %d attention (mean over heads, one prompt)", res.heatmap.layer)),
    xlabel = "key token", ylabel = "query token", zlabel = "attention"}
end

function attention.cli(run_dir, a)
  local icl = require "icl"
  local run = require("icl.config").load(run_dir .. "/config.yaml")
  if (run.model.family or ""):lower():find("mamba") then
    error("attention analysis does not apply to Mamba runs (the model is attention-free); " ..
          "`icl eval` and `icl atk` do apply", 0)
  end
  local device = a.device or (icl.cuda_available() and "cuda" or "cpu")
  local model = require("icl.model").load_run(run_dir, run, {device = device})
  local task = require("icl.tasks").from_run(run)
  local t0 = core.wall_time()
  local res = attention.run(model, task, {n_train = run.task.curriculum.points["end"], layers =
    run.model.num_hidden_layers, device = device, seed = run.training.seed})
  local dir = run_dir .. "/duplicated"
  local io_ = require "icl.io"
  io_.mkdir_p(dir)
  local enc = require("icl.rundir").encoding_name(run)
  res.encoding = enc
  io_.write_file_atomic(dir .. "/attention.json", json.encode(res) .. "\n")
  attention.plot(res, dir, {encoding = enc})
  local rr = {}
  for l = 1, res.layers do rr[l] = string.format("%.2f", res.recency_ratio[l]) end
  local cr = {}
  for h = 1, res.heads do cr[h] = string.format("%.2f", res.repeated.copy_ratio[h]) end
  local mp = {}
  for r = 1, 4 do mp[r] = string.format("%.3g", res.repeated.metric_per_repeat[r]) end
  print("recency ratio per layer (1 = uniform): " .. table.concat(rr, " "))
  print("repeated blocks: attention on earlier copies / elsewhere, per head (last layer): " .. table.concat(cr, " "))
  print(string.format("repeated blocks: mean %s per repeat: %s", res.metric_name, table.concat(mp, " | ")))
  print(string.format("wrote %s/ (attention.json and figures) in %.1f s", dir, core.wall_time() - t0))
end

return attention
