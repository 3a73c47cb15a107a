# Two commands from a fresh clone; both set up the environment first when it needs it
# (install.sh: the active venv/conda env, else ./.venv).
PYTHON := $(shell bash scripts/python_for_project.sh)

.PHONY: setup demo test

setup:
	bash install.sh

# Train the built-in demo (sketch -> shaded shapes, 3-10 minutes on 2 CPU cores), then
# write its test page: results/demo/test_latest/index.html. The demo trains with batches of 4,
# so its test recomputes batch norm's statistics over training images (README, "Start").
demo: setup
	$(PYTHON) train.py --overwrite
	$(PYTHON) test.py --eval --bn_eval precise

test: setup
	bash scripts/install_browser.sh
	$(PYTHON) -m pytest -q
