-- outlier_study.lua — recipe 5: outliers and 8-bit (and 4-bit) quantization.
--
-- Part 1, the weights: for every weight matrix, how heavy its tails are (kurtosis, absmax/σ) and
-- which share of its values lies beyond each threshold (3, 4, 6, 8 σ); then the model quantized
-- with one scale per tensor and with one scale per output channel, for int8, fp8-e4m3 and int4,
-- with perplexity for each: per-tensor scales pay for the outliers, per-channel ones confine them.
-- Part 2, the activations (when qb.methods() lists them): LLM.int8() — int8 weights and
-- activations with the feature columns holding |x| >= threshold kept in float — perplexity and
-- the share of outlier columns against the threshold (0 … 8, inf = plain int8); SmoothQuant
-- with W8A8 against the migration strength α (0 … 1), calibrated on `calib` (default: the
-- evaluation text), next to plain W8A8.
-- Output: the tables, <prefix>_tensors.csv, <prefix>.csv, <prefix>.json and
-- <prefix>_tails.png (share beyond each threshold, per tensor kind).
--
--   quantbench run --out out examples/outlier_study.lua
--   quantbench run --out out examples/outlier_study.lua model=../shared/models/qb-docs-26m/qb-docs-26m-f16.gguf \
--       text=../shared/data/eval-docs.txt ctx=256 chunks=8
local args = require("qb.args")
local opt = args.parse({...}, {
  model = args.models("stories260K/stories260K.bin"),
  text = args.models("stories260K/ppl-sample.txt"),
  ctx = 128,
  chunks = 0,
  thresholds = "3,4,6,8",
  calib = "",
  prefix = "outliers",
  plots = true,
}, "outlier_study: weight outliers, per-tensor vs per-channel 8/4-bit, LLM.int8 and SmoothQuant when present")

local thresholds = {}
for i, s in ipairs(args.list(opt.thresholds)) do thresholds[i] = assert(tonumber(s), "thresholds: numbers expected") end

local m <close> = qb.open(opt.model)
-- part 1a: tails of every weight matrix
local trows = {}
for t in m:tensors() do
  if t.quantizable then
    local st = t:stats()
    local sd, mean = st.orig.std, st.orig.mean
    local beyond = {}
    for i = 1, #thresholds do beyond[i] = 0 end
    for _, v in ipairs(t:values()) do
      local z = math.abs(v - mean) / sd
      for i, th in ipairs(thresholds) do
        if z > th then beyond[i] = beyond[i] + 1 end
      end
    end
    local row = { tensor = t.name, kind = t.name:match("([%w_]+)%.weight$") or t.name, kurtosis = st.orig.kurtosis,
      absmax_sigma = st.orig.absmax / sd }
    for i, th in ipairs(thresholds) do row["pct_beyond_" .. th] = 100 * beyond[i] / st.n end
    trows[#trows + 1] = row
  end
end
local tcols = { "tensor", "kurtosis", "absmax_sigma" }
for _, th in ipairs(thresholds) do tcols[#tcols + 1] = "pct_beyond_" .. th end
qb.print_table(trows, tcols, { title = "weight tails (a normal distribution has kurtosis 3, 0.27% beyond 3 sigma)" })
qb.write_csv(opt.prefix .. "_tensors.csv", trows, tcols)

-- part 1b: per-tensor vs per-channel scales
local eval = { ctx = opt.ctx, chunks = opt.chunks }
local base = m:perplexity(opt.text, eval)
local rows = {}
for _, c in ipairs({ { "int8", "int8-tensor", "int8-channel" }, { "fp8-e4m3", "fp8-e4m3", "fp8-e4m3-channel" },
  { "int4", "int4-tensor", "int4-channel" } }) do
  local row = { format = c[1] }
  for k, f in ipairs({ c[2], c[3] }) do
    m:apply({ { match = "*", format = f } })
    row[k == 1 and "ppl_tensor" or "ppl_channel"] = m:perplexity(opt.text, eval).ppl
    m:reset()
  end
  row.base = base.ppl
  rows[#rows + 1] = row
end
qb.print_table(rows, { "format", "base", "ppl_tensor", "ppl_channel" },
  { title = "perplexity with one scale per tensor vs one per output channel" })
qb.write_csv(opt.prefix .. ".csv", rows, { "format", "base", "ppl_tensor", "ppl_channel" })

-- part 2: LLM.int8 thresholds and SmoothQuant alpha (activations in int8), when the build has them
local have = {}
for _, name in ipairs(qb.methods()) do have[name] = true end
local sweeps = {}
if have["llm.int8"] and m.act then
  sweeps.int8_threshold = {}
  for _, th in ipairs({ 0, 1, 2, 4, 6, 8, math.huge }) do
    m:act { int8_outlier = true, threshold = th }
    local ppl = m:perplexity(opt.text, eval).ppl
    local cols, n = 0, 0
    for l = 0, m:info().n_layers - 1 do
      for _, f in pairs(m:int8_outliers(l)) do cols, n = cols + f, n + 1 end
    end
    sweeps.int8_threshold[#sweeps.int8_threshold + 1] = { threshold = th, ppl = ppl,
      outlier_cols_pct = n > 0 and 100 * cols / n or 0 }
    m:reset()
  end
  qb.print_table(sweeps.int8_threshold, { "threshold", "ppl", "outlier_cols_pct" },
    { title = "LLM.int8(): perplexity against the outlier threshold (inf: plain vector-wise int8)" })
else
  print("LLM.int8 is not in this build: threshold sweep skipped")
end
if have.smoothquant and m.act then
  sweeps.smoothquant_alpha = {}
  m:act { act = "int8" }
  sweeps.w8a8_ppl = m:perplexity(opt.text, eval).ppl
  m:reset()
  for _, a in ipairs({ 0, 0.25, 0.5, 0.75, 1 }) do
    m:act { act = "int8", smooth = true, alpha = a, calib = opt.calib ~= "" and opt.calib or opt.text, calib_ctx = opt.ctx }
    sweeps.smoothquant_alpha[#sweeps.smoothquant_alpha + 1] = { alpha = a, ppl = m:perplexity(opt.text, eval).ppl,
      w8a8_ppl = sweeps.w8a8_ppl }
    m:reset()
  end
  qb.print_table(sweeps.smoothquant_alpha, { "alpha", "ppl", "w8a8_ppl" },
    { title = "SmoothQuant + W8A8 (int8 weights and activations): perplexity against alpha" })
else
  print("SmoothQuant is not in this build: alpha sweep skipped")
end
qb.write_json(opt.prefix .. ".json", { model = opt.model, base = base, tensors = trows, scales = rows, sweeps = sweeps })

if opt.plots then
  -- share beyond each threshold, averaged per tensor kind (log scale)
  local kinds, order = {}, {}
  for _, r in ipairs(trows) do
    if not kinds[r.kind] then kinds[r.kind] = {}; order[#order + 1] = r.kind end
    table.insert(kinds[r.kind], r)
  end
  local series = {}
  for _, k in ipairs(order) do
    local ys = {}
    for i, th in ipairs(thresholds) do
      local s = 0
      for _, r in ipairs(kinds[k]) do s = s + r["pct_beyond_" .. th] end
      ys[i] = s / #kinds[k]
    end
    series[#series + 1] = { label = k, x = thresholds, y = ys }
  end
  qb.plot.line({ title = "share of weights beyond k sigma", xlabel = "k (sigma)", ylabel = "% of weights", log_y = true,
    series = series, file = opt.prefix .. "_tails.png" })
end
return { base = base, tensors = trows, scales = rows, sweeps = sweeps }
