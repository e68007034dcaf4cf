. /work/main/.venv/bin/activate; export PYTHONPATH=/work/wt-fix-pipeline/src
