# What every lab shares: where the tools are, where the lab keeps its files, and the rules that
# build the tools and draw the lab. A lab's Makefile sets LAB, then includes this file.
#
#   make up test graph down        the whole lab
#   make BIN=/path/to/bin ...      use tools built elsewhere (default: this repository's release build)
#   make WORK=/some/dir ...        where the lab's documents, images and pictures go

TOP   := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/../..)
BIN   ?= $(TOP)/target/release
WORK  ?= /var/tmp/cloon-lab-$(LAB)
export PATH := $(BIN):$(PATH)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:

# The tools, built when this repository's release build is used and missing.
TOOLS := $(BIN)/cloon-img $(BIN)/cloon-overlay $(BIN)/cloon-netns $(BIN)/cloon-spec $(BIN)/cloon-run
$(TOOLS):
	cd $(TOP) && cargo build --release --quiet --workspace

$(WORK):
	mkdir -p $@

# A busybox image, made once per lab.
$(WORK)/bb.img: | $(TOOLS) $(WORK)
	cloon-img create --busybox --force $@ </dev/null >/dev/null

# The live lab as a picture, from what cloon recorded.
graph: | $(WORK)
	cloon-netns graph > $(WORK)/$(LAB).dot
	dot -Tsvg $(WORK)/$(LAB).dot > $(WORK)/$(LAB).svg
	@echo "$(WORK)/$(LAB).svg"

# The pipeline in reverse for container $(1), from its document $(WORK)/$(1).json or by name.
define container_down
	if [ -f $(WORK)/$(1).json ]; then \
	  cloon-run down < $(WORK)/$(1).json | cloon-spec down | cloon-netns down | cloon-overlay down >/dev/null; \
	else \
	  for t in cloon-run cloon-spec cloon-netns cloon-overlay; do $$t down --name $(1) </dev/null >/dev/null; done; \
	fi
	rm -f $(WORK)/$(1).json
endef

# Asserts that a command's output contains a string: $(call expect,STRING,COMMAND).
define expect
	out=$$($(2)); if ! grep -qF -- '$(1)' <<<"$$out"; then echo "FAIL: '$(2)' does not show '$(1)':"; echo "$$out"; exit 1; fi; echo "ok: $(2) shows $(1)"
endef

.PHONY: graph
