-- check_outlier_study.lua — examples/outlier_study.lua on stories260K: tail statistics of every
-- matrix, shares falling with the threshold, and per-channel scales beating per-tensor ones
-- (decisively at 4 bits; 8-bit per channel within 1% of F32).
return function(T, run, f32_ppl)
  local r = run("outlier_study.lua", "plots=1", "prefix=outliers")
  T.eq(#r.tensors, 36, "outlier_study: 36 weight matrices")
  local mono = true
  for _, t in ipairs(r.tensors) do
    if not (t.pct_beyond_3 >= t.pct_beyond_4 and t.pct_beyond_4 >= t.pct_beyond_6 and t.pct_beyond_6 >= t.pct_beyond_8) then mono = false end
    if not (t.kurtosis > 1) then mono = false end
  end
  T.ok(mono, "outlier_study: shares fall as the threshold rises; kurtosis sane")
  local by = {}
  for _, s in ipairs(r.scales) do by[s.format] = s end
  T.near(r.base.ppl, f32_ppl, 0.001, "outlier_study: F32 perplexity equals llama-perplexity's")
  T.near(by.int8.ppl_channel, f32_ppl, 0.01, "outlier_study: int8 per channel within 1% of F32")
  T.ok(by.int4.ppl_tensor > 2 * by.int4.ppl_channel, "outlier_study: int4 per tensor far worse than per channel")
  T.ok(by.int8.ppl_tensor >= by.int8.ppl_channel, "outlier_study: int8 per tensor no better than per channel")
end
