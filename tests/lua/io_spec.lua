local icl = require "icl"
local U = require "spec_util"

local function sample()
  return {
    w = icl.tensor({{1, -2, 3.5}, {0.25, 1e-30, -0.0}}),
    idx = icl.tensor({7, -1, 0, 2147483647}, {dtype = "int32"}),
    s = icl.full({}, 42),
    b = icl.randn({3, 4, 5}, {seed = 3}),
  }
end

local function check_same(a, b)
  for name, t in pairs(a) do
    assert.is_not_nil(b[name], name)
    assert.are.same(t:shape(), b[name]:shape())
    assert.are.equal(t:dtype(), b[name]:dtype())
    local x, y = t:contiguous():reshape({t:numel()}):totable(), b[name]:reshape({t:numel()}):totable()
    for i = 1, #x do assert.are.equal(x[i], y[i]) end
  end
end

describe("icl.io safetensors", function()
  local dir
  before_each(function() dir = U.tmpdir() end)
  after_each(function() U.rmrf(dir) end)

  it("round-trips tensors and metadata on the CPU", function()
    local ts = sample()
    ts.view = ts.b:transpose(1, 3) -- a non-contiguous view is written contiguous
    icl.io.save(dir .. "/m.safetensors", ts, {step = "12", config = "a: 1\n"})
    local back, meta, info = icl.io.load(dir .. "/m.safetensors", {device = "cpu"})
    check_same(ts, back)
    assert.are.same({step = "12", config = "a: 1\n"}, meta)
    assert.is_true(info.checksummed)
    local meta2, info2 = icl.io.read_metadata(dir .. "/m.safetensors")
    assert.are.same(meta, meta2)
    assert.are.same({dtype = "I32", shape = {4}}, info2.tensors.idx)
    -- the header is aligned and the data in name order
    local raw = U.read(dir .. "/m.safetensors")
    local hl = string.unpack("<I8", raw)
    assert.are.equal(0, (8 + hl) % 8)
    local hdr = raw:sub(9, 8 + hl)
    assert.truthy(hdr:find('"b":{"dtype":"F32","shape":[3,4,5],"data_offsets":[0,240]}', 1, true))
  end)

  it("rejects bad arguments", function()
    assert.truthy(U.error_of(icl.io.save, dir .. "/x.safetensors", {a = 1}):find("not a tensor"))
    assert.truthy(U.error_of(icl.io.save, dir .. "/x.safetensors", {a = icl.zeros({2})}, {k = 1}):find("strings"))
    assert.truthy(U.error_of(icl.io.save, dir .. "/x.safetensors", {a = icl.zeros({2})}, {["icl.checksum"] = "x"}):find("reserved"))
    assert.truthy(U.error_of(icl.io.load, dir .. "/x.safetensors", {devcie = "cpu"}):find("unknown option"))
    assert.truthy(U.error_of(icl.io.load, dir .. "/none.safetensors"):find("none.safetensors", 1, true))
  end)

  it("detects truncation at many sizes and bit flips at many offsets", function()
    icl.io.save(dir .. "/m.safetensors", sample(), {step = "1"})
    local raw = U.read(dir .. "/m.safetensors")
    local p = dir .. "/bad.safetensors"
    local sizes = {0, 1, 7, 8, 9, 15, 16, 100, #raw // 2, #raw - 240, #raw - 1}
    for _, n in ipairs(sizes) do
      U.write(p, raw:sub(1, n))
      local e = U.error_of(icl.io.load, p)
      assert.truthy(e:find(p, 1, true), e)
    end
    U.write(p, raw .. "xx")
    assert.truthy(U.error_of(icl.io.load, p):find("unexpected bytes"))
    math.randomseed(11)
    local offsets = {0, 3, 7, 8, 9, 20, 50, 100, #raw - 1, #raw - 100, #raw - 200}
    for _ = 1, 40 do offsets[#offsets + 1] = math.random(0, #raw - 1) end
    for _, off in ipairs(offsets) do
      for bit = 0, 7, 3 do
        local c = string.char(raw:byte(off + 1) ~ (1 << bit))
        U.write(p, raw:sub(1, off) .. c .. raw:sub(off + 2))
        local e = U.error_of(icl.io.load, p)
        assert.truthy(e:find(p, 1, true), e)
      end
    end
    -- a wrong header length
    U.write(p, string.pack("<I8", 1 << 40) .. raw:sub(9))
    assert.truthy(U.error_of(icl.io.load, p):find("header length"))
  end)

  it("keeps the previous file when a write fails (fault injection)", function()
    local p = dir .. "/keep.safetensors"
    icl.io.save(p, sample(), {v = "1"})
    local before = U.read(p)
    local big = {x = icl.ones({50000})}
    for _, limit in ipairs({0, 5, 1000, 100000}) do
      local cmd = string.format(
        "cd '%s' && ICL_FAULT_WRITE_FAIL_AFTER=%d LUA_PATH='%s' LUA_CPATH='%s' lua5.4 -e \"local icl = require 'icl'; " ..
        "local ok, e = pcall(icl.io.save, '%s', {x = icl.ones({50000})}); io.write(tostring(e)); os.exit(ok and 1 or 0)\" > '%s/err.txt'",
        U.source_dir, limit, package.path, package.cpath, p, dir)
      assert.is_true(os.execute(cmd) == true, "the save should fail with limit " .. limit)
      assert.truthy(U.read(dir .. "/err.txt"):find("No space left on device", 1, true))
      assert.are.equal(before, U.read(p))
      for _, n in ipairs(icl.io.list_dir(dir)) do assert.is_nil(n:find(".tmp.", 1, true), n) end
    end
    icl.io.save(p, big)
    local back = icl.io.load(p)
    assert.are.equal(50000, back.x:numel())
  end)

  it("survives a real full disk (tmpfs, root only)", function()
    local uid = io.popen("id -u"):read("l")
    local mnt = dir .. "/small"
    icl.io.mkdir_p(mnt)
    if uid ~= "0" or os.execute("mount -t tmpfs -o size=64k tmpfs '" .. mnt .. "' 2>/dev/null") ~= true then
      pending("needs root and a mountable tmpfs")
      return
    end
    finally(function() os.execute("umount '" .. mnt .. "'") end)
    local p = mnt .. "/ckpt.safetensors"
    icl.io.save(p, {a = icl.ones({1000})}, {v = "1"})
    local before = U.read(p)
    local e = U.error_of(icl.io.save, p, {a = icl.ones({100000})})
    assert.truthy(e:find("No space left on device", 1, true), e)
    assert.are.equal(before, U.read(p))
    assert.are.same({"ckpt.safetensors"}, icl.io.list_dir(mnt))
    e = U.error_of(icl.io.write_file_atomic, mnt .. "/state.json", string.rep("x", 200000))
    assert.truthy(e:find("No space left on device", 1, true), e)
    assert.are.same({"ckpt.safetensors"}, icl.io.list_dir(mnt))
  end)

  it("interoperates with Python's safetensors both ways", function()
    if not U.has_python_safetensors() then
      pending("python3 with safetensors and torch not available")
      return
    end
    local ours, theirs, again = dir .. "/ours.safetensors", dir .. "/theirs.safetensors", dir .. "/again.safetensors"
    icl.io.save(ours, {w = icl.tensor({{1, 2, 3}, {4, 5, 6.5}}), i = icl.tensor({-3, 9}, {dtype = "int32"}), s = icl.full({}, 2)},
                {note = "hello"})
    U.write(dir .. "/check.py", string.format([[
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
t = load_file(%q)
assert t["w"].dtype == torch.float32 and t["w"].shape == (2, 3) and t["w"][1, 2].item() == 6.5, t
assert t["i"].dtype == torch.int32 and t["i"].tolist() == [-3, 9], t
assert t["s"].shape == () and t["s"].item() == 2.0
with safe_open(%q, "pt") as f:
    m = f.metadata()
assert m["note"] == "hello" and m["icl.checksum"].startswith("xxh64:"), m
save_file(t, %q, metadata={"from": "python"})
save_file({"a": torch.arange(12, dtype=torch.float32).reshape(3, 4), "b": torch.tensor([1, 2, 3], dtype=torch.int32),
           "z": torch.zeros(0)}, %q, metadata={"k": "v"})
]], ours, ours, again, theirs))
    assert.is_true(os.execute("python3 '" .. dir .. "/check.py'") == true, "python could not read icl's file")
    local t, meta, info = icl.io.load(theirs)
    assert.are.same({3, 4}, t.a:shape())
    assert.are.equal(11, t.a:reshape({12}):totable()[12])
    assert.are.same({1, 2, 3}, t.b:totable())
    assert.are.equal("int32", t.b:dtype())
    assert.are.equal(0, t.z:numel())
    assert.are.same({k = "v"}, meta)
    assert.is_false(info.checksummed)
    local t2, meta2 = icl.io.load(again)
    assert.are.equal(6.5, t2.w:totable()[2][3])
    assert.are.same({from = "python"}, meta2)
  end)
end)

describe("icl.io files", function()
  local dir
  before_each(function() dir = U.tmpdir() end)
  after_each(function() U.rmrf(dir) end)

  it("writes atomically and lists, renames, removes", function()
    icl.io.mkdir_p(dir .. "/a/b/c")
    icl.io.mkdir_p(dir .. "/a/b/c")
    icl.io.write_file_atomic(dir .. "/a/b/c/x.json", "{}")
    icl.io.write_file_atomic(dir .. "/a/b/c/x.json", '{"v":2}')
    assert.are.equal('{"v":2}', icl.io.read_file(dir .. "/a/b/c/x.json"))
    icl.io.write_file_atomic(dir .. "/a/b/c/a.txt", "")
    assert.are.same({"a.txt", "x.json"}, icl.io.list_dir(dir .. "/a/b/c"))
    local ok, kind = icl.io.file_exists(dir .. "/a/b")
    assert.is_true(ok)
    assert.are.equal("directory", kind)
    icl.io.rename(dir .. "/a/b/c/a.txt", dir .. "/a/b/c/b.txt")
    assert.are.same({"b.txt", "x.json"}, icl.io.list_dir(dir .. "/a/b/c"))
    icl.io.remove(dir .. "/a/b/c/b.txt")
    assert.is_false(icl.io.file_exists(dir .. "/a/b/c/b.txt"))
    assert.truthy(U.error_of(icl.io.remove, dir .. "/a"):find(dir .. "/a", 1, true))
    assert.truthy(U.error_of(icl.io.list_dir, dir .. "/nope"):find("nope"))
    assert.truthy(U.error_of(icl.io.write_file_atomic, dir .. "/no/such/dir/x", "1"):find("no/such/dir/x", 1, true))
    icl.io.write_file_atomic(dir .. "/f", "x")
    assert.truthy(U.error_of(icl.io.mkdir_p, dir .. "/f/g"):find(dir .. "/f", 1, true))
  end)
end)
