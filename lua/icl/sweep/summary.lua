--- The summary of a sweep: per task × encoding × size, the mean ± std over
-- seeds of the scalar summaries in each finished cell's ood_length.json
-- (band means, value at 8N, effective length, ...), with counts of finished
-- and failed cells. Written as summary.md and summary.json in the sweep
-- directory, plus comparison figures per task through icl.compare when this
-- build has it.
local files = require "icl.sweep.files"
local json = require "icl.sweep.json"
local cellm = require "icl.sweep.cell"

local summary = {}

local function is_list(t) return type(t) == "table" and (t[1] ~= nil or next(t) == nil) end

-- numeric leaves of a table as dotted keys; lists (per-position curves) are skipped
local function flatten(t, prefix, out, depth)
  for k, v in pairs(t) do
    if type(k) == "string" then
      local key = prefix and (prefix .. "." .. k) or k
      if type(v) == "number" and v == v then
        out[key] = v
      elseif type(v) == "table" and not is_list(v) and depth < 3 then
        flatten(v, key, out, depth + 1)
      end
    end
  end
  return out
end

--- the scalar summaries of an ood_length.json: its `summary` (or `scalars`)
-- object when it has one, else every numeric field outside the per-position lists
function summary.scalars(ood)
  if type(ood) ~= "table" then return {} end
  local sub = ood.summary or ood.scalars
  if type(sub) == "table" and not is_list(sub) then return flatten(sub, nil, {}, 0) end
  return flatten(ood, nil, {}, 0)
end

--- mean and sample standard deviation (nil for one value)
function summary.mean_std(xs)
  local n = #xs
  if n == 0 then return nil, nil end
  local m = 0
  for _, x in ipairs(xs) do m = m + x end
  m = m / n
  if n < 2 then return m, nil end
  local v = 0
  for _, x in ipairs(xs) do v = v + (x - m) ^ 2 end
  return m, math.sqrt(v / (n - 1))
end

local function fmt(x)
  if x == nil then return "—" end
  if x == math.floor(x) and math.abs(x) < 1e6 then return string.format("%d", math.tointeger(x) or x) end
  return string.format("%.4g", x)
end

local function cell_text(m)
  if not m then return "—" end
  local s = fmt(m.mean)
  if m.std then s = s .. " ± " .. string.format("%.2g", m.std) end
  return s
end

--- collect: per-cell records and per-group statistics
function summary.collect(s, cells)
  local groups, order, cell_recs = {}, {}, {}
  local all_keys = {}
  for _, c in ipairs(cells) do
    local info = cellm.inspect(c)
    local rec = {index = c.index, id = c.id, task = c.task, encoding = c.encoding, size = c.size, seed = c.seed,
                 dir = c.dir, state = info.state, step = info.step, max_steps = info.max_steps}
    if info.state == "failed" then rec.error, rec.log = info.error, info.log end
    if info.state == "finished" then
      local ood, err = json.read(c.dir .. "/ood_length.json")
      if ood then
        rec.scalars = summary.scalars(ood)
      else
        rec.note = "no ood_length.json" .. (s.eval and (" (" .. tostring(err) .. ")") or " (eval: false)")
      end
    end
    cell_recs[#cell_recs + 1] = rec
    local g = groups[c.group]
    if not g then
      g = {task = c.task, encoding = c.encoding, size = c.size, cells = 0, values = {}}
      for _, k in ipairs({"finished", "running", "interrupted", "failed", "pending"}) do g[k] = 0 end
      groups[c.group] = g
      order[#order + 1] = c.group
    end
    g.cells = g.cells + 1
    g[info.state] = g[info.state] + 1
    for k, v in pairs(rec.scalars or {}) do
      g.values[k] = g.values[k] or {}
      table.insert(g.values[k], v)
      all_keys[k] = true
    end
  end
  local keys = {}
  if s.summary.keys then
    for _, k in ipairs(s.summary.keys) do keys[#keys + 1] = k end
  else
    for k in pairs(all_keys) do keys[#keys + 1] = k end
    table.sort(keys)
  end
  local glist = {}
  for _, name in ipairs(order) do
    local g = groups[name]
    g.metrics = {}
    for k, xs in pairs(g.values) do
      local m, sd = summary.mean_std(xs)
      g.metrics[k] = {mean = m, std = sd, n = #xs}
    end
    g.values = nil
    glist[#glist + 1] = g
  end
  return {sweep = s.name, spec = s.path, sweep_dir = s.sweep_dir, keys = keys, groups = glist, cells = cell_recs,
          seeds = #s.seeds}
end

--- markdown text of a collected summary
function summary.markdown(s, data)
  local L = {}
  L[#L + 1] = string.format("# Sweep `%s`", s.name)
  L[#L + 1] = ""
  if s.description then L[#L + 1] = s.description; L[#L + 1] = "" end
  local counts = {finished = 0, failed = 0, running = 0, interrupted = 0, pending = 0}
  for _, r in ipairs(data.cells) do counts[r.state] = counts[r.state] + 1 end
  L[#L + 1] = string.format("Spec `%s`; %d cells: %d finished, %d failed, %d running, %d interrupted, %d pending. " ..
    "Built %s.", s.path, #data.cells, counts.finished, counts.failed, counts.running, counts.interrupted,
    counts.pending, os.date("%Y-%m-%d %H:%M:%S"))
  L[#L + 1] = ""
  L[#L + 1] = "Each metric: mean ± sample std over the finished seeds of the scalar summaries in the cells' " ..
              "`ood_length.json`; `n` counts the seeds with a value."
  local tasks, by_task = {}, {}
  for _, g in ipairs(data.groups) do
    if not by_task[g.task] then by_task[g.task] = {}; tasks[#tasks + 1] = g.task end
    table.insert(by_task[g.task], g)
  end
  local few = false
  for _, task in ipairs(tasks) do
    L[#L + 1] = ""
    L[#L + 1] = "## " .. task
    L[#L + 1] = ""
    local head = {"encoding", "size", "finished", "failed", "n"}
    for _, k in ipairs(data.keys) do head[#head + 1] = k end
    L[#L + 1] = "| " .. table.concat(head, " | ") .. " |"
    local sep = {}
    for i = 1, #head do sep[i] = i <= 2 and "---" or "---:" end
    L[#L + 1] = "|" .. table.concat(sep, "|") .. "|"
    for _, g in ipairs(by_task[task]) do
      local n = 0
      for _, m in pairs(g.metrics) do n = math.max(n, m.n) end
      local row = {g.encoding, g.size, string.format("%d/%d", g.finished, g.cells), tostring(g.failed),
                   tostring(n) .. (n < 3 and g.finished > 0 and "*" or "")}
      if n < 3 and g.finished > 0 then few = true end
      for _, k in ipairs(data.keys) do row[#row + 1] = cell_text(g.metrics[k]) end
      L[#L + 1] = "| " .. table.concat(row, " | ") .. " |"
    end
  end
  if few then
    L[#L + 1] = ""
    L[#L + 1] = "\\* fewer than 3 seeds: the protocol asks for at least 3 per cell."
  end
  local failed = {}
  for _, r in ipairs(data.cells) do if r.state == "failed" then failed[#failed + 1] = r end end
  if #failed > 0 then
    L[#L + 1] = ""
    L[#L + 1] = "## Failed cells"
    L[#L + 1] = ""
    for _, r in ipairs(failed) do
      L[#L + 1] = string.format("- `%s`: %s (log `%s`)", r.id, (tostring(r.error):gsub("\n", " ")), r.log)
    end
  end
  local notes = {}
  for _, r in ipairs(data.cells) do if r.note then notes[#notes + 1] = string.format("- `%s`: %s", r.id, r.note) end end
  for _, n in ipairs(data.notes or {}) do notes[#notes + 1] = "- " .. n end
  if #notes > 0 then
    L[#L + 1] = ""
    L[#L + 1] = "## Notes"
    L[#L + 1] = ""
    for _, n in ipairs(notes) do L[#L + 1] = n end
  end
  if data.figures and #data.figures > 0 then
    L[#L + 1] = ""
    L[#L + 1] = "## Figures"
    L[#L + 1] = ""
    for _, f in ipairs(data.figures) do L[#L + 1] = string.format("- %s: `%s`", f.label, f.dir) end
  end
  return table.concat(L, "\n") .. "\n"
end

--- comparison figures per task (per task and size when the sweep has
-- several sizes) through icl.compare; returns figures, notes
function summary.compare(s, data, opts)
  local ok, compare = pcall(require, "icl.compare")
  if not ok or type(compare) ~= "table" or type(compare.cli) ~= "function" then
    return {}, {"comparison figures skipped: icl.compare is not available in this build"}
  end
  local figures, notes, groups, order = {}, {}, {}, {}
  for _, r in ipairs(data.cells) do
    if r.state == "finished" then
      local key = #s.sizes > 1 and (r.task .. "-" .. r.size) or r.task
      if not groups[key] then groups[key] = {}; order[#order + 1] = key end
      table.insert(groups[key], r.dir)
    end
  end
  for _, key in ipairs(order) do
    local out = s.sweep_dir .. "/compare/" .. key
    files.mkdir_p(out)
    local okc, err = pcall(compare.cli, groups[key], {runs = groups[key], out = out, quiet = opts and opts.quiet})
    if okc then
      figures[#figures + 1] = {label = key, dir = out}
    else
      notes[#notes + 1] = string.format("comparison for %s failed: %s", key, tostring(err))
    end
  end
  return figures, notes
end

--- build and write summary.md / summary.json; returns data, md path
function summary.build(s, cells, opts)
  local data = summary.collect(s, cells)
  data.figures, data.notes = {}, {}
  if s.summary.compare and not (opts and opts.no_figures) then
    data.figures, data.notes = summary.compare(s, data, opts)
  end
  files.mkdir_p(s.sweep_dir)
  local md = s.sweep_dir .. "/summary.md"
  files.write_atomic(md, summary.markdown(s, data))
  local out = {}
  for k, v in pairs(data) do out[k] = v end
  out.generated = os.date("!%Y-%m-%dT%H:%M:%SZ")
  files.write_atomic(s.sweep_dir .. "/summary.json", json.encode(out, {indent = "  "}) .. "\n")
  return data, md
end

return summary
