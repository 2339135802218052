--- `icl info RUN_DIR`: what a run is (config, parameter count, steps done,
-- latest metrics, evaluation summary, files).
local json = require "icl.json"

local info = {}

local function read_json(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local t = f:read("a")
  f:close()
  local ok, v = pcall(json.decode, t)
  return ok and v or nil
end

--- A table describing the run (used by print and by icl compare/sweep).
function info.collect(run_dir)
  local io_ = require "icl.io"
  if not io_.file_exists(run_dir .. "/config.yaml") then
    error(run_dir .. " is not a run directory (no config.yaml)", 2)
  end
  local run = require("icl.config").load(run_dir .. "/config.yaml")
  local rd = require "icl.rundir"
  local out = {dir = run_dir, task = run.task.name, n_dims = run.task.n_dims, encoding = rd.encoding_name(run),
               family = run.model.family, hidden = run.model.hidden_size, layers = run.model.num_hidden_layers,
               heads = run.model.num_attention_heads, max_steps = run.training.max_steps, seed = run.training.seed,
               status = rd.read_status(run_dir), checkpoints = require("icl.checkpoint").list(run_dir)}
  local last_train, last_eval, start
  for _, r in ipairs(require("icl.metrics").read(run_dir .. "/metrics.jsonl")) do
    if r.kind == "train" then last_train = r end
    if r.kind == "eval" then last_eval = r end
    if r.kind == "start" then start = r end
  end
  out.last_train, out.last_eval = last_train, last_eval
  out.params = start and start.params
  out.ood = read_json(run_dir .. "/ood_length.json")
  out.optimizer = require("icl.config").optimizer(run)
  out.faithful_code = run.training.faithful_code
  out.files = {}
  for _, f in ipairs({"training_curve.png", "standard.png", "ood_length.png", "model.safetensors"}) do
    if io_.file_exists(run_dir .. "/" .. f) then out.files[#out.files + 1] = f end
  end
  return out, run
end

function info.print(run_dir)
  local i = info.collect(run_dir)
  local st = i.status or {}
  print(string.format("run        %s", i.dir))
  print(string.format("task       %s (D = %s)", i.task, tostring(i.n_dims)))
  if i.heads then
    print(string.format("model      %s, hidden %s, %s layers, %s heads, encoding %s", tostring(i.family),
      tostring(i.hidden), tostring(i.layers), tostring(i.heads), i.encoding))
  else
    print(string.format("model      %s, hidden %s, %s layers (no position encoding)", tostring(i.family),
      tostring(i.hidden), tostring(i.layers)))
  end
  if i.params then print(string.format("parameters %d", i.params)) end
  print(string.format("state      %s, step %s of %s%s", tostring(st.state or "unknown"), tostring(st.step or "?"),
    tostring(i.max_steps), st.error and ("\n           error: " .. st.error) or ""))
  print(string.format("seed       %s", tostring(i.seed)))
  local o = i.optimizer
  print(string.format("optimiser  AdamW lr %g, %s schedule, %d warm-up steps, weight decay %g, %s (%s)", o.lr,
    o.schedule, o.warmup_steps, o.weight_decay, o.max_grad_norm > 0 and ("clipping at " .. o.max_grad_norm) or
    "no clipping", i.faithful_code and "as the published code ran" or "as the paper states"))
  if #i.checkpoints > 0 then
    local c = {}
    for _, s in ipairs(i.checkpoints) do c[#c + 1] = tostring(s) end
    print("checkpoints at steps " .. table.concat(c, ", "))
  end
  if i.last_train then
    print(string.format("training   step %d: loss %.5g, lr %.3g, grad norm %.3g, points %d, dims %d", i.last_train.step,
      i.last_train.loss, i.last_train.lr or 0, i.last_train.grad_norm or 0, i.last_train.n_points or 0,
      i.last_train.n_dims or 0))
  end
  if i.last_eval then
    print(string.format("held-out   step %d: loss %.5g, %s %.4g", i.last_eval.step, i.last_eval.loss,
      tostring(i.last_eval.metric_name), i.last_eval.metric))
  end
  if i.ood then print("evaluation " .. require("icl.evaluate").summary_line(i.ood)) end
  if #i.files > 0 then print("files      " .. table.concat(i.files, ", ")) end
end

return info
