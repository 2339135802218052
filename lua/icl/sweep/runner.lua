--- Running a sweep's cells on this machine: at most `jobs` trainer
-- processes at once (and at most `per_gpu` on each GPU), a live status line,
-- and a record of every attempt. Cells that are finished are skipped; cells
-- that another process is working on are skipped and reported; interrupted
-- cells are started again (the trainer resumes from the newest checkpoint);
-- failed cells are retried only with retry_failed. With `group: seeds`,
-- the seeds of one task, encoding and size that are at the same step train
-- in one trainer process (icl train --seeds, docs/runner.md "Grouped
-- runs"), which takes one of the `jobs` slots.
local core = require "icl.core"
local files = require "icl.sweep.files"
local grid = require "icl.sweep.grid"
local cellm = require "icl.sweep.cell"

local runner = {}

local function fmt_time(s)
  s = math.floor(s + 0.5)
  if s >= 3600 then return string.format("%dh%02dm", s // 3600, (s % 3600) // 60) end
  if s >= 60 then return string.format("%dm%02ds", s // 60, s % 60) end
  return string.format("%ds", s)
end
runner.fmt_time = fmt_time

function runner.num_cpus()
  local text = files.read("/proc/cpuinfo") or ""
  local n = 0
  for _ in text:gmatch("\nprocessor%s*:") do n = n + 1 end
  if text:match("^processor%s*:") then n = n + 1 end
  return math.max(1, n)
end

--- GPUs this machine offers to the sweep (ids for CUDA_VISIBLE_DEVICES)
function runner.gpus(s)
  if s.device == "cpu" then return {} end
  if s.gpus then return s.gpus end
  local vis = os.getenv("CUDA_VISIBLE_DEVICES")
  if vis then
    local out = {}
    for g in vis:gmatch("[^,%s]+") do if g ~= "-1" and g ~= "NoDevFiles" then out[#out + 1] = g end end
    return out
  end
  local ids = {}
  for _, name in ipairs(files.list("/dev")) do
    local k = name:match("^nvidia(%d+)$")
    if k then ids[#ids + 1] = tonumber(k) end
  end
  table.sort(ids)
  local out = {}
  for _, k in ipairs(ids) do out[#out + 1] = tostring(k) end
  return out
end

--- how many trainers run at once, and on which GPUs
function runner.slots(s, jobs)
  local gpus = runner.gpus(s)
  if s.device == "cuda" and #gpus == 0 then error("sweep: device is cuda but this machine shows no GPU", 0) end
  local n = jobs or s.jobs
  if #gpus > 0 then
    local cap = #gpus * s.per_gpu
    n = math.min(n or cap, cap)
  end
  return math.max(1, n or 1), gpus
end

--- environment of a trainer: the spec's env, a fair share of the CPU
-- threads, and its GPU
function runner.child_env(s, jobs, gpu)
  local env = {}
  for k, v in pairs(s.env) do env[k] = v end
  local threads = tostring(math.max(1, runner.num_cpus() // jobs))
  if not env.ICL_NUM_THREADS and not os.getenv("ICL_NUM_THREADS") then env.ICL_NUM_THREADS = threads end
  if not env.OMP_NUM_THREADS and not os.getenv("OMP_NUM_THREADS") then env.OMP_NUM_THREADS = threads end
  if gpu then env.CUDA_VISIBLE_DEVICES = gpu end
  return env
end

local function describe_holder(h)
  if not h then return "another process" end
  if h.source == "run.lock" then
    return string.format("a trainer (pid %s on %s; remove its run.lock if that is wrong)", tostring(h.pid),
      tostring(h.host))
  end
  if h.sweep_pid and h.pid ~= h.sweep_pid then
    return string.format("a sweep (pid %s on %s, trainer pid %s)", tostring(h.sweep_pid), tostring(h.host),
      tostring(h.pid))
  end
  return string.format("a sweep (pid %s on %s)", tostring(h.sweep_pid or h.pid), tostring(h.host))
end
runner.describe_holder = describe_holder

--- With `group: seeds`: the cells to train with the claimed cell c in one process, c included, in grid
-- order: c and the queued cells of its task, encoding and size whose newest checkpoint is at c's step
-- (a trainer group steps its runs together), each claimed here and taken off the queue; at most
-- runner.GROUP_MAX. Cells that cannot be claimed now stay queued and are handled alone.
runner.GROUP_MAX = 64 -- as many runs as one group step takes (engine/models/group.h)
function runner.claim_group(c, lock, info, queue, deferred, opts)
  local members = {{cell = c, lock = lock, info = info}}
  local step = cellm.checkpoint_step(c)
  local i = 1
  while i <= #queue and #members < runner.GROUP_MAX do
    local o = queue[i]
    local taken = false
    if o.group == c.group and o.config == c.config and not deferred[o.index] and cellm.checkpoint_step(o) == step then
      local olock, oinfo = cellm.claim(o, {retry_failed = opts.retry_failed})
      if olock then
        members[#members + 1] = {cell = o, lock = olock, info = oinfo}
        table.remove(queue, i)
        taken = true
      end
    end
    if not taken then i = i + 1 end
  end
  table.sort(members, function(a, b) return a.cell.index < b.cell.index end)
  return members
end

--- With `group: seeds`: cells to train (in grid order) split as trainers take them: the cells of one
-- task, encoding and size at the same checkpoint step, at most runner.GROUP_MAX to a trainer, in
-- order of first appearance. Returns a list of lists of cells (a list of one: a cell alone).
function runner.partition(cells)
  local groups, order = {}, {}
  for _, c in ipairs(cells) do
    local key = c.group .. "@" .. c.config .. "@" .. cellm.checkpoint_step(c)
    if not groups[key] then groups[key], order[#order + 1] = {}, key end
    table.insert(groups[key], c)
  end
  local parts = {}
  for _, key in ipairs(order) do
    local list = groups[key]
    for k = 1, #list, runner.GROUP_MAX do
      parts[#parts + 1] = table.move(list, k, math.min(#list, k + runner.GROUP_MAX - 1), 1, {})
    end
  end
  return parts
end

--- run the cells. opts: jobs, retry_failed, train_cmd (argv prefix), out
-- (stream, default stderr), tty (default: out is a terminal), poll
-- (seconds). Returns a report: {started, finished, failed = {{cell, error,
-- log}}, busy = {{cell, holder}}, skipped_failed = {...}}.
function runner.run(s, cells, opts)
  opts = opts or {}
  local out = opts.out or io.stderr
  local tty = opts.tty
  if tty == nil then tty = out == io.stderr and core.isatty(2) end
  local jobs, gpus = runner.slots(s, opts.jobs)
  local gpu_load = {}
  for _, g in ipairs(gpus) do gpu_load[g] = 0 end
  local t0 = core.wall_time()
  local rep = {started = 0, finished = 0, already = 0, failed = {}, busy = {}, skipped_failed = {}, jobs = jobs}

  local function say(text)
    if tty then out:write("\r\27[K") end
    out:write(os.date("%H:%M:%S "), text, "\n")
    out:flush()
  end

  -- cells that look busy are queued too: the claim (an flock) decides
  local queue, busy_now = {}, 0
  for _, c in ipairs(cells) do
    local info = cellm.inspect(c)
    if info.state == "finished" then
      rep.already = rep.already + 1
    elseif info.state == "failed" and not opts.retry_failed then
      rep.skipped_failed[#rep.skipped_failed + 1] = {cell = c, error = info.error, log = info.log}
    else
      if info.state == "running" then busy_now = busy_now + 1 end
      queue[#queue + 1] = c
    end
  end
  local function plural(n, word) return string.format("%d %s%s", n, word, n == 1 and "" or "s") end
  say(string.format("sweep %s: %s; %d finished, %d to run (%d at a time%s)%s%s", s.name, plural(#cells, "cell"),
    rep.already, #queue, jobs, #gpus > 0 and string.format(" on %s", plural(#gpus, "GPU")) or "",
    busy_now > 0 and string.format(", %d of them being run by another process now", busy_now) or "",
    #rep.skipped_failed > 0 and string.format(", %d failed before (rerun with --retry-failed)", #rep.skipped_failed)
    or ""))

  local running, last_line, last_plain = {}, 0, core.wall_time()
  local function status_line()
    local parts = {}
    for _, r in ipairs(running) do
      for _, m in ipairs(r.members or {r}) do
        local st = cellm.status(m.cell)
        local step = st and st.step
        parts[#parts + 1] = m.cell.id .. (step and st.max_steps and string.format(" %d/%d", step, st.max_steps) or "")
      end
    end
    return string.format("[%s] %d/%d finished · %d running · %d failed · %d queued%s · %s%s", s.name,
      rep.already + rep.finished, #cells, #running, #rep.failed, #queue,
      #rep.busy > 0 and string.format(" · %d elsewhere", #rep.busy) or "", fmt_time(core.wall_time() - t0),
      #parts > 0 and (" | " .. table.concat(parts, ", ")) or "")
  end

  local function pick_gpu()
    local best
    for _, g in ipairs(gpus) do
      if gpu_load[g] < s.per_gpu and (not best or gpu_load[g] < gpu_load[best]) then best = g end
    end
    return best
  end

  -- A cell whose lock is held although no holder process is alive, or whose
  -- holder is the trainer of a sweep that is gone, belongs to a process that
  -- is still exiting (a sweep killed a moment ago, whose trainers get SIGTERM
  -- from the kernel as their parent dies): it is tried again for a few seconds.
  local grace, deferred = opts.grace or 10, {}
  local function exiting(h)
    if not h then return true end
    return not h.remote and h.source == "sweep" and h.sweep_pid ~= nil and not cellm.alive(h.sweep_pid)
  end
  local function next_ready(now)
    for i, c in ipairs(queue) do
      local d = deferred[c.index]
      if not d or now >= d.retry_at then return table.remove(queue, i) end
    end
  end

  local train_cmd = opts.train_cmd
  while true do
    while #running < jobs do
      local c = next_ready(core.wall_time())
      if not c then break end
      local lock, why, info = cellm.claim(c, {retry_failed = opts.retry_failed})
      if lock then info, why = why, nil end -- claim returns lock, info on success
      if not lock then
        local now = core.wall_time()
        local d = deferred[c.index]
        if why == "finished" then
          rep.already = rep.already + 1
        elseif why == "busy" and exiting(info and info.holder) and (not d or now < d.deadline) then
          deferred[c.index] = {retry_at = now + 0.5, deadline = d and d.deadline or now + grace}
          queue[#queue + 1] = c
        elseif why == "busy" then
          rep.busy[#rep.busy + 1] = {cell = c, holder = info and info.holder}
          say(string.format("skip %s: being run by %s", c.id, describe_holder(info and info.holder)))
        else
          rep.skipped_failed[#rep.skipped_failed + 1] = {cell = c, error = info.error, log = info.log}
        end
      else
        local gpu = #gpus > 0 and pick_gpu() or nil
        local members = s.group and runner.claim_group(c, lock, info, queue, deferred, opts) or {}
        local r
        if #members > 1 then
          local list = {}
          for i, m in ipairs(members) do list[i] = m.cell end
          r = cellm.start_group(members, grid.group_argv(s, list, train_cmd),
                                {env = runner.child_env(s, jobs, gpu), sweep = s.name})
        else
          r = cellm.start(c, lock, info, grid.train_argv(s, c, train_cmd),
                          {env = runner.child_env(s, jobs, gpu), sweep = s.name})
        end
        local how = info.state == "pending" and "new" or
          (info.state == "failed" and "retrying" or "resuming, was " .. info.state)
        if r.result then
          for _, m in ipairs(r.members or {r}) do
            rep.failed[#rep.failed + 1] = {cell = m.cell, error = r.result.error, log = cellm.log_path(m.cell)}
            say(string.format("FAILED %s: %s", m.cell.id, r.result.error))
          end
        else
          r.gpu = gpu
          if gpu then gpu_load[gpu] = gpu_load[gpu] + 1 end
          running[#running + 1] = r
          if r.members then
            local ids = {}
            for i, m in ipairs(r.members) do ids[i] = m.cell.id end
            rep.started = rep.started + #r.members
            say(string.format("start %s in one process (%s, pid %d%s)", table.concat(ids, ", "), how, r.pid,
              gpu and (", GPU " .. gpu) or ""))
          else
            rep.started = rep.started + 1
            say(string.format("start %s (%s, pid %d%s)", c.id, how, r.pid, gpu and (", GPU " .. gpu) or ""))
          end
        end
      end
    end
    if #running == 0 and #queue == 0 then break end
    local changed = false
    for i = #running, 1, -1 do
      local r = running[i]
      local w = core.waitpid(r.pid, {nohang = true})
      if w then
        table.remove(running, i)
        if r.gpu then gpu_load[r.gpu] = gpu_load[r.gpu] - 1 end
        changed = true
        for _, m in ipairs(r.members or {r}) do
          local res = cellm.finish(m, w)
          if res.ok then
            rep.finished = rep.finished + 1
            say(string.format("done %s in %s", m.cell.id, fmt_time(res.seconds)))
          else
            local log = m.log or cellm.log_path(m.cell)
            rep.failed[#rep.failed + 1] = {cell = m.cell, error = res.error, log = log}
            say(string.format("FAILED %s: %s (log: %s)", m.cell.id, res.error, log))
          end
        end
      end
    end
    local now = core.wall_time()
    if tty and (changed or now - last_line >= 1) then
      local line, width = status_line(), tonumber(os.getenv("COLUMNS") or "") or 160
      local cut = utf8.len(line) and utf8.offset(line, width + 1)
      out:write("\r\27[K", cut and line:sub(1, cut - 1) or line)
      out:flush()
      last_line = now
    elseif not tty and now - last_plain >= (opts.every or 60) then
      say(status_line())
      last_plain = now
    end
    if not changed then core.sleep(opts.poll or 0.25) end
  end
  if tty then out:write("\r\27[K") end
  rep.seconds = core.wall_time() - t0
  return rep
end

return runner
