-- The training loop and the `icl` command (docs/runner.md): AdamW as the paper states it and as
-- the published code ran it (weight decay and clipping checked on the optimiser itself), warm-up and
-- linear decay, seeds, the held-out evaluation (logged, and without effect on training), the run
-- directory (config, checkpoints, metrics, plots), `icl info`, every subcommand's --help, progress
-- output on and off a terminal, and the shell drivers in dry-run mode.
local icl = require "icl"
local core = require "icl.core"
local train = require "icl.train"
local ckpt = require "icl.checkpoint"
local progress = require "icl.progress"
local R = require "runner_util"
local U = R.U

local function exists(p) return (icl.io.file_exists(p)) end
local function f32(x) return (string.unpack("f", string.pack("f", x))) end

--- train.run in this process; returns the result and the progress output
local function run_here(run, opts)
  local f, text, close = R.capture()
  opts.out = f
  if opts.tty == nil then opts.tty = false end
  if opts.evaluate == nil then opts.evaluate = false end
  local res = train.run(run, opts)
  local out = text()
  close()
  return res, out
end

describe("AdamW: the paper's settings and the published code's (training.faithful_code)", function()
  local dir
  setup(function() dir = U.tmpdir() end)
  teardown(function() U.rmrf(dir) end)

  local function built(faithful)
    local run = R.run(dir, {faithful_code = faithful, warmup_steps = 0, learning_rate = "1.0e-2"})
    return train.build(run, {device = "cpu"}), run
  end

  it("resolves weight decay, clipping and eps from the switch", function()
    local _, paper = built(false)
    local _, code = built(true)
    local a, b = train.optimizer_settings(paper), train.optimizer_settings(code)
    assert.are.equal(0.0, a.weight_decay)
    assert.are.equal(1.0, a.max_grad_norm)
    assert.are.equal(0.01, b.weight_decay)
    assert.are.equal(0.0, b.max_grad_norm)
    assert.are.equal(1e-8, b.eps)
  end)

  it("applies weight decay 0.01 only in the published-code mode", function()
    for _, faithful in ipairs({false, true}) do
      local B = built(faithful)
      B.model:zero_grad() -- zero gradients: the update is the decay alone
      local before = B.model:get("read_in.weight"):clone():reshape({-1}):totable()
      B.opt:step()
      local after = B.model:get("read_in.weight"):reshape({-1}):totable()
      local decay = f32(1 - f32(f32(1e-2) * f32(faithful and 0.01 or 0)))
      for i = 1, #before do
        assert.are.equal(f32(before[i] * decay), after[i], "element " .. i)
      end
      if faithful then assert.are_not.equal(before[1], after[1]) end
    end
  end)

  it("clips the gradient norm to 1.0 only in the paper mode", function()
    for _, faithful in ipairs({false, true}) do
      local B = built(faithful)
      local _, grad = B.model:flat()
      grad:fill(0.5)
      B.opt:step()
      local sc = B.opt:scalars()
      local norm = 0.5 * math.sqrt(grad:numel())
      assert.is_true(math.abs(sc.grad_norm - norm) < 1e-4 * norm, tostring(sc.grad_norm))
      if faithful then
        assert.are.equal(1.0, sc.clip)
      else
        assert.is_true(math.abs(sc.clip - 1 / norm) < 1e-6 / norm, tostring(sc.clip))
      end
    end
  end)

  it("shows in a training run's log: clip < 1 with large gradients (paper), always 1 (code)", function()
    for _, faithful in ipairs({false, true}) do
      local run = R.run(dir, {faithful_code = faithful, max_steps = 6, save_steps = 100})
      run_here(run, {run_dir = dir .. "/clip_" .. tostring(faithful)})
      local clipped = 0
      for _, r in ipairs(R.records(dir .. "/clip_" .. tostring(faithful), "train")) do
        if r.grad_norm > 1 then
          if faithful then assert.are.equal(1.0, r.clip) else
            assert.is_true(math.abs(r.clip - 1 / (r.grad_norm + 1e-6)) < 1e-6)
            clipped = clipped + 1
          end
        end
      end
      if not faithful then assert.is_true(clipped > 0, "no step had a gradient norm above 1") end
    end
  end)
end)

describe("the hot path", function()
  it("a training step allocates nothing in Lua (no tensors, no tables)", function()
    local dir = U.tmpdir()
    finally(function() collectgarbage("restart"); U.rmrf(dir) end)
    local kb = {0, 0} -- sized now: filling it must not allocate inside the measurement
    -- logs, evaluations, saves and progress lines only at the end; the curriculum has ended by step 40
    run_here(R.run(dir, {max_steps = 160, logging_steps = 1000, evaluation_strategy = "no", save_strategy = "no"}),
      {run_dir = dir .. "/run", progress_every = 1e9, hooks = {before_step = function(s)
        if s == 50 then
          collectgarbage("collect")
          collectgarbage("stop")
          kb[1] = collectgarbage("count")
        elseif s == 150 then
          kb[2] = collectgarbage("count")
          collectgarbage("restart")
        end
      end}})
    assert.are.equal(0, kb[2] - kb[1], string.format("100 steps allocated %.3f KiB", kb[2] - kb[1]))
  end)
end)

describe("the learning-rate schedule", function()
  local dir
  setup(function() dir = U.tmpdir() end)
  teardown(function() U.rmrf(dir) end)

  local function lrs(t)
    t.save_steps = 100
    local d = dir .. "/" .. tostring(#(icl.io.list_dir(dir)))
    run_here(R.run(dir, t), {run_dir = d})
    local out = {}
    for _, r in ipairs(R.records(d, "train")) do out[r.step] = r.lr end
    return out
  end

  it("warms up linearly, then decays linearly to 0 at max_steps (HF 'linear')", function()
    local lr = lrs({max_steps = 20, warmup_steps = 4, learning_rate = "1.0e-3"})
    -- the k-th update uses the schedule at t = k - 1
    for k = 1, 20 do
      local t = k - 1
      local want = t < 4 and 1e-3 * t / 4 or 1e-3 * (20 - t) / 16
      assert.is_true(math.abs(lr[k] - want) <= 1e-9, string.format("step %d: lr %g, want %g", k, lr[k], want))
    end
    assert.are.equal(0.0, lr[1])
    assert.is_true(math.abs(lr[5] - 1e-3) < 1e-9)
  end)

  it("takes the warm-up from warmup_ratio (ceil); 'constant' is flat (HF 'constant', no warm-up)", function()
    local lr = lrs({max_steps = 20, warmup_steps = 0, warmup_ratio = 0.12, learning_rate = "1.0e-3"})
    -- ceil(0.12 x 20) = 3 warm-up steps
    assert.is_true(math.abs(lr[3] - 1e-3 * 2 / 3) < 1e-9)
    assert.is_true(math.abs(lr[4] - 1e-3) < 1e-9)
    lr = lrs({max_steps = 10, warmup_steps = 2, lr_scheduler_type = "constant", learning_rate = "1.0e-3"})
    for k = 1, 10 do assert.is_true(math.abs(lr[k] - 1e-3) < 1e-9, "step " .. k .. ": " .. lr[k]) end
  end)
end)

describe("seeds and the held-out evaluation", function()
  local dir, base
  setup(function()
    dir = U.tmpdir()
    base = {max_steps = 30, eval_steps = 10, save_steps = 10}
  end)
  teardown(function() U.rmrf(dir) end)

  local function final(name, t)
    local tt = {}
    for k, v in pairs(base) do tt[k] = v end
    for k, v in pairs(t or {}) do tt[k] = v end
    run_here(R.run(dir, tt, name), {run_dir = dir .. "/" .. name})
    return R.final_checkpoint(dir .. "/" .. name, tt.max_steps)
  end

  it("the same seed gives the same run, another seed another run", function()
    local a, b, c = final("s5a", {seed = 5}), final("s5b", {seed = 5}), final("s6", {seed = 6})
    assert.is_true(R.same_tensors(a, b))
    assert.is_false((R.same_tensors(a, c)))
    assert.are.same(R.train_values(dir .. "/s5a"), R.train_values(dir .. "/s5b"))
  end)

  it("logs held-out evaluations every eval_steps and at the end, and they do not change training", function()
    local with = final("eval", {eval_steps = 7, per_device_eval_batch_size = 16})
    local steps = {}
    for _, r in ipairs(R.records(dir .. "/eval", "eval")) do
      steps[#steps + 1] = r.step
      assert.are.equal("squared_error", r.metric_name)
      assert.is_true(r.loss > 0 and r.loss < 100)
      assert.is_number(r.n_points)
    end
    assert.are.same({7, 14, 21, 28, 30}, steps)
    local without = final("noeval", {evaluation_strategy = "no", save_strategy = "no"})
    steps = {}
    for _, r in ipairs(R.records(dir .. "/noeval", "eval")) do steps[#steps + 1] = r.step end
    assert.are.same({30}, steps) -- "no": only at the end
    assert.are.same({30}, ckpt.list(dir .. "/noeval")) -- save_strategy "no": only the final checkpoint
    local same, why = R.same_tensors(with, without)
    assert.is_true(same, why)
    assert.are.same(R.train_values(dir .. "/eval"), R.train_values(dir .. "/noeval"))
  end)

  it("logs every logging_steps and checkpoints every save_steps, keeping save_total_limit", function()
    final("cadence", {max_steps = 23, logging_steps = 4, save_steps = 5, save_total_limit = 2})
    local steps = {}
    for _, r in ipairs(R.records(dir .. "/cadence", "train")) do steps[#steps + 1] = r.step end
    assert.are.same({4, 8, 12, 16, 20, 23}, steps)
    assert.are.same({20, 23}, ckpt.list(dir .. "/cadence"))
    local state = ckpt.read(dir .. "/cadence", 20)
    assert.are.equal(20, state.step)
    assert.are.same({seed = 3, next_train_stream = 20, eval_stream_base = train.EVAL_STREAM_BASE}, state.rng)
    assert.are.same({n_dims_truncated = 3, n_points = 7}, state.curriculum) -- the stage of the next step
    assert.are.equal(icl.num_threads(), state.threads)
  end)
end)

describe("a finished run directory and icl info", function()
  local dir, run
  setup(function()
    dir = U.tmpdir()
    local code, out = R.icl({"train", R.config(dir, {max_steps = 30}), "--run-dir", dir .. "/run", "--device", "cpu"})
    assert.are.equal(0, code, out)
    run = dir .. "/run"
  end)
  teardown(function() U.rmrf(dir) end)

  it("holds the resolved config, checkpoints, metrics, the weights and the plots", function()
    for _, f in ipairs({"config.yaml", "metrics.jsonl", "status.json", "model.safetensors", "training_curve.png",
                        "standard.png", "ood_length.png", "ood_length.json", "checkpoint-00000030.safetensors",
                        "checkpoint-00000030.json"}) do
      assert.is_true(exists(run .. "/" .. f), f)
    end
    assert.are.equal("\137PNG", U.read(run .. "/training_curve.png"):sub(1, 4))
    assert.are.equal("finished", require("icl.rundir").read_status(run).state)
    -- the resolved config loads back to the same run
    local a = require("icl.config").load(run .. "/config.yaml")
    local b = require("icl.config").load(dir .. "/tiny.yaml")
    assert.are.same({}, train.config_diff(a, b))
    assert.are.equal(0.0, a.training.weight_decay)
    local kinds = {}
    for _, r in ipairs(R.records(run)) do kinds[r.kind] = (kinds[r.kind] or 0) + 1 end
    assert.are.same({start = 1, train = 30, eval = 3, ["end"] = 1}, kinds)
  end)

  it("resuming a finished run does nothing; a run stopped during its evaluation gets evaluated", function()
    local before = U.read(R.final_checkpoint(run, 30))
    local code, out = R.icl({"train", "--resume", run})
    assert.are.equal(0, code, out)
    assert.is_truthy(out:find("already finished (30 steps)", 1, true), out)
    require("icl.rundir").write_status(run, {state = "trained", step = 30, max_steps = 30})
    os.remove(run .. "/ood_length.json")
    code, out = R.icl({"train", "--resume", run})
    assert.are.equal(0, code, out)
    assert.is_truthy(out:find("evaluation: squared_error", 1, true), out)
    assert.is_true(exists(run .. "/ood_length.json"))
    assert.are.equal("finished", require("icl.rundir").read_status(run).state)
    assert.are.equal(before, U.read(R.final_checkpoint(run, 30)))
    assert.are.equal(30, #R.records(run, "train"))
  end)

  it("icl info says what the run is", function()
    local code, out = R.icl({"info", run})
    assert.are.equal(0, code, out)
    for _, want in ipairs({"run        " .. run, "task       linear_regression (D = 3)",
                           "model      Llama2, hidden 16, 1 layers, 2 heads, encoding nope", "parameters 4208",
                           "state      finished, step 30 of 30", "seed       3", "checkpoints at steps 20, 30",
                           "training   step 30: loss", "held-out   step 30: loss", "evaluation squared_error",
                           "optimiser  AdamW lr 0.001, linear schedule, 5 warm-up steps, weight decay 0, clipping " ..
                           "at 1.0 (as the paper states)", "files      training_curve.png, standard.png"}) do
      assert.is_truthy(out:find(want, 1, true), "want '" .. want .. "' in:\n" .. out)
    end
    code, out = R.icl({"info", dir})
    assert.are.equal(1, code)
    assert.is_truthy(out:find("is not a run directory", 1, true), out)
  end)
end)

describe("the icl command", function()
  it("has --help for every subcommand", function()
    for _, sub in ipairs({"train", "eval", "attn", "atk", "info", "compare", "sweep"}) do
      local code, out = R.icl({sub, "--help"})
      assert.are.equal(0, code, out)
      assert.is_truthy(out:find("Usage: icl " .. sub, 1, true), out)
    end
    local code, out = R.icl({"train", "--help"})
    assert.are.equal(0, code)
    local opts = {"--resume", "--set", "--run-dir", "--device", "--threads", "--no-eval", "--progress-every"}
    for _, opt in ipairs(opts) do
      assert.is_truthy(out:find(opt, 1, true), opt)
    end
    code, out = R.icl({"--help"})
    assert.are.equal(0, code)
    for _, sub in ipairs({"train", "eval", "attn", "atk", "info"}) do assert.is_truthy(out:find(sub, 1, true)) end
  end)
end)

describe("progress", function()
  local dir
  setup(function() dir = U.tmpdir() end)
  teardown(function() U.rmrf(dir) end)

  local fields = "^train step (%d+)/(%d+)  loss ([%d.e+-]+)  lr ([%d.e+-]+)  ([%d.]+) steps/s  ETA (%d+s)  " ..
                 "stage dims (%d)/3 points (%d)/9$"

  it("the line shows step, loss, lr, steps/s, ETA and the curriculum stage", function()
    local line = progress.line{step = 120, total = 2000, loss = 0.123456, lr = 3e-4, rate = 12.5, eta = 150.4,
                               stage = "stage dims 3/5 points 15/21"}
    assert.are.equal("train step 120/2000  loss 0.12346  lr 0.0003  12.50 steps/s  ETA 2m30s  stage dims 3/5 " ..
                     "points 15/21", line)
    assert.are.equal("1h01m", progress.fmt_time(3660))
    assert.is_truthy(progress.line{step = 1, total = 2, loss = 0 / 0}:find("loss nan", 1, true))
  end)

  it("prints plain periodic lines when not on a terminal", function()
    local _, out = run_here(R.run(dir, {max_steps = 20, save_steps = 100, eval_steps = 10}),
                            {run_dir = dir .. "/plain", progress_every = 0})
    assert.is_nil(out:find("\r", 1, true))
    assert.is_nil(out:find("\27", 1, true))
    local n = 0
    for line in out:gmatch("[^\n]+") do
      local step, total, _, _, rate, _, d, p = line:match(fields)
      if step then
        n = n + 1
        assert.are.equal(n, tonumber(step))
        assert.are.equal("20", total)
        assert.is_true(tonumber(rate) > 0)
        assert.is_true(tonumber(d) >= 2 and tonumber(p) >= 5)
      end
    end
    assert.are.equal(20, n, out)
    assert.is_truthy(out:find("eval step 10: held-out loss", 1, true), out)
    assert.is_truthy(out:find("trained 20 steps in", 1, true), out)
    -- with the default period, a short run prints only its first line, the notes and the summary
    _, out = run_here(R.run(dir, {max_steps = 20, save_steps = 100, eval_steps = 10}), {run_dir = dir .. "/quiet"})
    local lines = 0
    for line in out:gmatch("[^\n]+") do if line:match(fields) then lines = lines + 1 end end
    assert.are.equal(1, lines, out)
  end)

  it("redraws one live line on a terminal", function()
    if os.execute("command -v script >/dev/null 2>&1") ~= true then pending("no script(1) for a pty") return end
    local cfg = R.config(dir, {max_steps = 40, save_steps = 100, eval_steps = 20})
    local log = dir .. "/tty.out"
    local cmd = string.format("%s train %s --run-dir %s/tty --no-eval", R.bin, cfg, dir)
    local ok = os.execute(string.format("script -q -e -c '%s' /dev/null > %s 2>&1 < /dev/null", cmd, log))
    assert.is_true(ok, U.read(log))
    local out = U.read(log)
    assert.is_truthy(out:find("\r\27[K", 1, true), out)
    local live = 0
    for seg in out:gmatch("\r\27%[K([^\r\n]*)") do
      if seg:match("^train step") then
        live = live + 1
        assert.is_truthy(seg:match(fields), seg)
      end
    end
    assert.is_true(live >= 1, out)
    assert.is_truthy(out:find("eval step 20: held-out loss", 1, true), out)
  end)
end)

describe("the experiment drivers", function()
  local dir
  setup(function() dir = U.tmpdir() end)
  teardown(function() U.rmrf(dir) end)

  local function sh(script, args)
    local log = dir .. "/sh.out"
    local cmd = string.format("cd '%s' && ICL=icl TASKS= ENCODINGS= experiments/%s %s > '%s' 2>&1", R.root, script,
      args, log)
    local ok = os.execute(cmd)
    return ok, U.read(log)
  end

  local function lines(text)
    local out = {}
    for l in text:gmatch("[^\n]+") do if not l:match("^#") then out[#out + 1] = l end end
    return out
  end

  it("train.sh loops over tasks x encodings (dry run)", function()
    local ok, out = sh("train.sh", "-n")
    assert.is_true(ok, out)
    local l = lines(out)
    assert.are.equal(49, #l, out)
    assert.are.equal("icl train configs/tasks/linear_regression/nope.yaml", l[1])
    assert.are.equal("icl train configs/tasks/parity/mamba.yaml", l[49])
    ok, out = sh("train.sh", "-n -t 'majority parity' -e 'fire alibi' -- --device cpu --set training.max_steps=10")
    assert.is_true(ok, out)
    assert.are.same({"icl train configs/tasks/majority/fire.yaml --device cpu --set training.max_steps=10",
                     "icl train configs/tasks/majority/alibi.yaml --device cpu --set training.max_steps=10",
                     "icl train configs/tasks/parity/fire.yaml --device cpu --set training.max_steps=10",
                     "icl train configs/tasks/parity/alibi.yaml --device cpu --set training.max_steps=10"}, lines(out))
    ok, out = sh("train.sh", "-n -t nosuchtask -e nope")
    assert.is_falsy(ok)
    assert.is_truthy(out:find("no such config", 1, true), out)
  end)

  it("eval.sh, eval_attn.sh and eval_atk.sh find the newest run of each task x encoding (dry run)", function()
    local models = dir .. "/models"
    local function fake(task, date, uid)
      local d = string.format("%s/%s/dim_4-16/%s/%s", models, task, date, uid)
      icl.io.mkdir_p(d)
      U.write(d .. "/config.yaml", "")
      return d
    end
    fake("linear_regression", "2025-01-01", "nope-s1-101010")
    local newest = fake("linear_regression", "2025-01-02", "nope-s1-090000")
    local fire = fake("linear_regression", "2025-01-01", "fire-s1-101010")
    local maj = fake("majority", "2025-01-01", "mamba-s1-101010")
    icl.io.mkdir_p(models .. "/linear_regression/dim_4-16/2025-01-03/rope-s1-000000") -- no config: not a run
    local ok, out = sh("eval.sh", string.format("-n -m '%s' -t linear_regression -e 'nope rope fire' -- --n-prompts 64",
      models))
    assert.is_true(ok, out)
    assert.are.same({"icl eval " .. newest .. " --n-prompts 64", "icl eval " .. fire .. " --n-prompts 64"}, lines(out))
    assert.is_truthy(out:find("# no run of linear_regression / rope", 1, true), out)
    ok, out = sh("eval_attn.sh", string.format("-n -m '%s'", models))
    assert.is_true(ok, out)
    assert.are.same({"icl attn " .. newest, "icl attn " .. fire}, lines(out))
    ok, out = sh("eval_atk.sh", string.format("-n -m '%s' -d dim_4-16", models))
    assert.is_true(ok, out)
    assert.are.same({"icl atk " .. newest, "icl atk " .. fire, "icl atk " .. maj}, lines(out))
    ok, out = sh("eval.sh", "-h")
    assert.is_true(ok)
    assert.is_truthy(out:find("dry run", 1, true), out)
  end)
end)
