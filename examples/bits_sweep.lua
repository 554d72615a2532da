-- bits_sweep.lua — recipe 1: how quality falls with bits, for one tensor and for the whole model.
--
-- For three families of formats, from 8 down to 2 bits:
--   rtn   integer round-to-nearest, per output channel (int8 … int2; group=channel|tensor|32|64|128)
--   float fp8-e4m3 (8 bits), nf4 (4-bit NormalFloat, 64-blocks), mxfp4 (OCP FP4, 32-blocks)
--   ggml  llama.cpp's blocks q8_0, q6_k, q5_k, q5_0, q4_k, q4_0, q3_k, q2_k; rows that do not fit a
--         block fall back as llama-quantize does (the table shows the format really used)
-- it measures the tensor's SQNR (dB) and bits per weight, then quantizes every weight matrix of the
-- model to the format, measures perplexity (llama-perplexity's protocol) and resets the model.
-- Output: an aligned table, bits_sweep.csv / .json, and SQNR-vs-bpw and PPL-vs-bpw plots
-- (bits_sweep_sqnr.png/.svg, bits_sweep_ppl.png/.svg) in the output folder, plus terminal plots.
--
--   quantbench run examples/bits_sweep.lua                         (stories260K, about 10 s)
--   quantbench run --out results examples/bits_sweep.lua model=../shared/models/qb-docs-26m/qb-docs-26m-f16.gguf \
--       text=../shared/data/eval-docs.txt tensor=blk.3.ffn_down.weight ctx=256 chunks=8
--   quantbench run examples/bits_sweep.lua help
-- With fast=1 the model part runs only int8/int4/q8_0/q4_0 (used by the tests).
local args = require("qb.args")
local opt = args.parse({...}, {
  model = args.models("stories260K/stories260K.bin"),
  text = args.models("stories260K/ppl-sample.txt"),
  tensor = "blk.2.ffn_gate.weight",
  ctx = 128,
  chunks = 0,
  group = "channel",
  prefix = "bits_sweep",
  plots = true,
  fast = false,
}, "bits_sweep: SQNR and perplexity against bits per weight")

local families = {
  { name = "rtn", formats = {
      { bits = 8, format = { bits = 8, group = opt.group } }, { bits = 6, format = { bits = 6, group = opt.group } },
      { bits = 5, format = { bits = 5, group = opt.group } }, { bits = 4, format = { bits = 4, group = opt.group } },
      { bits = 3, format = { bits = 3, group = opt.group } }, { bits = 2, format = { bits = 2, group = opt.group } } } },
  { name = "float", formats = {
      { bits = 8, format = "fp8-e4m3" }, { bits = 4, format = "nf4" }, { bits = 4, format = "mxfp4" } } },
  { name = "ggml", formats = {
      { bits = 8, format = "q8_0" }, { bits = 6, format = "q6_k" }, { bits = 5, format = "q5_k" },
      { bits = 5, format = "q5_0" }, { bits = 4, format = "q4_k" }, { bits = 4, format = "q4_0" },
      { bits = 3, format = "q3_k" }, { bits = 2, format = "q2_k" } } },
}
local in_fast = { ["rtn:8"] = true, ["rtn:4"] = true, ["ggml:q8_0"] = true, ["ggml:q4_0"] = true }

local function setting(f)
  if type(f) == "table" then
    return { bits = f.bits, group = f.group, fallback = true }
  end
  return { format = f, fallback = true }
end

local m <close> = qb.open(opt.model)
local info = m:info()
local t = m:tensor(opt.tensor)
if not t then error("no tensor named " .. opt.tensor .. " in " .. opt.model) end
print(string.format("%s: %s, %d layers, dim %d; tensor %s [%d x %d]", info.path, info.kind, info.n_layers,
  info.dim, t.name, t.cols, t.rows))

local base = m:perplexity(opt.text, { ctx = opt.ctx, chunks = opt.chunks })
local base_bpw = m:size().bpw
local rows = {}
for _, fam in ipairs(families) do
  for _, f in ipairs(fam.formats) do
    local s = t:stats(setting(f.format))
    local row = { family = fam.name, bits = f.bits, format = s.format, tensor_bpw = s.bpw, sqnr_db = s.sqnr,
      cosine = s.cosine }
    local key = fam.name .. ":" .. (type(f.format) == "string" and f.format or tostring(f.bits))
    if not opt.fast or in_fast[key] then
      m:apply({ { match = "*", format = setting(f.format) } }, { fallback = true })
      local r = m:perplexity(opt.text, { ctx = opt.ctx, chunks = opt.chunks })
      row.model_bpw = m:size().bpw
      row.ppl = r.ppl
      row.dppl_pct = 100 * (r.ppl - base.ppl) / base.ppl
      m:reset()
    end
    rows[#rows + 1] = row
  end
end

local cols = { "family", "bits", "format", "tensor_bpw", "sqnr_db", "cosine", "model_bpw", "ppl", "dppl_pct" }
qb.print_table(rows, cols, { title = string.format("baseline (%s weights): %.3f bpw, PPL %.4f ± %.4f over %d chunks of %d",
  info.kind, base_bpw, base.ppl, base.ppl_err, base.chunks, base.ctx) })
qb.write_csv(opt.prefix .. ".csv", rows, cols)
qb.write_json(opt.prefix .. ".json", { model = info.path, tensor = t.name, baseline = base, baseline_bpw = base_bpw,
  rows = rows })

-- plots: one series per family, sorted by bpw
local function series(key_x, key_y)
  local out = {}
  for _, fam in ipairs(families) do
    local pts = {}
    for _, r in ipairs(rows) do
      if r.family == fam.name and r[key_y] then pts[#pts + 1] = r end
    end
    table.sort(pts, function(a, b) return a[key_x] < b[key_x] end)
    local xs, ys = {}, {}
    for i, r in ipairs(pts) do xs[i], ys[i] = r[key_x], r[key_y] end
    if #xs > 0 then out[#out + 1] = { label = fam.name, x = xs, y = ys } end
  end
  return out
end
local sq = { title = "SQNR of " .. t.name, xlabel = "bits per weight", ylabel = "SQNR (dB)",
  series = series("tensor_bpw", "sqnr_db") }
local pp = { title = "perplexity of the whole model", xlabel = "bits per weight (weight matrices)",
  ylabel = "perplexity", log_y = true, series = series("model_bpw", "ppl") }
qb.plot.line(sq)
qb.plot.line(pp)
if opt.plots then
  for _, ext in ipairs({ "png", "svg" }) do
    sq.file = opt.prefix .. "_sqnr." .. ext
    pp.file = opt.prefix .. "_ppl." .. ext
    qb.plot.line(sq)
    qb.plot.line(pp)
  end
  print("wrote " .. opt.prefix .. ".csv, .json and the plots into " .. (qb.output_dir() or "?"))
end
return { baseline = base, rows = rows }
