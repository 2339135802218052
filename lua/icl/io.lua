--- File I/O: safetensors checkpoints, atomic writes and small POSIX helpers (all in C,
-- engine/io; this file only names them). See docs/config.md ("Files and checkpoints").
--
--   io.save(path, {name = tensor, ...}, {key = "string", ...})   atomic; F32/I32; sorted names
--   io.load(path, {device = "cpu"|"cuda", require_checksum = false}) -> tensors, metadata, info
--   io.read_metadata(path) -> metadata, info     (header only; info.tensors[name] = {dtype, shape})
--   io.write_file_atomic(path, string); io.read_file(path) -> string
--   io.file_exists(path) -> bool, "file"|"directory"|nil
--   io.mkdir_p(path); io.list_dir(path) -> sorted names; io.remove(path); io.rename(from, to)
--   io.null: the null sentinel of YAML and JSON values
-- metadata never shows icl's own checksum entries; info.checksummed says whether they were
-- present and verified.
local core = require "icl.core"

local io_ = {}
for k, v in pairs(core._io) do
  if not k:find("^yaml_") then io_[k] = v end
end

--- Append one line to a text file (JSON-lines logs). Not atomic: a crash can leave a partial
-- last line, which readers skip.
function io_.append_line(path, line)
  local f, err = io.open(path, "a")
  if not f then error("io.append_line: " .. tostring(err), 2) end
  f:write(line, "\n")
  f:close()
end

--- Join path pieces with "/".
function io_.join(...)
  local parts = {}
  for i = 1, select("#", ...) do
    local p = select(i, ...)
    if p ~= nil and p ~= "" then parts[#parts + 1] = (i > 1 and p:gsub("^/+", "") or p) end
  end
  return (table.concat(parts, "/"):gsub("/+", "/"))
end

--- The directory part of a path ("." when there is none).
function io_.dirname(path)
  local d = path:match("^(.*)/[^/]*$")
  if d == nil then return "." end
  if d == "" then return "/" end
  return d
end

return io_
