# vigil: the two commands.
#   make demo   installs what is missing, builds, runs the live engine on examples/demo.yaml
#   make test   installs what is missing, builds, runs every test (Release), then the unit
#               and concurrency tests under AddressSanitizer + UndefinedBehaviorSanitizer,
#               and the concurrency tests under ThreadSanitizer
# Other targets: build, check (Release tests only), bench, cluster-demo (two ingest nodes and two
# workers over Redis, one of each killed half-way), clean.

DEMO_SECONDS ?= 20
JOBS ?= $(shell nproc)

.PHONY: demo test build check asan tsan bench cluster-demo clean

build:
	@scripts/setup.sh release

demo: build
	@mkdir -p out
	@build/release/vigil run --config examples/demo.yaml --duration $(DEMO_SECONDS)
	@echo "demo: results are in out/demo.jsonl (one JSON line per processed frame); the wall was at http://127.0.0.1:8080/ while it ran (make demo DEMO_SECONDS=600 to keep it longer); config: examples/demo.yaml"

check: build
	@ctest --test-dir build/release --output-on-failure -j $(JOBS)

asan:
	@scripts/setup.sh asan
	@ctest --test-dir build/asan --output-on-failure -j $(JOBS) -L 'unit|concurrency'

tsan:
	@scripts/setup.sh tsan
	@TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/tests/tsan.supp" \
	  ctest --test-dir build/tsan --output-on-failure -j $(JOBS) -L concurrency

test: check asan tsan

bench: build
	@build/release/vigil bench model --batch 1,8 --seconds 5 --json

cluster-demo: build
	@scripts/cluster_demo.sh

clean:
	rm -rf build out
