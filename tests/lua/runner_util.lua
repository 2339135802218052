-- Helpers for the experiment-runner specs (runner_*_spec.lua; not a spec itself): a tiny run
-- config, `icl` child processes, bitwise comparison of checkpoints, metrics.
local core = require "icl.core"
local icl = require "icl"
local json = require "icl.json"
local U = require "spec_util"

local R = {}
R.root = os.getenv("ICL_SOURCE_DIR") or "."
R.bin = os.getenv("ICL_BIN") or (R.root .. "/bin/icl")

local training_defaults = {
  seed = 3, max_steps = 40, per_device_train_batch_size = 8, per_device_eval_batch_size = 8,
  learning_rate = "1.0e-3", warmup_steps = 5, logging_steps = 1, eval_steps = 10, save_steps = 10,
  save_total_limit = 2, device = "cpu",
}
local training_order = {"seed", "device", "faithful_code", "max_steps", "per_device_train_batch_size",
  "per_device_eval_batch_size", "learning_rate", "lr_scheduler_type", "warmup_ratio", "warmup_steps",
  "weight_decay", "max_grad_norm", "logging_steps", "evaluation_strategy", "eval_steps", "save_strategy",
  "save_steps", "save_total_limit"}

--- YAML of a tiny run (Llama hidden 16, 1 layer, linear regression d 2 -> 3, N 5 -> 9);
-- training keys from `t` (plus hidden = hidden_size, task = task name)
function R.yaml(t)
  local tr = {}
  for k, v in pairs(training_defaults) do tr[k] = v end
  for k, v in pairs(t or {}) do
    if k ~= "hidden" and k ~= "task" then tr[k] = v end
  end
  local lines = {}
  for _, k in ipairs(training_order) do
    if tr[k] ~= nil then
      lines[#lines + 1] = string.format("  %s: %s", k, tostring(tr[k]))
    end
  end
  return string.format([[
model:
  family: Llama2
  hidden_size: %d
  num_hidden_layers: 1
  num_attention_heads: 2
  max_length: [20]
patch:
  rope_scaling: {type: nope}
task:
  name: %s
  curriculum:
    dims: {start: 2, end: 3, increment: 1, interval: 20}
    points: {start: 5, end: 9, increment: 2, interval: 20}
training:
%s
eval:
  n_prompts: 16
  batch_size: 8
  ood_factor: 2
]], t and t.hidden or 16, t and t.task or "linear_regression", table.concat(lines, "\n"))
end

--- write the tiny config to dir/<name>.yaml; returns the path
function R.config(dir, t, name)
  local path = string.format("%s/%s.yaml", dir, name or "tiny")
  U.write(path, R.yaml(t))
  return path
end

--- the run table of the tiny config
function R.run(dir, t, name)
  return require("icl.config").load(R.config(dir, t, name))
end

--- start `icl ARGS...`; returns pid, log path (stdout and stderr)
function R.start(args, opts)
  opts = opts or {}
  local argv = {R.bin}
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local log = opts.log or (os.tmpname())
  os.remove(log)
  return core.spawn(argv, {log = log, env = opts.env}), log
end

function R.wait(pid, timeout)
  local t0 = core.wall_time()
  while core.wall_time() - t0 < (timeout or 120) do
    local w = core.waitpid(pid, {nohang = true})
    if w then return w end
    core.sleep(0.01)
  end
  core.kill(pid, "KILL")
  core.waitpid(pid)
  error("process " .. pid .. " did not finish in time")
end

--- run `icl ARGS...` to the end: exit code (negative: killed by that signal), output
function R.icl(args, opts)
  local pid, log = R.start(args, opts)
  local w = R.wait(pid, opts and opts.timeout)
  local text = U.read(log)
  os.remove(log)
  return w.code or -w.signal, text
end

--- the newest training step in a run's metrics.jsonl (reads only the tail)
function R.last_step(dir)
  local f = io.open(dir .. "/metrics.jsonl", "rb")
  if not f then return -1 end
  local size = f:seek("end")
  f:seek("set", math.max(0, size - 700))
  local tail = f:read("a")
  f:close()
  local best = -1
  for kind, s in tail:gmatch('"kind":"(%a+)"[^\n]-"step":(%d+)') do
    if kind == "train" then best = math.max(best, tonumber(s)) end
  end
  return best
end

--- the data section and the tensor index (header without __metadata__) of a safetensors file
function R.tensor_bytes(path)
  local raw = U.read(path)
  local n = string.unpack("<I8", raw)
  local header = json.decode(raw:sub(9, 8 + n))
  header.__metadata__ = nil
  return raw:sub(9 + n), json.encode(header), header
end

--- whether two safetensors files hold bitwise identical tensors (every one); why not
function R.same_tensors(a, b)
  local da, ia, ha = R.tensor_bytes(a)
  local db, ib = R.tensor_bytes(b)
  if ia ~= ib then return false, "different tensor index: " .. ia .. " vs " .. ib end
  if da == db then return true end
  for name, e in pairs(ha) do
    local o = e.data_offsets
    if da:sub(o[1] + 1, o[2]) ~= db:sub(o[1] + 1, o[2]) then return false, "tensor " .. name .. " differs" end
  end
  return false, "data differs"
end

function R.final_checkpoint(dir, step)
  return string.format("%s/checkpoint-%08d.safetensors", dir, step)
end

--- metrics records of a run, optionally of one kind
function R.records(dir, kind)
  local out = {}
  for _, r in ipairs(require("icl.metrics").read(dir .. "/metrics.jsonl")) do
    if not kind or r.kind == kind then out[#out + 1] = r end
  end
  return out
end

--- train records by step with the values that must match between runs (time left out)
function R.train_values(dir)
  local by = {}
  for _, r in ipairs(R.records(dir, "train")) do
    assert(by[r.step] == nil, "two train records for step " .. r.step .. " in " .. dir)
    by[r.step] = string.format("%.17g %.17g %.17g %.17g", r.loss, r.lr, r.grad_norm, r.clip)
  end
  return by
end

--- a file handle for progress output and a function returning what was written
function R.capture()
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  return f, function()
    f:flush()
    local s = U.read(path)
    return s
  end, function() f:close(); os.remove(path) end
end

--- fn(arg, opts) (train.run or train.run_group) in this process, progress into a string, no
-- evaluation unless asked: returns ok, result or error, output
function R.in_process(fn, arg, opts)
  local f, text, close = R.capture()
  opts.out, opts.tty = f, false
  if opts.evaluate == nil then opts.evaluate = false end
  local ok, res = pcall(fn, arg, opts)
  local out = text()
  close()
  return ok, res, out
end

--- a pid that is not running (a finished child)
function R.dead_pid()
  local pid = core.spawn({"true"})
  core.waitpid(pid)
  return pid
end

R.U = U
R.engine = icl
return R
