-- The process helpers behind sweeps (engine/lua/lua_proc.c, lua_flock.c):
-- spawn with an argv vector, wait/poll, kill, sleep, and flock claims that a
-- child can inherit.
local core = require "icl.core"

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p " .. d))
  return d
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function wait(pid, timeout)
  local t0 = core.wall_time()
  while core.wall_time() - t0 < (timeout or 10) do
    local w = core.waitpid(pid, {nohang = true})
    if w then return w end
    core.sleep(0.01)
  end
  error("child " .. pid .. " did not exit")
end

describe("icl.core.spawn / waitpid", function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() os.execute("rm -rf " .. dir) end)

  it("runs argv without a shell, with a log, env and cwd", function()
    local log = dir .. "/out.log"
    local pid = core.spawn({"sh", "-c", 'echo "$1 $FOO $(pwd)"; echo err >&2; exit 3', "sh", "a b;$(x)"},
                           {log = log, env = {FOO = "bar", HOME = false}, cwd = dir})
    assert.is_true(pid > 0)
    local w = wait(pid)
    assert.are.equal(pid, w.pid)
    assert.are.equal(3, w.code)
    assert.are.equal("a b;$(x) bar " .. dir .. "\nerr\n", read(log))
  end)

  it("appends to the log across runs", function()
    local log = dir .. "/out.log"
    wait(core.spawn({"echo", "one"}, {log = log}))
    wait(core.spawn({"echo", "two"}, {log = log}))
    assert.are.equal("one\ntwo\n", read(log))
  end)

  it("removes variables set to false and keeps the rest of the environment", function()
    local log = dir .. "/env.log"
    wait(core.spawn({"sh", "-c", 'echo "[${HOME-unset}] [${PATH:+path}]"'}, {log = log, env = {HOME = false}}))
    assert.are.equal("[unset] [path]\n", read(log))
  end)

  it("gives the child only stdio and the descriptors it inherits", function()
    local log = dir .. "/fds.log"
    local keep = io.open(dir .. "/open-in-parent", "w") -- a Lua file (not close-on-exec) must not leak
    wait(core.spawn({"sh", "-c", "ls /proc/self/fd"}, {log = log}))
    keep:close()
    local fds = {}
    for n in read(log):gmatch("%d+") do fds[#fds + 1] = tonumber(n) end
    -- 0, 1, 2 and the descriptor ls uses to read the directory
    assert.is_true(#fds <= 4, "child saw descriptors " .. table.concat(fds, " "))
  end)

  it("reports a program that cannot start as an error, not exit 127", function()
    assert.has_error(function() core.spawn({"no-such-program-icl"}) end,
      "spawn: no-such-program-icl: command not found in PATH")
    assert.has_error(function() core.spawn({"/etc/passwd"}) end)
    assert.has_error(function() core.spawn({"true"}, {cwd = dir .. "/missing"}) end)
    assert.has_error(function() core.spawn({"true"}, {log = dir .. "/missing/x.log"}) end)
  end)

  it("rejects bad arguments", function()
    assert.has_error(function() core.spawn({}) end)
    assert.has_error(function() core.spawn({"true", 3}) end)
    assert.has_error(function() core.spawn({"true"}, {bogus = true}) end)
    assert.has_error(function() core.spawn({"true"}, {env = {["A=B"] = "x"}}) end)
    assert.has_error(function() core.spawn({"true"}, {stdin = "tty"}) end)
  end)

  it("polls with nohang, and reports signals", function()
    local pid = core.spawn({"sleep", "5"})
    assert.is_nil(core.waitpid(pid, {nohang = true}))
    assert.is_true(core.kill(pid, "TERM"))
    local w = wait(pid)
    assert.are.equal(15, w.signal)
    assert.is_nil(w.code)
    local ok, err = core.kill(pid, 0)
    assert.is_nil(ok)
    assert.is_string(err)
    assert.has_error(function() core.kill(0, "KILL") end)
    assert.has_error(function() core.kill(123, "NOPE") end)
  end)

  it("die_with_parent: the child goes down when its parent is SIGKILLed", function()
    local pidfile = dir .. "/grandchild.pid"
    -- a parent Lua process that spawns a long sleep and then waits forever
    local script = string.format([[
      local core = require "icl.core"
      local pid = core.spawn({"sleep", "30"}, {die_with_parent = true, new_group = true})
      local f = io.open(%q, "w") f:write(pid) f:close()
      core.sleep(30)
    ]], pidfile)
    local parent = core.spawn({"lua5.4", "-e", script})
    local t0 = core.wall_time()
    while not read(pidfile) or read(pidfile) == "" do
      assert.is_true(core.wall_time() - t0 < 10, "the parent did not start its child")
      core.sleep(0.02)
    end
    local child = tonumber(read(pidfile))
    assert.is_true(core.pid_alive(child))
    core.kill(parent, "KILL")
    wait(parent)
    t0 = core.wall_time()
    local function gone()
      local st = read("/proc/" .. child .. "/stat")
      return not st or st:match(".*%) (%a)") == "Z"
    end
    while not gone() do
      assert.is_true(core.wall_time() - t0 < 5, "the child outlived its parent")
      core.sleep(0.02)
    end
  end)

  it("sleep waits about as long as asked", function()
    local t0 = core.wall_time()
    core.sleep(0.05)
    assert.is_true(core.wall_time() - t0 >= 0.04)
  end)
end)

describe("icl.core.lock_file", function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() os.execute("rm -rf " .. dir) end)

  it("is exclusive, and free again after release", function()
    local path = dir .. "/x.lock"
    local a = core.lock_file(path)
    assert.is_not_nil(a)
    local b, why = core.lock_file(path)
    assert.is_nil(b)
    assert.are.equal("busy", why)
    a:write("pid=1\n")
    assert.are.equal("pid=1\n", read(path))
    a:write("")
    assert.are.equal("", read(path))
    a:release()
    a:release() -- idempotent
    assert.has_error(function() a:write("x") end)
    local c = core.lock_file(path)
    assert.is_not_nil(c)
    c:release()
  end)

  it("stays held by a child that inherits it, until the child exits", function()
    local path = dir .. "/x.lock"
    local lock = core.lock_file(path)
    local pid = core.spawn({"sleep", "5"}, {inherit = {lock}})
    lock:release()
    assert.is_nil((core.lock_file(path)))
    core.kill(pid, "KILL")
    wait(pid)
    local again = core.lock_file(path)
    assert.is_not_nil(again)
    again:release()
  end)

  it("is not leaked to children that do not inherit it", function()
    local path = dir .. "/x.lock"
    local lock = core.lock_file(path)
    local pid = core.spawn({"sleep", "5"})
    lock:release()
    local again = core.lock_file(path)
    assert.is_not_nil(again, "a child that was not given the lock kept it")
    again:release()
    core.kill(pid, "KILL")
    wait(pid)
  end)
end)
