-- Helpers for the sweep specs: temporary trees with dummy task configs, Lua
-- sweep specs, and `icl sweep` processes running the fake trainer
-- (tests/sweep/fake_train.sh).
local core = require "icl.core"

local fx = {}

fx.root = os.getenv("ICL_SOURCE_DIR") or "."
fx.bin = os.getenv("ICL_BIN") or (fx.root .. "/bin/icl")
fx.fake = fx.root .. "/tests/sweep/fake_train.sh"

function fx.tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p " .. d))
  return d
end

function fx.rm(d) os.execute("rm -rf '" .. d .. "'") end

function fx.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

function fx.write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

--- dummy configs dir/cfg/<task>/<encoding>.yaml
function fx.configs(dir, tasks, encodings)
  for _, t in ipairs(tasks) do
    assert(os.execute("mkdir -p " .. dir .. "/cfg/" .. t))
    for _, e in ipairs(encodings) do fx.write(string.format("%s/cfg/%s/%s.yaml", dir, t, e), "task: " .. t .. "\n") end
  end
end

local function lua_literal(v, indent)
  indent = indent or ""
  if type(v) == "table" then
    local parts, n = {}, #v
    for i = 1, n do parts[#parts + 1] = lua_literal(v[i], indent .. "  ") end
    local keys = {}
    for k in pairs(v) do if not (math.type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end end
    table.sort(keys)
    for _, k in ipairs(keys) do parts[#parts + 1] = string.format("[%q] = %s", k, lua_literal(v[k], indent .. "  ")) end
    return "{" .. table.concat(parts, ", ") .. "}"
  elseif type(v) == "string" then
    return string.format("%q", v)
  end
  return tostring(v)
end

--- a Lua spec file in dir; defaults: configs under dir/cfg, runs under dir/out
function fx.spec(dir, t, name)
  t.output_dir = t.output_dir or (dir .. "/out")
  t.config = t.config or (dir .. "/cfg/{task}/{encoding}.yaml")
  fx.configs(dir, t.tasks, t.encodings)
  local path = dir .. "/" .. (name or "spec") .. ".lua"
  fx.write(path, "return " .. lua_literal(t) .. "\n")
  return path
end

--- start `icl sweep ARGS...` with the fake trainer; returns pid, log path
function fx.start(dir, args, env, tag)
  local argv = {fx.bin, "sweep"}
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local e = {ICL_SWEEP_TRAIN_CMD = fx.fake, FAKE_STEP_SLEEP = "0.05", FAKE_FAIL = false, FAKE_CRASH = false,
             FAKE_SLOW = false, FAKE_EVENTS = false}
  for k, v in pairs(env or {}) do e[k] = v end
  local log = string.format("%s/%s.out", dir, tag or "sweep")
  os.remove(log)
  return core.spawn(argv, {log = log, env = e}), log
end

function fx.wait(pid, timeout)
  local t0 = core.wall_time()
  while core.wall_time() - t0 < (timeout or 120) do
    local w = core.waitpid(pid, {nohang = true})
    if w then return w end
    core.sleep(0.05)
  end
  core.kill(pid, "KILL")
  error("process " .. pid .. " did not finish in time")
end

--- run `icl sweep ARGS...` to the end: exit code, output
function fx.run(dir, args, env, tag)
  local pid, log = fx.start(dir, args, env, tag)
  local w = fx.wait(pid)
  return w.code or -w.signal, fx.read(log) or ""
end

--- lines of a cell's fake_trainer.log: starts (list of from-steps), finishes (count)
function fx.trainer_log(cell_dir)
  local starts, finishes = {}, 0
  for line in (fx.read(cell_dir .. "/fake_trainer.log") or ""):gmatch("[^\n]+") do
    local from = line:match("^start %d+ (%d+)")
    if from then starts[#starts + 1] = tonumber(from) end
    if line:match("^finish") then finishes = finishes + 1 end
  end
  return starts, finishes
end

return fx
