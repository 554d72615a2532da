-- check_method_shootout.lua — shape and sanity of examples/method_shootout.lua on stories260K
-- (3 chunks): one row per candidate (GPTQ/AWQ included), KLD non-negative, fewer bits cost more, and the llama.cpp
-- block formats (fewer, finer scales) beat per-channel RTN at 4 bits.
return function(T, run)
  local r = run("method_shootout.lua", "chunks=3", "plots=0", "prefix=shootout")
  local by = {}
  for _, row in ipairs(r.rows) do by[row.bits .. ":" .. row.method .. ":" .. row.format] = row end
  T.eq(#r.rows, 13, "method_shootout: 7 candidates at 4 bits, 2 at 3 bits, GPTQ and AWQ at both")
  local sane = true
  for _, row in ipairs(r.rows) do
    if not (row.kld >= 0 and row.top1 > 0 and row.top1 <= 100 and row.ppl > 1) then sane = false end
  end
  T.ok(sane, "method_shootout: KLD >= 0, top-1 in (0, 100], perplexity > 1 for every row")
  T.ok(by["3:rtn:int3-channel"].kld > by["4:rtn:int4-channel"].kld, "method_shootout: int3 diverges more than int4")
  T.ok(by["4:-:q4_0"].kld < by["4:rtn:int4-channel"].kld, "method_shootout: q4_0 (32-blocks) beats per-channel int4")
  T.eq(by["4:-:nf4"].kept, 5, "method_shootout: nf4 keeps the five 172-wide ffn_down matrices")
  T.eq(by["4:-:q4_0"].kept, 0, "method_shootout: q4_0 falls back instead of keeping")
  -- GPTQ (calibrated on the evaluation text here) below RTN at the same format, as in the paper
  T.lt(by["4:gptq:int4-channel"].kld, by["4:rtn:int4-channel"].kld, "method_shootout: GPTQ int4 diverges less than RTN int4")
  T.lt(by["3:gptq:int3-channel"].kld, by["3:rtn:int3-channel"].kld, "method_shootout: GPTQ int3 diverges less than RTN int3")
  T.ok(by["4:awq:int4-channel"].kld > 0, "method_shootout: AWQ row measured")
end
