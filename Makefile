# quantbench — build, test, benchmark.
#   make            build build/quantbench (and libqb)
#   make run        install missing Debian packages, build, open the TUI (MODEL=path optional)
#   make test       unit tests (cmocka), CLI/bad-input tests, Lua recipe tests, tmux TUI tests
#   make sanitize   the same suite under ASan/UBSan (build-san/)
#   make bench      benchmarks against llama.cpp (tests/bench/README.md): models, then per format
#   make fuzz       libFuzzer targets for the loaders (clang; not part of CI)
#   make clean

BUILD    ?= build
CC       ?= cc
PKGS     := jansson libpcre2-8 libpng lua5.4 ncursesw readline
OPT      ?= -O2
SAN      ?=
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -g $(OPT) -Wall -Wextra -Werror -fopenmp -Isrc -Ikernels \
               $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
ifeq ($(SAN),1)
CFLAGS_BASE += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDSAN := -fsanitize=address,undefined
endif
CFLAGS   := $(CFLAGS_BASE) $(EXTRA_CFLAGS)
LDLIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -lpthread
LDFLAGS  := -fopenmp $(LDSAN)

# Only these files get wide-vector flags; dispatch picks them at run time from cpuid.
AVX2_FLAGS   := -mavx2 -mfma -mf16c
AVX512_FLAGS := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma -mf16c

CORE_SRC   := $(shell find src/core -name '*.c' | sort)
KERNEL_SRC := $(sort $(wildcard kernels/*.c))
TUI_SRC    := $(sort $(wildcard src/tui/*.c))
LUA_SRC    := $(sort $(wildcard src/lua/*.c))
APP_SRC    := $(sort $(wildcard src/app/*.c))
LIB_OBJ    := $(patsubst %.c,$(BUILD)/%.o,$(CORE_SRC) $(KERNEL_SRC) $(LUA_SRC))
APP_OBJ    := $(patsubst %.c,$(BUILD)/%.o,$(APP_SRC) $(TUI_SRC))
UNIT_SRC   := $(sort $(wildcard tests/unit/test-*.c))
UNIT_BIN   := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
HDRS       := $(shell find src kernels tests/unit -name '*.h')

.PHONY: all run test unit sanitize bench fuzz clean deps
all: $(BUILD)/quantbench

$(BUILD)/%_avx2.o: %_avx2.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(AVX2_FLAGS) -c $< -o $@
$(BUILD)/%_avx512.o: %_avx512.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(AVX512_FLAGS) -c $< -o $@
$(BUILD)/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libqb.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/quantbench: $(APP_OBJ) $(BUILD)/libqb.a
	$(CC) $(LDFLAGS) -o $@ $(APP_OBJ) $(BUILD)/libqb.a $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libqb.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(BUILD)/libqb.a $(LDFLAGS) $(LDLIBS) -lcmocka

deps:
	@scripts/install-deps.sh

run: deps all
	$(BUILD)/quantbench $(MODEL)

unit: $(UNIT_BIN)

test: deps all unit
	@BUILD=$(BUILD) scripts/run-tests.sh

sanitize:
	@$(MAKE) --no-print-directory BUILD=build-san SAN=1 OPT=-O1 test

bench: deps all
	@BUILD=$(BUILD) scripts/bench.sh
	@BUILD=$(BUILD) sh scripts/bench-formats.sh
	@BUILD=$(BUILD) sh scripts/bench-methods.sh
	@BUILD=$(BUILD) sh scripts/bench-scan.sh
	@BUILD=$(BUILD) sh scripts/bench-outlier.sh
	@BUILD=$(BUILD) scripts/bench-tui.sh

fuzz:
	@scripts/fuzz.sh

clean:
	rm -rf build build-san build-fuzz
