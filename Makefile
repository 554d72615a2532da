# quantbench — build, test, benchmark.
#   make            build build/quantbench (libqb.a = core + kernels, libqblua.a = the Lua binding)
#   make run        install missing Debian packages, build, open the TUI (MODEL=path optional)
#   make test       install missing packages, build, run unit (cmocka), CLI, Lua and tmux tests
#   make sanitize   the same suite under ASan/UBSan (build-san/)
#   make tsan       the threaded tests under ThreadSanitizer (build-tsan/)
#   make bench      benchmarks against llama.cpp (tests/bench/README.md): models, then per format;
#                   BENCH_8B=1 adds the real-size run (scripts/bench-8b.sh: Llama-3.1-8B shapes, MoE);
#                   BENCH_LEARN=0 leaves out the methods that learn (scripts/bench-learn.sh, ~1 h);
#                   with build/quantbench-mpi, MPI ranks against threads (scripts/bench-mpi.sh)
#   make fuzz       libFuzzer targets for the loaders (clang; not part of CI)
#   make deps       install the Debian packages only
#   make MPI=1      also build/quantbench-mpi, which divides its work over MPI ranks (README "MPI")
#   make clean
#
# The targets that install packages (run, test, sanitize, tsan, bench) do so first and then
# call make again, so the pkg-config flags below are read after the packages are there: the
# first `make run` on a fresh machine works.

BUILD    ?= build
CC       ?= cc
# MPI: build/quantbench-mpi, whose scan, search, methods, ppl/kld and tasks divide their work
# over the ranks of an MPI job (src/core/util/dist.h). It differs from build/quantbench in one
# object, dist.c compiled against Open MPI (flags from pkg-config `ompi`, else `mpicc --showme`),
# so it costs one compile and one link. `make MPI=1` builds it (an error without Open MPI);
# `make test` builds and tests it when Open MPI is installed. The default build has no MPI.
MPI        ?= 0
MPI_CFLAGS := $(or $(shell pkg-config --cflags ompi 2>/dev/null),$(shell mpicc --showme:compile 2>/dev/null))
MPI_LIBS   := $(or $(shell pkg-config --libs ompi 2>/dev/null),$(shell mpicc --showme:link 2>/dev/null))
# Libraries found through pkg-config, each asked on its own so one missing package cannot
# empty the flags of the others.
PKGS     := cairo jansson libpcre2-8 lua5.4 ncursesw readline
OPT      ?= -O2
SAN      ?=
PKG_MISSING := $(strip $(foreach p,$(PKGS),$(if $(shell pkg-config --exists $(p) 2>/dev/null && echo y),,$(p))))
PKG_CFLAGS  := $(foreach p,$(PKGS),$(shell pkg-config --cflags $(p) 2>/dev/null))
PKG_LIBS    := $(foreach p,$(PKGS),$(shell pkg-config --libs $(p) 2>/dev/null))
# Libraries without a pkg-config file: Debian package:header:library, checked by compiling the
# header and linked by name (libunistring: Unicode normalization for the tokenizers).
HDR_PKGS    := libunistring-dev:uninorm.h:unistring
HDR_MISSING := $(strip $(foreach e,$(HDR_PKGS),$(if $(shell printf '\043include <%s>\n' $(word 2,$(subst :, ,$(e))) \
                   | $(CC) -E -x c - >/dev/null 2>&1 && echo y),,$(word 1,$(subst :, ,$(e))))))
HDR_LIBS    := $(foreach e,$(HDR_PKGS),-l$(word 3,$(subst :, ,$(e))))

CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -g $(OPT) -Wall -Wextra -Werror -fopenmp -Isrc -Ikernels \
               $(PKG_CFLAGS) -MMD -MP
ifeq ($(SAN),1)
CFLAGS_BASE += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDSAN := -fsanitize=address,undefined
endif
ifeq ($(SAN),thread)
CFLAGS_BASE += -fsanitize=thread -fno-omit-frame-pointer
LDSAN := -fsanitize=thread
endif
CFLAGS   := $(CFLAGS_BASE) $(EXTRA_CFLAGS)
LDLIBS   := $(PKG_LIBS) $(HDR_LIBS) -lm -lpthread
LDFLAGS  := -fopenmp $(LDSAN)

# Only these files get wide-vector flags; dispatch picks them at run time from cpuid.
AVX2_FLAGS   := -mavx2 -mfma -mf16c
AVX512_FLAGS := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma -mf16c

CORE_SRC   := $(shell find src/core -name '*.c' | sort)
KERNEL_SRC := $(sort $(wildcard kernels/*.c))
TUI_SRC    := $(shell find src/tui -name '*.c' | sort)
LUA_SRC    := $(sort $(wildcard src/lua/*.c))
APP_SRC    := $(sort $(wildcard src/app/*.c))
LIB_OBJ    := $(patsubst %.c,$(BUILD)/%.o,$(CORE_SRC) $(KERNEL_SRC))
LUA_OBJ    := $(patsubst %.c,$(BUILD)/%.o,$(LUA_SRC))
APP_OBJ    := $(patsubst %.c,$(BUILD)/%.o,$(APP_SRC) $(TUI_SRC))
UNIT_SRC   := $(sort $(wildcard tests/unit/test-*.c))
UNIT_BIN   := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
LIBS       := $(BUILD)/libqblua.a $(BUILD)/libqb.a
# The tests `make tsan` runs: those that start threads of their own over shared objects.
TSAN_TESTS ?= test-jobs test-infer-threads

.PHONY: all mpi run test unit sanitize tsan bench fuzz clean deps check-pkgs \
        _run _test _bench _tsan
all: $(BUILD)/quantbench

# A clear stop instead of a missing header when a package is absent and nothing installed it.
check-pkgs:
	$(if $(PKG_MISSING),$(error missing pkg-config packages: $(PKG_MISSING) — run `make deps` (or `make run` / `make test`, which install them)))
	$(if $(HDR_MISSING),$(error missing Debian packages (their headers do not compile): $(HDR_MISSING) — run `make deps` (or `make run` / `make test`, which install them)))

$(BUILD)/%_avx2.o: %_avx2.c | check-pkgs
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(AVX2_FLAGS) -c $< -o $@
$(BUILD)/%_avx512.o: %_avx512.c | check-pkgs
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(AVX512_FLAGS) -c $< -o $@
$(BUILD)/%.o: %.c | check-pkgs
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libqb.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^
$(BUILD)/libqblua.a: $(LUA_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/quantbench: $(APP_OBJ) $(LIBS)
	$(CC) $(LDFLAGS) -o $@ $(APP_OBJ) $(LIBS) $(LDLIBS)

# The benchmarks' model generator; the tests use it for models no fixture has (experts at
# real widths in the workbench).
SYNTH_SRC := tests/bench/synth_model.c tests/bench/synth_llama.c
$(BUILD)/synth_model: $(SYNTH_SRC) tests/bench/synth.h $(BUILD)/libqb.a | check-pkgs
	$(CC) $(CFLAGS) -o $@ $(SYNTH_SRC) $(BUILD)/libqb.a $(LDFLAGS) $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(LIBS) | check-pkgs
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(LIBS) $(LDFLAGS) $(LDLIBS) -lcmocka

# the MPI build: the library with dist.c's MPI implementation in place of its one-rank stub
MPI_OBJ := $(BUILD)/src/core/util/dist-mpi.o
$(MPI_OBJ): src/core/util/dist.c | check-pkgs
	$(if $(MPI_LIBS),,$(error the MPI build needs Open MPI: apt-get install libopenmpi-dev openmpi-bin))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DQB_MPI=1 $(MPI_CFLAGS) -c $< -o $@
$(BUILD)/libqb-mpi.a: $(filter-out $(BUILD)/src/core/util/dist.o,$(LIB_OBJ)) $(MPI_OBJ)
	@rm -f $@
	ar rcs $@ $^
$(BUILD)/quantbench-mpi: $(APP_OBJ) $(BUILD)/libqblua.a $(BUILD)/libqb-mpi.a
	$(CC) $(LDFLAGS) -o $@ $(APP_OBJ) $(BUILD)/libqblua.a $(BUILD)/libqb-mpi.a $(LDLIBS) $(MPI_LIBS)
mpi: $(BUILD)/quantbench-mpi
# built by `make MPI=1`, and by `make test` where Open MPI is installed
ifeq ($(MPI),1)
all: $(BUILD)/quantbench-mpi
endif
MPI_TEST := $(if $(MPI_LIBS),$(BUILD)/quantbench-mpi)

-include $(MPI_OBJ:.o=.d) $(LIB_OBJ:.o=.d) $(LUA_OBJ:.o=.d) $(APP_OBJ:.o=.d) $(UNIT_BIN:=.d)

deps:
	@MPI=$(MPI) scripts/install-deps.sh

unit: $(UNIT_BIN)

# Each of these installs first, then builds in a fresh make that sees the installed packages.
run: deps
	@$(MAKE) --no-print-directory _run
_run: all
	$(BUILD)/quantbench $(MODEL)

test: deps
	@$(MAKE) --no-print-directory _test
_test: all unit $(BUILD)/synth_model $(MPI_TEST)
	@BUILD=$(BUILD) scripts/run-tests.sh

sanitize: deps
	@LSAN_OPTIONS="suppressions=$(CURDIR)/tests/lsan.supp" \
	    $(MAKE) --no-print-directory BUILD=build-san SAN=1 OPT=-O1 _test

tsan: deps
	@$(MAKE) --no-print-directory BUILD=build-tsan SAN=thread OPT=-O1 _tsan
# OMP_NUM_THREADS=1: libgomp is not built with TSan, so its barriers and reductions are
# invisible to it and every OpenMP team reads as racing (format.c's reduction did); with one
# OpenMP thread the tests' own threads (jobs, two forward passes) are what TSan watches.
_tsan: $(addprefix $(BUILD)/tests/,$(TSAN_TESTS))
	@BUILD=$(BUILD) OMP_NUM_THREADS=1 TSAN_OPTIONS="suppressions=$(CURDIR)/tests/tsan.supp halt_on_error=1" \
	    scripts/run-tests.sh --only $(TSAN_TESTS)

bench: deps
	@$(MAKE) --no-print-directory _bench
_bench: all
	@BUILD=$(BUILD) scripts/bench.sh
	@BUILD=$(BUILD) sh scripts/bench-formats.sh
	@BUILD=$(BUILD) sh scripts/bench-methods.sh
	@if [ "$(BENCH_LEARN)" != 0 ]; then BUILD=$(BUILD) bash scripts/bench-learn.sh; fi
	@BUILD=$(BUILD) sh scripts/bench-train.sh
	@BUILD=$(BUILD) sh scripts/bench-scan.sh
	@BUILD=$(BUILD) sh scripts/bench-estimate.sh
	@BUILD=$(BUILD) sh scripts/bench-outlier.sh
	@BUILD=$(BUILD) scripts/bench-tui.sh
	@if [ "$(BENCH_8B)" = 1 ]; then BUILD=$(BUILD) sh scripts/bench-8b.sh; fi
	@if [ -x $(BUILD)/quantbench-mpi ] && command -v mpirun >/dev/null; then BUILD=$(BUILD) sh scripts/bench-mpi.sh; fi

fuzz:
	@scripts/fuzz.sh

clean:
	rm -rf build build-san build-tsan build-fuzz
