--- Small file-system helpers for sweeps (over lfs): paths, atomic writes,
-- appends, the tail of a log. Every write goes to a path the caller owns:
-- a cell's run directory or the sweep directory.
local lfs = require "lfs"

local files = {}

function files.exists(path) return lfs.attributes(path, "mode") ~= nil end
function files.isdir(path) return lfs.attributes(path, "mode") == "directory" end

--- absolute, normalised path (relative ones are taken from the current directory)
function files.abspath(path)
  if path:sub(1, 1) ~= "/" then path = lfs.currentdir() .. "/" .. path end
  local parts = {}
  for p in path:gmatch("[^/]+") do
    if p == ".." then
      if #parts > 0 then parts[#parts] = nil end
    elseif p ~= "." then
      parts[#parts + 1] = p
    end
  end
  return "/" .. table.concat(parts, "/")
end

function files.dirname(path) return path:match("^(.*)/[^/]*$") or "." end
function files.basename(path) return path:match("([^/]*)$") end

function files.mkdir_p(path)
  if files.isdir(path) then return true end
  local parent = files.dirname(path)
  if parent ~= path and parent ~= "" and parent ~= "." then files.mkdir_p(parent) end
  local ok, err = lfs.mkdir(path)
  if not ok and not files.isdir(path) then error("cannot create directory " .. path .. ": " .. tostring(err), 2) end
  return true
end

--- whole file, or nil when absent/unreadable
function files.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

--- write via a temporary file, fsync and rename (icl.io), so readers never
-- see half a file and two writers of one path do not interleave
function files.write_atomic(path, text) require("icl.io").write_file_atomic(path, text) end

--- append (O_APPEND: short records from concurrent writers do not interleave)
function files.append(path, text)
  local f, err = io.open(path, "ab")
  if not f then error("cannot append to " .. path .. ": " .. tostring(err), 2) end
  f:write(text)
  f:close()
end

--- the last `n` non-empty lines of a file (reads at most its last 16 KiB)
function files.tail(path, n)
  local f = io.open(path, "rb")
  if not f then return {} end
  local size = f:seek("end")
  f:seek("set", math.max(0, size - 16384))
  local text = f:read("a") or ""
  f:close()
  local lines = {}
  for line in text:gmatch("[^\r\n]+") do
    -- progress lines redrawn with \r and ANSI codes: keep what is readable
    line = line:gsub("\27%[[%d;]*%a", "")
    if line:match("%S") then lines[#lines + 1] = line end
  end
  local out = {}
  for i = math.max(1, #lines - n + 1), #lines do out[#out + 1] = lines[i] end
  return out
end

function files.list(dir)
  local out = {}
  if not files.isdir(dir) then return out end
  for name in lfs.dir(dir) do
    if name ~= "." and name ~= ".." then out[#out + 1] = name end
  end
  table.sort(out)
  return out
end

return files
