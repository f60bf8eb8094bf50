# podgen — build, run and test.
#
#   make run        install deps, build, start nginx on 127.0.0.1:8080
#   make test       install deps, build, unit tests + prove -r t/
#   make test-asan  the same suite on an ASan/UBSan build of the module
#   make bench      benchmarks (figures go to bench/RESULTS.md)

NGX_SRC     ?= /usr/share/nginx/src
NGINX       ?= /usr/sbin/nginx
BUILD       := build
CC          ?= cc
SAN_FLAGS   := -fsanitize=address,undefined -fno-omit-frame-pointer
LIB_CFLAGS  := -O2 -g -Wall -Wextra -Werror -Wno-unused-parameter -std=gnu99 \
               -I/usr/include/opus $(shell pkg-config --cflags poppler-glib)
LIB_LIBS    := -lflite_cmu_us_slt -lflite_cmu_us_rms -lflite_cmu_us_awb \
               -lflite_cmu_us_kal -lflite_cmu_us_kal16 -lflite_usenglish \
               -lflite_cmulex -lflite -lmp3lame -lopusenc -lopus -lFLAC \
               -lsoxr -lebur128 -lavformat -lavcodec -lavutil -lyajl -lgumbo \
               $(shell pkg-config --libs poppler-glib) -lcrypto -lm -lpthread

SRCS := $(wildcard lib/*.c lib/*.h ngx_podgen_module/*.c \
                   ngx_podgen_module/*.h ngx_podgen_metrics/*.c \
                   ngx_podgen_metrics/*.h)
LIB_SRCS := $(filter %.c,$(wildcard lib/*.c))
UNIT_TESTS := $(patsubst lib/test/%.c,$(BUILD)/unit/%,$(wildcard lib/test/test_*.c))
FUZZ_TARGETS := $(patsubst lib/fuzz/fuzz_%.c,%,$(wildcard lib/fuzz/fuzz_*.c))
REPLAYS := $(patsubst %,$(BUILD)/unit/replay_%,$(FUZZ_TARGETS))
FUZZ_TIME ?= 30
FUZZ_CC ?= clang

.PHONY: all build deps run test test-asan unit unit-asan prove clean bench \
        helgrind fuzz test-valgrind

all: build

deps:
	@deps/install

build: objs/ngx_podgen_module.so

# The .so is replaced by rename, never rewritten in place: a running nginx
# has it mapped, and a reload would read a half-new file.

# configure runs once per build tree; it runs again only when `config`
# (the list of sources and libraries) changes.
$(BUILD)/%/objs/Makefile: config
	rm -rf $(BUILD)/$*
	mkdir -p $(BUILD)
	cp -r $(NGX_SRC) $(BUILD)/$*
	cd $(BUILD)/$* && . ./conf_flags && \
	    ./configure "$${NGX_CONF_FLAGS[@]}" \
	        $(if $(filter asan,$*),--with-cc-opt="$(SAN_FLAGS)" --with-ld-opt="$(SAN_FLAGS)") \
	        --add-dynamic-module=$(CURDIR) > configure.log 2>&1 || \
	    { tail -20 configure.log; exit 1; }

objs/ngx_podgen_module.so: $(BUILD)/nginx/objs/Makefile $(SRCS)
	$(MAKE) -C $(BUILD)/nginx -f objs/Makefile modules
	mkdir -p objs
	cp $(BUILD)/nginx/objs/ngx_http_podgen_module.so $@.tmp && mv -f $@.tmp $@

objs-asan/ngx_podgen_module.so: $(BUILD)/asan/objs/Makefile $(SRCS)
	$(MAKE) -C $(BUILD)/asan -f objs/Makefile modules
	mkdir -p objs-asan
	cp $(BUILD)/asan/objs/ngx_http_podgen_module.so $@.tmp && mv -f $@.tmp $@

# A shell is needed for `source conf_flags` (bash arrays).
SHELL := /bin/bash

run: deps build
	mkdir -p var/logs var/tmp
	@echo "podgen: http://127.0.0.1:8080/  (Ctrl-C to stop)"
	$(NGINX) -p $(CURDIR)/ -c conf/podgen.conf -g 'daemon off;'

# ---- unit tests of the nginx-free core -------------------------------------

$(BUILD)/unit/%: lib/test/%.c $(LIB_SRCS) $(wildcard lib/*.h) lib/test/unit.h
	mkdir -p $(BUILD)/unit
	$(CC) $(LIB_CFLAGS) $(UNIT_CFLAGS) -Ilib -o $@ $< $(LIB_SRCS) $(LIB_LIBS)

# each fuzz target also replays its corpus (t/fuzz/NAME: seeds and every
# crash ever found) in the unit tests, without libFuzzer
$(BUILD)/unit/replay_%: lib/fuzz/fuzz_%.c lib/fuzz/replay.c $(LIB_SRCS) \
        $(wildcard lib/*.h lib/fuzz/*.h)
	mkdir -p $(BUILD)/unit
	$(CC) $(LIB_CFLAGS) $(UNIT_CFLAGS) -Ilib -o $@ $< lib/fuzz/replay.c \
	    $(LIB_SRCS) $(LIB_LIBS)

unit: $(UNIT_TESTS) $(REPLAYS)
	@for t in $(UNIT_TESTS); do echo "== $$t"; $$t || exit 1; done
	@for f in $(FUZZ_TARGETS); do echo "== replay t/fuzz/$$f"; \
	    $(BUILD)/unit/replay_$$f t/fuzz/$$f || exit 1; done

# libFuzzer (clang): every target for FUZZ_TIME seconds; new inputs go to
# build/fuzz/corpus/NAME, crashes to build/fuzz/ (copy them to t/fuzz/NAME
# so that `make unit` replays them from then on)
$(BUILD)/fuzz/fuzz_%: lib/fuzz/fuzz_%.c $(LIB_SRCS) $(wildcard lib/*.h lib/fuzz/*.h)
	mkdir -p $(BUILD)/fuzz
	$(FUZZ_CC) -g -O1 -fsanitize=fuzzer,address,undefined \
	    -I/usr/include/opus $(shell pkg-config --cflags poppler-glib) \
	    -Ilib -o $@ $< $(LIB_SRCS) $(LIB_LIBS)

fuzz: $(patsubst %,$(BUILD)/fuzz/fuzz_%,$(FUZZ_TARGETS))
	@for f in $(FUZZ_TARGETS); do \
	    echo "== fuzz_$$f for $(FUZZ_TIME) s"; \
	    mkdir -p $(BUILD)/fuzz/corpus/$$f; \
	    dict=; test -f lib/fuzz/fuzz_$$f.dict && \
	        dict=-dict=lib/fuzz/fuzz_$$f.dict; \
	    (cd $(BUILD)/fuzz && ./fuzz_$$f $$dict -max_len=8192 \
	        -max_total_time=$(FUZZ_TIME) -print_final_stats=1 \
	        corpus/$$f $(CURDIR)/t/fuzz/$$f) || exit 1; \
	done

unit-asan:
	$(MAKE) unit BUILD=$(BUILD)/asan-unit \
	    UNIT_CFLAGS="$(SAN_FLAGS) -fno-sanitize-recover=undefined"

# flite voices shared by threads: the stress test under helgrind.
# -s lists the suppressions used (valgrind's defaults for glibc internals).
helgrind: $(BUILD)/unit/test_tts
	PG_TTS_STRESS_ITER=1 valgrind --tool=helgrind -s --error-exitcode=3 \
	    $(BUILD)/unit/test_tts

prove:
	prove -r t/

test: deps build unit
	PODGEN_MODULE=$(CURDIR)/objs/ngx_podgen_module.so prove -r t/

ASAN_RT := $(shell $(CC) -print-file-name=libasan.so):$(shell $(CC) -print-file-name=libubsan.so)

$(BUILD)/no_dlclose.so: t/asan/no_dlclose.c
	mkdir -p $(BUILD)
	$(CC) -shared -fPIC -o $@ $<

test-asan: deps objs-asan/ngx_podgen_module.so unit-asan $(BUILD)/no_dlclose.so
	PODGEN_MODULE=$(CURDIR)/objs-asan/ngx_podgen_module.so \
	PODGEN_PRELOAD="$(ASAN_RT):$(CURDIR)/$(BUILD)/no_dlclose.so" \
	    prove -r t/

# The suite's nginx under valgrind memcheck (memory errors; leaks are the
# ASan run's job).  Synthesis is ~50x slower under valgrind: a subset by
# default, any list with VALGRIND_TESTS="t/..".
VALGRIND_TESTS ?= t/01-speech-bad-input.t t/04-voices.t t/06-config.t \
                  t/08-scripts.t t/13-cache-more.t

test-valgrind: deps build
	PODGEN_MODULE=$(CURDIR)/objs/ngx_podgen_module.so PODGEN_VALGRIND=1 \
	    prove $(VALGRIND_TESTS)

bench: deps build
	bench/run

clean:
	rm -rf $(BUILD) objs objs-asan var
