# The two commands of the README: `make demo` and `make test`.
BUILD_DIR ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=

.PHONY: all deps configure build demo test clean

all: build

deps:
	@tools/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS) >$(BUILD_DIR).configure.log 2>&1 || \
	  { cat $(BUILD_DIR).configure.log; exit 1; }
	@grep -E "sla2:|Warning" $(BUILD_DIR).configure.log || true

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

# The tiny demo model when it is there (models/), else the operator on a
# random problem.
DEMO_PROMPT ?= red circle moving right
demo: build
	@if [ -f models/tiny-demo.safetensors ]; then \
	  mkdir -p out && $(BUILD_DIR)/apps/gen/sla2-gen --model models/tiny-demo.yaml \
	    --weights models/tiny-demo.safetensors --runtime models/tiny-demo.runtime.yaml --prompt "$(DEMO_PROMPT)" \
	    --out out/demo.y4m --png out/demo.png --score; \
	else \
	  $(BUILD_DIR)/apps/demo/sla2-demo; \
	fi

test: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

clean:
	rm -rf $(BUILD_DIR) $(BUILD_DIR).configure.log
