-- Local sweeps end to end with the fake trainer (tests/sweep/fake_train.sh):
-- the concurrency limit, failures (reported with error and log, retried only
-- on request), SIGKILL of the sweep and resume, two sweeps at once over the
-- same tree, and a run held by a trainer started by hand.
local core = require "icl.core"
local fx = require "sweep_fixture"
local sweep = require "icl.sweep"
local json = require "icl.sweep.json"

local function spec(dir, t)
  local s = {tasks = {"linear_regression", "majority"}, encodings = {"nope", "rope", "alibi"}, sizes = {"tiny"},
             seeds = 1, overrides = {"training.max_steps=4"}, jobs = 3}
  for k, v in pairs(t or {}) do s[k] = v end
  return fx.spec(dir, s)
end

local function cells_of(path)
  local _, cells = sweep.load(path)
  return cells
end

-- the largest number of fake trainers alive at once, from the shared events file
local function max_overlap(events_path)
  local ev = {}
  for kind, t in (fx.read(events_path) or ""):gmatch("(%a+) ([%d.]+)") do
    ev[#ev + 1] = {t = tonumber(t), d = kind == "start" and 1 or -1}
  end
  table.sort(ev, function(a, b) if a.t ~= b.t then return a.t < b.t end return a.d < b.d end)
  local n, best = 0, 0
  for _, e in ipairs(ev) do
    n = n + e.d
    best = math.max(best, n)
  end
  return best, #ev
end

describe("local sweep", function()
  local dir, extra_pids
  before_each(function()
    dir = fx.tmpdir()
    extra_pids = {}
  end)
  after_each(function()
    for _, p in ipairs(extra_pids) do core.kill(p, "KILL"); pcall(core.waitpid, p) end
    fx.rm(dir)
  end)

  it("runs every cell with at most --jobs trainers at once, then writes the summary", function()
    local path = spec(dir)
    local events = dir .. "/events"
    local code, out = fx.run(dir, {path, "--jobs", "2"}, {FAKE_EVENTS = events, FAKE_STEP_SLEEP = "0.1"})
    assert.are.equal(0, code, out)
    local best, n = max_overlap(events)
    assert.are.equal(12, n) -- 6 starts, 6 ends
    assert.are.equal(2, best, "max simultaneous trainers")
    assert.is_truthy(out:find("6 cells: 6 finished, 0 failed", 1, true), out)
    for _, c in ipairs(cells_of(path)) do
      local starts, finishes = fx.trainer_log(c.dir)
      assert.are.equal(1, #starts, c.id)
      assert.are.equal(1, finishes, c.id)
    end
    local md = fx.read(dir .. "/out/spec/summary.md")
    assert.is_truthy(md and md:find("## majority", 1, true), md)
    assert.is_truthy(fx.read(dir .. "/out/spec/summary.json"))
    -- a rerun finds everything finished and starts nothing
    code, out = fx.run(dir, {path}, {FAKE_EVENTS = events}, "rerun")
    assert.are.equal(0, code, out)
    assert.is_truthy(out:find("this run: 0 started", 1, true), out)
    assert.are.equal(12, select(2, max_overlap(events)))
  end)

  it("gives each trainer its own GPU, at most per_gpu per GPU", function()
    local path = spec(dir, {gpus = {0, 1}, per_gpu = 1, jobs = 4})
    local events = dir .. "/events"
    local code, out = fx.run(dir, {path}, {FAKE_EVENTS = events, FAKE_STEP_SLEEP = "0.1"})
    assert.are.equal(0, code, out)
    assert.is_truthy(out:find("6 to run (2 at a time on 2 GPUs)", 1, true), out)
    -- per GPU, never two trainers at once
    local by_pid, ev = {}, {}
    for kind, t, pid, gpu in (fx.read(events) or ""):gmatch("(%a+) ([%d.]+) (%d+) %S+ ?(%S*)") do
      if kind == "start" then by_pid[pid] = gpu:match("gpu=(.*)") end
      ev[#ev + 1] = {t = tonumber(t), d = kind == "start" and 1 or -1, pid = pid}
    end
    table.sort(ev, function(a, b) if a.t ~= b.t then return a.t < b.t end return a.d < b.d end)
    local load, used = {}, {}
    for _, e in ipairs(ev) do
      local g = by_pid[e.pid]
      assert.is_truthy(g == "0" or g == "1", "trainer without a GPU: " .. tostring(g))
      used[g] = true
      load[g] = (load[g] or 0) + e.d
      assert.is_true(load[g] <= 1, "two trainers on GPU " .. g)
    end
    assert.is_true(used["0"] and used["1"])
  end)

  it("reports failures with their error and log, and retries them only with --retry-failed", function()
    local path = spec(dir, {encodings = {"nope", "rope"}})
    local env = {FAKE_FAIL = "majority/nope-tiny-s0", FAKE_CRASH = "majority/rope-tiny-s0"}
    local code, out = fx.run(dir, {path}, env)
    assert.are.equal(1, code, out)
    local sd = dir .. "/out/spec"
    assert.is_truthy(out:find("failed   majority/nope-tiny-s0: training stopped: fake failure at step 2", 1, true), out)
    assert.is_truthy(out:find("log: " .. sd .. "/majority/nope-tiny-s0/train.log", 1, true), out)
    assert.is_truthy(out:find("failed   majority/rope-tiny-s0: exit 3: ", 1, true), out)
    assert.is_truthy(out:find("Segmentation fault (fake)", 1, true), out)
    assert.is_truthy(fx.read(sd .. "/majority/rope-tiny-s0/train.log"):find("Segmentation fault (fake)", 1, true))
    -- --status --json shows them too
    local scode, sout = fx.run(dir, {path, "--status", "--json"}, {}, "status")
    assert.are.equal(0, scode, sout)
    local st = json.decode(sout)
    assert.are.equal(2, st.counts.finished)
    assert.are.equal(2, st.counts.failed)
    assert.is_true(st.done)
    local sj = json.decode(fx.read(sd .. "/summary.json"))
    local failed = 0
    for _, g in ipairs(sj.groups) do failed = failed + g.failed end
    assert.are.equal(2, failed)
    assert.is_truthy(fx.read(sd .. "/summary.md"):find("## Failed cells", 1, true))
    -- without --retry-failed nothing is started again
    code, out = fx.run(dir, {path}, {}, "again")
    assert.are.equal(1, code, out)
    assert.is_truthy(out:find("2 failed before (rerun with --retry-failed)", 1, true), out)
    assert.is_truthy(out:find("this run: 0 started", 1, true), out)
    -- with it they run again and resume from their checkpoints
    code, out = fx.run(dir, {path, "--retry-failed"}, {}, "retry")
    assert.are.equal(0, code, out)
    assert.is_truthy(out:find("4 cells: 4 finished, 0 failed", 1, true), out)
    local starts, finishes = fx.trainer_log(sd .. "/majority/rope-tiny-s0")
    assert.are.same({0, 1}, starts)
    assert.are.equal(1, finishes)
    local attempts = 0
    for line in fx.read(sd .. "/majority/rope-tiny-s0/attempts.jsonl"):gmatch("[^\n]+") do
      if json.decode(line).event == "end" then attempts = attempts + 1 end
    end
    assert.are.equal(2, attempts)
  end)

  it("survives SIGKILL mid-way: the rerun resumes and every cell finishes exactly once", function()
    local path = spec(dir)
    -- the rope cells step slower, so when a first cell has finished another is far from its end
    -- (cells in lockstep would be one step from finishing, racing the kill)
    local env = {FAKE_STEP_SLEEP = "0.15", FAKE_STEPS = "6", FAKE_SLOW = "rope", FAKE_SLOW_SLEEP = "0.4"}
    local pid = fx.start(dir, {path, "--jobs", "2"}, env, "killed")
    local cells = cells_of(path)
    -- wait until one cell has finished and another is part-way
    local t0 = core.wall_time()
    local function midway()
      local done, partial = false, false
      for _, c in ipairs(cells) do
        local starts, finishes = fx.trainer_log(c.dir)
        if finishes > 0 then done = true end
        local ck = tonumber(fx.read(c.dir .. "/checkpoint-fake.txt") or "")
        if #starts > 0 and finishes == 0 and ck and ck >= 1 then partial = true end
      end
      return done and partial
    end
    while not midway() do
      assert.is_true(core.wall_time() - t0 < 60, "the sweep made no progress")
      core.sleep(0.05)
    end
    core.kill(pid, "KILL")
    fx.wait(pid)
    local code, out = fx.run(dir, {path, "--jobs", "2"}, env, "resumed")
    assert.are.equal(0, code, out)
    assert.is_truthy(out:find("6 cells: 6 finished", 1, true), out)
    local resumed, trace = 0, {}
    for _, c in ipairs(cells) do
      local starts, finishes = fx.trainer_log(c.dir)
      trace[#trace + 1] = c.id .. ": starts from " .. table.concat(starts, ",") .. "; " .. finishes .. " finish"
      assert.are.equal(1, finishes, c.id .. " finished " .. finishes .. " times\n" .. (fx.read(dir .. "/killed.out")
        or "") .. out)
      if #starts > 1 and starts[#starts] > 0 then resumed = resumed + 1 end
    end
    assert.is_true(resumed >= 1, "no cell resumed from its checkpoint\n" .. table.concat(trace, "\n") .. "\n" ..
      (fx.read(dir .. "/killed.out") or "") .. out)
    assert.is_truthy(out:find("resuming, was interrupted", 1, true), out)
  end)

  it("two sweeps at once over the same spec train every cell exactly once", function()
    local path = spec(dir)
    local env = {FAKE_STEP_SLEEP = "0.1"}
    local a = fx.start(dir, {path, "--jobs", "2"}, env, "a")
    local b = fx.start(dir, {path, "--jobs", "2"}, env, "b")
    local wa, wb = fx.wait(a), fx.wait(b)
    local oa, ob = fx.read(dir .. "/a.out"), fx.read(dir .. "/b.out")
    assert.are.equal(0, wa.code, oa)
    assert.are.equal(0, wb.code, ob)
    for _, c in ipairs(cells_of(path)) do
      local starts, finishes = fx.trainer_log(c.dir)
      assert.are.equal(1, #starts, c.id .. " started " .. #starts .. " times\n" .. oa .. ob)
      assert.are.equal(1, finishes, c.id)
      for line in fx.read(c.dir .. "/attempts.jsonl"):gmatch("[^\n]+") do
        local r = json.decode(line)
        assert.is_true(r.event ~= "end" or r.ok, c.id .. ": " .. tostring(r.error))
      end
    end
    local code, out = fx.run(dir, {path, "--status"}, {}, "status")
    assert.are.equal(0, code)
    assert.is_truthy(out:find("finished 6 ", 1, true), out)
  end)

  it("skips and reports a run that a live trainer holds, and resumes it once that is gone", function()
    local path = spec(dir, {tasks = {"majority"}, encodings = {"nope"}, seeds = 2})
    local c = cells_of(path)[1]
    os.execute("mkdir -p " .. c.dir)
    local holder = core.spawn({"sleep", "30"})
    extra_pids[#extra_pids + 1] = holder
    fx.write(c.dir .. "/run.lock", holder .. "\n")
    fx.write(c.dir .. "/status.json", json.encode({state = "running", step = 1, max_steps = 4,
                                                    host = core.hostname()}))
    local code, out = fx.run(dir, {path})
    assert.are.equal(0, code, out)
    assert.is_truthy(out:find("skip majority/nope-tiny-s0: being run by a trainer (pid " .. holder, 1, true), out)
    assert.is_truthy(out:find("1 finished, 0 failed, 1 running elsewhere", 1, true), out)
    assert.are.equal(0, #fx.trainer_log(c.dir))
    local _, sout = fx.run(dir, {path, "--status"}, {}, "status")
    assert.is_truthy(sout:find("running      majority/nope-tiny-s0  step 1/4  pid " .. holder, 1, true), sout)
    core.kill(holder, "KILL")
    core.waitpid(holder)
    code, out = fx.run(dir, {path}, {}, "after")
    assert.are.equal(0, code, out)
    assert.is_truthy(out:find("resuming, was interrupted", 1, true), out)
    assert.are.equal(1, select(2, fx.trainer_log(c.dir)))
  end)
end)
