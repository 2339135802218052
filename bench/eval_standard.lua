-- Time of the OOD-length evaluation of the standard model (issue "evaluation",
-- speed): 1280 prompts at N = 51 and at 8 x 51 = 408 examples, model and every
-- baseline of linear regression (D = 20), as `icl eval` runs it. The weights
-- are freshly initialised: the time does not depend on them.
--   LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/lua/?.so;;" lua5.4 bench/eval_standard.lua [pe] [prompts]
local icl = require "icl"
local evaluate = require "icl.evaluate"
local pe = arg[1] or "nope"
local prompts = tonumber(arg[2] or "1280")
local D, N = 20, 51
local patch = pe == "rope" and {} or {rope_scaling = {type = pe}}
local model = icl.model({family = "Llama2", hidden_size = 256, num_hidden_layers = 16, num_attention_heads = 8,
                         max_length = {2 * N}}, patch, {n_dims = D, seed = 1})
local task = icl.task("linear_regression", {n_dims = D})
local t0 = icl.wall_time()
local res = evaluate.ood(model, task, {n_train = N, n_prompts = prompts, ood_factor = 8})
local total = icl.wall_time() - t0
local function base_s(entry)
  local s = 0
  for _, b in pairs(entry.baselines) do s = s + b.seconds end
  return s
end
local st, ood = res.settings.standard, res.settings.ood_length
print(string.format('{"what":"eval_standard","pe":"%s","prompts":%d,"threads":%d,"model_s_N":%.1f,"model_s_8N":%.1f,' ..
  '"baselines_s_N":%.1f,"baselines_s_8N":%.1f,"total_s":%.1f}', pe, res.n_prompts, icl.num_threads(),
  st.seconds_model, ood.seconds_model, base_s(st), base_s(ood), total))
