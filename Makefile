# kvlsm: PGXS build against PostgreSQL 15
MODULE_big = kvlsm
OBJS = \
	src/kvlsm.o \
	src/engine/page.o \
	src/engine/span.o \
	src/engine/memtable.o \
	src/engine/logwriter.o \
	src/engine/compress.o \
	src/engine/bloom.o \
	src/engine/sst_block.o \
	src/engine/sst_block_builder.o \
	src/engine/sst_builder.o \
	src/engine/sst_writer.o \
	src/engine/sst_table_cache.o \
	src/engine/sst_reader.o \
	src/engine/sst_walk.o \
	src/engine/lsm.o \
	src/engine/registry.o \
	src/engine/release.o \
	src/engine/logreader.o \
	src/engine/recordset.o \
	src/engine/read.o \
	src/engine/flush.o \
	src/engine/meta.o \
	src/engine/manifest.o \
	src/engine/extents.o \
	src/engine/reclaim.o \
	src/engine/relocate.o \
	src/engine/compaction.o \
	src/engine/compaction_pick.o \
	src/engine/crashpoint.o \
	src/engine/scheduler.o \
	src/engine/maintenance.o \
	src/engine/ratelimit.o \
	src/engine/history.o \
	src/worker/worker.o \
	src/table/visibility.o \
	src/table/recordcodec.o \
	src/table/rowrecord.o \
	src/table/modify.o \
	src/table/rowops.o \
	src/table/scan.o \
	src/table/sample.o \
	src/table/fetch.o \
	src/table/filenode.o \
	src/table/rewrite.o \
	src/table/vacuum.o \
	src/table/indexbuild.o \
	src/table/estimate.o \
	src/table/retained.o \
	src/table/tableam.o \
	src/table/toast.o \
	src/table/extension.o \
	src/ddl/options.o \
	src/table/snapshots.o \
	src/table/snapshot_pins.o \
	src/table/snapshot_clock.o \
	src/table/snapshot_catalog.o \
	src/table/snapshot_retained.o \
	src/table/snapshot_timetravel.o \
	src/table/snapshot_rls.o \
	src/index/indexkey.o \
	src/index/indexam.o \
	src/index/indexscan.o \
	src/index/indexplan.o \
	src/admin/admin.o \
	src/admin/verify.o \
	src/admin/repair.o \
	src/admin/inspect.o

EXTENSION = kvlsm
DATA = kvlsm--0.1.sql kvlsm--0.1--0.2.sql
PGFILEDESC = "kvlsm - LSM storage for PostgreSQL"

PG_CPPFLAGS = -I$(srcdir)/src/include
SHLIB_LINK = -llz4 -lzstd

# Every suite runs its own throwaway cluster with kvlsm preloaded.
REGRESS = basic dml options index index_types compaction ttl tools stats snapshots large_rows security records compression
REGRESS_OPTS = --temp-instance=./tmp_check_regress --temp-config=$(srcdir)/test/kvlsm.conf \
	--load-extension=kvlsm --inputdir=$(srcdir)
ISOLATION = concurrent_update row_locks fk_keyshare on_conflict write_skew kvlsm_idx_unique kvlsm_idx_vacuum partition_move epq_self_modified cic_kvlsm snapshot_toast security_locks
ISOLATION_OPTS = --temp-instance=./tmp_check_iso --temp-config=$(srcdir)/test/kvlsm.conf \
	--load-extension=kvlsm --inputdir=$(srcdir)/test/isolation \
	--outputdir=output_iso
TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# the admin CLI (a libpq client; PGXS builds one module or one program per
# Makefile, so it has rules of its own)
KVLSMCTL_CFLAGS = -O2 -Wall -Wmissing-prototypes -I$(shell $(PG_CONFIG) --includedir)
KVLSMCTL_LIBS = -L$(shell $(PG_CONFIG) --libdir) -lpq
all: kvlsmctl
kvlsmctl: $(srcdir)/src/ctl/kvlsmctl.c
	$(CC) $(KVLSMCTL_CFLAGS) -o $@ $< $(KVLSMCTL_LIBS)
install: install-kvlsmctl
install-kvlsmctl: kvlsmctl
	$(MKDIR_P) '$(DESTDIR)$(bindir)'
	$(INSTALL_PROGRAM) kvlsmctl '$(DESTDIR)$(bindir)/kvlsmctl'
.PHONY: install-kvlsmctl
EXTRA_CLEAN += kvlsmctl

installcheck: prepare-outputdirs
prepare-outputdirs:
	mkdir -p output_iso
.PHONY: prepare-outputdirs

# every object depends on every kvlsm header (PGXS tracks no dependencies)
$(OBJS): $(wildcard $(srcdir)/src/include/kvlsm/*.h) $(wildcard $(srcdir)/src/*/*.h)

# PostgreSQL 15's own regression and isolation suites with
# default_table_access_method = kvlsm, against heap baselines (run as root;
# downloads the test files from Debian's source package; see docs/compatibility.md)
check-upstream:
	bash $(srcdir)/scripts/upstream-tests.sh
.PHONY: check-upstream
