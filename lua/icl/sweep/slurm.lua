--- Slurm: one job array per sweep, one array task per grid cell (with
-- `group: seeds`, per group of cells that train in one process).
--
-- `icl sweep SPEC --slurm` writes <sweep>/slurm/sweep.sbatch and submits it
-- with sbatch; array task i runs `icl sweep SPEC --cell i`, which trains
-- exactly that cell (with the same claim/resume/record rules as a local
-- sweep) and logs to <sweep>/slurm/cell-<i>.out. A second, one-task job
-- (<sweep>/slurm/summary.sbatch) depends on the array (afterany) and builds
-- the summary when every array task has ended. Only cells that need work
-- are submitted: finished ones and ones a live process holds are left out,
-- failed ones too unless --retry-failed. With `group: seeds` the cells to
-- submit are grouped as the local runner groups them (runner.partition: one
-- task, encoding and size at the same step, at most 64); the array has one
-- task per group, numbered by the group's first cell, and
-- <sweep>/slurm/groups.json lists each group's cells for `--cell` to claim.
local core = require "icl.core"
local files = require "icl.sweep.files"
local json = require "icl.sweep.json"
local grid = require "icl.sweep.grid"
local cellm = require "icl.sweep.cell"
local specm = require "icl.sweep.spec"
local runner = require "icl.sweep.runner"

local slurm = {}

--- single-quote a word for the generated bash script
function slurm.quote(w)
  if w:match("^[%w_%-%.,/:=@%%+]+$") then return w end
  return "'" .. w:gsub("'", "'\\''") .. "'"
end

local function quote_all(argv)
  local out = {}
  for i, w in ipairs(argv) do out[i] = slurm.quote(w) end
  return table.concat(out, " ")
end

--- which cells to submit: {indices}, {skipped = {{cell, why}}}
function slurm.plan(cells, opts)
  local indices, skipped = {}, {}
  for _, c in ipairs(cells) do
    local info = cellm.inspect(c)
    if info.state == "finished" or info.state == "running" or (info.state == "failed" and not opts.retry_failed) then
      skipped[#skipped + 1] = {cell = c, why = info.state}
    else
      indices[#indices + 1] = c.index
    end
  end
  return indices, skipped
end

local function resource_lines(sl, L, overrides)
  local function add(flag, v) if v ~= nil then L[#L + 1] = string.format("#SBATCH --%s=%s", flag, tostring(v)) end end
  overrides = overrides or {}
  add("partition", sl.partition)
  add("account", sl.account)
  add("qos", sl.qos)
  add("time", overrides.time or sl.time)
  add("cpus-per-task", overrides.cpus_per_task or sl.cpus_per_task)
  add("mem", overrides.mem or sl.mem)
  if not overrides.no_gres then add("gres", sl.gres) end
  if not overrides.no_extra then
    for _, x in ipairs(sl.extra or {}) do L[#L + 1] = "#SBATCH " .. x end
  end
end

local function env_lines(L, extra)
  L[#L + 1] = "export LUA_PATH=" .. slurm.quote(package.path)
  L[#L + 1] = "export LUA_CPATH=" .. slurm.quote(package.cpath)
  for _, k in ipairs({"ICL_SWEEP_TRAIN_CMD"}) do
    local v = os.getenv(k)
    if v then L[#L + 1] = string.format("export %s=%s", k, slurm.quote(v)) end
  end
  for k, v in pairs(extra or {}) do L[#L + 1] = string.format("export %s=%s", k, slurm.quote(v)) end
end

--- the array script's text
function slurm.array_script(s, indices, self_cmd, opts)
  local sl = s.slurm
  local array = grid.ranges(indices)
  if sl.array_limit then array = array .. "%" .. sl.array_limit end
  local L = {"#!/bin/bash",
             string.format("# icl sweep %s: one array task per grid cell (written by `icl sweep --slurm`).", s.name),
             s.group and "# Array task i trains the group of cells that starts with cell i (groups.json here)." or
             "# Array task i trains cell i of the spec's grid (see grid.json beside this directory).",
             "#SBATCH --job-name=" .. slurm.quote("icl-" .. s.name),
             "#SBATCH --array=" .. array,
             "#SBATCH --output=" .. slurm.quote(s.sweep_dir .. "/slurm/cell-%a.out"),
             "#SBATCH --open-mode=append",
             "#SBATCH --chdir=" .. slurm.quote(opts.cwd)}
  resource_lines(sl, L)
  L[#L + 1] = "set -u"
  env_lines(L)
  local argv = {}
  for _, w in ipairs(self_cmd) do argv[#argv + 1] = w end
  for _, w in ipairs({"sweep", s.path, "--cell"}) do argv[#argv + 1] = w end
  L[#L + 1] = 'echo "[$(date +%F\\ %T)] array task ${SLURM_ARRAY_TASK_ID} of job ${SLURM_ARRAY_JOB_ID} on $(hostname)"'
  L[#L + 1] = "exec " .. quote_all(argv) .. ' "$SLURM_ARRAY_TASK_ID"'
  return table.concat(L, "\n") .. "\n"
end

--- the summary job's text (runs after the array, whatever its outcome)
function slurm.summary_script(s, self_cmd, opts)
  local sl = s.slurm
  local L = {"#!/bin/bash",
             string.format("# icl sweep %s: builds the summary once the array job has ended.", s.name),
             "#SBATCH --job-name=" .. slurm.quote("icl-" .. s.name .. "-summary"),
             "#SBATCH --output=" .. slurm.quote(s.sweep_dir .. "/slurm/summary.out"),
             "#SBATCH --open-mode=append",
             "#SBATCH --chdir=" .. slurm.quote(opts.cwd),
             "#SBATCH --ntasks=1"}
  resource_lines(sl, L, {time = sl.summary_time or "00:30:00", cpus_per_task = 1, mem = sl.mem and "2G" or nil,
                         no_gres = true, no_extra = false})
  L[#L + 1] = "set -u"
  env_lines(L)
  local argv = {}
  for _, w in ipairs(self_cmd) do argv[#argv + 1] = w end
  for _, w in ipairs({"sweep", s.path, "--summary"}) do argv[#argv + 1] = w end
  L[#L + 1] = "exec " .. quote_all(argv)
  return table.concat(L, "\n") .. "\n"
end

--- run a command to completion, capturing its output; returns code, text
function slurm.capture(argv, scratch)
  local log = string.format("%s.%d", scratch, core.getpid())
  os.remove(log)
  local pid = core.spawn(argv, {log = log})
  local w
  repeat w = core.waitpid(pid) until w
  local text = files.read(log) or ""
  os.remove(log)
  return w.code or (128 + (w.signal or 0)), text
end

--- the job id in `sbatch --parsable`'s output ("1234" or "1234;cluster"),
-- skipping any warning lines
function slurm.job_id(text)
  local id
  for line in text:gmatch("[^\n]+") do
    id = line:match("^%s*(%d+)%s*$") or line:match("^%s*(%d+);[%w_.%-]+%s*$") or id
  end
  return id
end

local function sbatch_cmd()
  local v = os.getenv("ICL_SWEEP_SBATCH")
  return v and specm.split_words(v) or {"sbatch"}
end

--- write the scripts and submit. opts: self_cmd, cwd, retry_failed,
-- dry_run, out. Returns {array_job, summary_job, indices, script} (jobs nil
-- on a dry run or when there is nothing to submit).
function slurm.submit(s, cells, opts)
  local out = opts.out or io.stdout
  local dir = s.sweep_dir .. "/slurm"
  files.mkdir_p(dir)
  local indices, skipped = slurm.plan(cells, opts)
  local counts = {}
  for _, sk in ipairs(skipped) do counts[sk.why] = (counts[sk.why] or 0) + 1 end
  local skip_txt = {}
  for _, k in ipairs({"finished", "running", "failed"}) do
    if counts[k] then skip_txt[#skip_txt + 1] = string.format("%d %s", counts[k], k) end
  end
  if #indices == 0 then
    out:write(string.format("sweep %s: nothing to submit (%s)%s\n", s.name, table.concat(skip_txt, ", "),
      counts.failed and "; use --retry-failed to run the failed cells again" or ""))
    return {indices = indices}
  end
  files.write_atomic(s.sweep_dir .. "/grid.json", json.encode(grid.describe(s, cells), {indent = "  "}) .. "\n")
  -- with group: seeds, one array task per group, numbered by its first cell
  local tasks, groups = indices, nil
  if s.group then
    local todo = {}
    for _, i in ipairs(indices) do todo[#todo + 1] = cells[i + 1] end
    tasks, groups = {}, {}
    for _, part in ipairs(runner.partition(todo)) do
      local ids = {}
      for k, c in ipairs(part) do ids[k] = c.index end
      tasks[#tasks + 1] = ids[1]
      groups[tostring(ids[1])] = ids
    end
    table.sort(tasks)
    files.write_atomic(dir .. "/groups.json", json.encode({groups = groups}, {indent = "  "}) .. "\n")
  else
    os.remove(dir .. "/groups.json")
  end
  local script = dir .. "/sweep.sbatch"
  local sscript = dir .. "/summary.sbatch"
  files.write_atomic(script, slurm.array_script(s, tasks, opts.self_cmd, opts))
  files.write_atomic(sscript, slurm.summary_script(s, opts.self_cmd, opts))
  local sb = sbatch_cmd()
  local argv = {}
  for _, w in ipairs(sb) do argv[#argv + 1] = w end
  argv[#argv + 1] = "--parsable"
  argv[#argv + 1] = script
  local res = {indices = indices, tasks = tasks, groups = groups, script = script, summary_script = sscript}
  out:write(string.format("sweep %s: %d of %d cells to submit as one job array%s%s\n", s.name, #indices, #cells,
    groups and string.format(" of %d tasks (group: seeds, one process per group)", #tasks) or "",
    #skip_txt > 0 and (" (skipping " .. table.concat(skip_txt, ", ") .. ")") or ""))
  if opts.dry_run then
    out:write("dry run: would run " .. quote_all(argv) .. "\n")
    out:write("         then " .. quote_all(sb) .. " --parsable --dependency=afterany:<job> " .. sscript .. "\n")
    return res
  end
  local code, text = slurm.capture(argv, dir .. "/.sbatch-out")
  local job = slurm.job_id(text)
  if code ~= 0 or not job then
    error(string.format("sbatch failed (exit %d): %s", code, (text:gsub("%s+$", ""))), 0)
  end
  res.array_job = job
  local sargv = {}
  for _, w in ipairs(sb) do sargv[#sargv + 1] = w end
  for _, w in ipairs({"--parsable", "--dependency=afterany:" .. job, sscript}) do sargv[#sargv + 1] = w end
  local scode, stext = slurm.capture(sargv, dir .. "/.sbatch-out")
  res.summary_job = slurm.job_id(stext)
  if scode ~= 0 or not res.summary_job then
    out:write(string.format("warning: the summary job was not submitted (%s); run `icl sweep %s --summary` when " ..
      "the array is done\n", (stext:gsub("%s+$", "")), s.path))
  end
  files.append(dir .. "/jobs.jsonl", json.encode({array_job = job, summary_job = res.summary_job,
    n_cells = #indices, n_tasks = #tasks, array = grid.ranges(tasks), time = os.date("!%Y-%m-%dT%H:%M:%SZ")}) .. "\n")
  out:write(string.format("submitted array job %s (tasks %s%s), summary job %s\n", job, grid.ranges(tasks),
    s.slurm.array_limit and (", at most " .. s.slurm.array_limit .. " at once") or "",
    tostring(res.summary_job or "not submitted")))
  out:write(string.format("logs: %s/cell-<index>.out%s and each run's train.log; progress: icl sweep %s --status\n",
    dir, groups and " (index: a group's first cell)" or "", s.path))
  return res
end

return slurm
