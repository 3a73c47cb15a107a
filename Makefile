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

# Two test processes side by side (pytest-xdist), each test file in one of them; on 2 cores the
# suite takes about 2/3 of its time in one process. The tests marked `alone` (a browser drawing
# on a page, which missed its canvas on a loaded machine) run afterwards in one process.
TEST_WORKERS ?= 2

test: setup
	bash scripts/install_browser.sh
	$(PYTHON) -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not alone"
	$(PYTHON) -m pytest -q -m alone
