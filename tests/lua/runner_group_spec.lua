-- Grouped runs (docs/runner.md, "Grouped runs"): several runs of one shape trained in one process
-- with icl.group_step. A grouped run must compute exactly what the same run computes alone with one
-- thread (every checkpoint and every logged value, bit for bit); a run that fails leaves the group
-- and the others finish; an interrupted group resumes, as a group or run by run with --threads 1;
-- runs that cannot step together are refused before anything is written.
local train = require "icl.train"
local ckpt = require "icl.checkpoint"
local R = require "runner_util"
local U = R.U

local MAX = 40
local CFG = {max_steps = MAX, save_steps = 10, logging_steps = 1, eval_steps = 10, save_total_limit = 5}

local function exists(p) return (require("icl.io").file_exists(p)) end

local function assert_same_run(ref, run, steps)
  for _, s in ipairs(steps or {10, 20, 30, MAX}) do
    local ok, why = R.same_tensors(R.final_checkpoint(ref, s), R.final_checkpoint(run, s))
    assert.is_true(ok, string.format("checkpoint %d of %s vs %s: %s", s, run, ref, tostring(why)))
  end
  local ok, why = R.same_tensors(ref .. "/model.safetensors", run .. "/model.safetensors")
  assert.is_true(ok, "model.safetensors: " .. tostring(why))
  local a, b = R.train_values(ref), R.train_values(run)
  for s = 1, MAX do
    assert.is_string(b[s], run .. ": no train record of step " .. s)
    assert.are.equal(a[s], b[s], run .. ": step " .. s)
  end
end

local function group_here(x, opts) return R.in_process(train.run_group, x, opts) end

describe("grouped runs", function()
  local dir, cfg, alone3, alone4, g3, g4
  setup(function()
    dir = U.tmpdir()
    cfg = R.config(dir, CFG)
    alone3, alone4, g3, g4 = dir .. "/alone3", dir .. "/alone4", dir .. "/g3", dir .. "/g4"
    for seed, d in pairs({[3] = alone3, [4] = alone4}) do
      local code, out = R.icl({"train", cfg, "--set", "training.seed=" .. seed, "--run-dir", d, "--threads", "1",
                               "--no-eval"})
      assert.are.equal(0, code, out)
    end
  end)
  teardown(function() U.rmrf(dir) end)

  it("icl train --seeds: each run equals the same run alone with --threads 1, bit for bit", function()
    local code, out = R.icl({"train", cfg, "--seeds", "3,4", "--run-dir", g3, "--run-dir", g4, "--no-eval"})
    assert.are.equal(0, code, out)
    assert.is_truthy(out:find(g3 .. "\n" .. g4 .. "\n", 1, true), out)
    assert_same_run(alone3, g3)
    assert_same_run(alone4, g4)
    for seed, d in pairs({[3] = g3, [4] = g4}) do
      local start = R.records(d, "start")[1]
      assert.are.equal(2, start.group)
      assert.are.equal(1, start.threads)
      assert.are.equal(seed, start.seed)
      assert.are.equal("finished", require("icl.rundir").read_status(d).state)
      -- the held-out evaluations are the run's own
      assert.are.equal(#R.records(alone3, "eval"), #R.records(d, "eval"))
    end
  end)

  it("through the runs' C steps (the GPU's path, forced on the CPU): the same bits", function()
    -- on a GPU each run of a group steps through its own C step on a lane of its own
    -- (icl_train_step_run_group); ICL_GROUP_FORCE_STEPS=1 takes that path on the CPU, in turn
    local f3, f4 = dir .. "/c3", dir .. "/c4"
    local code, out = R.icl({"train", cfg, "--seeds", "3,4", "--run-dir", f3, "--run-dir", f4, "--no-eval",
                             "--threads", "1"}, {env = {ICL_GROUP_FORCE_STEPS = "1"}})
    assert.are.equal(0, code, out)
    assert_same_run(alone3, f3)
    assert_same_run(alone4, f4)
  end)

  it("a run that fails (NaN) leaves the group; the others finish as if alone", function()
    local a, b = dir .. "/f3", dir .. "/f4"
    local load = require("icl.config").load
    local runs = {load(cfg, {overrides = {"training.seed=3"}}), load(cfg, {overrides = {"training.seed=4"}})}
    local ok, res, out = group_here(runs, {run_dirs = {a, b}, hooks = {before_step = function(s, model, k)
      if k == 2 and s == 22 then model:get("read_out.weight"):fill(0 / 0) end
    end}})
    assert.is_true(ok, tostring(res))
    assert.is_nil(res[1].failed, res[1].error)
    assert.are.equal(a, res[1].run_dir)
    assert.is_true(res[2].failed)
    assert.is_truthy(res[2].error:find("training stopped at step 23: NaN/Inf", 1, true), res[2].error)
    assert.is_truthy(res[2].error:find("non-finite parameters: read_out.weight", 1, true), res[2].error)
    assert.is_truthy(out:find("f4", 1, true), out)
    local st = require("icl.rundir").read_status(b)
    assert.are.equal("failed", st.state)
    assert.are.equal(23, st.step)
    assert.are.same({10, 20}, ckpt.list(b))
    assert.are.equal("finished", require("icl.rundir").read_status(a).state)
    assert_same_run(alone3, a)
    -- the failed run continues alone with --threads 1 from its last good checkpoint, and ends as the
    -- undisturbed run
    local code, rout = R.icl({"train", "--resume", b, "--threads", "1", "--no-eval"})
    assert.are.equal(0, code, rout)
    assert.is_truthy(rout:find("from step 20", 1, true), rout)
    assert.is_nil(rout:find("warning", 1, true), rout)
    assert_same_run(alone4, b)
  end)

  it("an interrupted group resumes with icl train --resume DIR --resume DIR, bit for bit", function()
    local a, b = dir .. "/i3", dir .. "/i4"
    local load = require("icl.config").load
    local runs = {load(cfg, {overrides = {"training.seed=3"}}), load(cfg, {overrides = {"training.seed=4"}})}
    local ok, err = group_here(runs, {run_dirs = {a, b}, hooks = {before_step = function(s)
      if s == 25 then error("interrupted!", 0) end -- what Ctrl-C raises
    end}})
    assert.is_false(ok)
    err = tostring(err)
    assert.is_truthy(err:find("interrupted after step 25", 1, true), err)
    assert.is_truthy(err:find("icl train --resume " .. a .. " --resume " .. b, 1, true), err)
    for _, d in ipairs({a, b}) do
      assert.are.equal("interrupted", require("icl.rundir").read_status(d).state)
      assert.are.same({10, 20}, ckpt.list(d))
    end
    local code, out = R.icl({"train", "--resume", a, "--resume", b, "--no-eval"})
    assert.are.equal(0, code, out)
    assert.is_truthy(out:find("resuming " .. a .. " from step 20", 1, true), out)
    assert.is_truthy(out:find("resuming " .. b .. " from step 20", 1, true), out)
    assert.is_nil(out:find("warning", 1, true), out)
    assert_same_run(alone3, a)
    assert_same_run(alone4, b)
  end)

  it("refuses runs that cannot step together, changing nothing", function()
    local load = require("icl.config").load
    local other = R.config(dir, {max_steps = MAX, hidden = 32}, "wide")
    local runs = {load(cfg), load(other)}
    local ok, err = group_here(runs, {run_dirs = {dir .. "/r1", dir .. "/r2"}})
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("model.hidden_size is 16 in run 1 and 32 in run 2", 1, true), tostring(err))
    assert.is_false(exists(dir .. "/r1"))
    ok, err = group_here({load(cfg), load(cfg)}, {run_dirs = {dir .. "/r1", dir .. "/r2"}})
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("are the same run", 1, true), tostring(err))
    -- runs at different steps: one trained to step 20, one new
    local code, out = R.icl({"train", cfg, "--set", "training.seed=5", "--set", "training.max_steps=20", "--run-dir",
                             dir .. "/r5", "--no-eval"})
    assert.are.equal(0, code, out)
    ok, err = group_here({load(cfg, {overrides = {"training.seed=5"}}), load(cfg, {overrides = {"training.seed=6"}})},
                         {run_dirs = {dir .. "/r5", dir .. "/r6"}})
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("would continue from different steps", 1, true), tostring(err))
    assert.is_false(exists(dir .. "/r6/metrics.jsonl"))
    assert.are.equal("finished", require("icl.rundir").read_status(dir .. "/r5").state)
    assert.are.same({10, 20}, ckpt.list(dir .. "/r5"))
  end)

  it("a group whose runs are finished says so and changes nothing", function()
    local before = R.U.read(g3 .. "/metrics.jsonl")
    local code, out = R.icl({"train", cfg, "--seeds", "3,4", "--run-dir", g3, "--run-dir", g4, "--no-eval"})
    assert.are.equal(0, code, out)
    assert.is_truthy(out:find(g3 .. ": already finished", 1, true), out)
    assert.is_truthy(out:find(g4 .. ": already finished", 1, true), out)
    assert.are.equal(before, R.U.read(g3 .. "/metrics.jsonl"))
  end)

  it("the command line: --seeds with a seed override, a --run-dir per seed, --seeds with --resume", function()
    local code, out = R.icl({"train", cfg, "--seeds", "1,2", "--set", "training.seed=1"})
    assert.are.equal(1, code)
    assert.is_truthy(out:find("--seeds both set the seed", 1, true), out)
    code, out = R.icl({"train", cfg, "--seeds", "1,2", "--run-dir", dir .. "/x"})
    assert.are.equal(1, code)
    assert.is_truthy(out:find("2 seeds but 1 --run-dir", 1, true), out)
    code, out = R.icl({"train", cfg, "--seeds", "1,x"})
    assert.are.equal(1, code)
    assert.is_truthy(out:find("expected non-negative integers", 1, true), out)
    code, out = R.icl({"train", "--resume", g3, "--seeds", "1,2"})
    assert.are.equal(1, code)
    assert.is_truthy(out:find("--seeds starts new runs", 1, true), out)
    code, out = R.icl({"train", cfg, "--run-dir", dir .. "/x", "--run-dir", dir .. "/y"})
    assert.are.equal(1, code)
    assert.is_truthy(out:find("one run has one directory", 1, true), out)
    assert.is_false(exists(dir .. "/x"))
  end)

  it("a group step allocates nothing in Lua", function()
    finally(function() collectgarbage("restart") end)
    local kb = {0, 0} -- sized now: filling it must not allocate inside the measurement
    local load = require("icl.config").load
    local over = {"training.max_steps=160", "training.logging_steps=1000", "training.evaluation_strategy=no",
                  "training.save_strategy=no"}
    local runs = {}
    for k, seed in ipairs({1, 2}) do
      local o = table.move(over, 1, #over, 1, {})
      o[#o + 1] = "training.seed=" .. seed
      runs[k] = load(cfg, {overrides = o})
    end
    local ok, res = group_here(runs, {run_dirs = {dir .. "/m1", dir .. "/m2"}, progress_every = 1e9, hooks = {
      before_step = function(s, _, k)
        if k ~= 1 then return end
        if s == 50 then
          collectgarbage("collect")
          collectgarbage("stop")
          kb[1] = collectgarbage("count")
        elseif s == 150 then
          kb[2] = collectgarbage("count")
          collectgarbage("restart")
        end
      end}})
    assert.is_true(ok, tostring(res))
    assert.are.equal(0, kb[2] - kb[1], string.format("100 group steps allocated %.3f KiB", kb[2] - kb[1]))
  end)

  it("the hook sees every run before every step, in order, as train.run's does", function()
    local load = require("icl.config").load
    local seen = {}
    local runs = {load(cfg, {overrides = {"training.seed=7", "training.max_steps=3"}}),
                  load(cfg, {overrides = {"training.seed=8", "training.max_steps=3"}})}
    local ok, res = group_here(runs, {run_dirs = {dir .. "/h7", dir .. "/h8"}, hooks = {
      before_step = function(s, _, k) seen[#seen + 1] = s .. ":" .. k end}})
    assert.is_true(ok, tostring(res))
    assert.are.same({"0:1", "0:2", "1:1", "1:2", "2:1", "2:2"}, seen)
  end)
end)
