-- mixed_precision.lua — recipe 3: a sensitivity scan, a mixed-precision plan under a bits-per-
-- weight budget, and the exported GGUF file.
--
-- 1. scan: each weight matrix alone is quantized to the low format (the rest unquantized) and the
--    KL divergence of the model from the unquantized one is measured on `scan_chunks` chunks
--    (core's qb.sensitivity when the build has it, else the same measure with model:kld).
-- 2. plan: every matrix starts at `low`; the matrices whose KLD per extra byte is largest move
--    to `high` while the model's bits per weight (weight matrices) stay within `bpw`.
-- 3. the plan is saved (<prefix>.plan), applied, measured (perplexity and KLD against uniform
--    low and uniform high on the evaluation chunks) and exported as <prefix>.gguf, which
--    llama.cpp runs (formats must be ggml types for that). With search=1 (default) core's
--    qb.search (greedy plus measured swaps) gets the same budget and is measured too.
-- Output: the scan table (sorted), the comparison table, <prefix>_scan.csv, <prefix>.csv, a plot
-- of the scan (<prefix>_scan.png), the plan and the GGUF file, all in the output folder.
--
--   quantbench run --out mix examples/mixed_precision.lua
--   quantbench run --out mix examples/mixed_precision.lua model=../shared/models/qb-docs-26m/qb-docs-26m-f16.gguf \
--       text=../shared/data/eval-docs.txt low=q4_k high=q6_k bpw=5.2 ctx=256 scan_chunks=2 chunks=8
local args = require("qb.args")
local opt = args.parse({...}, {
  model = args.models("stories260K/stories260K.bin"),
  text = args.models("stories260K/ppl-sample.txt"),
  ctx = 128,
  chunks = 0,
  scan_chunks = 2,
  low = "q4_0",
  high = "q8_0",
  bpw = 7.5,
  prefix = "mixed",
  export = true,
  search = true,
}, "mixed_precision: sensitivity scan → plan under a bpw budget → GGUF")

local base <close> = qb.open(opt.model)
local m <close> = qb.open(opt.model)
local scan_eval = { ctx = opt.ctx, chunks = opt.scan_chunks }

-- bytes of a tensor in a format, with llama-quantize's fallback for rows that do not fit
local function bytes_in(t, fmt)
  t:quantize({ format = fmt, fallback = true })
  local b, f = t.bytes, t.format
  t:restore()
  return b, f
end

-- 1. the scan
local scan = {}
local matrices = {}
for t in m:tensors() do
  if t.quantizable then matrices[#matrices + 1] = t end
end
if qb.sensitivity then -- core's scan: views of the model, the base pass shared, variants in parallel
  local res = qb.sensitivity(m, { text = opt.text, format = opt.low, ctx = opt.ctx, tokens = opt.scan_chunks * opt.ctx })
  for _, r in ipairs(res.rows) do scan[#scan + 1] = { tensor = r.name, kld = r.kld } end
else
  for _, t in ipairs(matrices) do
    t:quantize({ format = opt.low, fallback = true })
    local k = m:kld(base, opt.text, scan_eval)
    t:restore()
    scan[#scan + 1] = { tensor = t.name, kld = k.kld }
  end
end
local n_params = 0
for _, t in ipairs(matrices) do n_params = n_params + t.n end
for _, r in ipairs(scan) do
  local t = m:tensor(r.tensor)
  r.bytes_low, r.fmt_low = bytes_in(t, opt.low)
  r.bytes_high, r.fmt_high = bytes_in(t, opt.high)
  r.extra = r.bytes_high - r.bytes_low
  r.gain = r.extra > 0 and r.kld / r.extra or 0
end
table.sort(scan, function(a, b) return a.gain > b.gain end)
qb.print_table(scan, { "tensor", "kld", "fmt_low", "fmt_high", "extra", "gain" },
  { title = string.format("sensitivity: KLD with one matrix at %s (%d chunks), sorted by KLD per extra byte", opt.low,
    opt.scan_chunks) })
qb.write_csv(opt.prefix .. "_scan.csv", scan, { "tensor", "kld", "fmt_low", "fmt_high", "bytes_low", "bytes_high" })

-- 2. the plan under the budget
local budget = opt.bpw * n_params / 8
local bytes = 0
for _, r in ipairs(scan) do bytes = bytes + r.bytes_low end
if bytes > budget then
  error(string.format("budget %.2f bpw is below the all-%s model (%.2f bpw)", opt.bpw, opt.low, bytes * 8 / n_params))
end
local rules = { { match = "*", format = opt.low } }
local upgraded = 0
for _, r in ipairs(scan) do
  if r.extra > 0 and bytes + r.extra <= budget then
    bytes = bytes + r.extra
    rules[#rules + 1] = { match = r.tensor, format = opt.high }
    upgraded = upgraded + 1
  end
end
local plan = qb.plan(rules)
plan:save(opt.prefix .. ".plan")
print(string.format("plan: %d of %d matrices at %s, the rest %s; %.3f bpw (budget %.2f)", upgraded, #scan, opt.high,
  opt.low, bytes * 8 / n_params, opt.bpw))

-- 3. compare uniform low, the mix and uniform high (and core's search with refinement, when present)
local eval = { ctx = opt.ctx, chunks = opt.chunks }
local rows = {}
local cases = { { "uniform " .. opt.low, { { match = "*", format = opt.low } } }, { "mixed", plan },
  { "uniform " .. opt.high, { { match = "*", format = opt.high } } } }
if qb.search and opt.search then
  local searched = qb.search { model = m, text = opt.text, bpw = opt.bpw, candidates = { opt.low, opt.high }, ctx = opt.ctx,
    tokens = opt.scan_chunks * opt.ctx }
  cases[#cases + 1] = { "qb.search", searched }
end
for _, c in ipairs(cases) do
  m:apply(c[2], { fallback = true })
  local k = m:kld(base, opt.text, eval)
  rows[#rows + 1] = { plan = c[1], bpw = m:size().bpw, ppl = k.ppl, kld = k.kld, top1 = k.top1 }
  if c[1] == "mixed" and opt.export then
    m:export_gguf(opt.prefix .. ".gguf", plan)
    rows[#rows].file = opt.prefix .. ".gguf"
  end
  m:reset()
end
qb.print_table(rows, { "plan", "bpw", "ppl", "kld", "top1", "file" })
qb.write_csv(opt.prefix .. ".csv", rows, { "plan", "bpw", "ppl", "kld", "top1", "file" })
local ys, xs = {}, {}
for i, r in ipairs(scan) do xs[i], ys[i] = i, r.kld end
qb.plot.line({ title = "sensitivity (KLD) by rank of KLD per extra byte", xlabel = "rank", ylabel = "KLD", log_y = true,
  x = xs, y = ys, style = "bars", file = opt.prefix .. "_scan.png" })
return { scan = scan, rows = rows, upgraded = upgraded, plan = tostring(plan), budget_bytes = budget,
  n_params = n_params }
