-- check_recipes.lua — runs every shipped recipe (examples/*.lua) with fast settings on
-- stories260K and checks its results for shape and sanity. Run trusted (it loads the recipes
-- with loadfile, so they execute in this state and return their result tables):
--   quantbench run --trusted --out DIR tests/lua/check_recipes.lua EXAMPLES_DIR
local T = require("tap")
local examples = arg[1] or "examples"
local models = qb.getenv("QB_MODELS") or "../shared/models"
-- llama-perplexity on stories260K-f32.gguf, -c 128, 9 chunks (../shared/models/stories260K/README.md)
local F32_PPL_LLAMA_CPP = 4.0584

local function run(name, ...)
  local chunk, err = loadfile(examples .. "/" .. name)
  if not chunk then error(err) end
  return chunk(...)
end

T.section("bits_sweep", function()
  local r = run("bits_sweep.lua", "fast=1", "plots=0", "prefix=sweep")
  T.near(r.baseline.ppl, F32_PPL_LLAMA_CPP, 0.001, "bits_sweep: F32 baseline perplexity matches llama-perplexity (4.0584)")
  T.eq(r.baseline.chunks, 9, "bits_sweep: 9 chunks of 128 as llama-perplexity")
  local by = {}
  for _, row in ipairs(r.rows) do by[row.family .. ":" .. row.bits .. ":" .. row.format] = row end
  T.eq(#r.rows, 17, "bits_sweep: 17 rows (6 rtn, 3 float, 8 ggml)")
  -- SQNR falls as bits fall (RTN), and about 6 dB per bit in the middle of the range
  local prev = math.huge
  local falling = true
  for _, b in ipairs({ 8, 6, 5, 4, 3, 2 }) do
    local row = by["rtn:" .. b .. ":int" .. b .. "-channel"]
    if not row or not (row.sqnr_db < prev) then falling = false end
    prev = row and row.sqnr_db or prev
  end
  T.ok(falling, "bits_sweep: RTN SQNR falls strictly from 8 to 2 bits")
  local s8, s4 = by["rtn:8:int8-channel"].sqnr_db, by["rtn:4:int4-channel"].sqnr_db
  T.ok(s8 - s4 > 18 and s8 - s4 < 30, "bits_sweep: 8 → 4 bits costs 18..30 dB (about 6 dB a bit)", s8 - s4)
  T.ok(by["float:8:fp8-e4m3"].sqnr_db > by["float:4:nf4"].sqnr_db, "bits_sweep: fp8 beats nf4 on SQNR")
  -- 8-bit RTN perplexity within 1 % of F32 (llama.cpp's figure)
  T.near(by["rtn:8:int8-channel"].ppl, F32_PPL_LLAMA_CPP, 0.01, "bits_sweep: int8 RTN perplexity within 1% of F32")
  T.near(by["ggml:8:q8_0"].ppl, F32_PPL_LLAMA_CPP, 0.01, "bits_sweep: q8_0 perplexity within 1% of F32")
  T.ok(by["rtn:4:int4-channel"].ppl > by["rtn:8:int8-channel"].ppl, "bits_sweep: int4 perplexity above int8")
  T.ok(by["ggml:4:q4_0"].ppl > by["ggml:8:q8_0"].ppl, "bits_sweep: q4_0 perplexity above q8_0")
  T.ok(by["rtn:6:int6-channel"].ppl == nil, "bits_sweep: fast=1 skips the model pass for int6")
  T.ok(math.abs(by["rtn:8:int8-channel"].tensor_bpw - 8.5) < 1e-9, "bits_sweep: int8-channel at 172 rows is 8.5 bpw")
  local f = io.open(qb.output_dir() .. "/sweep.csv")
  local header = f and f:read("l")
  if f then f:close() end
  T.eq(header, "family,bits,format,tensor_bpw,sqnr_db,cosine,model_bpw,ppl,dppl_pct", "bits_sweep: CSV header")
end)

T.section("teaching_demo", function()
  local rows = run("teaching_demo.lua", "bits=8,4,2", "prefix=demo", "svg=1")
  T.eq(#rows, 3, "teaching_demo: one row per bit width")
  T.ok(rows[1].sqnr_tensor > rows[2].sqnr_tensor and rows[2].sqnr_tensor > rows[3].sqnr_tensor,
    "teaching_demo: per-tensor SQNR falls with bits")
  for _, r in ipairs(rows) do
    T.ok(r.sqnr_group64 > r.sqnr_tensor, "teaching_demo: per-group beats per-tensor at " .. r.bits .. " bits")
  end
  T.ok(rows[2].sqnr_no_outliers - rows[2].sqnr_tensor > 6, "teaching_demo: outliers cost > 6 dB at 4 bits per tensor")
  T.ok(rows[2].bulk_levels <= 4, "teaching_demo: at 4 bits the outliers leave the bulk a handful of levels", rows[2].bulk_levels)
  local dir = qb.output_dir()
  for _, name in ipairs({ "demo_4bit_values.png", "demo_4bit_mapping.png", "demo_4bit_error.png", "demo_sqnr.png",
    "demo_2bit_mapping.svg" }) do
    local f = io.open(dir .. "/" .. name, "rb")
    local head = f and f:read(8)
    if f then f:close() end
    local want = name:match("%.png$") and "\137PNG\r\n\26\n" or "<?xml ve"
    T.eq(head, want, "teaching_demo: " .. name .. " written")
  end
end)

for _, extra in ipairs({ "method_shootout.lua", "mixed_precision.lua", "outlier_study.lua" }) do
  local f = io.open(examples .. "/" .. extra)
  if f then
    f:close()
    T.section(extra, function()
      local check = require("check_" .. extra:gsub("%.lua$", ""))
      check(T, run, F32_PPL_LLAMA_CPP)
    end)
  end
end
T.section("qat_distill", function()
  local r = run("qat_distill.lua", "bits=3", "methods=rtn,gptq,learned,qat", "chunks=3", "iters=20", "steps=20",
                "plots=0", "prefix=qd")
  local by = {}
  for _, row in ipairs(r.rows) do by[row.method] = row end
  T.eq(#r.rows, 4, "qat_distill: one row per method at 3 bits")
  T.ok(by.learned.kld < by.rtn.kld, "qat_distill: learned rounding diverges less than RTN", by.learned.kld, by.rtn.kld)
  T.ok(by.qat.kld < by.gptq.kld, "qat_distill: QAT with distillation diverges less than GPTQ", by.qat.kld, by.gptq.kld)
  T.ok(by.qat.gap > 0 and by.gptq.gap == 0, "qat_distill: the gap column is relative to GPTQ", by.qat.gap)
  local f = io.open(qb.output_dir() .. "/qd.csv")
  local header = f and f:read("l")
  if f then f:close() end
  T.eq(header, "bits,method,format,model_bpw,ppl,kld,top1,gap,seconds", "qat_distill: CSV header")
end)

T.done()
