-- The analyses (icl eval / attn / atk / compare) on a tiny trained run:
-- protocol layouts as published, summaries consistent with the curves,
-- every file written under the published names.
local icl = require "icl"
local json = require "icl.json"
local evaluate = require "icl.evaluate"
local attacks = require "icl.attacks"
local attention = require "icl.attention"

local SRC = os.getenv("ICL_SOURCE_DIR") or "."

local function tmpdir()
  local d = string.format("/tmp/icl_analyses_%d_%d", icl.getpid(), math.random(1, 1e9))
  icl.io.mkdir_p(d)
  return d
end

local function tiny_run(out, encoding, seed)
  local config = require "icl.config"
  return config.load(SRC .. "/configs/toy_task.yaml", {overrides = {
    "output_dir=" .. out, "training.max_steps=30", "training.eval_steps=15", "training.save_steps=15",
    "training.seed=" .. seed, "model.hidden_size=16", "model.num_hidden_layers=2", "model.num_attention_heads=2",
    "patch.rope_scaling.type=" .. encoding, "eval.n_prompts=64", "eval.ood_factor=4"}})
end

describe("published protocol layouts", function()
  it("attacks put target and answer blocks where eval_atk.py puts them (d=16, N=50, T=400)", function()
    local L = attacks.layouts(16, 50, 400)
    assert.same({50, 212, 392}, {L.distance[1].target_start, L.distance[2].target_start, L.distance[3].target_start})
    assert.equal(400, #L.distance[3].idx)
    assert.equal(58, #L.distance[1].idx)
    assert.equal(400, #L.all_dup)
    -- lost in the middle: answer (examples 34..49) at 32, 204, 376; total with the target 400
    local function answer_start(prefix)
      for i, v in ipairs(prefix) do if v == 34 then return i - 1 end end
    end
    assert.same({32, 204, 376}, {answer_start(L.lost.begin), answer_start(L.lost.middle), answer_start(L.lost["end"])})
    assert.equal(400, #L.lost.middle + L.h)
    assert.same({42, 43, 44, 45, 46, 47, 48, 49}, L.target_copy)
    assert.equal(7, #L.lost_sweep)
  end)
  it("the recency ratio is 1 for uniform attention and grows with recency", function()
    local u, r = {}, {}
    for i = 1, 200 do u[i], r[i] = 1 / 200, i end
    assert.is_true(math.abs(attention.recency_ratio(u) - 1) < 1e-12)
    assert.is_true(attention.recency_ratio(r) > 1.8)
  end)
  it("summaries: bands and effective length from a known curve", function()
    local curve = {}
    for k = 0, 79 do curve[k + 1] = k < 10 and 0.1 or (k < 25 and 0.2 or 3.0) end -- breaks down after 2.5N
    local s = evaluate.summaries(curve, {n_train = 10, n_dims = 2, metric = "squared_error"})
    assert.is_true(math.abs(s.in_distribution - 0.1) < 1e-12)
    assert.is_true(math.abs(s.ood_1x_2x - 0.2) < 1e-12)
    assert.equal(25, s.effective_length)
    assert.equal(3.0, s.at_end)
    local acc = {}
    for k = 0, 39 do acc[k + 1] = k < 20 and 0.9 or 0.8 end
    local a = evaluate.summaries(acc, {n_train = 10, n_dims = 2, metric = "accuracy"})
    assert.equal(20, a.effective_length)
  end)
end)

describe("analyses on a tiny trained run", function()
  local dir, runs = tmpdir(), {}
  setup(function()
    for i, enc in ipairs({"nope", "alibi"}) do
      local run = tiny_run(dir, enc, i)
      runs[i] = require("icl.train").run(run, {out = io.open("/dev/null", "w"), tty = false}).run_dir
    end
  end)

  it("training left the evaluation files, consistent with their curves", function()
    for _, r in ipairs(runs) do
      for _, f in ipairs({"standard.png", "ood_length.png", "ood_length.json", "training_curve.png"}) do
        assert.is_true(icl.io.file_exists(r .. "/" .. f), r .. "/" .. f)
      end
      local res = json.decode(icl.io.read_file(r .. "/ood_length.json"))
      local e = res.settings.ood_length
      assert.equal(4 * res.n_train, #e.model.mean)
      local again = evaluate.summaries(e.model.mean, {n_train = res.n_train, n_dims = res.n_dims, metric = res.metric,
                                                     reference = e.baselines.least_squares.mean})
      assert.same(again, e.summary)
      for k = 1, #e.model.mean do assert.is_true(e.model.lo[k] <= e.model.mean[k] + 1e-6 and
                                                 e.model.mean[k] <= e.model.hi[k] + 1e-6) end
      assert.is_true(e.zero_estimator > 2 and e.zero_estimator < 8) -- E[y^2] = d = 5
      -- least squares is exact once the prompt has d examples
      assert.is_true(e.baselines.least_squares.mean[res.n_dims + 3] < 1e-3)
    end
  end)

  it("icl attn and icl atk write their files under duplicated/", function()
    local run = require("icl.config").load(runs[1] .. "/config.yaml")
    local model = require("icl.model").load_run(runs[1], run)
    local task = require("icl.tasks").from_run(run)
    local res = attention.run(model, task, {n_train = 21, layers = 2, n_prompts = 16, batch = 8})
    local d = runs[1] .. "/duplicated"
    icl.io.mkdir_p(d)
    attention.plot(res, d, {encoding = "nope"})
    for _, f in ipairs({"avg_attention_score.png", "attn_heads_N.png", "attn_heads_4N.png", "attn_repeated_heads.png",
                        "attn_heatmap.png"}) do
      assert.is_true(icl.io.file_exists(d .. "/" .. f), f)
    end
    assert.equal(2, #res.avg_attention)
    assert.equal(4 * 21, #res.avg_attention[1])
    local a = attacks.run(model, task, {n_dims = 5, n_train = 21, batch = 8})
    attacks.plot(a, d, {encoding = "nope"})
    for _, f in ipairs({"baseline_all_dup.png", "lost_in_mid.png", "lost_in_mid_sweep.png", "noise_target_dist.png",
                        "change_inst_position.png", "noise_points=5.png"}) do
      assert.is_true(icl.io.file_exists(d .. "/" .. f), f)
    end
    assert.equal(168, #a.all_dup.mean)
    assert.same({21, a.distance[2].target_start, 168 - 2}, {a.distance[1].target_start,
      a.distance[2].target_start, a.distance[3].target_start + 0})
  end)

  it("icl compare overlays the runs and tabulates their summaries", function()
    local out = dir .. "/cmp"
    require("icl.compare").cli(runs, {out = out})
    assert.is_true(icl.io.file_exists(out .. "/linear_regression_ood_length.png"))
    local md = icl.io.read_file(out .. "/summary.md")
    assert.matches("nope", md)
    assert.matches("alibi", md)
  end)

  it("the attention analysis refuses Mamba runs clearly", function()
    local ok, err = pcall(function()
      local m = icl.model({family = "Mamba", hidden_size = 8, state_size = 4, num_hidden_layers = 1}, nil, {n_dims = 3})
      m:attention(icl.zeros{1, 2, 3}, icl.zeros{1, 2}, {})
    end)
    assert.is_false(ok)
    assert.matches("does not apply", err)
  end)
end)
