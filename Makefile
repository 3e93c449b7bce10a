# nmt: GRU RNN Encoder-Decoder (Cho et al. 2014). `make help` lists the targets.
PYTHON ?= python3
TORCH ?= torch==2.13.0
ARGS ?=
STAMP := .make/installed

.DEFAULT_GOAL := help
.PHONY: help install train train-ddp sweep gpu-check translate evaluate train-multi30k plots bench bench-phrases bench-peers serve bench-serve test test-full lint data clean

help: ## list the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'
	@echo "  (pass Hydra overrides to training with ARGS='train.max_minutes=10 model.hidden_dim=256')"

$(STAMP): pyproject.toml
	$(PYTHON) -m pip install $(TORCH)
	$(PYTHON) -m pip install -e '.[dev]'
	@mkdir -p $(dir $@) && touch $@

install: $(STAMP) ## install torch (CPU wheel) and nmt with its dev tools

train: $(STAMP) ## install if needed, train on the embedded Spanish-English corpus (25 minutes), then test BLEU and examples
	nmt train train.max_minutes=25 hydra.run.dir=$(RUN) $(ARGS)
	@echo "--- what the model learned: BLEU on the test split (greedy), and three translations"
	@nmt evaluate checkpoint=$(RUN) splits=[test] decode=greedy | grep -v '^  \|^hypotheses'
	@mkdir -p .make && printf '%s\n' $(EXAMPLES) | head -3 > .make/examples3.es
	@nmt translate checkpoint=$(RUN) input=.make/examples3.es | paste -d '\n' .make/examples3.es - | sed 'n;s/^/  -> /'

NPROC ?= 2
train-ddp: $(STAMP) ## data-parallel training on NPROC processes of this machine (torchrun; one GPU each, else CPU)
	torchrun --standalone --nproc_per_node=$(NPROC) -m nmt train $(ARGS)

TRIALS ?= 20
TRIAL_MINUTES ?= 10
sweep: $(STAMP) ## Optuna search of lr, dropout, ... for the best dev BLEU (conf/sweep/optuna.yaml; TRIALS=20 x TRIAL_MINUTES=10)
	nmt train --multirun sweep=optuna hydra.sweeper.n_trials=$(TRIALS) train.max_minutes=$(TRIAL_MINUTES) $(ARGS)

gpu-check: $(STAMP) ## on a GPU machine: Multi30k updates and test decoding on GPU and CPU, speeds, curves compared (~4 min)
	$(PYTHON) -m nmt.bench.gpu_check $(ARGS)

RUN ?= runs/bible-es-en-small
EXAMPLES := "En el principio creó Dios los cielos y la tierra." "Y dijo Dios: Sea la luz: y fué la luz." \
	"Amarás á tu prójimo como á ti mismo." "El niño come pan en la casa de su padre."

translate: $(STAMP) ## translate example sentences with the model `make train` produced (INPUT=file for yours)
ifdef INPUT
	nmt translate checkpoint=$(RUN) input=$(INPUT) $(ARGS)
else
	@mkdir -p .make && printf '%s\n' $(EXAMPLES) > .make/examples.es
	@nmt translate checkpoint=$(RUN) input=.make/examples.es $(ARGS) | paste -d '\n' .make/examples.es - | sed 'n;s/^/  -> /' 
	@echo "Your own text: make translate INPUT=file.es, or: nmt translate checkpoint=$(RUN) input=in.es output=out.en" >&2
	@echo "(run nmt translate checkpoint=$(RUN) alone for a prompt; ARGS=decode=beam5 for beam search)" >&2
endif

evaluate: $(STAMP) ## BLEU, chrF and TER of the `make train` model on the test split (greedy and beam 5)
	nmt evaluate checkpoint=$(RUN) splits=[test] decode=greedy $(ARGS)
	nmt evaluate checkpoint=$(RUN) splits=[test] decode=beam5 $(ARGS)

MODEL ?= small
MINUTES ?= 60
train-multi30k: $(STAMP) ## train on Multi30k de-en from ../shared/data/multi30k (MODEL=small|rnnsearch, MINUTES=60)
	nmt train data=multi30k data.local_dir=../shared/data/multi30k model=$(MODEL) train.max_minutes=$(MINUTES) \
		train.max_epochs=200 train.patience=0 $(ARGS)

SENTENCE ?= En el principio creó Dios los cielos y la tierra.
plots: $(STAMP) ## draw RUN's training curves, encoder gates and (rnnsearch) attention on SENTENCE into RUN/plots
	nmt plot curves run=$(RUN)
	nmt plot gates run=$(RUN) "sentence=$(SENTENCE)"
	@if grep -q '^  arch: rnnsearch' $(RUN)/config.yaml; then nmt plot attention run=$(RUN) "sentence=$(SENTENCE)"; fi

BENCH_RUN ?=
bench: $(STAMP) ## measure training/decoding speed, FLOP/s vs the matmul ceiling, memory (BENCH_RUN=run to decode)
	nmt bench $(if $(BENCH_RUN),checkpoint=$(BENCH_RUN)) $(ARGS)

ENTRIES ?= 1000000
bench-phrases: $(STAMP) ## nmt score phrase_table= on ENTRIES synthetic Moses entries: entries/s, peak memory (BENCH_RUN=run)
	$(PYTHON) -m nmt.bench.phrase_table --entries $(ENTRIES) $(if $(BENCH_RUN),--checkpoint $(BENCH_RUN)) $(ARGS)

PEERS ?= ../shared/bench
bench-peers: $(STAMP) ## training speed beside JoeyNMT and OpenNMT-py, back to back (PEERS=folder of their harnesses)
	$(PYTHON) -m nmt.bench.peers --peers $(PEERS) $(ARGS)

SERVE_RUN ?= runs/multi30k-de-en-rnnsearch
serve: $(STAMP) ## serve RUN over HTTP (API, page with attention and gates) at http://127.0.0.1:8000/
	nmt serve checkpoint=$(RUN) $(ARGS)

bench-serve: $(STAMP) ## nmt serve under load (32 clients, 2,000 requests) against offline translation (SERVE_RUN=run)
	$(PYTHON) -m nmt.bench.serve_load --checkpoint $(SERVE_RUN) $(ARGS)

test: $(STAMP) ## run the fast test suite (a few minutes on 2 cores)
	$(PYTHON) -m pytest -q

test-full: $(STAMP) ## run every test, slow ones included
	$(PYTHON) -m pytest -q -m "slow or not slow"

lint: $(STAMP) ## ruff over the code and tests
	$(PYTHON) -m ruff check nmt tests data/build_bible.py

data: ## rebuild data/bible-es-en from Debian's SWORD modules (needs apt; see data/README.md)
	$(PYTHON) data/build_bible.py

clean: ## remove caches and build stamps (keeps runs/)
	rm -rf .make .pytest_cache .ruff_cache *.egg-info
