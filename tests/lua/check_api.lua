-- check_api.lua — the qb module against real model runs on stories260K: greedy generation
-- equal to llama2.c's run.c output, tensors and stats, quantize/restore, plans (build, print,
-- save, load), apply and size, KLD against the F32 model and against a KL-divergence base file,
-- GGUF export and reopen, progress callbacks (and an error raised inside one), write/print
-- helpers, userdata behaviour, task accuracy, structured pruning (shapes, report, export).
-- Run trusted (it reads the reference file with io):  quantbench run --trusted --out DIR check_api.lua
local T = require("tap")
local models = qb.getenv("QB_MODELS") or "../shared/models"
local S = models .. "/stories260K"
local text = S .. "/ppl-sample.txt"

T.section("generate", function()
  local m <close> = qb.open(S .. "/stories260K.bin")
  local out, st = m:generate("Once upon a time", { n = 96 })
  local f = assert(io.open(S .. "/reference-greedy.txt", "rb"))
  local ref = f:read("a")
  f:close()
  T.eq("Once upon a time" .. out .. "\n", ref, "greedy generation equals llama2.c run.c's reference-greedy.txt")
  T.eq(st.n_generated, 96, "generate: 96 tokens")
  local seen = 0
  m:generate("Once", { n = 5, on_token = function(piece, id) seen = seen + 1; return seen < 3 end })
  T.eq(seen, 3, "generate: on_token returning false stops generation")
  T.raises(function() m:generate("Once", { n = 5, on_token = function() error("boom in callback") end }) end,
    "boom in callback", "generate: an error in on_token reaches the recipe")
end)

T.section("tensors and stats", function()
  local m <close> = qb.open(S .. "/stories260K-f32.gguf")
  local n, names = 0, {}
  for t in m:tensors() do n = n + 1; names[#names + 1] = t.name end
  T.eq(n, m:info().n_tensors, "tensors(): iterates every tensor")
  local k = 0
  for t in m:tensors("blk.*.ffn_down.weight") do k = k + 1; T.eq(t.cols, 172, "ffn_down " .. t.name .. " has 172 columns") end
  T.eq(k, 5, "tensors(pattern): 5 ffn_down tensors")
  local t = m:tensor("blk.0.attn_q.weight")
  T.ok(tostring(t):find("qb.tensor blk.0.attn_q.weight [64 x 64] f32", 1, true), "tensor __tostring", tostring(t))
  T.eq(m:tensor("nope"), nil, "tensor(name) is nil for an unknown name")
  local s8, s4 = t:stats("int8-channel"), t:stats({ bits = 4 })
  T.ok(s8.sqnr > s4.sqnr + 18, "stats: int8 SQNR about 24 dB above int4")
  T.eq(s4.format, "int4-channel", "stats: setting table {bits=4} is int4 per channel")
  T.eq(#s4.hist.orig.counts, 64, "stats: 64 histogram bins by default")
  local total = s4.hist.orig.under + s4.hist.orig.over
  for _, c in ipairs(s4.hist.orig.counts) do total = total + c end
  T.eq(total, 64 * 64, "stats: histogram counts add up to the tensor's size")
  T.ok(#s4.map.x > 10 and #s4.map.x == #s4.map.y, "stats: mapping points")
  local exact = t:stats()
  T.eq(exact.sqnr, math.huge, "stats() without a format is exact (f32)")
  T.ok(exact.orig.std > 0 and exact.orig.absmax >= math.abs(exact.orig.mean), "stats: summary of the original values")
  local vals = t:values(1, 1)
  T.eq(#vals, 64, "values(row, 1): one row")
  local direct = qb.analyze(t:values(), "int4-channel", { rows = 64 })
  T.near(direct.sqnr, s4.sqnr, 1e-9, "qb.analyze on the values equals tensor:stats")
  -- quantize / restore
  t:quantize("q8_0")
  T.eq(t.format, "q8_0", "quantize: format changes")
  T.eq(t.bytes, 64 * 64 / 32 * 34, "quantize: q8_0 bytes")
  t:restore()
  T.eq(t.format, "f32", "restore: back to the original")
  T.raises(function() m:tensor("blk.0.ffn_down.weight"):quantize("q4_k") end, "not a multiple of the block size 256",
    "quantize: q4_k on 172 columns is refused")
  m:tensor("blk.0.ffn_down.weight"):quantize("q4_k", { fallback = true })
  T.eq(m:tensor("blk.0.ffn_down.weight").format, "f16", "quantize with fallback: q4_k on 172 columns falls back as llama-quantize (f16)")
  T.raises(function() m:tensor("blk.0.attn_norm.weight"):quantize("q8_0") end, "not a weight matrix", "norms are not quantized")
  T.raises(function() t:stats({ method = "gptq", bits = 4 }) end, "method 'gptq' works on a whole model", "unknown methods are named")
end)

T.section("plans, apply, size, kld, export", function()
  local base <close> = qb.open(S .. "/stories260K-f32.gguf")
  local m <close> = qb.open(S .. "/stories260K-f32.gguf")
  local p = qb.plan { { match = "*", format = "q8_0" }, { match = "*ffn_down*", bits = 8 }, { "output.weight", "q6_k" } }
  T.eq(#p, 3, "plan: 3 rules")
  T.eq(p:lookup("blk.2.ffn_down.weight"), "int8-channel", "plan: last matching rule wins")
  T.eq(p:lookup("blk.2.attn_k.weight"), "q8_0", "plan: first rule for the rest")
  T.ok(tostring(p):find("*ffn_down* = int8-channel", 1, true), "plan: text form", tostring(p))
  p:save("p.plan")
  local p2 = qb.load_plan(qb.output_dir() .. "/p.plan")
  T.eq(tostring(p2), tostring(p), "plan: save and load round trip")
  local calls, last = 0, nil
  local _, skipped = m:apply(p, { fallback = true, progress = function(done, total) calls = calls + 1; last = { done, total } end })
  T.ok(calls > 0 and last[1] == last[2], "apply: progress reaches total", calls)
  T.eq(#skipped, 0, "apply: nothing skipped")
  local sz = m:size()
  T.ok(sz.bpw > 8 and sz.bpw < 9, "size: bpw between 8 and 9 after q8_0/int8", sz.bpw)
  T.ok(sz.bytes < sz.bytes_f32 / 3, "size: bytes shrink")
  local k = m:kld(base, text, { ctx = 128 })
  T.near(k.ppl_base, 4.0584, 0.001, "kld: base perplexity equals llama-perplexity's F32 figure")
  T.ok(k.kld >= 0 and k.kld < 0.01, "kld: small divergence for 8-bit", k.kld)
  T.ok(k.top1 > 95, "kld: top-1 agreement above 95%", k.top1)
  T.raises(function() m:perplexity(text, { ctx = 128, progress = function() error("stop here") end }) end, "stop here",
    "perplexity: an error in the progress callback stops it and reaches the recipe")
  local r = m:perplexity(text, { ctx = 128 })
  T.near(r.ppl, k.ppl, 1e-9, "perplexity: after a stopped run the model still gives the same figure")
  T.eq(m:reset(), 37, "reset: every quantized matrix restored")
  T.eq(m:size().bpw, 32, "reset: back to F32")
  -- export a llama.cpp mix and reopen it: stories260K-q8_0.gguf was made with llama-quantize's Q6_K
  -- (Q8_0 fallback, ffn_down F16) and llama-perplexity gives it 4.0601
  m:apply_ftype("Q6_K")
  m:export_gguf("q8.gguf")
  local m2 <close> = qb.open(qb.output_dir() .. "/q8.gguf")
  T.eq(m2:tensor("blk.0.attn_q.weight").format, "q8_0", "export_gguf: reopened file has q8_0 tensors")
  T.near(m2:perplexity(text, { ctx = 128 }).ppl, 4.0601, 0.002, "export_gguf: perplexity near llama.cpp's Q8_0 file (4.0601)")
  T.raises(function() m:export_gguf("../x.gguf") end, "may not leave", "export_gguf: sandboxed path")
  local _, sk = m:apply({ { match = "*", format = "nf4" } }, { fallback = true })
  T.eq(#sk, 5, "apply with fallback: the five 172-wide ffn_down cannot be nf4 and are listed")
  m:export_gguf("nf4.gguf")
  local m3 <close> = qb.open(qb.output_dir() .. "/nf4.gguf")
  T.eq(m3:tensor("blk.0.attn_q.weight").format, "f16", "export_gguf: nf4 (no ggml type) is written as F16 of its values")
  T.near(m3:perplexity(text, { ctx = 128 }).ppl, m:perplexity(text, { ctx = 128 }).ppl, 0.001,
         "export_gguf: the nf4 model's perplexity survives the export")
end)

T.section("kld base files", function()
  local base <close> = qb.open(S .. "/stories260K-f32.gguf")
  local r = qb.kld_base_save(base, text, "base.kld", { ctx = 128, chunks = 4 })
  T.near(r.ppl, 3.624530, 1e-5, "kld_base_save: the base perplexity on 4 chunks of 128 (llama-perplexity: 3.624530)")
  T.eq(r.tokens, 252, "kld_base_save: 4 chunks x 63 scored positions")
  local m <close> = qb.open(S .. "/stories260K-f32.gguf")
  m:apply({ { match = "*", format = "q8_0" } }, { fallback = true })
  local file = qb.output_dir() .. "/base.kld"
  local k = m:kld(file, text)
  T.near(k.ppl_base, r.ppl, 1e-4, "kld(file): PPL(base) from the file's 16-bit log-probabilities")
  T.eq(k.tokens, 252, "kld(file): the file's 252 positions")
  T.eq(k.ctx, 128, "kld(file): the file's context")
  T.ok(k.kld > 0 and k.kld < 0.01 and k.top1 > 95, "kld(file): small divergence for 8-bit, top-1 above 95%", k.kld)
  T.ok(k.kld_max >= k.kld_p99_9 and k.kld_p99_9 >= k.kld_p99 and k.kld_p99 >= k.kld_median and k.kld_median >= k.kld_min,
       "kld(file): KLD quantiles in order")
  T.ok(k.dp_max >= k.dp_p90 and k.dp_p90 >= k.dp_median and k.dp_median >= k.dp_p0_1 and k.dp_p0_1 >= k.dp_min,
       "kld(file): Δp quantiles in order")
  T.ok(k.dp_rms > 0 and k.cor > 0.99 and k.ratio > 0.99, "kld(file): RMS Δp, correlation, PPL ratio")
  T.eq(m:kld(file, text, { chunks = 2 }).tokens, 126, "kld(file, {chunks=2}): the file's first two chunks")
  T.raises(function() m:kld(file, text, { ctx = 64 }) end, "made with a context of 128 tokens", "kld(file): another context")
  T.raises(function() m:kld(file, "Some other text, not the one the base file was made from.") end, "another text",
           "kld(file): another text")
  T.raises(function() m:kld(qb.output_dir() .. "/nope.kld", text) end, "nope.kld: cannot open", "kld(file): a missing file")
  T.raises(function() qb.kld_base_save(base, text, "../x.kld") end, "may not leave", "kld_base_save: sandboxed path")
end)

T.section("plans with methods", function()
  local m <close> = qb.open(S .. "/stories260K.bin")
  local p = qb.plan { { match = "*", format = "q8_0" }, { match = "*ffn_down*", format = "f16" },
                      { match = "*attn_k*", format = "q4_0", method = "gptq", damp = 0.02 },
                      { "blk.1.*", "int4-channel", "awq alpha=0.5" } }
  local r = p:rules()
  T.eq(r[1].method, "rtn", "plan rules: RTN where no method is named")
  T.ok(r[3].method == "gptq" and r[3].damp == 0.02, "plan rules: method and parameter from fields", r[3].method)
  T.ok(r[4].method == "awq" and r[4].alpha == 0.5, "plan rules: method and parameter from 'awq alpha=0.5'", r[4].method)
  T.ok(tostring(p):find("*attn_k* = q4_0 gptq damp=0.02\n", 1, true), "plan text: version 2 with methods", tostring(p))
  T.eq(tostring(qb.parse_plan(tostring(p))), tostring(p), "plan text: parse(print(plan)) prints the same")
  local pw = qb.plan { { match = "*", format = "q4_0", method = "gptq", weighted = true }, { "*ffn*", "q4_0", "awq weighted=1" } }
  T.ok(tostring(pw):find("* = q4_0 gptq weighted=1\n", 1, true) and tostring(pw):find("awq weighted=1", 1, true),
    "plan rules: importance-weighted GPTQ / AWQ", tostring(pw))
  T.raises(function() qb.plan { ["*"] = "q4_k" } end, "key '%*' is not a rule's position",
           "plan: a map instead of a list of rules is refused, not made an empty plan")
  T.raises(function() qb.plan { { "*", "q4_0", "gptq dmap=1" } } end, "gptq has no parameter 'dmap'",
    "plan rules: an unknown method parameter is refused")
  T.raises(function() qb.parse_plan("* = q4_0\n*x* = q4_0 awq alpha=2\n", "my.plan") end,
    "my%.plan:2: awq: alpha=2 out of range", "parse_plan: errors name the line")
  T.raises(function() m:apply(p) end, "needs calibration", "apply: GPTQ/AWQ rules without calib= are refused")
  T.raises(function() m:apply({ { match = "*fnn_down*", format = "q8_0" } }) end,
    "plan rule 1 '%*fnn_down%*' matches no tensor", "apply: a rule matching no tensor is an error")
  T.raises(function() for _ in m:tensors("blk%.") do end end, "pattern 'blk%%%.' matches no tensor",
    "tensors: a glob matching no tensor is an error, not an empty loop")
  local c = qb.calibrate(m, text, { ctx = 64 })
  T.eq(c:experts(0), nil, "calib:experts: nil for a model without experts")
  m:apply(p, { calib = c })
  T.eq(m:tensor("blk.0.attn_k.weight").format, "q4_0", "apply: the GPTQ rule's format")
  T.eq(m:tensor("blk.1.attn_k.weight").format, "int4-channel", "apply: the AWQ rule's format")
  T.eq(m:tensor("blk.2.attn_q.weight").format, "q8_0", "apply: the RTN rule's format")
  local bytes = m:size().bytes
  T.raises(function()
    m:apply({ { match = "*attn*", format = "q4_0", method = "gptq" }, { match = "blk.2.ffn_down.weight", format = "q4_0" } },
      { calib = c })
  end, "blk%.2%.ffn_down%.weight", "apply: a failing rule names the tensor")
  T.ok(m:tensor("blk.1.attn_k.weight").format == "int4-channel" and m:size().bytes == bytes,
    "apply: after a failing rule the model is as it was")
  m:reset()
  m:apply(p, { calib = c })
  m:export_gguf("recipe.gguf", p, { calib = c })
  local mr <close> = qb.open(qb.output_dir() .. "/recipe.gguf")
  local rec = mr:info().recipe
  T.ok(rec and rec.plan:find("blk.1.* = int4-channel awq alpha=0.5", 1, true) and rec.calib_bytes > 0 and
    #rec.calib_sha256 == 64 and rec.calib_file:find("ppl-sample.txt", 1, true), "export_gguf records the recipe",
    rec and rec.plan)
  m:reset()
  m:apply({ { match = "*attn*", format = "q4_0" } }, { method = "gptq", calib = c })
  T.eq(m:tensor("blk.3.attn_output.weight").format, "q4_0", "apply: method= for rules that name none")
  m:reset()
  m:apply({ { match = "*attn*", format = "q4_0" } }, { method = "gptq", calib = c, weighted = true })
  T.eq(m:tensor("blk.3.attn_output.weight").format, "q4_0", "apply: GPTQ with importance-weighted scales")
  m:reset()
  m:apply({ { match = "blk.*", format = "int4-channel", method = "learned", iters = 3 } }, { calib = c })
  T.eq(m:tensor("blk.2.ffn_down.weight").format, "int4-channel", "apply: learned rounding (method='learned', iters=)")
  T.raises(function() m:apply({ { match = "blk.*", format = "q4_0", method = "learned" } }, { calib = c }) end,
    "method learned, tensor .*q4_0 is not learned", "apply: learned rounding refuses a ggml type by name")
end)

T.section("sensitivity of chosen blocks", function()
  local m <close> = qb.open(S .. "/stories260K-f32.gguf")
  local r = qb.sensitivity(m, { text = text, format = "q4_0", ctx = 64, tokens = 128, layers = 3 })
  local bad = 0
  for _, row in ipairs(r.rows) do if row.layer ~= 3 then bad = bad + 1 end end
  T.eq(#r.rows, 7, "sensitivity layers=3: block 3's seven matrices")
  T.eq(bad, 0, "sensitivity layers=3: no row of another block")
  r = qb.sensitivity(m, { text = text, format = "q4_0", ctx = 64, tokens = 128, layers = { 3, 4 }, per = "layer" })
  T.eq(#r.rows, 2, "sensitivity layers={3, 4} per layer: two rows")
  -- the reuse of the base's pass: its cost, and the same numbers without a cache (a note)
  local a = qb.sensitivity(m, { text = text, format = "q4_0", ctx = 64, tokens = 128, layers = 3 })
  local z = qb.sensitivity(m, { text = text, format = "q4_0", ctx = 64, tokens = 128, layers = 3, cache_mb = 0 })
  local same = #a.rows == #z.rows
  for i, row in ipairs(a.rows) do same = same and row.kld == z.rows[i].kld and row.cost > 0 and row.cost < 1 end
  T.ok(same and a.cost.mean < 1 and a.cost.note == "" and z.cost.note:find("recomputed") ~= nil,
    "sensitivity cache_mb=0: the same KLDs, a note, cost below a pass", a.cost and a.cost.mean)
  T.raises(function() qb.sensitivity(m, { text = text, format = "q4_0", cache_mb = -1 }) end,
    "bad option 'cache_mb'", "sensitivity: a negative cache bound is refused")
  T.raises(function() qb.sensitivity(m, { text = text, format = "q4_0", layers = "3" }) end,
    "bad option 'layers'", "sensitivity: layers must be a number or a pair")
  T.raises(function() qb.sensitivity(m, { text = text, format = "q4_0", layers = { 2, 9 } }) end,
    "blocks 0%-4", "sensitivity: blocks beyond the model are refused by name")
  -- the estimate from an importance matrix: alone (no text), then beside the exact scan
  local im = qb.imatrix(m, text, { ctx = 64, chunks = 3 })
  local e = qb.sensitivity(m, { format = "q4_0", imatrix = im, layers = { 1, 2 } })
  local ranked = #e.rows == 14
  for i, row in ipairs(e.rows) do
    ranked = ranked and row.est_err > 0 and row.est_rel > 0 and (i == 1 or row.est_err <= e.rows[i - 1].est_err)
  end
  T.ok(ranked, "sensitivity imatrix= without text: 14 rows ranked by est_err", #e.rows)
  local x = qb.sensitivity(m, { text = text, format = "q4_0", ctx = 64, tokens = 128, imatrix = im, layers = { 1, 2 } })
  T.ok(x.spearman and x.spearman.n == 14 and x.spearman.err >= -1 and x.spearman.err <= 1 and x.rows[1].kld > 0 and
    x.rows[1].est_err > 0, "sensitivity imatrix= with text: both figures and Spearman's rho",
    x.spearman and x.spearman.err)
  -- the Fisher estimate: alone, refined, beside the exact scan; the search from it; bad options
  local fe = qb.sensitivity(m, { format = "q4_0", estimate = "fisher", calib = text, ctx = 64, layers = { 1, 2 } })
  ranked = #fe.rows == 14
  for i, row in ipairs(fe.rows) do ranked = ranked and row.est_err > 0 and (i == 1 or row.est_err <= fe.rows[i - 1].est_err) end
  T.ok(ranked, "sensitivity estimate='fisher' without text: 14 rows ranked by the estimated KLD", #fe.rows)
  local fx = qb.sensitivity(m, { text = text, format = "q4_0", ctx = 64, tokens = 1024, estimate = "fisher", calib = text,
    layers = { 1, 2 }, refine = 2 })
  local nref = 0
  for _, row in ipairs(fx.rows) do if row.refined then nref = nref + 1 end end
  T.ok(fx.spearman and fx.spearman.n == 14 and fx.spearman.err > 0.5 and fx.spearman.ranked and nref == 2,
    "sensitivity estimate='fisher' with text and refine=2: Spearman's rho of the estimate and of the refined order",
    fx.spearman and fx.spearman.err)
  local fs = qb.sensitivity(m, { format = "q4_0", estimate = "fisher", calib = text, ctx = 64, layers = { 1, 2 },
    stream = "on" })
  local same = #fs.rows == #fe.rows
  for i, row in ipairs(fs.rows) do
    same = same and row.name == fe.rows[i].name and math.abs(row.est_err - fe.rows[i].est_err) <= 1e-5 * fe.rows[i].est_err
  end
  T.ok(same, "sensitivity estimate='fisher', stream='on': the in-memory estimate, block by block", #fs.rows)
  T.raises(function() qb.sensitivity(m, { format = "q4_0", estimate = "fisher", calib = text, stream = "yes" }) end,
    "bad option 'stream'", "sensitivity: stream= is auto, on or off")
  local fp, fr = qb.search { model = m, text = text, bpw = 8, candidates = "q4_0,q8_0,f16", ctx = 64, estimate = "fisher" }
  T.ok(fr.kld ~= fr.kld and fr.kld_predicted > 0 and fr.variants == 0 and fp,
    "search estimate='fisher': a plan from the estimate, nothing measured (kld NaN)", fr.kld_predicted)
  T.raises(function() qb.sensitivity(m, { format = "q4_0", estimate = "fisher" }) end, "option 'calib'",
    "sensitivity estimate='fisher' needs calib=")
  T.raises(function() qb.sensitivity(m, { format = "q4_0", estimate = "hessian", calib = text }) end,
    "bad option 'estimate'", "sensitivity: an unknown estimate is refused")
  T.raises(function() qb.sensitivity(m, { format = "q4_0", estimate = "fisher", calib = "a b", ctx = 64 }) end,
    "Fisher pass with 64%-token chunks needs at least 128", "sensitivity estimate='fisher': a calibration text too short")
  -- importance-weighted error statistics: tensor:stats(setting, {imatrix=})
  local t = m:tensor("blk.1.attn_q.weight")
  local p = t:stats("q4_0")
  local w = t:stats("q4_0", { imatrix = im })
  local u = t:stats({ format = "q4_0", imatrix = im, quantize_weighted = false })
  T.ok(p.weighted == nil and w.weighted and w.weighted.mse > 0 and w.weighted.rel_err > 0,
    "stats imatrix=: the weighted statistics in field weighted")
  T.eq(u.mse, p.mse, "stats quantize_weighted=false: the plain quantization (its plain MSE unchanged)")
  T.ok(u.weighted.mse ~= u.mse, "stats: the weighted MSE is another number", u.weighted.mse)
  T.lt(w.weighted.mse, u.weighted.mse, "stats imatrix=: quantized with the importance, a lower weighted MSE")
  local total = w.weighted.hist.under + w.weighted.hist.over
  for _, c in ipairs(w.weighted.hist.counts) do total = total + c end
  T.eq(total, 64 * 64, "stats imatrix=: the weighted error histogram counts every value")
  local e = m:tensor("token_embd.weight"):stats("q8_0", { imatrix = im })
  T.ok(e.weighted == nil and e.importance_missing, "stats imatrix=: token_embd has no entry (importance_missing)")
  T.raises(function() t:stats("q4_0", { imatrix = "x" }) end, "qb.imatrix expected", "stats: imatrix= must be a qb.imatrix")
  -- qb.analyze with importance=: uniform weights give the plain numbers exactly
  local vals, ones = t:values(), {}
  for j = 1, 64 do ones[j] = 0.25 end
  local a0 = qb.analyze(vals, "int4-channel", { rows = 64 })
  local a1 = qb.analyze(vals, "int4-channel", { rows = 64, importance = ones })
  T.ok(a1.weighted.mse == a0.mse and a1.weighted.sqnr == a0.sqnr and a1.weighted.max_err == a0.max_err,
    "analyze importance= uniform: the weighted numbers are the plain ones")
  T.raises(function() qb.analyze(vals, "int4-channel", { rows = 64, importance = { 1, 2 } }) end,
    "2 values; the rows of 64 need 1 x 64", "analyze: importance of the wrong size refused")
  ones[3] = -1
  T.raises(function() qb.analyze(vals, "int4-channel", { rows = 64, importance = ones }) end,
    "importance of column 2", "analyze: a negative importance refused")
end)

T.section("helpers and userdata", function()
  local lines = qb.plot.line { x = { 1, 2, 3 }, y = { 3, 1, 2 }, text = true, cols = 30, rows = 4 }
  T.ok(type(lines) == "string" and lines:find("\u{2502}"), "plot.line{text=true} returns the braille text")
  T.raises(function() qb.plot.line { x = { 1, 2 }, y = { 1 } } end, "2 x values and 1 y values", "plot: x/y length mismatch")
  T.raises(function() qb.plot.line { y = { 1, "a" } } end, "y%[2%] is a string", "plot: non-number named")
  T.eq(qb.to_json({ a = { 1, 2 }, b = "x", c = math.huge }), '{"a":[1,2],"b":"x","c":null}', "to_json: arrays, sorted keys, inf as null")
  T.eq(qb.to_json({ s = "q\"\\\1\n", x = 0.5, [2] = true }), '{"2":true,"s":"q\\"\\\\\\u0001\\n","x":0.5}',
    "to_json: escapes (quote, backslash, control characters), number keys as strings")
  T.eq(qb.to_json("a\xffb"), '"a\u{FFFD}b"', "to_json: bytes that are not UTF-8 become U+FFFD")
  T.raises(function() qb.to_json({ f = print }) end, "cannot write a function", "to_json: a function is refused")
  T.eq(qb.format("q4_k").bpw, 4.5, "format: q4_k is 4.5 bpw")
  T.eq(qb.format({ bits = 3, group = 128, sym = false }).name, "int3-g128-asym", "format: setting table")
  T.eq(qb.step("q4_k", -1), "q3_k", "step: q4_k down the K-quant ladder")
  T.eq(qb.step("int4-g128", 1), "int5-g128", "step: int4-g128 up, same group")
  T.ok(not pcall(qb.step, "q4_k", 0), "step: direction 0 is an error")
  T.ok(#qb.ftypes() > 10, "ftypes: llama-quantize's types")
  local m = qb.open(S .. "/stories260K.bin")
  local t = m:tensor("blk.0.attn_q.weight")
  m:close()
  T.raises(function() return t.name end, "model is closed", "a tensor of a closed model is refused")
  T.raises(function() m:info() end, "the model is closed", "a closed model is refused")
  T.ok(tostring(m) == "qb.model (closed)", "closed model __tostring")
end)
T.section("task accuracy", function()
  -- the numbers are llama-perplexity c392e50's on the same files (tests/cli/test-tasks.sh
  -- compares every line with it)
  local m <close> = qb.open(S .. "/stories260K-f32.gguf")
  local TD = "tests/data/tasks/"
  local r = m:tasks{ winogrande = TD .. "winogrande.csv", tasks = 100 }
  T.eq(r.n, 100, "tasks: 100 Winogrande tasks drawn as llama-perplexity draws them")
  T.eq(r.tasks_in_file, 159, "tasks: the file's 159 tasks (its last line unread, as llama-perplexity)")
  T.near(r.score, 47.0, 1e-9, "tasks: Winogrande score as llama-perplexity's (47.0000 +/- 5.0161)")
  T.near(r.stderr, 5.0161, 1e-5, "tasks: its standard error")
  local c = m:tasks{ multiple_choice = TD .. "multiple-choice.bin" }
  T.eq(c.correct, 41, "tasks: multiple choice, 41 of 120 as llama-perplexity (34.1667 +/- 4.3476)")
  T.near(c.chance, 33.3333, 1e-5, "tasks: multiple choice random chance (33.3333)")
  local h = m:tasks{ hellaswag = TD .. "hellaswag.txt", tasks = 50, progress = function() end }
  T.near(h.score, 30.0, 1e-9, "tasks: HellaSwag acc_norm on 50 tasks as llama-perplexity's (30.0000)")
  T.raises(function() m:tasks{ hellaswag = TD .. "hellaswag.txt", winogrande = TD .. "winogrande.csv" } end,
           "give one of", "tasks: one kind at a time")
  T.raises(function() m:tasks{ tasks = 3 } end, "give a task file", "tasks: a file is needed")
  T.raises(function() m:tasks{ winogrande = TD .. "hellaswag.txt" } end, "hellaswag.txt: line 1 %(task 1%)",
           "tasks: a malformed file names itself and the task")
  T.raises(function() m:tasks{ hellaswag = TD .. "hellaswag.txt", progress = function() error("stop here") end } end,
           "stop here", "tasks: an error in the progress callback stops the run")
end)

T.section("fine-tuning", function()
  local t <close> = qb.open(S .. "/stories260K.bin")
  local m <close> = qb.open(S .. "/stories260K.bin")
  local before
  local seen, last = 0, nil
  local r = m:finetune{ plan = "int3-channel", text = text, teacher = t, steps = 12, batch = 2, seq = 64, lr = 1e-3,
                        on_step = function(s) seen = seen + 1; last = s end }
  local after = m:kld(t, text, { ctx = 64 }).kld
  local rtn <close> = qb.open(S .. "/stories260K.bin")
  rtn:apply(qb.plan{ { "*", "int3-channel" } })
  before = rtn:kld(t, text, { ctx = 64 }).kld
  T.eq(r.steps, 12, "finetune: 12 steps")
  T.eq(#r.loss, 12, "finetune: a loss per step")
  T.eq(seen, 12, "finetune: on_step after every step")
  T.eq(last.step, 12, "finetune: on_step's last report is step 12")
  T.ok(last.tokens == 128 and last.lr > 0 and last.grad_norm > 0, "finetune: on_step reports tokens, lr, |g|")
  T.ok(r.loss[12] < r.loss[1], "finetune: the loss fell", r.loss[1], r.loss[12])
  T.ok(after < 0.5 * before, "finetune: KLD from the teacher below half of round-to-nearest's", before, after)
  T.eq(m:tensor("blk.0.attn_q.weight").format, "int3-channel", "finetune: the matrices stay in the plan's format")
  local m2 <close> = qb.open(S .. "/stories260K.bin")
  local r2 = m2:finetune{ plan = "int3-channel", text = text, teacher = t, steps = 12, batch = 2, seq = 64, lr = 1e-3,
                          recompute = "on" }
  T.ok(r2.loss[1] == r.loss[1] and r2.loss[12] == r.loss[12], "finetune{recompute='on'}: the same losses to the bit",
       r.loss[12], r2.loss[12])
  T.raises(function() m2:finetune{ plan = "int4-channel", teacher = t, text = text, recompute = "maybe" } end,
           "bad option 'recompute'", "finetune: a bad recompute value")
  local h <close> = qb.open(S .. "/stories260K.bin")
  h:apply(qb.plan{ { "*", "int3-channel" } })
  local hr = h:finetune{ heal = true, teacher = t, text = text, steps = 3, batch = 2, seq = 64,
                         on_step = function(s) return s.step < 2 end }
  T.ok(hr.stopped and hr.steps == 2 and hr.mode == "heal", "finetune{heal}: on_step returning false stops at step 2")
  T.raises(function() h:finetune{ heal = true, text = text } end, "give teacher=", "finetune{heal} without a teacher")
  T.raises(function() m:finetune{ plan = "int4-channel", teacher = m, text = text } end, "another model",
           "finetune: the model as its own teacher")
  T.raises(function() m:finetune{ plan = qb.plan{ { "*", "q4_0", "gptq" } }, teacher = t, text = text } end,
           "names method gptq", "finetune: a plan with another method")
  T.raises(function() m:finetune{ plan = "int4-channel", teacher = t, text = text, steps = 2,
                                  on_step = function() error("boom in on_step") end } end,
           "boom in on_step", "finetune: an error in on_step reaches the recipe")
end)

T.section("structured pruning", function()
  local calib = S .. "/ppl-sample.txt"
  local base <close> = qb.open(S .. "/stories260K.bin")
  local m <close> = qb.open(S .. "/stories260K.bin")
  local calls = 0
  local same, r = m:prune_structured{ heads = 0.25, ffn = 0.25, layers = 1, calib = calib, samples = 4, ctx = 64,
                                      progress = function() calls = calls + 1 end }
  T.ok(same == m and calls > 0, "prune_structured: returns the model, reports progress", calls)
  T.eq(r.before.heads .. "/" .. r.before.kv_heads .. " " .. r.before.ffn .. " " .. r.before.layers, "8/4 172 5",
       "prune_structured: the shape before")
  T.eq(r.after.heads .. "/" .. r.after.kv_heads .. " " .. r.after.ffn .. " " .. r.after.layers, "6/3 129 4",
       "prune_structured: a quarter of the heads (one whole KV group), of the neurons, one block")
  T.eq(m:info().n_heads, 6, "prune_structured: info follows")
  T.eq(r.after.params, m:size().params, "prune_structured: params after = size().params")
  local gone, least = 0, math.huge
  for _, b in ipairs(r.blocks) do least = math.min(least, b.influence) end
  for _, b in ipairs(r.blocks) do
    if b.removed then gone = gone + 1; T.eq(b.influence, least, "prune_structured: the block of least influence goes")
    else T.ok(#b.heads_removed == 2 and #b.kv_heads_removed == 1 and b.neurons_removed == 43, "prune_structured: block " .. b.block) end
  end
  T.eq(gone, 1, "prune_structured: one block removed")
  local k = m:kld(base, text, { ctx = 128 })
  T.ok(k.kld > 0 and k.ppl > k.ppl_base, "prune_structured: the student runs against the unpruned teacher", k.kld)
  m:export_gguf("pruned.gguf")
  local back <close> = qb.open(qb.output_dir() .. "/pruned.gguf")
  T.eq(back:info().n_layers, 4, "prune_structured: the exported GGUF has the new shapes")
  T.near(back:perplexity(text, { ctx = 128 }).ppl, k.ppl, 1e-9, "prune_structured: the same perplexity after export")
  T.raises(function() base:prune_structured{ heads = 1, calib = calib } end, "out of range", "prune_structured: heads = 1 refused")
  T.raises(function() base:prune_structured{ layers = 5, calib = calib } end, "at least one must stay",
           "prune_structured: every block refused")
  T.raises(function() base:prune_structured{ heads = 0.25 } end, "calib=", "prune_structured: calib is needed")
  T.raises(function() base:prune_structured{ ffn = 0.5, calib = "/nonexistent.txt" } end, "nonexistent",
           "prune_structured: an unreadable text names itself")
  T.eq(base:info().n_heads, 8, "prune_structured: a refused call leaves the model as it was")
end)

T.done()
