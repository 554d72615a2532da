-- teaching_demo.lua — recipe 4: why outliers hurt low-bit quantization, as pictures for slides.
--
-- A synthetic "weight" signal: n values from a normal distribution (σ = 0.02, like a trained
-- layer), 16 rows of 256, plus a few outliers (0.2 %, at ±outlier·σ). The signal is stepped
-- through bit widths 8, 6, 4, 3, 2 with round-to-nearest integer quantization, two ways:
--   per tensor  one scale for everything: the outliers set the scale, the bulk gets few levels;
--   per group   a scale per 64 values (int<b>-g64): an outlier only spoils its own group.
-- For each bit width (per-tensor, the teaching case) three images are written:
--   <prefix>_<b>bit_values.png   histogram of the original and the quantized values
--   <prefix>_<b>bit_mapping.png  the staircase: original → quantized, with y = x
--   <prefix>_<b>bit_error.png    histogram of the error (original − quantized)
-- plus <prefix>_sqnr.png (SQNR against bits: tensor vs group, with vs without outliers), a table,
-- and <prefix>.csv. svg=1 writes SVG files too. No model is needed.
--
--   quantbench run --out slides examples/teaching_demo.lua
--   quantbench run --out slides examples/teaching_demo.lua outlier=40 bits=4,2 svg=1
local args = require("qb.args")
local opt = args.parse({...}, {
  seed = 7,
  sigma = 0.02,
  outlier = 20,      -- outlier magnitude in σ (0: no outliers)
  share = 0.002,     -- fraction of outliers
  bits = "8,6,4,3,2",
  prefix = "demo",
  images = true,
  svg = false,
}, "teaching_demo: the synthetic outlier signal stepped through bit widths")

local ROWS, COLS = 16, 256
local function signal(with_outliers)
  math.randomseed(opt.seed)
  local v = {}
  for i = 1, ROWS * COLS do
    -- Box–Muller: two uniforms → one normal value
    local u1, u2 = 1 - math.random(), math.random()
    v[i] = opt.sigma * math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)
  end
  if with_outliers and opt.outlier > 0 then
    local n = math.max(1, math.floor(#v * opt.share + 0.5))
    for k = 1, n do
      local i = math.random(#v)
      v[i] = (k % 2 == 0 and -1 or 1) * opt.outlier * opt.sigma * (0.8 + 0.4 * math.random())
    end
  end
  return v
end

local clean, spiky = signal(false), signal(true)
local rows = {}
local curves = { tensor = { x = {}, y = {} }, group = { x = {}, y = {} }, clean = { x = {}, y = {} } }
for _, b in ipairs(args.list(opt.bits)) do
  local bits = tonumber(b)
  if not bits then error("bits: '" .. b .. "' is not a number") end
  local per_tensor = qb.analyze(spiky, { bits = bits, group = "tensor" }, { rows = ROWS, bins = 80, map_points = 400 })
  local per_group = qb.analyze(spiky, { bits = bits, group = 64 }, { rows = ROWS })
  local no_outl = qb.analyze(clean, { bits = bits, group = "tensor" }, { rows = ROWS })
  -- distinct quantized levels the bulk (|x| < 3σ) actually uses, per tensor
  local levels, seen = 0, {}
  for i, x in ipairs(per_tensor.map.x) do
    if math.abs(x) < 3 * opt.sigma then
      local y = per_tensor.map.y[i]
      if not seen[y] then seen[y] = true; levels = levels + 1 end
    end
  end
  rows[#rows + 1] = { bits = bits, sqnr_tensor = per_tensor.sqnr, sqnr_group64 = per_group.sqnr,
    sqnr_no_outliers = no_outl.sqnr, bulk_levels = levels, max_err = per_tensor.max_err }
  for name, s in pairs({ tensor = per_tensor, group = per_group, clean = no_outl }) do
    table.insert(curves[name].x, bits)
    table.insert(curves[name].y, s.sqnr)
  end
  if opt.images then
    local exts = opt.svg and { "png", "svg" } or { "png" }
    local base = string.format("%s_%dbit", opt.prefix, bits)
    local h = per_tensor.hist
    for _, ext in ipairs(exts) do
      qb.plot.histogram({ h.orig, h.deq }, { labels = { "original", "quantized" }, log_y = true,
        title = string.format("values, %d-bit per-tensor RTN (outliers at %g sigma)", bits, opt.outlier),
        xlabel = "value", ylabel = "count", file = base .. "_values." .. ext })
      qb.plot.staircase(per_tensor.map, { title = string.format("mapping, %d bits: %d levels for the bulk", bits, levels),
        file = base .. "_mapping." .. ext })
      qb.plot.histogram(h.err, { title = string.format("error, %d bits: SQNR %.1f dB", bits, per_tensor.sqnr),
        xlabel = "original - quantized", ylabel = "count", log_y = true, file = base .. "_error." .. ext })
    end
  end
end

qb.print_table(rows, { "bits", "sqnr_tensor", "sqnr_group64", "sqnr_no_outliers", "bulk_levels", "max_err" },
  { title = string.format("synthetic signal: %d values, sigma %g, outliers %g%% at %g sigma", ROWS * COLS, opt.sigma,
    100 * opt.share, opt.outlier) })
qb.write_csv(opt.prefix .. ".csv", rows, { "bits", "sqnr_tensor", "sqnr_group64", "sqnr_no_outliers", "bulk_levels",
  "max_err" })
local plot = { title = "SQNR against bits", xlabel = "bits", ylabel = "SQNR (dB)", series = {
  { label = "per tensor, outliers", x = curves.tensor.x, y = curves.tensor.y },
  { label = "per group of 64, outliers", x = curves.group.x, y = curves.group.y },
  { label = "per tensor, no outliers", x = curves.clean.x, y = curves.clean.y, dashed = true } } }
qb.plot.line(plot)
if opt.images then
  plot.file = opt.prefix .. "_sqnr.png"
  qb.plot.line(plot)
  if opt.svg then plot.file = opt.prefix .. "_sqnr.svg"; qb.plot.line(plot) end
  print("images written into " .. (qb.output_dir() or "?"))
end
return rows
