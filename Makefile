# Makefile -- builds and installs the pg_mig extension with PGXS.
#
#   make && make install          the library, control file and SQL scripts
#   make installcheck             pg_regress (test/sql) and the isolation
#                                 specs (test/specs) against a running server
#                                 that preloads pg_mig (PGHOST/PGPORT/PGUSER)
#   make installcheck TEMP_INSTANCE=1
#                                 the same against a temporary instance that
#                                 pg_regress makes (initdb) in test/out with
#                                 test/temp.conf (pg_mig preloaded); as a
#                                 user that is not root (PostgreSQL refuses
#                                 to run as root), after make install
#   make installcheck TEST_OUT=DIR
#                                 results, diffs (and the temporary instance)
#                                 in DIR instead of test/out; REGRESS=... and
#                                 ISOLATION=... pick tests
#   make bench                    the benchmark on a throwaway sandbox (bench/run.sh)
#
# migctl and the C++ tests are built by CMake (see CMakeLists.txt).

MODULE_big = pg_mig
# every kind's recipe, extension/src/kind_*.c, is in (a kind is added by
# its file and its entry in kinds.c; sort: each object once)
OBJS = $(sort $(patsubst %.c,%.o,$(wildcard extension/src/kind_*.c)) \
	extension/src/pg_mig.o \
	extension/src/shared.o \
	extension/src/launcher.o \
	extension/src/worker.o \
	extension/src/walk.o \
	extension/src/kinds.o \
	extension/src/wait_events.o \
	extension/src/chunk.o \
	extension/src/validate.o \
	extension/src/parse_check.o \
	extension/src/throttle.o \
	extension/src/pace.o \
	extension/src/app_latency.o \
	extension/src/job_store.o \
	extension/src/knobs.o \
	extension/src/args.o \
	extension/src/sql_api.o \
	extension/src/plan.o \
	extension/src/guard.o \
	extension/src/start.o \
	extension/src/steps.o \
	extension/src/kept.o \
	extension/src/sql_undo.o \
	extension/src/lanes.o \
	extension/src/vacuum.o \
	extension/src/job_key.o \
	extension/src/timeline.o \
	extension/src/upgrade.o)

EXTENSION = pg_mig
# The install script of the current version is made from the one maintained
# full script, sql/pg_mig.sql (as pgvector does); the released scripts
# (0.1's full script and the upgrade scripts) are installed as they are.
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" pg_mig.control)
DATA_built = sql/pg_mig--$(EXTVERSION).sql
DATA = $(filter-out $(DATA_built),$(wildcard sql/pg_mig--*.sql))
PGFILEDESC = "pg_mig - safe chunked backfills"

PG_CPPFLAGS = -I$(srcdir)/extension/include
# an undeclared function is an error: on another major version it would be an
# undefined symbol found only when the library is loaded
PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare \
	-Werror=implicit-function-declaration

REGRESS = $(patsubst test/sql/%.sql,%,$(sort $(wildcard test/sql/*.sql)))
# where pg_regress writes its results and diffs (and makes the temporary
# instance): a directory the user who runs the tests may write
TEST_OUT ?= test/out
REGRESS_OPTS = --inputdir=test --outputdir=$(TEST_OUT) --dbname=pg_mig_regress
# races: specs in test/specs, expected output in test/expected (iso_*.out)
ISOLATION = $(patsubst test/specs/%.spec,%,$(sort $(wildcard test/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test --outputdir=$(TEST_OUT)/isolation --dbname=pg_mig_isolation

# TEMP_INSTANCE=1: pg_regress starts a server of its own, preloading pg_mig
ifdef TEMP_INSTANCE
REGRESS_OPTS += --temp-instance=$(TEST_OUT)/tmp_check --temp-config=test/temp.conf
ISOLATION_OPTS += --temp-instance=$(TEST_OUT)/tmp_check_iso --temp-config=test/temp.conf
endif

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies: every object depends on the headers.
# (After the include: the first rule of a Makefile is its default goal, and
# that must stay PGXS's "all", the library.)
# Objects built against another server (scripts/test.sh --pg 17, then a bare
# make for 15) are rebuilt: they depend on a stamp that names the server.
BUILT_FOR := .pg_mig_built_for
$(shell echo '$(VERSION) $(includedir_server)' | cmp -s - $(BUILT_FOR) || \
	echo '$(VERSION) $(includedir_server)' > $(BUILT_FOR))
$(OBJS) $(OBJS:.o=.bc): extension/include/pg_mig.h extension/include/version_compat.h \
	extension/include/steps.h extension/include/parse_check.h \
	extension/include/kinds.h extension/include/worker.h extension/include/start.h \
	extension/include/knobs.h extension/include/knobs.def $(BUILT_FOR)
EXTRA_CLEAN += $(BUILT_FOR)

# sql/pg_mig--$(EXTVERSION).sql: a copy of sql/pg_mig.sql (see its header)
sql/pg_mig--$(EXTVERSION).sql: sql/pg_mig.sql
	@mkdir -p sql
	cp $< $@

# make bench [BENCH_ARGS=--quick]: the benchmark (bench/run.sh), results in bench/RESULTS.md
.PHONY: bench
bench:
	bash bench/run.sh $(BENCH_ARGS)

installcheck: test-out-dir
test-out-dir:
	@mkdir -p $(TEST_OUT) $(TEST_OUT)/isolation
.PHONY: test-out-dir

# make deb [DEB_OUT=dir]: the Debian packages postgresql-NN-pg-mig and
# pg-mig-client (dpkg-buildpackage in a copy of the tree), into deb/
DEB_OUT ?= $(CURDIR)/deb
.PHONY: deb
deb:
	bash scripts/deb.sh $(DEB_OUT)
