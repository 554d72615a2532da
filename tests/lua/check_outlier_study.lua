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
  local th = r.sweeps.int8_threshold
  T.ok(th and #th == 7, "outlier_study: LLM.int8 swept over 7 thresholds")
  if th then
    local falling, close = true, true
    for i = 2, #th do
      if th[i].outlier_cols_pct > th[i - 1].outlier_cols_pct then falling = false end
    end
    for _, x in ipairs(th) do
      if math.abs(x.ppl - f32_ppl) > 0.02 * f32_ppl then close = false end
    end
    T.eq(th[1].outlier_cols_pct, 100, "outlier_study: threshold 0 keeps every column in float")
    T.eq(th[#th].outlier_cols_pct, 0, "outlier_study: threshold inf keeps none")
    T.ok(falling, "outlier_study: the outlier share falls as the threshold rises")
    T.ok(close, "outlier_study: every LLM.int8 setting within 2% of F32 perplexity")
  end
  local sq = r.sweeps.smoothquant_alpha
  T.ok(sq and #sq == 5 and math.abs(sq[3].ppl - f32_ppl) < 0.02 * f32_ppl, "outlier_study: SmoothQuant alpha sweep, alpha 0.5 within 2% of F32")
end
