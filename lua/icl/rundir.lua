--- Run directories: models/<task>/dim_<a>-<b>/<date>/<uid>/ holding the
-- resolved config.yaml, checkpoints, metrics.jsonl, status.json and plots.
-- A run writes only inside its own directory; a lock (flock on run.lock, which
-- holds the owner's pid) stops two processes from training one run at once.
local core = require "icl.core"
local io_ = require "icl.io"
local json = require "icl.json"

local rundir = {}

function rundir.encoding_name(run)
  if (run.model.family or ""):lower():find("mamba") then return "mamba" end
  local rs = run.patch and run.patch.rope_scaling
  local t = rs and rs.type
  if not t or t == "none" or t == "default" then return "rope" end
  return (t:gsub("%-", "_"))
end

function rundir.dims_label(run)
  local c = run.task.curriculum and run.task.curriculum.dims
  if c then return string.format("dim_%d-%d", c.start, c["end"]) end
  return "dim_" .. tostring(run.task.n_dims)
end

--- a new, unused directory for this run
function rundir.new_path(run)
  local root = run.output_dir or "models"
  local parent = table.concat({root, run.task.name, rundir.dims_label(run), os.date("%Y-%m-%d")}, "/")
  io_.mkdir_p(parent)
  local stem = string.format("%s-s%d-%s", rundir.encoding_name(run), run.training.seed or 0, os.date("%H%M%S"))
  local path, k = parent .. "/" .. stem, 1
  while io_.file_exists(path) do
    k = k + 1
    path = string.format("%s/%s-%d", parent, stem, k)
  end
  return path
end

--- Claim a run directory for this process: an flock on run.lock (released by
-- the kernel when the process dies, even by SIGKILL) holding the owner's pid,
-- which sweeps read. Returns the lock (give it to rundir.unlock).
function rundir.lock(path)
  local file = path .. "/run.lock"
  local function holder()
    local text = io_.file_exists(file) and io_.read_file(file) or ""
    return tonumber(text:match("%d+"))
  end
  local lock = core.lock_file(file)
  if not lock then
    error(string.format("run %s is being trained by process %s (it holds %s)", path, tostring(holder() or "?"),
      file), 0)
  end
  -- a pid written by a trainer that did not take the flock (older icl) counts while it lives
  local pid = holder()
  if pid and pid ~= core.getpid() and core.pid_alive(pid) then
    lock:release()
    error(string.format("run %s is being trained by process %d (remove %s if that is wrong)", path, pid, file), 0)
  end
  lock:write(tostring(core.getpid()) .. "\n")
  return lock
end

--- Give the run directory back (the file stays, empty: removing it would race with a new owner).
function rundir.unlock(path, lock)
  if lock then
    pcall(lock.write, lock, "")
    lock:release()
  else
    io_.remove(path .. "/run.lock")
  end
end

--- status.json (state, step, max_steps, pid, error); never raises: the status is advisory
-- and a full disk must not turn into a second failure. Returns true or nil, message.
function rundir.write_status(path, status)
  status.updated = os.date("!%Y-%m-%dT%H:%M:%SZ")
  status.host = status.host or core.hostname()
  local ok, err = pcall(io_.write_file_atomic, path .. "/status.json", json.encode(status) .. "\n")
  if not ok then
    -- Ctrl-C raises "interrupted!" wherever Lua happens to be: never swallow it
    if tostring(err):find("interrupted!$") then error(err, 0) end
    return nil, tostring(err)
  end
  return true
end

function rundir.read_status(path)
  local f = io.open(path .. "/status.json", "r")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  local ok, st = pcall(json.decode, text)
  return ok and st or nil
end

return rundir
