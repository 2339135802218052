--- `icl compare RUN...`: overlay runs (e.g. every encoding for one task) in
-- one figure per task and tabulate the OOD-length summaries, as mean ± std
-- over seeds when several runs share (task, encoding, size).
local core = require "icl.core"
local json = require "icl.json"

local compare = {}

local SUMMARY_KEYS = {"in_distribution", "ood_1x_2x", "ood_2x_4x", "ood_4x_8x", "at_end", "effective_length"}

local function mean_std(vals)
  local n, s = #vals, 0
  for _, v in ipairs(vals) do s = s + v end
  local m = s / n
  local q = 0
  for _, v in ipairs(vals) do q = q + (v - m) ^ 2 end
  return m, n > 1 and math.sqrt(q / (n - 1)) or 0
end

--- Load the evaluation of each run directory and group them.
function compare.collect(run_dirs)
  local groups, order = {}, {}
  for _, dir in ipairs(run_dirs) do
    local i = require("icl.info").collect(dir)
    if not i.ood then error(dir .. ": no ood_length.json (run `icl eval " .. dir .. "` first)", 2) end
    local size = string.format("h%s-l%s", tostring(i.hidden), tostring(i.layers))
    local key = table.concat({i.task, i.encoding, size}, "|")
    if not groups[key] then
      groups[key] = {task = i.task, encoding = i.encoding, size = size, runs = {}}
      order[#order + 1] = key
    end
    table.insert(groups[key].runs, i)
  end
  local out = {}
  for _, key in ipairs(order) do
    local g = groups[key]
    g.summary = {}
    for _, k in ipairs(SUMMARY_KEYS) do
      local vals = {}
      for _, r in ipairs(g.runs) do
        local v = r.ood.settings.ood_length.summary[k]
        if v then vals[#vals + 1] = v end
      end
      if #vals > 0 then
        local m, s = mean_std(vals)
        g.summary[k] = {mean = m, std = s, n = #vals}
      end
    end
    -- mean curve over seeds, band = min/max of the seeds' curves
    local curves = {}
    for _, r in ipairs(g.runs) do curves[#curves + 1] = r.ood.settings.ood_length.model.mean end
    local n = math.huge
    for _, c in ipairs(curves) do n = math.min(n, #c) end
    g.curve = {mean = {}, lo = {}, hi = {}}
    for k = 1, n do
      local vals = {}
      for _, c in ipairs(curves) do vals[#vals + 1] = c[k] end
      g.curve.mean[k] = mean_std(vals)
      if #curves > 1 then
        g.curve.lo[k], g.curve.hi[k] = math.min(table.unpack(vals)), math.max(table.unpack(vals))
      else
        local r = g.runs[1].ood.settings.ood_length.model
        g.curve.lo[k], g.curve.hi[k] = r.lo[k], r.hi[k]
      end
    end
    g.metric = g.runs[1].ood.metric
    g.n_train = g.runs[1].ood.n_train
    g.n_dims = g.runs[1].ood.n_dims
    g.baselines = g.runs[1].ood.settings.ood_length.baselines
    g.zero = g.runs[1].ood.settings.ood_length.zero_estimator
    out[#out + 1] = g
  end
  return out
end

--- One figure per task with every group's curve and the task's baselines.
function compare.plot(groups, out_dir)
  local plot = core.plot
  local palette = require "icl.palette"
  local by_task, files = {}, {}
  for _, g in ipairs(groups) do
    by_task[g.task] = by_task[g.task] or {}
    table.insert(by_task[g.task], g)
  end
  for task, gs in pairs(by_task) do
    local series = {}
    for _, g in ipairs(gs) do
      local x = {}
      for k = 1, #g.curve.mean do x[k] = k - 1 end
      local label = palette.label(g.encoding)
      if #gs > 1 and gs[1].size ~= g.size then label = label .. " " .. g.size end
      if #g.runs > 1 then label = string.format("%s (%d seeds)", label, #g.runs) end
      series[#series + 1] = {x = x, y = g.curve.mean, band = {lo = g.curve.lo, hi = g.curve.hi}, label = label,
                             color = palette.color(g.encoding), width = 2}
    end
    local names = {}
    for b in pairs(gs[1].baselines or {}) do names[#names + 1] = b end
    table.sort(names)
    for _, b in ipairs(names) do
      local s = gs[1].baselines[b]
      local x = {}
      for k = 1, #s.mean do x[k] = k - 1 end
      series[#series + 1] = {x = x, y = s.mean, label = palette.label(b), color = palette.color(b),
                             style = "dashed", width = 1.5}
    end
    local g = gs[1]
    local hl = g.zero and {{y = g.zero, label = "zero estimator", style = "dashed",
                            color = palette.color("zero_estimator")}} or nil
    local file = string.format("%s/%s_ood_length.png", out_dir, task)
    plot.lines{file = file, title = string.format("%s  d=%d  N=%d: position encodings compared", task, g.n_dims,
      g.n_train), xlabel = "# in-context examples", ylabel = g.metric == "accuracy" and "accuracy" or "squared error",
      series = series, vlines = {{x = g.n_train, label = "Bound", color = palette.color("bound")}}, hlines = hl,
      ylim = g.metric == "accuracy" and {0, 1.02} or (g.zero and {0, g.zero * 1.3} or nil),
      legend = g.metric == "accuracy" and "bottom right" or "best"}
    files[#files + 1] = file
  end
  table.sort(files)
  return files
end

--- Markdown table of the summaries.
function compare.table(groups)
  local lines = {"| task | encoding | size | runs | in-dist [d,N) | (N,2N] | (2N,4N] | (4N,8N] | at end | eff. length |",
                 "|---|---|---|---|---|---|---|---|---|---|"}
  for _, g in ipairs(groups) do
    local cells = {g.task, g.encoding, g.size, tostring(#g.runs)}
    for _, k in ipairs(SUMMARY_KEYS) do
      local s = g.summary[k]
      if not s then cells[#cells + 1] = "-"
      elseif k == "effective_length" then cells[#cells + 1] = s.n > 1 and string.format("%.0f ± %.0f", s.mean, s.std)
        or string.format("%.0f", s.mean)
      else cells[#cells + 1] = s.n > 1 and string.format("%.3g ± %.2g", s.mean, s.std) or string.format("%.3g", s.mean) end
    end
    lines[#lines + 1] = "| " .. table.concat(cells, " | ") .. " |"
  end
  return table.concat(lines, "\n")
end

function compare.cli(run_dirs, a)
  local out = a.out or "comparison"
  require("icl.io").mkdir_p(out)
  local groups = compare.collect(run_dirs)
  local files = compare.plot(groups, out)
  local md = compare.table(groups)
  local io_ = require "icl.io"
  io_.write_file_atomic(out .. "/summary.md", md .. "\n")
  local js = {}
  for _, g in ipairs(groups) do
    local dirs = {}
    for _, r in ipairs(g.runs) do dirs[#dirs + 1] = r.dir end
    js[#js + 1] = {task = g.task, encoding = g.encoding, size = g.size, runs = dirs, summary = g.summary}
  end
  io_.write_file_atomic(out .. "/summary.json", json.encode(js) .. "\n")
  print(md)
  print("figures: " .. table.concat(files, ", "))
end

return compare
