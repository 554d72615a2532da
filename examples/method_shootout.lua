-- method_shootout.lua — recipe 2: quantization methods and formats side by side at 4 and 3 bits.
--
-- Every candidate quantizes all weight matrices of the model (rows that a ggml block does not
-- fit fall back as llama-quantize does; formats that cannot store a tensor leave it as it is and
-- the "kept" column counts those), then perplexity and the KL divergence from the unquantized
-- model are measured on the same chunks (llama-perplexity's protocol). Candidates:
--   4 bits  RTN int4 per channel, RTN int4 in groups of 32 (where rows allow), NF4, MXFP4,
--           q4_0, q4_k, iq4_nl
--   3 bits  RTN int3 per channel, q3_k
-- plus GPTQ and AWQ (when qb.methods() lists them) at the same bits, per channel, next to RTN per
-- channel: both calibrate on `calib` (default: the evaluation text itself, which flatters them;
-- give a separate text for honest figures, e.g. calib-docs.txt vs eval-docs.txt on qb-docs-26m).
-- Output: an aligned table, <prefix>.csv/.json and a KLD-vs-bpw plot (<prefix>_kld.png/.svg).
--
--   quantbench run examples/method_shootout.lua
--   quantbench run --out results examples/method_shootout.lua model=../shared/models/qb-docs-26m/qb-docs-26m-f16.gguf \
--       text=../shared/data/eval-docs.txt ctx=256 chunks=8
local args = require("qb.args")
local opt = args.parse({...}, {
  model = args.models("stories260K/stories260K.bin"),
  text = args.models("stories260K/ppl-sample.txt"),
  ctx = 128,
  chunks = 0,
  bits = "4,3",
  group = 32,
  calib = "",
  calib_ctx = 64,
  prefix = "shootout",
  plots = true,
}, "method_shootout: methods and formats at 4 and 3 bits, PPL and KLD")

local candidates = {
  [4] = { { "rtn", { bits = 4 } }, { "rtn", { bits = 4, group = opt.group } }, { "-", "nf4" }, { "-", "mxfp4" },
    { "-", "q4_0" }, { "-", "q4_k" }, { "-", "iq4_nl" } },
  [3] = { { "rtn", { bits = 3 } }, { "-", "q3_k" } },
}
local methods = {}
for _, name in ipairs(qb.methods()) do
  if name == "gptq" or name == "awq" then methods[#methods + 1] = name end
end
local calib -- calibrated once, on first use

local base <close> = qb.open(opt.model)
local m <close> = qb.open(opt.model)
local eval = { ctx = opt.ctx, chunks = opt.chunks }
local rows = {}
local function measure(bits, method, setting)
  local fmt = type(setting) == "string" and { format = setting } or setting
  local how = { fallback = true }
  if method == "gptq" or method == "awq" then
    calib = calib or qb.calibrate(m, opt.calib ~= "" and opt.calib or opt.text, { ctx = opt.calib_ctx })
    how.method, how.calib = method, calib
  end
  local _, kept = m:apply({ { match = "*", format = fmt } }, how)
  local k = m:kld(base, opt.text, eval)
  local row = { bits = bits, method = method, format = qb.format(fmt).name, model_bpw = m:size().bpw, kept = #kept,
    ppl = k.ppl, dppl = k.dppl, kld = k.kld, kld_p99 = k.kld_p99, top1 = k.top1 }
  m:reset()
  rows[#rows + 1] = row
  return row, k
end

local base_ppl
for _, b in ipairs(args.list(opt.bits)) do
  local bits = tonumber(b)
  local list = candidates[bits]
  if not list then error("bits=" .. b .. ": candidates exist for 4 and 3 bits") end
  for _, c in ipairs(list) do
    local ok, row, k = pcall(measure, bits, c[1], c[2])
    if ok then
      base_ppl = k.ppl_base
    else
      m:reset()
      print(string.format("skipped %s %s: %s", c[1], type(c[2]) == "string" and c[2] or qb.format(c[2]).name, row))
    end
  end
  for _, meth in ipairs(methods) do
    measure(bits, meth, { bits = bits })
  end
end

local cols = { "bits", "method", "format", "model_bpw", "kept", "ppl", "dppl", "kld", "kld_p99", "top1" }
qb.print_table(rows, cols, { title = string.format("%s: base PPL %.4f, %d-token chunks", opt.model, base_ppl or 0 / 0,
  opt.ctx) })
qb.write_csv(opt.prefix .. ".csv", rows, cols)
qb.write_json(opt.prefix .. ".json", { model = opt.model, text = opt.text, base_ppl = base_ppl, rows = rows })
local series = {}
for _, bits in ipairs({ 4, 3 }) do
  local xs, ys = {}, {}
  for _, r in ipairs(rows) do
    if r.bits == bits then xs[#xs + 1], ys[#ys + 1] = r.model_bpw, r.kld end
  end
  if #xs > 0 then series[#series + 1] = { label = bits .. " bits", x = xs, y = ys, style = "points" } end
end
local plot = { title = "KL divergence from the unquantized model", xlabel = "bits per weight", ylabel = "mean KLD",
  log_y = true, series = series }
qb.plot.scatter(plot)
if opt.plots then
  for _, ext in ipairs({ "png", "svg" }) do
    plot.file = opt.prefix .. "_kld." .. ext
    qb.plot.scatter(plot)
  end
end
return { base_ppl = base_ppl, rows = rows }
