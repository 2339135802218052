--- `icl sweep SPEC --status`: progress read from the run directories alone
-- (no Slurm accounting): counts per state, steps done, what is running
-- where, and each failure with its error and log path.
local files = require "icl.sweep.files"
local json = require "icl.sweep.json"
local cellm = require "icl.sweep.cell"

local status = {}

status.STATES = {"finished", "running", "interrupted", "failed", "pending"}

-- max_steps a cell will run, when its overrides say so
local function planned_steps(c)
  for _, o in ipairs(c.overrides) do
    local v = o:match("^training%.max_steps=(%d+)$")
    if v then return tonumber(v) end
  end
  return nil
end

--- the state of every cell. Returns {counts, cells = {{cell, info}}, steps_done, steps_total, steps_estimated}
function status.collect(s, cells)
  local col = {counts = {}, cells = {}, steps_done = 0, steps_total = 0}
  for _, k in ipairs(status.STATES) do col.counts[k] = 0 end
  local known, unknown = {}, {}
  for _, c in ipairs(cells) do
    local info = cellm.inspect(c)
    col.counts[info.state] = col.counts[info.state] + 1
    col.cells[#col.cells + 1] = {cell = c, info = info}
    local max_steps = info.max_steps or planned_steps(c)
    if max_steps then
      known[#known + 1] = max_steps
      col.steps_total = col.steps_total + max_steps
      col.steps_done = col.steps_done + math.min(info.step or 0, max_steps)
    else
      unknown[#unknown + 1] = c
    end
  end
  if #unknown > 0 and #known > 0 then
    table.sort(known)
    col.steps_total = col.steps_total + #unknown * known[(#known + 1) // 2]
    col.steps_estimated = true
  elseif #unknown > 0 then
    col.steps_total = nil
  end
  col.summary = files.exists(s.sweep_dir .. "/summary.md") and (s.sweep_dir .. "/summary.md") or nil
  if col.summary then col.summary_time = require("lfs").attributes(col.summary, "modification") end
  local jobs = files.read(s.sweep_dir .. "/slurm/jobs.jsonl")
  if jobs then
    local last
    for line in jobs:gmatch("[^\n]+") do last = line end
    local ok, r = pcall(json.decode, last or "")
    if ok and type(r) == "table" then col.slurm = r end
  end
  return col
end

local function dims(s)
  local function n(list, word)
    return string.format("%d %s%s", #list, word, #list == 1 and "" or "s")
  end
  return table.concat({n(s.tasks, "task"), n(s.encodings, "encoding"), n(s.sizes, "size"), n(s.seeds, "seed")}, " × ")
end

--- text report
function status.render(s, cells, col)
  local L = {}
  L[#L + 1] = string.format("sweep %s: %d cells (%s) in %s", s.name, #cells, dims(s), s.sweep_dir)
  local parts = {}
  for _, k in ipairs(status.STATES) do parts[#parts + 1] = string.format("%s %d", k, col.counts[k]) end
  L[#L + 1] = "  " .. table.concat(parts, " · ")
  if col.steps_total and col.steps_total > 0 then
    L[#L + 1] = string.format("  steps %d/%s%d (%.1f%%)", col.steps_done, col.steps_estimated and "~" or "",
      col.steps_total, 100 * col.steps_done / col.steps_total)
  end
  local w = 0
  for _, e in ipairs(col.cells) do w = math.max(w, #e.cell.id) end
  local function steps(info)
    if info.step and info.max_steps then return string.format("step %d/%d", info.step, info.max_steps) end
    if info.step then return string.format("step %d", info.step) end
    return "starting"
  end
  for _, e in ipairs(col.cells) do
    local c, info = e.cell, e.info
    if info.state == "running" then
      local h = info.holder or {}
      L[#L + 1] = string.format("  running      %-" .. w .. "s  %s  pid %s on %s%s%s", c.id, steps(info),
        tostring(h.pid), tostring(h.host), h.remote and " (not verifiable from here)" or "",
        h.source == "run.lock" and " (trainer not started by a sweep)" or "")
    end
  end
  for _, e in ipairs(col.cells) do
    local c, info = e.cell, e.info
    if info.state == "interrupted" then
      L[#L + 1] = string.format("  interrupted  %-" .. w .. "s  %s (resumes from its newest checkpoint)", c.id,
        steps(info))
    end
  end
  for _, e in ipairs(col.cells) do
    local c, info = e.cell, e.info
    if info.state == "failed" then
      L[#L + 1] = string.format("  failed       %-" .. w .. "s  %s", c.id, (tostring(info.error):gsub("\n", " | ")))
      L[#L + 1] = string.format("               %-" .. w .. "s  log: %s", "", info.log)
    end
  end
  if col.counts.failed > 0 then
    L[#L + 1] = "  (failed cells run again only with --retry-failed)"
  end
  if col.slurm then
    L[#L + 1] = string.format("  slurm: array job %s (%s cells, submitted %s)%s", tostring(col.slurm.array_job),
      tostring(col.slurm.n_cells), tostring(col.slurm.time),
      col.slurm.summary_job and (", summary job " .. col.slurm.summary_job) or "")
  end
  if col.summary then
    L[#L + 1] = string.format("  summary: %s (built %s)", col.summary, os.date("%Y-%m-%d %H:%M:%S", col.summary_time))
  else
    L[#L + 1] = "  summary: not built yet (icl sweep SPEC --summary)"
  end
  return table.concat(L, "\n") .. "\n"
end

--- the same as a table for --status --json
function status.to_table(s, cells, col)
  local t = {sweep = s.name, sweep_dir = s.sweep_dir, n_cells = #cells, counts = col.counts,
             steps_done = col.steps_done, steps_total = col.steps_total, summary = col.summary, slurm = col.slurm,
             done = col.counts.finished + col.counts.failed == #cells, cells = {}}
  for _, e in ipairs(col.cells) do
    local info = e.info
    t.cells[#t.cells + 1] = {index = e.cell.index, id = e.cell.id, dir = e.cell.dir, state = info.state,
                             step = info.step, max_steps = info.max_steps, error = info.error, log = info.log,
                             attempts = info.attempts, holder = info.holder}
  end
  return t
end

return status
