-- The `icl` module: the C engine (icl.core) plus the Lua library on top.
-- Sub-modules (icl.config, icl.train, ...) load on first use, so
-- `require "icl"` stays cheap for scripts that only need tensors.
local core = require "icl.core"

local icl = {}
for k, v in pairs(core) do icl[k] = v end
icl.core = core
icl.version = "0.1.0"

--- icl.load(path, {device=}): a model saved with model:save
function icl.load(...) return require("icl.model").load(...) end

local lazy = {}

-- The task registry's entry points live on icl itself (icl.tasks loads lazily).
function icl.task(...) return icl.tasks.task(...) end
function icl.baselines(...) return icl.tasks.baselines(...) end
function icl.register_task(...) return icl.tasks.register(...) end

setmetatable(icl, {
  __index = function(t, k)
    if lazy[k] == false then return nil end
    local ok, mod = pcall(require, "icl." .. k)
    if ok then
      rawset(t, k, mod)
      return mod
    end
    -- a module that exists but fails to load must say why, not vanish
    if not tostring(mod):find("module 'icl." .. k .. "' not found", 1, true) then error(mod, 2) end
    lazy[k] = false
    return nil
  end,
})

return icl
