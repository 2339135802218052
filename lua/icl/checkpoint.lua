--- Crash-safe checkpoints of a training run.
-- A checkpoint is two files written atomically (temp file, fsync, rename):
--   checkpoint-<step>.safetensors  the model's tensors (HF names) and the
--                                  optimiser's moments and scalars, checksummed
--   checkpoint-<step>.json         the run state: step, curriculum stage, RNG
--                                  streams, thread count, config digest
-- The JSON is written last and is the commit record: a checkpoint without
-- it does not exist. Loading verifies the checksum; a corrupt newest
-- checkpoint is reported and the newest valid one is used instead.
local core = require "icl.core"
local io_ = require "icl.io"
local json = require "icl.json"

local ckpt = {}

local function base(run_dir, step) return string.format("%s/checkpoint-%08d", run_dir, step) end

--- steps of the checkpoints present in run_dir (committed ones), ascending
function ckpt.list(run_dir)
  local steps = {}
  for _, name in ipairs(io_.list_dir(run_dir) or {}) do
    local s = name:match("^checkpoint%-(%d+)%.json$")
    if s then steps[#steps + 1] = tonumber(s) end
  end
  table.sort(steps)
  return steps
end

--- The model's and optimiser's tensors, by name.
local function tensors_of(model, opt)
  local t = {}
  for _, p in ipairs(model:param_list()) do t[p.name] = model:get(p.name) end
  local st = opt:state()
  t["optimizer.m"], t["optimizer.v"], t["optimizer.scalars"] = st.m, st.v, st.scalars
  return t
end

--- Save; refuses to write non-finite parameters (the last good checkpoint
-- must stay the newest). Keeps the newest `keep` checkpoints.
function ckpt.save(run_dir, step, model, opt, state, keep)
  local value = model:flat()
  if value:has_nonfinite() then
    error(string.format("checkpoint: parameters contain NaN/Inf at step %d; not saving (the last good " ..
      "checkpoint is kept)", step), 2)
  end
  local b = base(run_dir, step)
  io_.save(b .. ".safetensors", tensors_of(model, opt), {format = "icl-checkpoint/1", step = tostring(step)})
  local st = {}
  for k, v in pairs(state) do st[k] = v end
  st.step = step
  st.tensors = b:match("[^/]+$") .. ".safetensors"
  st.saved_at = os.date("!%Y-%m-%dT%H:%M:%SZ")
  io_.write_file_atomic(b .. ".json", json.encode(st) .. "\n")
  if keep and keep > 0 then
    local steps = ckpt.list(run_dir)
    for i = 1, #steps - keep do
      -- remove the commit record first, so a crash mid-prune leaves no half checkpoint
      io_.remove(base(run_dir, steps[i]) .. ".json")
      io_.remove(base(run_dir, steps[i]) .. ".safetensors")
    end
  end
  return b
end

--- Read and verify one checkpoint; returns state, tensors or nil, message.
function ckpt.read(run_dir, step, opts)
  local b = base(run_dir, step)
  local f = io.open(b .. ".json", "r")
  if not f then return nil, b .. ".json: missing" end
  local text = f:read("a")
  f:close()
  local ok, state = pcall(json.decode, text)
  if not ok or type(state) ~= "table" or state.step ~= step then
    return nil, b .. ".json: unreadable or inconsistent checkpoint state (" .. tostring(state) .. ")"
  end
  local ok2, tensors = pcall(io_.load, b .. ".safetensors", {device = opts and opts.device})
  if not ok2 then return nil, tostring(tensors) end
  return state, tensors
end

--- The newest valid checkpoint: state, tensors, warnings (list of strings).
function ckpt.latest(run_dir, opts)
  local warnings = {}
  local steps = ckpt.list(run_dir)
  for i = #steps, 1, -1 do
    local state, tensors = ckpt.read(run_dir, steps[i], opts)
    if state then return state, tensors, warnings end
    warnings[#warnings + 1] = string.format("checkpoint at step %d is not usable: %s", steps[i], tensors)
  end
  return nil, nil, warnings
end

--- Copy a checkpoint's tensors into model and optimiser.
function ckpt.restore(tensors, model, opt)
  for _, p in ipairs(model:param_list()) do
    local t = tensors[p.name]
    if not t then error("checkpoint: tensor '" .. p.name .. "' is missing", 2) end
    model:set(p.name, t)
  end
  local st = opt:state()
  for _, k in ipairs({"m", "v", "scalars"}) do
    local t = tensors["optimizer." .. k]
    if not t then error("checkpoint: optimizer." .. k .. " is missing", 2) end
    if t:numel() ~= st[k]:numel() then
      error(string.format("checkpoint: optimizer.%s has %d elements, the model needs %d (different model?)", k,
        t:numel(), st[k]:numel()), 2)
    end
    st[k]:copy(t:reshape(st[k]:shape()))
  end
  return true
end

ckpt._core = core
return ckpt
