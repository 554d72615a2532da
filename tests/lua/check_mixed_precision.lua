-- check_mixed_precision.lua — examples/mixed_precision.lua on stories260K (scan on one chunk,
-- evaluation on all 9): the plan stays within the budget, upgrades some matrices, sits between
-- uniform low and uniform high in size and divergence, and the GGUF reopens with the plan's types.
return function(T, run)
  local r = run("mixed_precision.lua", "scan_chunks=1", "prefix=mixed")
  T.eq(#r.scan, 36, "mixed_precision: every weight matrix scanned (36)")
  local low, mix, high = r.rows[1], r.rows[2], r.rows[3]
  T.ok(r.upgraded > 0 and r.upgraded < 36, "mixed_precision: some matrices upgraded", r.upgraded)
  T.ok(mix.bpw <= 7.5 + 1e-9 and mix.bpw > low.bpw and mix.bpw < high.bpw, "mixed_precision: bpw within the budget, between uniform low and high", mix.bpw)
  T.ok(mix.kld < low.kld and mix.kld > high.kld, "mixed_precision: the mix diverges less than uniform q4_0, more than q8_0")
  local m <close> = qb.open(qb.output_dir() .. "/mixed.gguf")
  local q8, q4 = 0, 0
  for t in m:tensors() do
    if t.format == "q8_0" then q8 = q8 + 1 elseif t.format == "q4_0" then q4 = q4 + 1 end
  end
  T.eq(q8, r.upgraded, "mixed_precision: the GGUF has the upgraded matrices in q8_0")
  T.near(m:perplexity((qb.getenv("QB_MODELS") or "../shared/models") .. "/stories260K/ppl-sample.txt", { ctx = 128 }).ppl, mix.ppl, 1e-6,
    "mixed_precision: the GGUF reopened gives the mix's perplexity")
end
