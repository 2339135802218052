-- Exact resume (docs/runner.md): `icl train` is SIGKILLed at random steps, and once inside a
-- checkpoint save (between the tensor file and its commit record), then continued with
-- `icl train --resume RUN_DIR`; the final checkpoint's tensors (parameters, AdamW moments and
-- scalars, all of them) and model.safetensors must equal an uninterrupted run's bit for bit, and the
-- metrics log must hold each step once, with the uninterrupted run's values.
-- The kill points are random; ICL_TEST_SEED=<n> repeats a sequence (the seed is printed).
local core = require "icl.core"
local R = require "runner_util"
local U = R.U

local function exists(p) return (require("icl.io").file_exists(p)) end

local MAX = 300
local CFG = {max_steps = MAX, save_steps = 7, eval_steps = 10, logging_steps = 1, save_total_limit = 2}

local seed = tonumber(os.getenv("ICL_TEST_SEED") or "") or (os.time() % 100000)
io.stderr:write(string.format("runner_resume_spec: kill points from ICL_TEST_SEED=%d\n", seed))
math.randomseed(seed)

--- start argv, SIGKILL it once its metrics log is past step `target` (or `cond()` holds);
-- returns the step it had logged, and the output so far
local function kill_when(argv, run, target, opts)
  opts = opts or {}
  local pid, log = R.start(argv, {env = opts.env})
  local t0 = core.wall_time()
  while true do
    local w = core.waitpid(pid, {nohang = true})
    if w then
      error(string.format("the trainer exited (%s) before the kill point %s:\n%s", tostring(w.code or w.signal),
        tostring(target), U.read(log)))
    end
    if (target and R.last_step(run) >= target) or (opts.cond and opts.cond()) then break end
    if core.wall_time() - t0 > 60 then
      core.kill(pid, "KILL")
      error("the kill point was not reached within 60 s")
    end
    core.sleep(0.003)
  end
  core.kill(pid, "KILL")
  local w = R.wait(pid)
  assert.are.equal(9, w.signal)
  local text = U.read(log)
  os.remove(log)
  return R.last_step(run), text
end

local function finish(run)
  local code, out = R.icl({"train", "--resume", run, "--no-eval"})
  assert.are.equal(0, code, out)
  return out
end

local function assert_same_as(ref, run)
  local ok, why = R.same_tensors(R.final_checkpoint(ref, MAX), R.final_checkpoint(run, MAX))
  assert.is_true(ok, "final checkpoint: " .. tostring(why))
  ok, why = R.same_tensors(ref .. "/model.safetensors", run .. "/model.safetensors")
  assert.is_true(ok, "model.safetensors: " .. tostring(why))
  -- every step logged once, with the same loss, lr, gradient norm and clipping factor
  local a, b = R.train_values(ref), R.train_values(run)
  for s = 1, MAX do
    assert.is_not_nil(b[s], "step " .. s .. " missing from the resumed run's metrics")
    assert.are.equal(a[s], b[s], "metrics of step " .. s)
  end
  local ea, eb = R.records(ref, "eval"), R.records(run, "eval")
  assert.are.equal(#ea, #eb)
  for i = 1, #ea do
    assert.are.equal(ea[i].step, eb[i].step)
    assert.are.equal(ea[i].loss, eb[i].loss)
  end
  assert.are.equal("finished", require("icl.rundir").read_status(run).state)
end

describe("icl train killed with SIGKILL and resumed", function()
  local dir, cfg, ref
  setup(function()
    dir = U.tmpdir()
    cfg = R.config(dir, CFG)
    ref = dir .. "/ref"
    local code, out = R.icl({"train", cfg, "--run-dir", ref, "--no-eval"})
    assert.are.equal(0, code, out)
  end)
  teardown(function() U.rmrf(dir) end)

  it("ends with the uninterrupted run's parameters after three kills at random steps", function()
    local run = dir .. "/a"
    local k1 = math.random(3, 80)
    local s1 = kill_when({"train", cfg, "--run-dir", run, "--no-eval"}, run, k1)
    assert.is_true(s1 >= k1 and s1 < MAX)
    local k2 = math.random(s1 + 5, 180)
    local s2, out2 = kill_when({"train", "--resume", run, "--no-eval"}, run, k2)
    local from = tonumber(out2:match("from step (%d+)"))
    if s1 >= 7 then
      -- resumed from the newest checkpoint the first process had committed
      assert.is_not_nil(from, out2)
      assert.is_true(from <= s1 and from % 7 == 0 and from > s1 - 14, out2)
    end
    local k3 = math.random(s2 + 5, 260)
    local s3 = kill_when({"train", "--resume", run, "--no-eval"}, run, k3)
    local out = finish(run)
    assert.is_truthy(out:find("resuming " .. run .. " from step", 1, true), out)
    assert_same_as(ref, run)
    io.stderr:write(string.format("  killed at steps %d, %d, %d\n", s1, s2, s3))
  end)

  it("ends the same after a kill inside a checkpoint save, and a kill before the first checkpoint", function()
    local run = dir .. "/b"
    local tensors21 = run .. "/checkpoint-00000021.safetensors"
    local commit21 = run .. "/checkpoint-00000021.json"
    -- the save of step 21 pauses between its tensor file and its commit record: kill it there
    kill_when({"train", cfg, "--run-dir", run, "--no-eval"}, run, nil, {env = {ICL_FAULT_SAVE_PAUSE = "0.5"},
      cond = function() return exists(tensors21) and not exists(commit21) end})
    assert.is_true(exists(tensors21), "the tensor file of step 21 exists")
    assert.is_false(exists(commit21), "the save was killed before its commit record")
    assert.are.same({7, 14}, require("icl.checkpoint").list(run))
    -- and the temporary file of a write that a kill interrupted
    local tmp = string.format("%s/checkpoint-00000028.safetensors.tmp.%d", run, R.dead_pid())
    U.write(tmp, "partial")
    local s2, out2 = kill_when({"train", "--resume", run, "--no-eval"}, run, math.random(60, 200))
    assert.is_truthy(out2:find("from step 14", 1, true), out2)
    assert.is_truthy(out2:find("checkpoint-00000021.safetensors (a save that never committed)", 1, true), out2)
    assert.is_truthy(out2:find("removed the temporary file", 1, true), out2)
    assert.is_false(exists(tmp))
    -- nothing is deleted: the uncommitted tensor file is kept aside
    assert.is_true(exists(run .. "/unusable/checkpoint-00000021.safetensors"))
    assert.is_true(s2 > 21)
    finish(run)
    assert_same_as(ref, run)

    -- killed before its first checkpoint: --resume trains from step 0
    local run2 = dir .. "/c"
    kill_when({"train", cfg, "--run-dir", run2, "--no-eval"}, run2, math.random(1, 5))
    local code, out = R.icl({"train", "--resume", run2, "--no-eval"})
    assert.are.equal(0, code, out)
    assert.is_truthy(out:find("from step 7", 1, true) or out:find("no checkpoint was saved yet", 1, true), out)
    assert_same_as(ref, run2)
  end)

  it("ends the same after Ctrl-C (SIGINT), which says where the run stopped", function()
    local run = dir .. "/int"
    local pid, log = R.start({"train", cfg, "--run-dir", run, "--no-eval"})
    local target = math.random(20, 150)
    while R.last_step(run) < target do
      assert.is_nil(core.waitpid(pid, {nohang = true}), "the trainer exited before the interrupt")
      core.sleep(0.003)
    end
    core.kill(pid, "INT")
    local w = R.wait(pid)
    local out = U.read(log)
    os.remove(log)
    assert.are.equal(1, w.code, out)
    assert.is_truthy(out:find("icl: interrupted after step %d+; the newest checkpoint is step %d+; continue with " ..
      "icl train %-%-resume"), out)
    assert.are.equal("interrupted", require("icl.rundir").read_status(run).state)
    finish(run)
    assert_same_as(ref, run)
  end)

  it("refuses a run directory that another live process trains", function()
    local run = dir .. "/d"
    local code, out = R.icl({"train", cfg, "--run-dir", run, "--no-eval", "--set", "training.max_steps=5"})
    assert.are.equal(0, code, out)
    local lock = require("icl.rundir").lock(run) -- this process holds the run now
    code, out = R.icl({"train", "--resume", run, "--no-eval"})
    require("icl.rundir").unlock(run, lock)
    assert.are.equal(1, code, out)
    assert.is_truthy(out:find("icl: run " .. run .. " is being trained by process " .. core.getpid(), 1, true), out)
  end)
end)
