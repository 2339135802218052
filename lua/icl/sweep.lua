--- Sweeps: a grid of training runs (tasks × encodings × sizes × seeds) run
-- locally with a bounded number of trainer processes, or on Slurm as one
-- job array; resumable, safe to run twice at once over the same tree, and
-- summarised as mean ± std over seeds. See docs/sweeps.md.
--
--   icl sweep SPEC                 run the grid here (--jobs N, --retry-failed)
--   icl sweep SPEC --status        progress from the run directories (--json)
--   icl sweep SPEC --summary       build summary.md / summary.json (and figures)
--   icl sweep SPEC --slurm         submit one job array (+ a summary job)
--   icl sweep SPEC --cell I        train cell I only (what each array task runs)
--
-- The trainer is `icl train` unless ICL_SWEEP_TRAIN_CMD (or the spec's
-- train_cmd) names another command with the same contract.
local core = require "icl.core"
local files = require "icl.sweep.files"
local json = require "icl.sweep.json"
local specm = require "icl.sweep.spec"
local grid = require "icl.sweep.grid"
local cellm = require "icl.sweep.cell"
local runner = require "icl.sweep.runner"
local status = require "icl.sweep.status"
local summary = require "icl.sweep.summary"
local slurm = require "icl.sweep.slurm"

local sweep = {}

--- load a spec (path or normalised table) and expand its grid
function sweep.load(spec, opts)
  local s = type(spec) == "table" and spec or specm.load(spec)
  return s, grid.expand(s, opts)
end

--- how to run this icl again (the array tasks, the default trainer): the
-- command this process was started as (bin/icl exports ICL_COMMAND), else
-- bin/icl of the source tree this module came from, else `icl` in PATH
function sweep.self_cmd()
  local self = os.getenv("ICL_COMMAND")
  if self and self:match("%S") and files.exists(self) then return {files.abspath(self)} end
  local root = specm.source_root()
  if root and files.exists(root .. "/bin/icl") then return {root .. "/bin/icl"} end
  return {"icl"}
end

--- the trainer's argv prefix: ICL_SWEEP_TRAIN_CMD, the spec's train_cmd, or `icl train`
function sweep.train_cmd(s)
  local env = os.getenv("ICL_SWEEP_TRAIN_CMD")
  if env and env:match("%S") then return specm.split_words(env) end
  if s.train_cmd then return s.train_cmd end
  local cmd = sweep.self_cmd()
  cmd[#cmd + 1] = "train"
  return cmd
end

local function write_grid(s, cells)
  files.mkdir_p(s.sweep_dir)
  local text = json.encode(grid.describe(s, cells), {indent = "  "}) .. "\n"
  if files.read(s.sweep_dir .. "/grid.json") ~= text then files.write_atomic(s.sweep_dir .. "/grid.json", text) end
end

--- the final lines of a local run
local function report(s, cells, rep, out)
  local col = status.collect(s, cells)
  local c = col.counts
  out:write(string.format("sweep %s: %d cells: %d finished, %d failed, %d running elsewhere, %d interrupted, " ..
    "%d pending (this run: %d started, %d finished, %d failed in %s)\n", s.name, #cells, c.finished, c.failed,
    c.running, c.interrupted, c.pending, rep.started, rep.finished, #rep.failed, runner.fmt_time(rep.seconds)))
  for _, e in ipairs(col.cells) do
    if e.info.state == "failed" then
      out:write(string.format("  failed   %s: %s\n           log: %s\n", e.cell.id,
        (tostring(e.info.error):gsub("\n", " | ")), e.info.log))
    end
  end
  for _, e in ipairs(col.cells) do
    if e.info.state == "running" then
      out:write(string.format("  running  %s: by %s (not started twice; follow it with --status)\n", e.cell.id,
        runner.describe_holder(e.info.holder)))
    end
  end
  if c.failed > 0 then out:write("  failed cells run again with --retry-failed\n") end
  return col
end

--- run the grid on this machine. opts: jobs, retry_failed, dry_run, out, tty, poll
-- Returns the final status collection and the run report.
function sweep.run(spec, opts)
  opts = opts or {}
  local out = opts.out or io.stdout
  local s, cells = sweep.load(spec)
  local train_cmd = sweep.train_cmd(s)
  if opts.dry_run then
    local col = status.collect(s, cells)
    local function show(argv)
      for i, w in ipairs(argv) do argv[i] = slurm.quote(w) end
      out:write("      " .. table.concat(argv, " ") .. "\n")
    end
    local grouped = {}
    for _, e in ipairs(col.cells) do
      local st = e.info.state
      local todo = st == "pending" or st == "interrupted" or (st == "failed" and opts.retry_failed)
      out:write(string.format("%4d  %-12s %s\n", e.cell.index, st, e.cell.id))
      if todo and s.group then
        grouped[#grouped + 1] = e.cell
      elseif todo then
        show(grid.train_argv(s, e.cell, train_cmd))
      end
    end
    -- as the runner groups them: one task, encoding and size, at the same step
    for _, part in ipairs(runner.partition(grouped)) do
      out:write(string.format("group of %d:\n", #part))
      show(#part > 1 and grid.group_argv(s, part, train_cmd) or grid.train_argv(s, part[1], train_cmd))
    end
    return col
  end
  write_grid(s, cells)
  local rep = runner.run(s, cells, {jobs = opts.jobs, retry_failed = opts.retry_failed, train_cmd = train_cmd,
                                    out = opts.progress_out, tty = opts.tty, poll = opts.poll, every = opts.every})
  local _, md = summary.build(s, cells, {quiet = true})
  local col = report(s, cells, rep, out)
  out:write("summary: " .. md .. "\n")
  return col, rep
end

--- train exactly one cell (0-based index), as a Slurm array task does; with `group: seeds`, the
-- group planned for it (slurm/groups.json, see slurm.lua). Returns true when every cell it trained
-- finished (or the cell was finished before, or someone else holds it), false when one failed.
function sweep.run_cell(spec, index, opts)
  opts = opts or {}
  local out = opts.out or io.stdout
  local s, cells = sweep.load(spec)
  local c = cells[index + 1]
  if not c then error(string.format("--cell %d: the grid has cells 0..%d", index, #cells - 1), 0) end
  local frozen = json.read(s.sweep_dir .. "/grid.json")
  if type(frozen) == "table" and type(frozen.cells) == "table" then
    local was = frozen.cells[index + 1]
    if was and was.id ~= c.id then
      error(string.format("--cell %d: the spec changed since grid.json was written (cell %d is %s now, was %s); " ..
        "resubmit the sweep", index, index, c.id, tostring(was.id)), 0)
    end
  end
  -- with group: seeds the array task trains the group `icl sweep --slurm` planned for this index
  -- (slurm/groups.json): the first cell of it that can be claimed leads, the others join when they are
  -- of the same task, encoding and size and at its step (they are then trained by no other task)
  local list = {index}
  if s.group then
    local g = json.read(s.sweep_dir .. "/slurm/groups.json")
    local planned = type(g) == "table" and type(g.groups) == "table" and g.groups[tostring(index)]
    if type(planned) == "table" then
      for _, j in ipairs(planned) do
        if math.tointeger(j) and j ~= index and cells[j + 1] then list[#list + 1] = j end
      end
    end
  end
  local members, step = {}, nil
  for _, j in ipairs(list) do
    local o = cells[j + 1]
    local first = members[1] and members[1].cell
    if not first or (o.group == first.group and o.config == first.config and cellm.checkpoint_step(o) == step) then
      local lock, a, b = cellm.claim(o, {retry_failed = true})
      if lock then
        members[#members + 1] = {cell = o, lock = lock, info = a}
        step = step or cellm.checkpoint_step(o)
      elseif a == "finished" then
        out:write(string.format("cell %d %s: already finished\n", j, o.id))
      else
        out:write(string.format("cell %d %s: skipped, being run by %s\n", j, o.id,
          runner.describe_holder(b and b.holder)))
      end
    else
      out:write(string.format("cell %d %s: not at step %d with cell %d; left for another submission\n", j, o.id,
        step, first.index))
    end
  end
  out:flush()
  if #members == 0 then return true end
  local jobs_env = tonumber(os.getenv("SLURM_CPUS_PER_TASK") or "")
  local env = runner.child_env(s, 1)
  if jobs_env then
    env.ICL_NUM_THREADS = os.getenv("ICL_NUM_THREADS") or tostring(jobs_env)
    env.OMP_NUM_THREADS = os.getenv("OMP_NUM_THREADS") or tostring(jobs_env)
  end
  local r
  if #members > 1 then
    local group = {}
    for i, m in ipairs(members) do group[i] = m.cell end
    r = cellm.start_group(members, grid.group_argv(s, group, sweep.train_cmd(s)), {env = env, sweep = s.name})
  else
    local m = members[1]
    r = cellm.start(m.cell, m.lock, m.info, grid.train_argv(s, m.cell, sweep.train_cmd(s)),
                    {env = env, sweep = s.name})
  end
  local runs = r.members or {r}
  if r.result then
    for _, m in ipairs(runs) do
      out:write(string.format("cell %d %s: FAILED: %s\n", m.cell.index, m.cell.id, r.result.error))
    end
    return false
  end
  for i, m in ipairs(members) do
    out:write(string.format("cell %d %s: %s (pid %d on %s%s), log %s\n", m.cell.index, m.cell.id,
      m.info.state == "pending" and "started" or ("resumed, was " .. m.info.state), r.pid, core.hostname(),
      #members > 1 and string.format(", one process for %d cells", #members) or "", cellm.log_path(m.cell)))
    if i == 1 then out:flush() end
  end
  out:flush()
  local w
  repeat
    w = core.waitpid(r.pid, {nohang = true})
    if not w then core.sleep(opts.poll or 0.5) end
  until w
  local all = true
  for _, run in ipairs(runs) do
    local res = cellm.finish(run, w)
    local c2 = run.cell
    if res.ok then
      out:write(string.format("cell %d %s: finished in %s\n", c2.index, c2.id, runner.fmt_time(res.seconds)))
    else
      out:write(string.format("cell %d %s: FAILED: %s\n  log: %s\n", c2.index, c2.id, res.error,
        run.log or cellm.log_path(c2)))
      all = false
    end
  end
  out:flush()
  return all
end

--- --status: returns the collection; prints text (or JSON with opts.json)
function sweep.status(spec, opts)
  opts = opts or {}
  local out = opts.out or io.stdout
  local s, cells = sweep.load(spec, {check_configs = false})
  local col = status.collect(s, cells)
  if opts.json then
    out:write(json.encode(status.to_table(s, cells, col), {indent = "  "}) .. "\n")
  else
    out:write(status.render(s, cells, col))
  end
  return col
end

--- --summary: build summary.md / summary.json (and figures); returns data, path
function sweep.summary(spec, opts)
  opts = opts or {}
  local s, cells = sweep.load(spec, {check_configs = false})
  local data, md = summary.build(s, cells, opts)
  local out = opts.out or io.stdout
  local n = 0
  for _, r in ipairs(data.cells) do if r.state == "finished" then n = n + 1 end end
  out:write(string.format("summary of %s (%d of %d cells finished): %s and summary.json\n", s.name, n, #cells, md))
  for _, note in ipairs(data.notes or {}) do out:write("note: " .. note .. "\n") end
  return data, md
end

--- --slurm: write the job scripts and submit them
function sweep.submit(spec, opts)
  opts = opts or {}
  local s, cells = sweep.load(spec)
  return slurm.submit(s, cells, {self_cmd = opts.self_cmd or sweep.self_cmd(), cwd = require("lfs").currentdir(),
                                 retry_failed = opts.retry_failed, dry_run = opts.dry_run, out = opts.out})
end

--- the `icl sweep` subcommand
function sweep.cli(spec_path, a)
  local modes = {}
  for _, m in ipairs({"status", "summary", "slurm", "cell"}) do if a[m] then modes[#modes + 1] = "--" .. m end end
  if #modes > 1 then error("sweep: " .. table.concat(modes, " and ") .. " cannot be combined", 0) end
  if a.json and not a.status then error("sweep: --json goes with --status", 0) end
  if a.status then
    sweep.status(spec_path, {json = a.json})
  elseif a.summary then
    sweep.summary(spec_path)
  elseif a.slurm then
    sweep.submit(spec_path, {retry_failed = a.retry_failed, dry_run = a.dry_run})
  elseif a.cell then
    local i = math.tointeger(a.cell)
    if not i or i < 0 then error("sweep: --cell takes a cell index (0-based)", 0) end
    if not sweep.run_cell(spec_path, i) then os.exit(1) end
  else
    if a.jobs and (a.jobs < 1 or not math.tointeger(a.jobs)) then
      error("sweep: --jobs must be a positive integer", 0)
    end
    local col = sweep.run(spec_path, {jobs = a.jobs and math.tointeger(a.jobs), retry_failed = a.retry_failed,
                                      dry_run = a.dry_run})
    io.stdout:flush()
    if not a.dry_run and col.counts.failed > 0 then os.exit(1) end
  end
end

return sweep
