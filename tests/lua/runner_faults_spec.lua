-- Bad input and faults of the experiment runner (docs/runner.md, "Faults"): each gives a clear
-- message and loses nothing. Missing / malformed / wrong configs; unreadable, truncated and
-- bit-flipped checkpoints (resume falls back to the newest valid one, or refuses); NaN and Inf
-- losses (training stops, names the step and the tensors, keeps the last good checkpoint); a full
-- disk while saving (fault injection, and a real tmpfs when run as root).
local icl = require "icl"
local core = require "icl.core"
local ckpt = require "icl.checkpoint"
local train = require "icl.train"
local R = require "runner_util"
local U = R.U

local function exists(p) return (icl.io.file_exists(p)) end

local function no_traceback(out)
  assert.is_nil(out:find("stack traceback", 1, true), out)
  assert.is_nil(out:find("%.lua:%d+:"), out)
end

local function tmp_files(dir)
  local out = {}
  for _, n in ipairs(icl.io.list_dir(dir)) do if n:find("%.tmp%.%d+$") then out[#out + 1] = n end end
  return out
end

local function run_here(x, opts) return R.in_process(train.run, x, opts) end

describe("bad configs", function()
  local dir
  before_each(function() dir = U.tmpdir() end)
  after_each(function() U.rmrf(dir) end)

  local function fails(args, ...)
    local code, out = R.icl(args)
    assert.are.equal(1, code, out)
    for _, want in ipairs({...}) do assert.is_truthy(out:find(want, 1, true), "want '" .. want .. "' in:\n" .. out) end
    no_traceback(out)
    return out
  end

  it("a missing config file", function()
    fails({"train", dir .. "/nope.yaml"}, dir .. "/nope.yaml: no such config file")
    fails({"train"}, "give a config file")
  end)

  it("malformed YAML: the file and line", function()
    U.write(dir .. "/bad.yaml", "model: [1, 2\ntask: x\n")
    fails({"train", dir .. "/bad.yaml"}, dir .. "/bad.yaml:2", "YAML syntax error")
    U.write(dir .. "/bin.yaml", "\0\1\2\255binary")
    fails({"train", dir .. "/bin.yaml"}, dir .. "/bin.yaml")
  end)

  it("an unknown key and a wrong type: file, line and key", function()
    local text = R.yaml()
    U.write(dir .. "/typo.yaml", (text:gsub("learning_rate:", "learning_rat:")))
    local line = 0
    for l in (text .. "\n"):gmatch("(.-)\n") do
      line = line + 1
      if l:find("learning_rate:", 1, true) then break end
    end
    fails({"train", dir .. "/typo.yaml"}, dir .. "/typo.yaml:" .. line .. ": training.learning_rat: unknown key",
      "did you mean 'learning_rate'?")
    U.write(dir .. "/type.yaml", (text:gsub("max_steps: 40", "max_steps: lots")))
    fails({"train", dir .. "/type.yaml"}, "training.max_steps: expected an integer, got string 'lots'",
      dir .. "/type.yaml:")
    fails({"train", R.config(dir), "--set", "training.seed=-1"}, "training.seed", "--set training.seed=-1")
  end)

  it("a run directory given as a config, and --resume misuse", function()
    local cfg = R.config(dir, {max_steps = 4})
    local code, out = R.icl({"train", cfg, "--run-dir", dir .. "/run", "--no-eval"})
    assert.are.equal(0, code, out)
    fails({"train", dir .. "/run"}, "is a run directory; to continue it, use icl train --resume " .. dir .. "/run")
    fails({"train", "--resume", dir .. "/none"}, dir .. "/none: no such directory")
    fails({"train", "--resume", dir}, dir .. " is not a run directory (no config.yaml)")
    fails({"train", cfg, "--resume", dir .. "/run"}, "give either a config file or --resume RUN_DIR")
    fails({"train", "--resume", dir .. "/run", "--run-dir", dir .. "/x"}, "--run-dir and --resume")
  end)

  it("--resume with --set refuses keys that change the run, accepts the harmless ones", function()
    local cfg = R.config(dir, {max_steps = 10})
    local run = dir .. "/run"
    local code, out = R.icl({"train", cfg, "--run-dir", run, "--no-eval"})
    assert.are.equal(0, code, out)
    out = fails({"train", "--resume", run, "--set", "model.hidden_size=32", "--set", "training.seed=9"},
      "--resume with --set model.hidden_size, training.seed", "only these keys may change", "training.max_steps")
    code, out = R.icl({"train", "--resume", run, "--no-eval", "--set", "training.max_steps=14",
                       "--set", "training.logging_steps=2"})
    assert.are.equal(0, code, out)
    assert.is_truthy(out:find("training.max_steps changed from 10 to 14", 1, true), out)
    assert.is_truthy(out:find("from step 10", 1, true), out)
    assert.is_truthy(U.read(run .. "/config.yaml"):find("max_steps: 14", 1, true))
    -- the same directory with another config (what a sweep or --run-dir would do) is refused too
    local other = R.config(dir, {max_steps = 10, hidden = 32}, "other")
    fails({"train", other, "--run-dir", run}, "holds a run with a different config",
      "model.hidden_size: 16 in the run, 32 now")
    -- a config.yaml edited by hand is checked against the config stored in the checkpoint
    local saved = U.read(run .. "/config.yaml")
    U.write(run .. "/config.yaml", (saved:gsub("learning_rate: [^\n]+", "learning_rate: 0.5")))
    fails({"train", "--resume", run}, "holds a run with a different config (the checkpoint of step 14)",
      "training.learning_rate: 0.001 in the run, 0.5 now")
    U.write(run .. "/config.yaml", saved)
    -- shortening below the steps done
    fails({"train", "--resume", run, "--set", "training.max_steps=5"}, "past training.max_steps = 5")
  end)

  it("--device cuda without a GPU", function()
    if icl.cuda_available() then pending("this machine has a GPU") return end
    local cfg = R.config(dir, {max_steps = 4})
    fails({"train", cfg, "--device", "cuda"}, "no CUDA device is available", "--device cpu")
    local code, out = R.icl({"train", cfg, "--run-dir", dir .. "/run", "--no-eval"})
    assert.are.equal(0, code, out)
    for _, sub in ipairs({"eval", "attn", "atk"}) do
      fails({sub, dir .. "/run", "--device", "cuda"}, "no CUDA device is available")
    end
    fails({"eval", dir}, dir .. " is not a run directory")
  end)
end)

describe("damaged checkpoints", function()
  local dir, cfg, ref
  setup(function()
    dir = U.tmpdir()
    cfg = R.config(dir, {max_steps = 40, save_steps = 10, save_total_limit = 3})
    ref = dir .. "/ref"
    local code, out = R.icl({"train", cfg, "--run-dir", ref, "--no-eval"})
    assert.are.equal(0, code, out)
  end)
  teardown(function() U.rmrf(dir) end)

  -- a run that crashed at step 35 (checkpoints 10, 20, 30)
  local function crashed(name)
    local run = dir .. "/" .. name
    local ok, err = run_here(require("icl.config").load(cfg), {run_dir = run, hooks = {before_step = function(s)
      if s == 34 then error("simulated crash") end
    end}})
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("simulated crash", 1, true))
    assert.are.same({10, 20, 30}, ckpt.list(run))
    assert.are.equal("failed", require("icl.rundir").read_status(run).state)
    return run
  end

  local function resumes_from_20(run, why)
    local code, out = R.icl({"train", "--resume", run, "--no-eval"})
    assert.are.equal(0, code, out)
    assert.is_truthy(out:find("warning: checkpoint at step 30 is not usable: ", 1, true), out)
    assert.is_truthy(out:find(why, 1, true), "want '" .. why .. "' in:\n" .. out)
    assert.is_truthy(out:find("resuming " .. run .. " from step 20", 1, true), out)
    assert.is_truthy(out:find("moved the unusable checkpoint of step 30 to " .. run .. "/unusable", 1, true), out)
    assert.is_true(exists(run .. "/unusable/checkpoint-00000030.safetensors"), "kept, not deleted")
    local ok, w = R.same_tensors(R.final_checkpoint(ref, 40), R.final_checkpoint(run, 40))
    assert.is_true(ok, w)
  end

  it("a bit flipped in the tensors: resume falls back to the previous checkpoint", function()
    local run = crashed("flip")
    local p = run .. "/checkpoint-00000030.safetensors"
    local raw = U.read(p)
    local off = #raw - 1000
    U.write(p, raw:sub(1, off) .. string.char(raw:byte(off + 1) ~ 0x10) .. raw:sub(off + 2))
    resumes_from_20(run, "checksum mismatch")
  end)

  it("a truncated tensor file", function()
    local run = crashed("trunc")
    local p = run .. "/checkpoint-00000030.safetensors"
    local raw = U.read(p)
    U.write(p, raw:sub(1, #raw // 2))
    resumes_from_20(run, "file is truncated")
  end)

  it("a modified commit record (still valid JSON)", function()
    local run = crashed("commit")
    local p = run .. "/checkpoint-00000030.json"
    local text = U.read(p)
    local changed = text:gsub('"next_train_stream":30', '"next_train_stream":31')
    assert.are_not.equal(text, changed)
    U.write(p, changed)
    resumes_from_20(run, "does not match the state stored in checkpoint-00000030.safetensors")
  end)

  it("an unreadable tensor file", function()
    local run = crashed("unreadable")
    local p = run .. "/checkpoint-00000030.safetensors"
    os.remove(p)
    icl.io.mkdir_p(p) -- a directory where the file should be: unreadable even for root
    resumes_from_20(run, "not a regular file")
  end)

  it("no usable checkpoint at all: refuses, and changes nothing", function()
    local run = crashed("all")
    for _, s in ipairs({10, 20, 30}) do
      local p = string.format("%s/checkpoint-%08d.safetensors", run, s)
      local raw = U.read(p)
      U.write(p, raw:sub(1, 100))
    end
    local before = {}
    for _, n in ipairs(icl.io.list_dir(run)) do
      if n ~= "run.lock" then before[n] = exists(run .. "/" .. n .. "/.") and "dir" or U.read(run .. "/" .. n) end
    end
    local code, out = R.icl({"train", "--resume", run, "--no-eval"})
    assert.are.equal(1, code, out)
    assert.is_truthy(out:find("none of its 3 checkpoint(s) can be used", 1, true), out)
    assert.is_truthy(out:find("nothing was changed", 1, true), out)
    for _, s in ipairs({10, 20, 30}) do
      assert.is_truthy(out:find(string.format("checkpoint at step %d is not usable: %s/checkpoint-%08d.safetensors",
        s, run, s), 1, true), out)
    end
    no_traceback(out)
    for n, content in pairs(before) do
      if n ~= "status.json" then assert.are.equal(content, U.read(run .. "/" .. n), n .. " changed") end
    end
    assert.are.equal("failed", require("icl.rundir").read_status(run).state)
  end)
end)

describe("NaN and Inf", function()
  local dir, cfg, ref
  setup(function()
    dir = U.tmpdir()
    cfg = R.config(dir, {max_steps = 40, save_steps = 10, logging_steps = 5, save_total_limit = 5})
    ref = dir .. "/ref"
    local code, out = R.icl({"train", cfg, "--run-dir", ref, "--no-eval"})
    assert.are.equal(0, code, out)
  end)
  teardown(function() U.rmrf(dir) end)

  it("a weight set to NaN: stops, names the step and the tensor, keeps the last good checkpoint", function()
    local run = dir .. "/nan"
    local ok, err, out = run_here(require("icl.config").load(cfg), {run_dir = run, hooks = {
      before_step = function(s, model) if s == 22 then model:get("read_out.weight"):fill(0 / 0) end end}})
    assert.is_false(ok)
    err = tostring(err)
    assert.is_truthy(err:find("training stopped at step 23: NaN/Inf in the loss or the gradients (loss nan; ", 1,
      true), err)
    assert.is_truthy(err:find("The optimiser applied no update from that step on", 1, true), err)
    assert.is_truthy(err:find("non-finite parameters: read_out.weight", 1, true), err)
    assert.is_truthy(err:find("non-finite gradients in 12 of 12 tensors", 1, true), err)
    assert.is_truthy(err:find("the last good checkpoint is step 20 (" .. run .. "/checkpoint-00000020.safetensors)",
      1, true), err)
    assert.is_nil(out:find("warning", 1, true), out)
    -- every checkpoint loads and is finite; none was written after the bad step
    assert.are.same({10, 20}, ckpt.list(run))
    for _, s in ipairs({10, 20}) do
      local state, tensors = ckpt.read(run, s)
      assert.is_table(state, tensors)
      for name, t in pairs(tensors) do assert.is_false(t:has_nonfinite(), name) end
    end
    local st = require("icl.rundir").read_status(run)
    assert.are.equal("failed", st.state)
    assert.are.equal(23, st.step)
    local errs = R.records(run, "error")
    assert.are.equal(1, #errs)
    assert.are.equal(23, errs[1].step)
    assert.are.same({"read_out.weight"}, errs[1].nonfinite_parameters)
    -- nothing lost: resuming (without the fault) ends exactly where the undisturbed run ends
    local code, rout = R.icl({"train", "--resume", run, "--no-eval"})
    assert.are.equal(0, code, rout)
    assert.is_truthy(rout:find("from step 20", 1, true), rout)
    local same, why = R.same_tensors(R.final_checkpoint(ref, 40), R.final_checkpoint(run, 40))
    assert.is_true(same, why)
  end)

  it("a huge learning rate: Inf/NaN after the first update; the message says which step and tensors", function()
    local run = dir .. "/lr"
    local code, out = R.icl({"train", cfg, "--run-dir", run, "--no-eval", "--set", "training.learning_rate=1e30",
                             "--set", "training.warmup_steps=0", "--set", "training.logging_steps=1"})
    assert.are.equal(1, code, out)
    local step = tonumber(out:match("training stopped at step (%d+): NaN/Inf in the loss or the gradients"))
    assert.is_not_nil(step, out)
    assert.is_true(step >= 2 and step <= 10, out)
    assert.is_truthy(out:find("non%-finite gradients in %d+ of 12 tensors: read_in%.weight"), out)
    assert.is_truthy(out:find("the last good checkpoint is none (no checkpoint was saved yet)", 1, true), out)
    no_traceback(out)
    assert.are.same({}, ckpt.list(run))
    assert.is_false(exists(run .. "/model.safetensors"))
    -- logged as an error record, no NaN written as a number
    assert.are.equal(step, R.records(run, "error")[1].step)
  end)
end)

describe("a full disk while saving", function()
  local dir
  before_each(function() dir = U.tmpdir() end)
  after_each(function() U.rmrf(dir) end)

  it("keeps the previous checkpoint intact and says so (ICL_FAULT_WRITE_FAIL_AFTER)", function()
    local cfg = R.config(dir, {max_steps = 20, save_steps = 10})
    local run, twin = dir .. "/run", dir .. "/twin"
    for _, r in ipairs({run, twin}) do
      local code, out = R.icl({"train", cfg, "--run-dir", r, "--no-eval"})
      assert.are.equal(0, code, out)
    end
    local p20 = run .. "/checkpoint-00000020.safetensors"
    local before, before_json = U.read(p20), U.read(run .. "/checkpoint-00000020.json")
    assert.is_true(#before > 30000)
    -- every file over 20000 bytes (the checkpoints) fails as on a full disk
    local code, out = R.icl({"train", "--resume", run, "--no-eval", "--set", "training.max_steps=40"},
                            {env = {ICL_FAULT_WRITE_FAIL_AFTER = "20000"}})
    assert.are.equal(1, code, out)
    assert.is_truthy(out:find("warning: checkpoint at step 30 failed: " .. run ..
      "/checkpoint-00000030.safetensors: write failed after", 1, true), out)
    assert.is_truthy(out:find("No space left on device", 1, true), out)
    assert.is_truthy(out:find("the newest checkpoint is step 20; training goes on", 1, true), out)
    assert.is_truthy(out:find("training reached step 40 but its final checkpoint could not be written", 1, true), out)
    assert.is_truthy(out:find("The newest checkpoint on disk is step 20; free space and run icl train --resume " ..
      run, 1, true), out)
    no_traceback(out)
    -- the previous checkpoint is untouched, no temporary file is left, the log says what happened
    assert.are.equal(before, U.read(p20))
    assert.are.equal(before_json, U.read(run .. "/checkpoint-00000020.json"))
    assert.are.same({10, 20}, ckpt.list(run))
    assert.are.same({}, tmp_files(run))
    assert.is_truthy(ckpt.read(run, 20))
    local warn = R.records(run, "warning")
    assert.are.equal(30, warn[1].step)
    assert.are.equal("failed", require("icl.rundir").read_status(run).state)
    -- with space again, the run goes on from step 20 and ends as a run that never saw the fault
    code, out = R.icl({"train", "--resume", run, "--no-eval"})
    assert.are.equal(0, code, out)
    assert.is_truthy(out:find("from step 20", 1, true), out)
    code, out = R.icl({"train", "--resume", twin, "--no-eval", "--set", "training.max_steps=40"})
    assert.are.equal(0, code, out)
    local same, why = R.same_tensors(R.final_checkpoint(twin, 40), R.final_checkpoint(run, 40))
    assert.is_true(same, why)
  end)

  it("on a real full tmpfs (root only)", function()
    local uid = io.popen("id -u"):read("l")
    local mnt = dir .. "/mnt"
    icl.io.mkdir_p(mnt)
    -- room for the first checkpoint and the small files, not for a second checkpoint beside it
    local probe = dir .. "/probe"
    local run0 = R.run(dir, {max_steps = 2, save_steps = 10, save_total_limit = 1, logging_steps = 1})
    assert.is_true((run_here(run0, {run_dir = probe})))
    local size = #U.read(R.final_checkpoint(probe, 2))
    local kb = math.ceil((size * 1.45 + 28 * 1024) / 4096) * 4
    local mount = string.format("mount -t tmpfs -o size=%dk tmpfs '%s' 2>/dev/null", kb, mnt)
    if uid ~= "0" or os.execute(mount) ~= true then
      pending("needs root and a mountable tmpfs")
      return
    end
    finally(function() os.execute("umount '" .. mnt .. "'") end)
    local run = mnt .. "/run"
    local ok, err = run_here(R.run(dir, {max_steps = 20, save_steps = 10, save_total_limit = 1}), {run_dir = run})
    assert.is_false(ok)
    err = tostring(err)
    assert.is_truthy(err:find("training reached step 20 but its final checkpoint could not be written", 1, true), err)
    assert.is_truthy(err:find("No space left on device", 1, true), err)
    assert.is_truthy(err:find("The newest checkpoint on disk is step 10", 1, true), err)
    assert.are.same({10}, ckpt.list(run))
    local state, tensors = ckpt.read(run, 10)
    assert.is_table(state, tensors)
    assert.are.same({}, tmp_files(run))
  end)
end)
