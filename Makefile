# tollgate - LLM API gateway.
#
#   make            build build/tollgate (and the test tools)
#   make run        install missing dependencies, build, run the example config
#   make test       install missing dependencies, build, run every test
#   make SANITIZE=1 the same with AddressSanitizer and UndefinedBehaviorSanitizer
#                   (objects and binaries go to build/san/)
#   make bench      measure tollgate beside direct calls and nginx (BENCHMARKS.md)
#   make install    install under PREFIX (default /usr/local) into DESTDIR
#   make uninstall  remove what install put there but the config and env file

PKGS     := libevent libevent_openssl openssl yaml-0.1
CC       ?= cc
BUILD    := build$(if $(SANITIZE),/san)
CONFIG   ?= config/tollgate.yaml

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS   ?= -O2 -g
CFLAGS   += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow \
            -Wstrict-prototypes -Wmissing-prototypes -Iinclude $(PKG_CFLAGS)
LDLIBS   += $(PKG_LIBS) -lm
# worker/http_error.c replaces libevent's evhttp_send_error,
# worker/evbuffer_printf.c its evbuffer_add_printf, worker/evbuffer_read.c
# its evbuffer_read and worker/evutil_strcasecmp.c its
# evutil_ascii_strcasecmp (see each): pull them out of the archive and
# export them so that libevent's own calls bind to them.
OVERRIDES := evhttp_send_error evbuffer_add_printf evbuffer_read \
             evutil_ascii_strcasecmp
LDFLAGS  += $(foreach s,$(OVERRIDES),-Wl,-u,$(s) -Wl,--export-dynamic-symbol=$(s))
ifdef SANITIZE
CFLAGS   += -fsanitize=address,undefined -fno-omit-frame-pointer \
            -fno-sanitize-recover=undefined
LDFLAGS  += -fsanitize=address,undefined
endif

# Everything but main() goes into one static library that the binary and the
# unit tests both link.
LIB_SRC  := $(wildcard config/*.c worker/*.c shm/*.c master/*.c)
LIB_SRC  := $(filter-out master/main.c,$(LIB_SRC))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_SRC := $(wildcard tests/unit/*.c)
UNIT_OBJ := $(UNIT_SRC:%.c=$(BUILD)/obj/%.o)
# The wire-level mock upstream the tests run providers against.
MOCK_SRC := $(wildcard tests/mock_upstream/*.c)
MOCK_OBJ := $(MOCK_SRC:%.c=$(BUILD)/obj/%.o)
MOCK_BIN := $(if $(MOCK_SRC),$(BUILD)/mock-upstream)

all: $(BUILD)/tollgate $(MOCK_BIN)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libtollgate.a: $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/tollgate: $(BUILD)/obj/master/main.o $(BUILD)/libtollgate.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/mock-upstream: $(MOCK_OBJ) $(BUILD)/libtollgate.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/unit-tests: $(UNIT_OBJ) $(BUILD)/libtollgate.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcriterion

# Dependencies are checked, not assumed: a fresh machine gets them installed.
deps:
	@scripts/install-deps.sh --check 2>/dev/null || scripts/install-deps.sh

test-deps:
	@scripts/install-deps.sh --check --test 2>/dev/null || \
		scripts/install-deps.sh --test

run: deps
	@$(MAKE) --no-print-directory all
	$(BUILD)/tollgate -c $(CONFIG)

test: test-deps
	@$(MAKE) --no-print-directory all $(BUILD)/unit-tests
	$(BUILD)/unit-tests --jobs 2
	TG_BIN=$(BUILD)/tollgate TG_MOCK_BIN=$(BUILD)/mock-upstream \
		tests/integration/run.sh
	tests/packaging.sh

unit: $(BUILD)/unit-tests
	$(BUILD)/unit-tests --jobs 2

# Leak and memory-error check of the whole gateway under valgrind.
valgrind: test-deps
	@$(MAKE) --no-print-directory all
	TG_BIN=$(BUILD)/tollgate tests/valgrind.sh

# tollgate beside the upstream called directly and nginx, in one run; the
# figures go to stdout and build/bench/results.json (docs/BENCHMARKS.md).
bench: deps
	@$(MAKE) --no-print-directory all
	TG_BIN=$(BUILD)/tollgate scripts/bench/run.sh
.PHONY: bench

# libFuzzer targets (clang), one per parser of outside bytes; each runs for
# FUZZ_SECONDS. Build only: make fuzz FUZZ_SECONDS=0.
FUZZ_SECONDS ?= 60
FUZZ_SRC  := $(wildcard tests/fuzz/*.c)
FUZZ_BIN  := $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)
FUZZ_LIB  := $(filter-out master/%,$(LIB_SRC)) master/log.c

build/fuzz/%: tests/fuzz/%.c $(FUZZ_LIB)
	@mkdir -p build/fuzz
	clang -std=c11 -D_GNU_SOURCE -g -O1 -Iinclude $(PKG_CFLAGS) \
		-fsanitize=fuzzer,address,undefined $^ -o $@ $(LDLIBS)

# A target's seed inputs, if any, are in tests/fuzz/corpus/<target>/; what
# the fuzzer finds goes to build/fuzz/<target>.corpus, not to the tree.
# FUZZ_SECONDS=0 runs nothing: to libFuzzer, -max_total_time=0 is no limit.
fuzz: $(FUZZ_BIN)
	@[ "$(FUZZ_SECONDS)" = 0 ] || for f in $(FUZZ_BIN); do \
		n=$$(basename $$f); mkdir -p $$f.corpus; \
		echo "fuzz: $$f for $(FUZZ_SECONDS)s"; \
		$$f -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=build/fuzz/ \
			$$f.corpus $$(ls -d tests/fuzz/corpus/$$n 2>/dev/null) \
			> $$f.log 2>&1 || { tail -40 $$f.log; exit 1; }; \
		grep -E "^Done [0-9]+ runs" $$f.log; \
	done

format-check:
	clang-format --dry-run --Werror $(LIB_SRC) master/main.c include/*.h \
		shm/*.h config/*.h $(UNIT_SRC) $(FUZZ_SRC) $(MOCK_SRC)

# Installation (docs/operations.md). The config and the env file are never
# overwritten: when one exists, the new config goes next to it as
# tollgate.yaml.example and the env file is left alone. The installed config
# is the example with its state file and logs in the directories the systemd
# unit gives the service (/var/lib/tollgate, /var/log/tollgate).
PREFIX         ?= /usr/local
BINDIR         ?= $(PREFIX)/bin
SYSCONFDIR     ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
DOCDIR         ?= $(PREFIX)/share/doc/tollgate
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR    ?= $(PREFIX)/lib/sysusers.d
# logrotate reads only /etc/logrotate.d, whatever the prefix.
LOGROTATEDIR   ?= /etc/logrotate.d
CONFDIR        := $(SYSCONFDIR)/tollgate
PKG_DIR        := scripts/packaging
INSTALL        ?= install

install: $(BUILD)/tollgate
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(CONFDIR) \
		$(DESTDIR)$(DOCDIR) $(DESTDIR)$(SYSTEMDUNITDIR) \
		$(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(LOGROTATEDIR)
	$(INSTALL) -m 0755 $(BUILD)/tollgate $(DESTDIR)$(BINDIR)/tollgate
	@dst="$(DESTDIR)$(CONFDIR)/tollgate.yaml"; \
	if [ -e "$$dst" ]; then \
		echo "install: keeping $$dst; the new one is tollgate.yaml.example"; \
		dst="$$dst.example"; \
	fi; \
	echo "install: config/tollgate.yaml -> $$dst"; \
	sed -e 's#^state_file: .*#state_file: /var/lib/tollgate/tollgate.state#' \
	    -e 's#^usage_log: .*#usage_log: /var/log/tollgate/usage.log#' \
	    -e 's#^access_log: .*#access_log: /var/log/tollgate/access.log#' \
	    config/tollgate.yaml > "$$dst" && chmod 0644 "$$dst"
	@[ -e $(DESTDIR)$(CONFDIR)/env ] || \
		$(INSTALL) -m 0600 $(PKG_DIR)/tollgate.env $(DESTDIR)$(CONFDIR)/env
	sed -e 's#@BINDIR@#$(BINDIR)#g' -e 's#@SYSCONFDIR@#$(SYSCONFDIR)#g' \
	    -e 's#@DOCDIR@#$(DOCDIR)#g' $(PKG_DIR)/tollgate.service.in \
	    > $(DESTDIR)$(SYSTEMDUNITDIR)/tollgate.service
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/tollgate.service
	$(INSTALL) -m 0644 $(PKG_DIR)/tollgate.sysusers \
		$(DESTDIR)$(SYSUSERSDIR)/tollgate.conf
	$(INSTALL) -m 0644 $(PKG_DIR)/tollgate.logrotate \
		$(DESTDIR)$(LOGROTATEDIR)/tollgate
	$(INSTALL) -m 0644 README.md docs/*.md $(DESTDIR)$(DOCDIR)
	@[ -n "$(DESTDIR)" ] || echo "install: next, as root:" \
		"systemd-sysusers; systemctl daemon-reload;" \
		"systemctl enable --now tollgate (docs/operations.md)"

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/tollgate \
		$(DESTDIR)$(SYSTEMDUNITDIR)/tollgate.service \
		$(DESTDIR)$(SYSUSERSDIR)/tollgate.conf \
		$(DESTDIR)$(LOGROTATEDIR)/tollgate \
		$(DESTDIR)$(CONFDIR)/tollgate.yaml.example
	rm -f $(addprefix $(DESTDIR)$(DOCDIR)/,README.md $(notdir $(wildcard docs/*.md)))
	rmdir $(DESTDIR)$(DOCDIR) 2>/dev/null || true
	@echo "uninstall: kept $(DESTDIR)$(CONFDIR) (config, env)," \
		"/var/lib/tollgate, /var/log/tollgate and the tollgate user"

clean:
	rm -rf build

.PHONY: all deps test-deps run test unit valgrind fuzz format-check clean \
	install uninstall

-include $(LIB_OBJ:.o=.d) $(UNIT_OBJ:.o=.d) $(MOCK_OBJ:.o=.d) \
	$(BUILD)/obj/master/main.d
