-- qat_distill.lua — recipe 6: the methods that learn against those that do not, bits × method.
--
-- At each bit width every weight matrix is quantized to the same integer format (per channel, or
-- in groups with group=N) by each method in turn, then perplexity and the KL divergence from the
-- unquantized model are measured on the same chunks (llama-perplexity's protocol):
--   rtn      round-to-nearest
--   gptq     GPTQ, calibrated on `calib`
--   awq      AWQ, calibrated on `calib`
--   learned  learned rounding and clipping block by block (SignRound), calibrated on `calib`
--   qat      quantization-aware fine-tuning with distillation from the unquantized model,
--            trained on `calib` (m:finetune: `steps` steps of `batch` × `seq` tokens)
-- The "gap" column is how much of GPTQ's perplexity gap to the unquantized model the row
-- closes at its bit width (1 = all of it, 0 = none, negative = worse than GPTQ). Output: an
-- aligned table, <prefix>.csv/.json and a KLD-vs-bits-per-weight plot, one series per method
-- (<prefix>_kld.png/.svg).
--
--   quantbench run examples/qat_distill.lua
--   quantbench run --out results examples/qat_distill.lua model=../shared/models/qb-docs-26m/qb-docs-26m-f16.gguf \
--       text=../shared/data/eval-docs.txt calib=../shared/data/calib-docs.txt group=64 ctx=256 chunks=10 \
--       steps=200 seq=256 lr=3e-4
local args = require("qb.args")
local opt = args.parse({...}, {
  model = args.models("stories260K/stories260K.bin"),
  text = args.models("stories260K/ppl-sample.txt"),
  calib = "",
  ctx = 128,
  chunks = 0,
  bits = "4,3,2",
  group = 0,
  methods = "rtn,gptq,awq,learned,qat",
  samples = 16,
  calib_ctx = 64,
  iters = 50,
  steps = 40,
  batch = 4,
  seq = 64,
  lr = 1e-3,
  prefix = "qat_distill",
  plots = true,
}, "qat_distill: RTN, GPTQ, AWQ, learned rounding and QAT with distillation at each bit width")

local calib_text = opt.calib ~= "" and opt.calib or opt.text
local available = {}
for _, name in ipairs(qb.methods()) do available[name] = true end
available.qat = true

local base <close> = qb.open(opt.model)
local m <close> = qb.open(opt.model)
local calib -- calibrated once, on first use
local eval = { ctx = opt.ctx, chunks = opt.chunks }
local rows = {}

local function format_for(bits)
  return opt.group > 0 and string.format("int%d-g%d", bits, opt.group) or string.format("int%d-channel", bits)
end

local function measure(bits, method)
  local fmt = format_for(bits)
  local t0 = qb.clock()
  if method == "qat" then
    m:finetune { plan = fmt, teacher = base, text = calib_text, steps = opt.steps, batch = opt.batch, seq = opt.seq,
                 lr = opt.lr }
  elseif method == "rtn" then
    m:apply({ { match = "*", format = fmt } })
  else
    calib = calib or qb.calibrate(m, calib_text, { samples = opt.samples, ctx = opt.calib_ctx })
    m:apply({ { match = "*", format = fmt } }, { method = method, calib = calib, iters = method == "learned" and opt.iters or nil })
  end
  local seconds = qb.clock() - t0
  local k = m:kld(base, opt.text, eval)
  local row = { bits = bits, method = method, format = fmt, model_bpw = m:size().bpw, ppl = k.ppl, base_ppl = k.ppl_base,
    kld = k.kld, top1 = k.top1, seconds = seconds }
  m:reset()
  rows[#rows + 1] = row
  return row
end

for _, b in ipairs(args.list(opt.bits)) do
  local bits = tonumber(b)
  if not bits or bits < 2 or bits > 8 then error("bits=" .. b .. ": integer formats have 2 to 8 bits") end
  local at = {}
  for _, meth in ipairs(args.list(opt.methods)) do
    if not available[meth] then error("methods: '" .. meth .. "' is not one of rtn, gptq, awq, learned, qat") end
    at[meth] = measure(bits, meth)
  end
  local g = at.gptq
  for _, row in pairs(at) do
    row.gap = g and g.ppl > row.base_ppl and (g.ppl - row.ppl) / (g.ppl - row.base_ppl) or 0 / 0
  end
end

local cols = { "bits", "method", "format", "model_bpw", "ppl", "kld", "top1", "gap", "seconds" }
qb.print_table(rows, cols, { title = string.format("%s: base PPL %.4f, %d-token chunks; calibration/training text %s",
  opt.model, rows[1] and rows[1].base_ppl or 0 / 0, opt.ctx, calib_text) })
qb.write_csv(opt.prefix .. ".csv", rows, cols)
qb.write_json(opt.prefix .. ".json", { model = opt.model, text = opt.text, calib = calib_text, rows = rows })
local series = {}
for _, meth in ipairs(args.list(opt.methods)) do
  local xs, ys = {}, {}
  for _, r in ipairs(rows) do
    if r.method == meth then xs[#xs + 1], ys[#ys + 1] = r.model_bpw, r.kld end
  end
  series[#series + 1] = { label = meth, x = xs, y = ys, style = "points" }
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
return { rows = rows }
