--- One cell of a sweep on disk: its state, claiming it, and one attempt at
-- training it.
--
-- A cell's run directory holds what the trainer writes (status.json,
-- metrics.jsonl, checkpoints, ood_length.json, run.lock) plus three files of
-- the sweep's own:
--   sweep.lock      flock'ed while a sweep (or its trainer) works on the cell;
--                   its text says who: {"pid", "host", "sweep_pid", "since"}
--   train.log       the trainer's stdout and stderr, one header per attempt
--   attempts.jsonl  one "start" and one "end" record per attempt (exit code,
--                   error): a failure is never lost, even when the trainer
--                   died before it could write status.json
local core = require "icl.core"
local files = require "icl.sweep.files"
local json = require "icl.sweep.json"

local cell = {}

cell.LOCK, cell.LOG, cell.ATTEMPTS = "sweep.lock", "train.log", "attempts.jsonl"

local function now_iso() return os.date("!%Y-%m-%dT%H:%M:%SZ") end

local hostname
local function here()
  hostname = hostname or core.hostname()
  return hostname
end

function cell.log_path(c) return c.dir .. "/" .. cell.LOG end

--- the trainer's status.json (nil when absent or unreadable)
function cell.status(c)
  local st = json.read(c.dir .. "/status.json")
  return type(st) == "table" and st or nil
end

--- attempt records, oldest first
function cell.attempts(c)
  local text = files.read(c.dir .. "/" .. cell.ATTEMPTS)
  local out = {}
  if not text then return out end
  for line in text:gmatch("[^\n]+") do
    local ok, r = pcall(json.decode, line)
    if ok and type(r) == "table" then out[#out + 1] = r end
  end
  return out
end

--- a live process on this machine (a zombie, dead but not yet reaped, is not)
function cell.alive(pid)
  pid = math.tointeger(pid)
  if not pid or pid <= 0 or not core.pid_alive(pid) then return false end
  local st = files.read("/proc/" .. pid .. "/stat")
  local state = st and st:match(".*%) (%a)")
  return state ~= "Z" and state ~= "X"
end

local function pid_live(pid, host)
  if type(pid) ~= "number" then return false end
  if host and host ~= here() then return true end -- another machine: cannot check, trust the record
  return cell.alive(pid)
end

--- is the cell's sweep lock free? (taken and dropped at once: a sweep that
-- finds it busy at that instant waits a moment and tries again)
function cell.lock_free(c)
  if not files.exists(c.dir .. "/" .. cell.LOCK) then return true end
  local ok, lock = pcall(core.lock_file, c.dir .. "/" .. cell.LOCK)
  if not ok or not lock then return false end
  lock:release()
  return true
end

--- who is working on the cell now, or nil: the sweep lock's record when its
-- process lives (a record from another host, whose pid cannot be checked
-- here, counts while the lock is held), else the trainer's run.lock when
-- that process lives
function cell.holder(c, st)
  local rec = json.read(c.dir .. "/" .. cell.LOCK)
  if type(rec) == "table" and rec.pid then
    local remote = rec.host ~= nil and rec.host ~= here()
    if (remote and not cell.lock_free(c)) or
       (not remote and (pid_live(rec.pid, rec.host) or pid_live(rec.sweep_pid, rec.host))) then
      return {pid = rec.pid, host = rec.host, since = rec.since, sweep_pid = rec.sweep_pid, source = "sweep",
              remote = remote or nil}
    end
  end
  local pid = tonumber((files.read(c.dir .. "/run.lock") or ""):match("%d+"))
  st = st or cell.status(c)
  local host = st and st.host
  if pid and (host == nil or host == here()) and cell.alive(pid) then
    return {pid = pid, host = host or here(), source = "run.lock"}
  end
  return nil
end

--- steps done: status.json's step, or the newest step in metrics.jsonl when that is ahead
local function progress(c, st)
  local step, max_steps = st and tonumber(st.step), st and tonumber(st.max_steps)
  for _, line in ipairs(files.tail(c.dir .. "/metrics.jsonl", 1)) do
    local ok, r = pcall(json.decode, line)
    if ok and type(r) == "table" and tonumber(r.step) and (not step or r.step > step) then step = r.step end
  end
  return step, max_steps
end

--- the cell's state:
--   finished     status.json says finished
--   running      a live process holds it (this or another sweep, or a trainer started by hand)
--   failed       the last attempt failed (exit status, or status.json says failed)
--   interrupted  started before but stopped without finishing or failing (resumes from its checkpoint)
--   pending      never started
-- opts.ignore_lock: the caller holds the sweep lock itself.
-- Returns {state, step, max_steps, error, log, holder, attempts, status}.
function cell.inspect(c, opts)
  local st = cell.status(c)
  local info = {log = cell.log_path(c), status = st}
  info.step, info.max_steps = progress(c, st)
  local recs = cell.attempts(c)
  local starts, last = 0, recs[#recs]
  for _, r in ipairs(recs) do if r.event == "start" then starts = starts + 1 end end
  info.attempts = starts
  if st and st.state == "finished" then
    info.state = "finished"
    info.step = st.max_steps or info.step
    return info
  end
  local h
  if opts and opts.ignore_lock then
    local pid = tonumber((files.read(c.dir .. "/run.lock") or ""):match("%d+"))
    if pid and (not st or not st.host or st.host == here()) and cell.alive(pid) then
      h = {pid = pid, host = here(), source = "run.lock"}
    end
  else
    h = cell.holder(c, st)
  end
  if h then
    info.state, info.holder = "running", h
    return info
  end
  if (st and st.state == "failed") or (last and last.event == "end" and not last.ok) then
    info.state = "failed"
    info.error = (st and st.state == "failed" and st.error) or (last and last.error) or "failed"
    info.exit = last and last.event == "end" and (last.code or (last.signal and ("signal " .. last.signal))) or nil
    return info
  end
  info.state = (st or starts > 0) and "interrupted" or "pending"
  return info
end

--- claim a cell before training it: returns lock, info; or nil, why, info
-- with why = "busy" (someone else works on it), "finished", or "failed"
-- (unless opts.retry_failed). The state is read again under the lock, so a
-- cell that another sweep finished a moment ago is not trained twice.
function cell.claim(c, opts)
  files.mkdir_p(c.dir)
  local lock = core.lock_file(c.dir .. "/" .. cell.LOCK)
  if not lock then return nil, "busy", {state = "running", holder = cell.holder(c), log = cell.log_path(c)} end
  local info = cell.inspect(c, {ignore_lock = true})
  local why
  if info.state == "finished" then why = "finished"
  elseif info.state == "running" then why = "busy"
  elseif info.state == "failed" and not (opts and opts.retry_failed) then why = "failed" end
  if why then
    lock:release()
    return nil, why, info
  end
  return lock, info
end

local function record(c, r) files.append(c.dir .. "/" .. cell.ATTEMPTS, json.encode(r) .. "\n") end

--- start an attempt on a claimed cell. opts.env: extra environment.
-- Returns a run handle {cell, lock, pid, attempt, t0}; a trainer that cannot
-- be started is recorded as a failed attempt and returned with .result set.
function cell.start(c, lock, info, argv, opts)
  opts = opts or {}
  local attempt = (info.attempts or 0) + 1
  local me = core.getpid()
  local run = {cell = c, lock = lock, attempt = attempt, t0 = core.wall_time(), started = now_iso()}
  files.append(cell.log_path(c), string.format("\n==== icl sweep %s: attempt %d on %s at %s (%s)\n", opts.sweep or "",
    attempt, here(), run.started, info.state == "pending" and "new run" or ("was " .. info.state)))
  lock:write(json.encode({pid = me, sweep_pid = me, host = here(), since = run.started, attempt = attempt}) .. "\n")
  local ok, pid = pcall(core.spawn, argv, {log = cell.log_path(c), env = opts.env, inherit = {lock},
                                          die_with_parent = true, new_group = true})
  if not ok then
    local err = tostring(pid)
    files.append(cell.log_path(c), err .. "\n")
    record(c, {event = "start", attempt = attempt, host = here(), time = run.started, argv = argv, sweep = opts.sweep})
    record(c, {event = "end", attempt = attempt, ok = false, error = err, time = now_iso(), seconds = 0})
    lock:write("")
    lock:release()
    run.result = {ok = false, error = err}
    return run
  end
  run.pid = pid
  lock:write(json.encode({pid = pid, sweep_pid = me, host = here(), since = run.started, attempt = attempt}) .. "\n")
  record(c, {event = "start", attempt = attempt, pid = pid, host = here(), time = run.started, argv = argv,
             sweep = opts.sweep})
  return run
end

--- the step of the cell's newest checkpoint (0 when none): the step its trainer resumes from when
-- that checkpoint is sound
function cell.checkpoint_step(c)
  local best = 0
  for _, name in ipairs(files.list(c.dir)) do
    local n = tonumber(name:match("^checkpoint%-(%d+)%.safetensors$"))
    if n and n > best then best = n end
  end
  return best
end

--- start one trainer for several claimed cells (a group: members = {{cell, lock, info}}, in order).
-- Its output goes to the first cell's train.log; each other cell's train.log says where. Every cell
-- gets its own attempt records and keeps its lock, which the trainer inherits. Returns a handle
-- {cell = the first cell, members = {run handles as cell.start's}, pid}; a trainer that cannot be
-- started is recorded as a failed attempt of every cell, and returned with .result set.
function cell.start_group(members, argv, opts)
  opts = opts or {}
  local me = core.getpid()
  local started, t0 = now_iso(), core.wall_time()
  local log = cell.log_path(members[1].cell)
  local ids, locks, runs = {}, {}, {}
  for i, m in ipairs(members) do ids[i], locks[i] = m.cell.id, m.lock end
  for i, m in ipairs(members) do
    local c = m.cell
    local attempt = (m.info.attempts or 0) + 1
    runs[i] = {cell = c, lock = m.lock, attempt = attempt, t0 = t0, started = started, log = log, grouped = true}
    files.append(cell.log_path(c), string.format("\n==== icl sweep %s: attempt %d on %s at %s (%s), in one process " ..
      "with %s%s\n", opts.sweep or "", attempt, here(), started, m.info.state == "pending" and "new run" or
      ("was " .. m.info.state), table.concat(ids, ", "), i > 1 and ("; its output is in " .. log) or ""))
  end
  local ok, pid = pcall(core.spawn, argv, {log = log, env = opts.env, inherit = locks, die_with_parent = true,
                                          new_group = true})
  local handle = {cell = members[1].cell, members = runs, t0 = t0}
  for _, r in ipairs(runs) do
    local c = r.cell
    if ok then
      r.pid = pid
      r.lock:write(json.encode({pid = pid, sweep_pid = me, host = here(), since = started, attempt = r.attempt,
                                group = ids}) .. "\n")
    end
    record(c, {event = "start", attempt = r.attempt, pid = ok and pid or nil, host = here(), time = started,
               argv = argv, sweep = opts.sweep, group = ids})
    if not ok then
      files.append(cell.log_path(c), tostring(pid) .. "\n")
      record(c, {event = "end", attempt = r.attempt, ok = false, error = tostring(pid), time = now_iso(), seconds = 0})
      r.lock:write("")
      r.lock:release()
    end
  end
  if not ok then
    handle.result = {ok = false, error = tostring(pid)}
    return handle
  end
  handle.pid = pid
  return handle
end

--- the error of a failed attempt: status.json's, else the log's last lines
local function error_of(c, st, w, log)
  if st and st.state == "failed" and st.error then return tostring(st.error) end
  local how = w.code and ("exit " .. w.code) or ("killed by signal " .. tostring(w.signal))
  local lines = files.tail(log or cell.log_path(c), 2)
  if #lines > 0 then return how .. ": " .. table.concat(lines, " | "):sub(1, 400) end
  return how
end

--- record how an attempt ended (w: core.waitpid's table) and release the cell.
-- Returns {ok, error, code, signal, seconds}.
function cell.finish(run, w)
  local c = run.cell
  local st = cell.status(c)
  local res = {code = w.code, signal = w.signal, seconds = core.wall_time() - run.t0}
  -- a run of a group is judged by its own status: the trainer exits 1 when any of its runs failed
  if (w.code == 0 or run.grouped) and st and st.state == "finished" then
    res.ok = true
  else
    res.ok = false
    if w.code == 0 then
      res.error = string.format("the trainer exited 0 but %s", st and ("status.json says '" .. tostring(st.state) ..
        "'") or "wrote no status.json")
    else
      res.error = error_of(c, st, w, run.log)
    end
  end
  record(c, {event = "end", attempt = run.attempt, pid = run.pid, ok = res.ok, code = w.code, signal = w.signal,
             error = res.error, time = now_iso(), seconds = math.floor(res.seconds * 10 + 0.5) / 10})
  run.lock:write("")
  run.lock:release()
  run.result = res
  return res
end

return cell
