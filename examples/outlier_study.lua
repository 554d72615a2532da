-- outlier_study.lua — recipe 5: outliers and 8-bit (and 4-bit) quantization.
--
-- Part 1, the weights: for every weight matrix, how heavy its tails are (kurtosis, absmax/σ) and
-- which share of its values lies beyond each threshold (3, 4, 6, 8 σ); then the model quantized
-- with one scale per tensor and with one scale per output channel, for int8, fp8-e4m3 and int4,
-- with perplexity for each: per-tensor scales pay for the outliers, per-channel ones confine them.
-- Part 2, the methods: when the build has LLM.int8 (outlier threshold) and SmoothQuant (migration
-- strength α) — branch `outlier` — perplexity against the threshold (1…8) and against α
-- (0…1) is added from qb.methods(); this build has RTN only, so part 2 says so and is skipped.
-- Output: the tables, <prefix>_tensors.csv, <prefix>.csv, <prefix>.json and
-- <prefix>_tails.png (share beyond each threshold, per tensor kind).
--
--   quantbench run --out out examples/outlier_study.lua
--   quantbench run --out out examples/outlier_study.lua model=../shared/models/qb-docs-26m/qb-docs-26m-f32.gguf \
--       text=../shared/data/eval-docs.txt ctx=256 chunks=8
local args = require("qb.args")
local opt = args.parse({...}, {
  model = args.models("stories260K/stories260K.bin"),
  text = args.models("stories260K/ppl-sample.txt"),
  ctx = 128,
  chunks = 0,
  thresholds = "3,4,6,8",
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

-- part 2: LLM.int8 thresholds and SmoothQuant alpha, when the build has them
local have = {}
for _, name in ipairs(qb.methods()) do have[name] = true end
local sweeps = {}
if have["llm.int8"] or have["llm_int8"] then
  local name = have["llm.int8"] and "llm.int8" or "llm_int8"
  sweeps.int8_threshold = {}
  for _, th in ipairs({ 1, 2, 4, 6, 8 }) do
    m:apply({ { match = "*", format = { method = name, bits = 8, threshold = th } } })
    sweeps.int8_threshold[#sweeps.int8_threshold + 1] = { threshold = th, ppl = m:perplexity(opt.text, eval).ppl }
    m:reset()
  end
  qb.print_table(sweeps.int8_threshold, { "threshold", "ppl" }, { title = "LLM.int8: perplexity against the threshold" })
else
  print("LLM.int8 is not in this build (qb.methods() = " .. table.concat(qb.methods(), ", ") .. "): threshold sweep skipped")
end
if have.smoothquant then
  sweeps.smoothquant_alpha = {}
  for _, a in ipairs({ 0, 0.25, 0.5, 0.75, 1 }) do
    m:apply({ { match = "*", format = { method = "smoothquant", bits = 8, alpha = a } } })
    sweeps.smoothquant_alpha[#sweeps.smoothquant_alpha + 1] = { alpha = a, ppl = m:perplexity(opt.text, eval).ppl }
    m:reset()
  end
  qb.print_table(sweeps.smoothquant_alpha, { "alpha", "ppl" }, { title = "SmoothQuant: perplexity against alpha" })
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
