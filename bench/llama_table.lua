--- Formats the lines printed by llama_step.lua, torch_llama_step.py and
-- sgemm_peak.lua (read from the file in arg[1]) as a markdown table.
local lines = {}
for l in io.lines(arg[1]) do lines[#lines + 1] = l end
local peak
local res = {}
local order = {}
local bursts = {} -- interleave.py: the ratio between neighbouring bursts
for _, l in ipairs(lines) do
  local p = l:match("^peak ([%d.]+)")
  if p then peak = math.max(peak or 0, tonumber(p)) end
  local bsize, bpe, bmed, bmin, bmax = l:match("^bursts (%a+) (%S+) ratio median=([%d.]+) min=([%d.]+) max=([%d.]+)")
  if bsize then bursts[bsize .. " " .. bpe] = string.format("%s (%s-%s)", bmed, bmin, bmax) end
  local who, size, pe, sps = l:match("^(%a+) (%a+) (%S+) ([%d.]+)")
  if who == "icl" or who == "torch" then
    local key = size .. " " .. pe
    if not res[key] then
      res[key] = {}
      order[#order + 1] = {size = size, pe = pe, key = key}
    end
    -- repeated runs: keep the best (machine noise only ever slows a run down)
    res[key][who] = math.max(res[key][who] or 0, tonumber(sps))
  end
end
-- analytic FLOPs of one training step (forward + backward = 3 x forward):
-- linear layers 6 * tokens * weights; attention 12 * B * d * T(T+1)/2 per
-- layer (q k^T and P V over the causal triangle, forward + backward)
local function flops(size)
  local d, L = 256, 16
  if size == "toy" then d, L = 64, 2 end
  local B, T, D = 64, 102, 20
  local weights = L * (4 * d * d + 3 * d * 4 * d) + D * d + d
  return 6 * B * T * weights + L * 12 * B * d * T * (T + 1) / 2
end
local theo = 2 * 2.45e9 * 32 / 1e9
io.write(string.format("Measured sgemm peak (4096^3, 2 threads): %.1f GFLOP/s; theoretical 2 cores x 2.45 GHz x 32 "
                       .. "FLOP/cycle = %.1f GFLOP/s\n\n", peak or 0, theo))
io.write("| size | encoding | icl steps/s | PyTorch steps/s | icl / PyTorch | per burst (median, range) | icl GFLOP/s | "
         .. "% of measured peak | % of theoretical peak |\n")
io.write("|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
for _, o in ipairs(order) do
  local r = res[o.key]
  local f = flops(o.size) / 1e9
  local g = r.icl and r.icl * f or nil
  io.write(string.format("| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", o.size, o.pe,
    r.icl and string.format("%.4f", r.icl) or "-", r.torch and string.format("%.4f", r.torch) or "-",
    (r.icl and r.torch) and string.format("%.2fx", r.icl / r.torch) or "-", bursts[o.key] or "-",
    g and string.format("%.1f", g) or "-", (g and peak) and string.format("%.0f%%", 100 * g / peak) or "-",
    g and string.format("%.0f%%", 100 * g / theo) or "-"))
end
io.write(string.format("\nFLOPs per step (analytic): standard %.1f GFLOP, toy %.2f GFLOP\n", flops("standard") / 1e9,
                       flops("toy") / 1e9))
