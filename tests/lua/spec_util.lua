-- Helpers shared by the busted specs (not a spec itself).
local icl = require "icl"
local U = {}

U.source_dir = os.getenv("ICL_SOURCE_DIR") or "."

--- The published config tree, or nil when this machine has none (specs then skip).
function U.published_dir()
  local cands = {U.source_dir .. "/shared/reference/published-configs",
                 U.source_dir .. "/../shared/reference/published-configs", "/work/shared/reference/published-configs"}
  if os.getenv("ICL_PUBLISHED_CONFIGS") then table.insert(cands, 1, os.getenv("ICL_PUBLISHED_CONFIGS")) end
  for _, c in ipairs(cands) do
    if c and icl.io.file_exists(c) then return c end
  end
  return nil
end

--- All regular files under dir (relative paths, sorted).
function U.walk(dir, prefix, out)
  out = out or {}
  for _, name in ipairs(icl.io.list_dir(dir)) do
    local p = dir .. "/" .. name
    local rel = prefix and (prefix .. "/" .. name) or name
    local _, kind = icl.io.file_exists(p)
    if kind == "directory" then U.walk(p, rel, out) else out[#out + 1] = rel end
  end
  return out
end

local counter = 0
--- A fresh temporary directory.
function U.tmpdir()
  counter = counter + 1
  local d = string.format("/tmp/icl_spec_%d_%d_%d", os.time(), math.random(1, 1e9), counter)
  icl.io.mkdir_p(d)
  return d
end

function U.rmrf(d)
  if d and d:match("^/tmp/icl_spec_") then os.execute("rm -rf '" .. d .. "'") end
end

function U.write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

function U.read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

--- Deep equality of plain values (tables compared by content).
function U.deep_equal(a, b, path)
  path = path or "$"
  if type(a) ~= type(b) then return false, path .. ": " .. type(a) .. " vs " .. type(b) end
  if type(a) ~= "table" then
    if a ~= b and not (a ~= a and b ~= b) then return false, path .. ": " .. tostring(a) .. " vs " .. tostring(b) end
    if math.type(a) ~= math.type(b) then return false, path .. ": " .. tostring(math.type(a)) .. " vs " .. tostring(math.type(b)) end
    return true
  end
  for k, v in pairs(a) do
    local ok, why = U.deep_equal(v, b[k], path .. "." .. tostring(k))
    if not ok then return false, why end
  end
  for k in pairs(b) do
    if a[k] == nil then return false, path .. "." .. tostring(k) .. ": missing on the left" end
  end
  return true
end

--- Run fn and return its error message (fails the test when fn succeeds).
function U.error_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error, but the call succeeded")
  return tostring(err)
end

function U.has_python_safetensors()
  return os.execute("python3 -c 'import safetensors.torch, torch' >/dev/null 2>&1") == true
end

return U
