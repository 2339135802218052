--- Optimisers over flat parameter buffers.
-- optim.AdamW(value_flat, grad_flat, {lr=, beta1=, beta2=, eps=, weight_decay=,
--   max_grad_norm=, schedule="constant"|"linear", warmup=, total_steps=})
-- matches torch.optim.AdamW (decoupled weight decay, bias correction), with
-- torch's clip_grad_norm_ and HF's linear warm-up/decay schedule.
local core = require "icl.core"

local optim = {}
optim.AdamW = core._optim.AdamW

--- AdamW over a model (flattening its parameters first if needed).
function optim.adamw_for(model, opts)
  if not model.flat_value then require("icl.nn").flatten(model) end
  return optim.AdamW(model.flat_value, model.flat_grad, opts)
end

return optim
