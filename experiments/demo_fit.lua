-- A small, real demo of the engine: fit an MLP built from icl.nn modules to
-- y = sin(x) + 0.5 x with AdamW, printing the loss as it falls.
local icl = require "icl"
local nn, optim = icl.nn, icl.optim

local model = nn.Sequential{nn.Linear(1, 64, {seed = 1}), nn.SiLU(), nn.Linear(64, 64, {seed = 2}), nn.SiLU(),
                            nn.Linear(64, 1, {seed = 3})}
local opt = optim.adamw_for(model, {lr = 3e-3, weight_decay = 0, schedule = "linear", warmup = 20, total_steps = 400})
local crit = nn.MSELoss()
print(("icl demo: %d-parameter MLP on %d threads"):format(model:numel(), icl.num_threads()))
for step = 1, 400 do
  local x = icl.rand({256, 1}, {seed = 100 + step}) * 6 - 3
  local y = x:sin() + x * 0.5
  model:zero_grad()
  local pred = model:forward(x)
  local loss = crit:forward(pred, y)
  model:backward(x, crit:backward(pred, y))
  opt:step()
  if step == 1 or step % 50 == 0 then print(("step %4d  loss %.6f"):format(step, loss:item())) end
end
